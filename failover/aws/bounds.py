"""EC2 calls bounded by a move's deadline: no attempt starts after it, mutating calls try few times.

botocore's retry mode would retry a throttled call up to `aws.max_attempts` times with
backoffs of up to 20 s each: on a move with a 60 s deadline, one call could outlive it. So,
for the calls of this thread while a deadline is set (`bounded`):
- no attempt is sent after the deadline (a `before-send` handler refuses it, before moto's
  in-process stub or the HTTP send: nothing reaches AWS), and no retry is asked for past it;
- a mutating call is tried at most MUTATING_ATTEMPTS times (AttachNetworkInterface takes no
  idempotency token: each retry is a new call that AWS judges against the new state);
- the pacer waits for a token only if the token comes before the deadline.
A move therefore ends at most one attempt's timeout (connect + read) after its deadline.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from botocore.exceptions import BotoCoreError

MUTATING_ATTEMPTS = 3
_READ_PREFIXES = ("Describe", "Get", "List", "Search")

_local = threading.local()


class DeadlineReached(BotoCoreError):
    """An EC2 call of a bounded move would start after the move's deadline; it was not sent.

    `code` and `message` are AWS's last answer to this thread's call, when it had one (the
    throttling that kept the call from succeeding in time): the operator's real cause.
    """

    fmt = "{reason}"

    def __init__(self, reason: str) -> None:
        last: tuple[str, str, str] | None = getattr(_local, "last_answer", None)
        self.code, self.message = (last[0], last[1]) if last else ("DeadlineReached", reason)
        if last is not None:
            # Named with the call AWS gave it to: the call refused here may be another (a read).
            code, message, operation = last
            reason = (
                f"{message} (AWS's answer to {operation}, {code}, until {deadline_name()} passed)"
            )
        super().__init__(reason=reason)


@contextmanager
def bounded(
    time_left: Callable[[], float] | None, name: str = "the move's deadline"
) -> Iterator[None]:
    """Bound this thread's EC2 calls for the block: `time_left()` is the seconds to the deadline,
    `name` what the deadline is, in the messages (`the move's deadline`, `the read budget`)."""
    previous = getattr(_local, "time_left", None), getattr(_local, "name", None)
    _local.time_left, _local.name = time_left, name
    try:
        yield
    finally:
        _local.time_left, _local.name = previous


def carried() -> Callable[[], AbstractContextManager[None]]:
    """This thread's bound and AWS's last answer to it, to apply (in a `with`) on a thread that
    calls on its behalf: its calls keep the deadline, and a refusal names the real cause."""
    time_left, name = getattr(_local, "time_left", None), deadline_name()
    last = getattr(_local, "last_answer", None)

    @contextmanager
    def applied() -> Iterator[None]:
        _local.last_answer = last
        with bounded(time_left, name):
            yield

    return applied


def deadline_name() -> str:
    """What this thread's deadline is, for a message."""
    return str(getattr(_local, "name", None) or "the move's deadline")


def exhausted(after: float = 0.0) -> bool:
    """Whether this thread's deadline comes within `after` seconds (False when unbounded)."""
    time_left: Callable[[], float] | None = getattr(_local, "time_left", None)
    return time_left is not None and time_left() <= after


def attach(client: Any) -> None:
    """Make `client` (an EC2 client) honour the deadline and the mutating-attempts cap."""

    def refuse_late(**_: Any) -> None:
        if exhausted():
            raise DeadlineReached(f"{deadline_name()} passed before the call was sent")

    def limit_retries(
        attempts: int,
        operation: Any,
        response: Any = None,
        caught_exception: Exception | None = None,
        **_: Any,
    ) -> bool | None:
        error = response[1].get("Error", {}) if response is not None else {}
        if error:
            answer = (str(error["Code"]), str(error.get("Message", "")), str(operation.name))
            _local.last_answer = answer
        elif caught_exception is not None:
            # No answer at all (a timeout, a refused connection): that is the cause to name.
            _local.last_answer = ("NetworkError", str(caught_exception), str(operation.name))
        elif (last := getattr(_local, "last_answer", None)) is not None and last[2] == str(
            operation.name
        ):
            # That call got through: its earlier refusal is no cause any more. Another call
            # succeeding (a wait's read between throttled detaches) leaves the cause standing.
            _local.last_answer = None
        mutating = not str(operation.name).startswith(_READ_PREFIXES)
        if (mutating and attempts >= MUTATING_ATTEMPTS) or exhausted():
            return False  # first in line: botocore's own retry handler is not asked
        return None

    events = client.meta.events
    events.register_first("before-send.ec2", refuse_late)
    events.register_first("needs-retry.ec2", limit_retries)
