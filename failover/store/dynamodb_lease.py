"""Lease items and heartbeats in the state's DynamoDB table: the production LeaseTable."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from failover.aws.dynamodb import EXPIRES, PK, SK, Put
from failover.coord.lease import DEFAULT_TTL_S, Beat, Claim, LeaseRecord
from failover.store.dynamodb_items import HOLDER_PREFIX, HOLDERS_PK, LEASE_SK, group_pk

if TYPE_CHECKING:
    from failover.aws.dynamodb import DynamoTable

_HEARTBEAT_KEEP_S = 86400


class DynamoLeaseTable:
    """Lease items and heartbeats in the store's DynamoDB table (keys: failover/store/dynamodb.py).

    Lease: pk group#<group>, sk lease. Heartbeat: pk orchestrators, sk holder#<id>, with
    the groups its holder asks to be handed over (`asks`, a list), and the table's TTL
    attribute `expires` a day after it was written, so DynamoDB eventually
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
                "asks": list(beat.asks),
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
                asks=tuple(str(g) for g in i.get("asks") or ()),
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
