"""The real clock behind the `Clock` port."""

from __future__ import annotations

import time


class SystemClock:
    """Wall time for records, monotonic time for deadlines, real sleep."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)
