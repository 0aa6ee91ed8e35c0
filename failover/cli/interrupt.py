"""SIGINT and SIGTERM while a command changes AWS: a request to stop at the next step boundary.

Outside `Interrupt.catching()` a signal stops the command at once (nothing is in flight
that the journal would not cover). Inside it, the first SIGINT or SIGTERM is only
recorded: the engine reads `requested()` between steps, journals where the move stands
and raises MoveInterruptedError, which the CLI turns into its line and exit 128 + signal.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

STOP_SIGNALS: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)


class Interrupt:
    """The stop request of one command: the number of the first SIGINT/SIGTERM received, or None."""

    def __init__(self) -> None:
        self._signum: int | None = None

    def requested(self) -> int | None:
        """The signal that asked to stop (the engine's `stop`), or None."""
        return self._signum

    @contextmanager
    def catching(self) -> Iterator[Interrupt]:
        """Record SIGINT/SIGTERM instead of dying for the block (main thread only; else a no-op)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous: dict[int, Any] = {}
        try:
            for sig in STOP_SIGNALS:
                previous[sig] = signal.signal(sig, self._on_signal)
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._signum is None:
            self._signum = signum
            name = signal.Signals(signum).name
            # os.write: a signal handler must not re-enter a buffered stream mid-write.
            os.write(2, f"failover: {name}: stopping at the next step boundary\n".encode())


class Terminated(BaseException):
    """SIGTERM outside a step-boundary window: the command stops at once (exit 143).

    A BaseException, like KeyboardInterrupt, so no `except Exception` swallows it.
    """


def terminate_at_once(signum: int, frame: FrameType | None) -> None:
    """The default SIGTERM handler of a command: raise Terminated where the command stands."""
    raise Terminated
