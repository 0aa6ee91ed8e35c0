"""Wait for AWS to converge: tenacity with exponential backoff, jitter and a hard deadline.

Used for the engine's waits (an ENI reaching `available`, an IP leaving the old ENI)
and for retrying a step after a transient error. The deadline is on the injected
clock, so tests decide whether time is real.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from failover.core.errors import TransientCloudError
from failover.core.ports import Clock

if TYPE_CHECKING:
    from tenacity import RetryCallState

T = TypeVar("T")

# Polls start fast and stay under half a second apart: a detach takes seconds on AWS,
# and every extra half-second of slack is failover time the user waits for.
FIRST_POLL_S = 0.1
MAX_POLL_S = 0.5


def until(
    attempt: Callable[[], T],
    done: Callable[[T], bool],
    *,
    clock: Clock,
    deadline: float,
    max_wait_s: float = MAX_POLL_S,
) -> T:
    """Call `attempt` until `done(result)` or the deadline (monotonic) passes; return the last result.

    A TransientCloudError is retried like a not-yet-done result; if it is still the
    answer at the deadline it is raised. Any other error is raised at once.
    """
    # Imported on the first wait: a cron check or a move reaches its first AWS call sooner.
    from tenacity import (
        Retrying,
        retry_if_exception_type,
        retry_if_result,
        wait_exponential_jitter,
    )

    def stop(state: RetryCallState) -> bool:
        return clock.monotonic() >= deadline

    def last_result(state: RetryCallState) -> T:
        assert state.outcome is not None
        result: T = state.outcome.result()  # raises the last transient error if that was it
        return result

    backoff = wait_exponential_jitter(multiplier=FIRST_POLL_S, max=max_wait_s, jitter=FIRST_POLL_S)

    def wait(state: RetryCallState) -> float:
        # Never sleep past the deadline: the last poll happens at it, not after it.
        return max(0.0, min(backoff(state), deadline - clock.monotonic()))

    retrying: Retrying = Retrying(
        stop=stop,
        wait=wait,
        retry=retry_if_exception_type(TransientCloudError) | retry_if_result(lambda r: not done(r)),
        sleep=clock.sleep,
        retry_error_callback=last_result,
    )
    return retrying(attempt)
