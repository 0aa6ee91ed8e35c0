"""A move as it runs, on a terminal: each step with its elapsed time, and a wait's progress.

Only for a TTY: piped output and logs get the step lines of the journal, not a ticker.
"""

from __future__ import annotations

from typing import TextIO

import click

from failover.core.model import Step
from failover.core.ports import StepRecord

# A wait redraws its line at most this often (the engine polls every 0.2 s).
REDRAW_S = 0.5


class LiveSteps:
    """`on_step` and `on_wait` for the engine: step lines, and `waited 3.1s / 15s` redrawn in place."""

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out
        self._drawn_at: float | None = None  # seconds waited when the wait line was last drawn

    def on_step(self, step: Step | None, event: StepRecord) -> None:
        """One journal event as a line (the wait's line, if any, is ended first)."""
        self._end_wait()
        if event.phase == "started":
            self._echo(f"  ... {event.description}")
        elif event.phase == "done":
            extra = f" ({event.detail})" if event.detail else ""
            self._echo(f"  ok  {event.description} [{event.elapsed_s:.2f}s]{extra}")
        elif event.phase == "failed":
            self._echo(f"  FAIL {event.description} [{event.elapsed_s:.2f}s]: {event.detail}")
        elif event.phase == "skipped":
            self._echo(f"  --  {event.description} (already true)")
        elif event.phase == "interrupted":
            self._echo(f"  STOP {event.description} [{event.elapsed_s:.2f}s]")

    def on_wait(self, step: Step, waited_s: float, budget_s: float) -> None:
        """Redraw the current wait's `elapsed / deadline` line (carriage return, no newline)."""
        if self._drawn_at is not None and waited_s - self._drawn_at < REDRAW_S:
            return
        self._drawn_at = waited_s
        click.echo(f"\r      waiting {waited_s:4.1f}s / {budget_s:.0f}s", nl=False, file=self._out)

    def _end_wait(self) -> None:
        if self._drawn_at is not None:
            click.echo("", file=self._out)
            self._drawn_at = None

    def _echo(self, line: str) -> None:
        click.echo(line, file=self._out)
