"""One run of a move in the journal: each event is stored before the move goes on, then kept and told."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from failover.core.errors import CloudError, FailoverError
from failover.core.model import Step
from failover.core.ports import Clock, Cloud, MoveRecord, StepRecord, Store

if TYPE_CHECKING:
    from failover.config import Group

log = logging.getLogger(__name__)

# (the step, or None for an event of the whole move; the event just journaled).
StepListener = Callable[[Step | None, StepRecord], None]


class MoveJournal:
    """The events of one run of a move, stored in the order they happen and kept for its result."""

    def __init__(
        self, store: Store, clock: Clock, record: MoveRecord, on_step: StepListener | None
    ) -> None:
        self.store, self.clock, self.record = store, clock, record
        self._on_step = on_step
        self.events: list[StepRecord] = []

    def emit(self, step: Step | None, event: StepRecord) -> None:
        """Store `event`, keep it, and tell the listener."""
        self.store.record_step(self.record.move_id, event)
        self.events.append(event)
        if self._on_step is not None:
            self._on_step(step, event)

    def step(self, step: Step, phase: str, began: float | None = None, detail: str = "") -> None:
        """Journal `step` entering `phase`; `began` (monotonic) gives its elapsed time."""
        elapsed = self.clock.monotonic() - began if began is not None else 0.0
        event = StepRecord(step.kind, step.describe(), phase, self.clock.now(), elapsed, detail)
        self.emit(step, event)

    def close_failed(self, cloud: Cloud, group: Group, exc: FailoverError) -> None:
        """Close the journal entry, unless the resource is left unowned: then the next run finishes it."""
        record = self.record
        try:
            view = cloud.observe(group)
        except CloudError:
            return  # cannot tell: keep the journal open, the next run re-reads AWS
        if view.active is None:
            log.error(
                "move %s of group %s stopped with %s unowned; the next run finishes it",
                record.move_id,
                group.name,
                group.resource,
            )
            return
        self.store.finish_move(record.move_id, "failed", self.clock.now(), str(exc))
