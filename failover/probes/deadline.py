"""Probe deadlines that charge a member only for time the local event loop could serve it.

Thousands of probes share one event loop. When it is busy (a burst of connects, a
loaded host), a member's answer sits in the kernel until the loop gets round to it;
a wall-clock timeout would then blame the member for our own backlog, and a false
failure can move a resource off a healthy member. So:

- `LoopLag` measures the loop's backlog: a tiny task sleeps `TICK_S` over and over,
  and every moment it is overdue is lag (time in which no probe could be served).
- `Deadline` is `asyncio.timeout` on a probe's *charged* time, its wall time minus the
  lag that fell inside it: on an idle loop it is the plain timeout; on a busy one the
  member still gets its full timeout of the loop's attention.

Safety: lag only ever postpones a deadline, it never makes a probe pass; a probe passes
only when the member answered. And the postponement is bounded: a probe that has not
had its timeout of attention within `timeout + OVERLOAD_GRACE_S` of wall time ends as a
failure whose reason says the host, not the member, was overloaded (nothing above the
probes has an "unknown" verdict, and unknown is never read as healthy).
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from types import TracebackType

from failover.probes.target import seconds

TICK_S = 0.005
"""How often the lag meter wakes; a busy spell shorter than this may go uncounted."""

OVERLOAD_GRACE_S = 5.0
"""Wall time past its timeout a probe may wait for a lagging loop before it is given up."""


@dataclass(frozen=True)
class Mark:
    """A moment on the loop's clock and the loop's total lag at that moment."""

    at: float
    lag: float


class LoopLag:
    """The event loop's cumulative lag: time its callbacks ran late. Run `meter()` as a task.

    Until the meter runs it reports no lag, so a Deadline without it is a plain timeout.
    """

    def __init__(self) -> None:
        self._lagged_s = 0.0
        self._due = math.inf  # when the meter's current sleep should end

    def total(self, now: float) -> float:
        """Lag so far, including the meter's current overdue spell (the loop may be busy now)."""
        return self._lagged_s + max(0.0, now - self._due)

    def mark(self) -> Mark:
        """Now, with the lag so far: the start of something whose charged time is wanted."""
        now = asyncio.get_running_loop().time()
        return Mark(now, self.total(now))

    def charged(self, since: Mark) -> float:
        """Wall time since `since`, minus the lag inside it: the time the loop was free."""
        now = asyncio.get_running_loop().time()
        return (now - since.at) - (self.total(now) - since.lag)

    def lagged(self, since: Mark) -> float:
        """The lag since `since`."""
        return self.total(asyncio.get_running_loop().time()) - since.lag

    async def meter(self) -> None:
        """Sleep `TICK_S` forever, adding up how late each wake-up is; cancel to stop."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                self._due = loop.time() + TICK_S
                await asyncio.sleep(TICK_S)
                now = loop.time()
                self._lagged_s += max(0.0, now - self._due)
        finally:
            self._due = math.inf


class Deadline:
    """`async with Deadline(timeout_s, lag):` raises TimeoutError once the block has been
    charged `timeout_s` (see LoopLag), or at `timeout_s + OVERLOAD_GRACE_S` of wall time.

    After a TimeoutError, `reason` says which: the member's timeout, or our overload.
    """

    def __init__(self, timeout_s: float, lag: LoopLag) -> None:
        self.timeout_s = timeout_s
        self.overloaded = False
        self._lag = lag
        self._timeout = asyncio.timeout(None)
        self._check: asyncio.TimerHandle | None = None
        self._start = Mark(0.0, 0.0)
        self._give_up_at = 0.0
        self._lagged_s = 0.0  # the lag inside the block when it was given up

    @property
    def reason(self) -> str:
        """Why the block timed out, for a probe's failure reason."""
        if self.overloaded:
            return (
                f"no verdict, local overload: this host's event loop lagged "
                f"{seconds(self._lagged_s)} in the probe's {seconds(self._give_up_at - self._start.at)}"
            )
        return f"timed out after {seconds(self.timeout_s)}"

    async def __aenter__(self) -> Deadline:
        await self._timeout.__aenter__()
        self._start = self._lag.mark()
        self._give_up_at = self._start.at + self.timeout_s + OVERLOAD_GRACE_S
        self._arm(self._start.at + self.timeout_s)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._check is not None:
            self._check.cancel()
        await self._timeout.__aexit__(exc_type, exc, tb)

    def _arm(self, when: float) -> None:
        self._check = asyncio.get_running_loop().call_at(min(when, self._give_up_at), self._expire)

    def _expire(self) -> None:
        now = asyncio.get_running_loop().time()
        left = self.timeout_s - self._lag.charged(self._start)
        if left <= 0 or now >= self._give_up_at:
            self.overloaded = left > 0
            self._lagged_s = self._lag.lagged(self._start)
            self._check = None
            self._timeout.reschedule(now)  # cancels the block; it exits with TimeoutError
        else:
            # The loop lagged: the member has not had its full timeout yet.
            self._arm(now + left)
