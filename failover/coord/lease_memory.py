"""Leases in memory: a LeaseTable behind a lock, for tests and single-process use (same algorithm as DynamoDB)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from failover.coord.lease import (
    BATCH,
    DEFAULT_TTL_S,
    Beat,
    Claim,
    LeaseRecord,
    LeaseTable,
    TableLease,
)

if TYPE_CHECKING:
    from failover.core.ports import Clock


class MemoryLeaseTable:
    """A LeaseTable in dicts behind a lock: one instance shared by several FakeLeases."""

    def __init__(self) -> None:
        """An empty table."""
        self._lock = threading.Lock()
        self._records: dict[str, LeaseRecord] = {}
        self._beats: dict[str, Beat] = {}

    def read_many(self, groups: Sequence[str]) -> dict[str, LeaseRecord]:
        """The lease items of `groups` that exist."""
        with self._lock:
            return {g: self._records[g] for g in groups if g in self._records}

    def _holds(self, claim: Claim) -> bool:
        current = self._records.get(claim[0].group)
        return (
            (current is None)
            if claim[1] is None
            else (current is not None and current.rvn == claim[1])
        )

    def write_all(self, claims: Sequence[Claim]) -> list[int]:
        """Write every claim, or none: the positions of those whose version does not hold."""
        if len(claims) > BATCH:
            raise ValueError(f"a batch takes at most {BATCH} claims")
        with self._lock:
            refused = [i for i, claim in enumerate(claims) if not self._holds(claim)]
            if not refused:
                for record, _ in claims:
                    self._records[record.group] = record
            return refused

    def beat(self, beat: Beat) -> None:
        """Write a heartbeat."""
        with self._lock:
            self._beats[beat.holder] = beat

    def beats(self) -> dict[str, Beat]:
        """Every heartbeat, by holder."""
        with self._lock:
            return dict(self._beats)


class FakeLease(TableLease):
    """The lease algorithm over a MemoryLeaseTable: the same contract, no AWS."""

    def __init__(
        self,
        table: LeaseTable | None,
        clock: Clock,
        holder_id: str | None = None,
        ttl_s: float = DEFAULT_TTL_S,
        margin_s: float | None = None,
        *,
        spreads: bool = True,
        sole_daemon: bool = False,
    ) -> None:
        """Share `table` between FakeLeases to model several orchestrators."""
        super().__init__(
            table if table is not None else MemoryLeaseTable(),
            clock,
            holder_id,
            ttl_s,
            margin_s,
            spreads=spreads,
            sole_daemon=sole_daemon,
        )
