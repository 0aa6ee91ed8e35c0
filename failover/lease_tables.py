"""Where the leases live: DynamoDB for production, memory for tests; one algorithm over both."""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from failover.aws.dynamodb import EXPIRES, PK, SK, Put
from failover.clock import SystemClock
from failover.lease import BATCH, DEFAULT_TTL_S, Beat, Claim, LeaseRecord, LeaseTable, TableLease
from failover.store.dynamodb import HOLDER_PREFIX, HOLDERS_PK, LEASE_SK, group_pk

if TYPE_CHECKING:
    from failover.aws.dynamodb import DynamoTable
    from failover.ports import Clock

_HEARTBEAT_KEEP_S = 86400


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
        table: LeaseTable | None = None,
        clock: Clock | None = None,
        holder_id: str | None = None,
        ttl_s: float = DEFAULT_TTL_S,
        margin_s: float | None = None,
        *,
        spreads: bool = True,
    ) -> None:
        """Share `table` between FakeLeases to model several orchestrators."""
        super().__init__(
            table if table is not None else MemoryLeaseTable(),
            clock if clock is not None else SystemClock(),
            holder_id,
            ttl_s,
            margin_s,
            spreads=spreads,
        )


class DynamoLeaseTable:
    """Lease items and heartbeats in the store's DynamoDB table (keys: failover/store/dynamodb.py).

    Lease: pk group#<group>, sk lease. Heartbeat: pk orchestrators, sk holder#<id>, with the
    table's TTL attribute `expires` a day after it was written, so DynamoDB eventually
    deletes the heartbeats of orchestrators long gone (liveness never reads `expires`; a
    lease whose holder has no heartbeat is taken a TTL after that is first seen).
    """

    def __init__(self, table: DynamoTable) -> None:
        """Use `table` (made by `create_table`)."""
        self._table = table

    def read_many(self, groups: Sequence[str]) -> dict[str, LeaseRecord]:
        """BatchGetItem of the groups' lease items, strongly consistent."""
        items = self._table.get_many([(group_pk(g), LEASE_SK) for g in groups])
        return {
            str(item["group"]): LeaseRecord(
                group=str(item["group"]),
                holder=str(item["holder"]),
                token=int(item["token"]),
                rvn=str(item["rvn"]),
                taken_at=float(item["taken_at"]),
            )
            for item in items.values()
        }

    def write_all(self, claims: Sequence[Claim]) -> list[int]:
        """One TransactWriteItems of PutItems, each conditional on its item's version."""
        return self._table.transact_refused([_put(claim) for claim in claims])

    def beat(self, beat: Beat) -> None:
        """PutItem of the holder's heartbeat."""
        self._table.put(
            {
                PK: HOLDERS_PK,
                SK: HOLDER_PREFIX + beat.holder,
                "holder": beat.holder,
                "rvn": beat.rvn,
                "ttl_s": beat.ttl_s,
                "spreads": beat.spreads,
                "beat_at": beat.at,
                EXPIRES: math.ceil(beat.at) + _HEARTBEAT_KEEP_S,
            }
        )

    def beats(self) -> dict[str, Beat]:
        """Every heartbeat, by holder (one Query)."""
        return {
            str(i["holder"]): Beat(
                holder=str(i["holder"]),
                rvn=str(i["rvn"]),
                ttl_s=float(i.get("ttl_s", DEFAULT_TTL_S)),
                spreads=bool(i.get("spreads", True)),
                at=float(i["beat_at"]),
            )
            for i in self._table.query(HOLDERS_PK, prefix=HOLDER_PREFIX)
        }


def _put(claim: Claim) -> Put:
    record, rvn = claim
    item: dict[str, Any] = {
        PK: group_pk(record.group),
        SK: LEASE_SK,
        "group": record.group,
        "holder": record.holder,
        "token": record.token,
        "rvn": record.rvn,
        "taken_at": record.taken_at,
    }
    if rvn is None:
        return Put(item, condition="attribute_not_exists(pk)")
    return Put(item, condition="rvn = :rvn", values={":rvn": rvn})
