"""Whether the orchestrator can see AWS: N passes in a row whose AWS reads failed make it blind.

A blind daemon must be loud (an alert, `/healthz` 503 with the reason), and must say so
once, not every pass; it clears when a pass reads AWS again. The watchdog is not told:
it measures the loop's liveness, and restarting a daemon does not bring AWS back.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

# Consecutive failed passes before the daemon calls itself blind: one is a blip that
# botocore's retries already fought, three at the default 2 s interval is ~6 s of nothing.
BLIND_AFTER_PASSES = 3


@dataclass(frozen=True)
class Change:
    """What a pass changed: `blind` (it made us blind) or `recovered`, and the text to say."""

    event: str  # blind | recovered
    message: str


class Sight:
    """Counts consecutive passes whose AWS reads failed; thread-safe (passes run on a pool)."""

    def __init__(self, threshold: int = BLIND_AFTER_PASSES) -> None:
        self.threshold = threshold
        self._lock = threading.Lock()
        self._failed = 0
        self._last_error = ""

    def pass_failed(self, error: str) -> Change | None:
        """A pass could not read AWS (`error`: AWS's code and words); the change, on the Nth in a row."""
        with self._lock:
            self._failed += 1
            self._last_error = error
            if self._failed == self.threshold:
                return Change("blind", self._blind_text())
            return None

    def pass_succeeded(self) -> Change | None:
        """A pass read AWS; `recovered` if that ends a blind spell."""
        with self._lock:
            failed, self._failed = self._failed, 0
            if failed >= self.threshold:
                return Change(
                    "recovered", f"AWS answers again after {failed} passes that could not read it"
                )
            return None

    def problem(self) -> str | None:
        """Why the daemon is blind (for /healthz), or None while it can see AWS."""
        with self._lock:
            return self._blind_text() if self._failed >= self.threshold else None

    def _blind_text(self) -> str:
        return (
            f"blind: {self._failed} passes in a row could not read AWS "
            f"(last: {self._last_error}); no failover can be judged or made"
        )
