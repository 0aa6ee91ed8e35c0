"""A stop request during a move: honoured only at step boundaries, never in the middle of a call."""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING

from failover.core.errors import CloudError, MoveInterruptedError
from failover.core.model import MUTATING_STEPS
from failover.core.ports import Clock, Cloud, StepRecord, Store
from failover.service.journal import MoveJournal

if TYPE_CHECKING:
    from failover.config import Group

log = logging.getLogger(__name__)

# The number of the signal that asked the move to stop, or None.
StopRequest = Callable[[], int | None]

# The detail of a mutating step's `interrupted` event when its call was never sent.
BEFORE_CALL = "stopped before its call"


class Stop(Exception):
    """A stop was requested; raised at a step boundary and turned into MoveInterruptedError.

    `sent`: the step had already sent its call once (a retry was due), so AWS may have applied it.
    """

    def __init__(self, signum: int, *, sent: bool = False) -> None:
        super().__init__(signum)
        self.signum, self.sent = signum, sent


class Interruptions:
    """Asks for a stop at each step boundary, and journals where a stopped move stands.

    The boundaries: before each step, before each mutating call and between the polls of a
    wait. The journal records where the move stopped and keeps it open for the next run,
    unless no mutating call had been sent (then it is closed as `interrupted`).
    """

    def __init__(self, stop: StopRequest | None, cloud: Cloud, store: Store, clock: Clock) -> None:
        # Asked at every step boundary: a signal's number there stops the move.
        self._stop = stop
        self.cloud, self.store, self.clock = cloud, store, clock

    def requested(self) -> int | None:
        """The signal that asked the move to stop, or None."""
        return self._stop() if self._stop is not None else None

    def checkpoint(self, *, sent: bool = False) -> None:
        """A step boundary: raise Stop if a stop was requested."""
        if (signum := self.requested()) is not None:
            raise Stop(signum, sent=sent)

    def stopped(self, group: Group, journal: MoveJournal, signum: int) -> MoveInterruptedError:
        """Journal where a stopped move stands and say it: open if a mutating call may have been sent."""
        name = signal_name(signum)
        record = journal.record
        steps = (*record.steps, *journal.events)
        sent = any(
            s.kind in MUTATING_STEPS
            and (
                s.phase in ("done", "failed")
                or (s.phase == "interrupted" and s.detail != BEFORE_CALL)
            )
            for s in steps
        )
        finished = [s.description for s in steps if s.phase in ("done", "skipped")]
        journal.emit(
            None, StepRecord("interrupted", f"stopped by {name}", "interrupted", self.clock.now())
        )
        aws_now = ""
        try:
            aws_now = self.cloud.observe(group).whereabouts()
        except CloudError as exc:
            log.warning("group %s: cannot read AWS after the stop: %s", group.name, exc)
        if not sent:
            self.store.finish_move(
                record.move_id, "interrupted", self.clock.now(), f"stopped by {name}: nothing sent"
            )
        error = MoveInterruptedError(
            group.name,
            group.resource,
            name,
            signum,
            move_id=record.move_id,
            source=record.source,
            target=record.target,
            unfinished=sent,
            after=finished[-1] if finished else None,
            aws_now=aws_now,
        )
        # The driver reports it (the CLI's one line, a check's outcome): logged only for the record.
        log.info("%s", error)
        return error


def signal_name(signum: int) -> str:
    """SIGINT, SIGTERM, ... (the number itself for a signal Python does not name)."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
