"""On a terminal a move shows each step and, while it waits on AWS, the time waited and allowed."""

from __future__ import annotations

import io

from failover.cli.progress import LiveSteps
from failover.core.model import Step, StepKind
from failover.core.ports import StepRecord

WAIT = Step(StepKind.WAIT_DETACHED, "eni-0f1", "i-0bb", "i-0aa")


def test_a_wait_shows_elapsed_and_deadline_redrawn_in_place_then_its_step_line() -> None:
    """Rule: a wait's progress is `waiting <elapsed> / <deadline>` on one redrawn line, ended
    before the step's own line; redraws are throttled, not one per poll."""
    out = io.StringIO()
    live = LiveSteps(out)
    live.on_step(WAIT, StepRecord("wait-detached", WAIT.describe(), "started", 0.0))
    for waited in (0.0, 0.2, 0.4, 0.6, 1.2):
        live.on_wait(WAIT, waited, 15.0)
    live.on_step(WAIT, StepRecord("wait-detached", WAIT.describe(), "done", 1.3, 1.3))
    text = out.getvalue()
    assert text.startswith("  ... wait until eni-0f1 is available\n")
    redraws = text.split("\n")[1].split("\r")[1:]
    assert redraws == [
        "      waiting  0.0s / 15s",
        "      waiting  0.6s / 15s",
        "      waiting  1.2s / 15s",
    ]
    assert text.endswith("\n  ok  wait until eni-0f1 is available [1.30s]\n")
