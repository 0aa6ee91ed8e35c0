"""The one fake clock of the test suite: the Clock port (wall and monotonic time) on a dial.

Time moves only when a test says so (`advance`) or when the code under test sleeps; nothing
ever waits. It is also callable (the monotonic reading), for the strict layer's `clock=`.
"""

from __future__ import annotations

import threading


class FakeClock:
    """Wall and monotonic time that move together, only by `advance` or `sleep`; sleeps are kept."""

    def __init__(self, wall: float = 1_800_000_000.0, mono: float = 1_000.0) -> None:
        self._lock = threading.Lock()
        self._wall = wall
        self._mono = mono
        self.slept: list[float] = []

    def now(self) -> float:
        with self._lock:
            return self._wall

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def __call__(self) -> float:
        return self.monotonic()

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(max(0.0, seconds))

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._wall += seconds
            self._mono += seconds
