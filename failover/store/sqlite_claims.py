"""Per-group claims in the SQLite state file: the LeaseTable of the sqlite backend.

The daemon, `check`, `move` and the Lambda claim a group before they act on it, exactly as
they lease it with DynamoDB: the algorithm is the same `TableLease` (failover/coord/lease.py,
holder, fencing token and version per group; a heartbeat per claiming process), kept in
two tables of the state file (failover/store/sqlite_schema.py):

    claims         group_name PRIMARY KEY, holder ("" once released), token, rvn, taken_at
    claim_holders  holder PRIMARY KEY, rvn, ttl_s, spreads, beat_at, asks (a JSON list)

`write_all` checks every claim's version and writes them all in one `BEGIN IMMEDIATE`
transaction, or none: the write lock makes it atomic against every other process on the
file. A heartbeat deletes the heartbeats written more than a day before it (as DynamoDB's
TTL attribute does for that backend): every cron `check` is a new holder, and the lease
rounds read them all. Liveness never reads the wall clock: a day-old heartbeat's holder
has been judged dead by its unchanged version long before.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from failover.coord.lease import BATCH
from failover.core.ports import Beat, Claim, LeaseRecord
from failover.store.sqlite import SqliteStore
from failover.store.sqlite_schema import chunks

HEARTBEAT_KEEP_S = 86400.0
"""How long a heartbeat row is kept after it was written."""


class SqliteClaims:
    """The LeaseTable port over the claim tables of a SqliteStore's file (its connection)."""

    def __init__(self, store: SqliteStore) -> None:
        """Claims in `store`'s file, through its connection and lock."""
        self._store = store

    def read_many(self, groups: Sequence[str]) -> dict[str, LeaseRecord]:
        """The claims of `groups` that exist, by group."""
        found: dict[str, LeaseRecord] = {}
        with self._store.transaction("read claims", write=False) as conn:
            for chunk in chunks(list(dict.fromkeys(groups))):
                marks = ", ".join("?" * len(chunk))
                for group, holder, token, rvn, taken_at in conn.execute(
                    "SELECT group_name, holder, token, rvn, taken_at FROM claims "
                    f"WHERE group_name IN ({marks})",
                    list(chunk),
                ):
                    found[group] = LeaseRecord(group, holder, token, rvn, taken_at)
        return found

    def write_all(self, claims: Sequence[Claim]) -> list[int]:
        """Write every claim whose version holds, all in one transaction, or none of them."""
        if len(claims) > BATCH:
            raise ValueError(f"a batch takes at most {BATCH} claims")
        with self._store.transaction("write claims", write=True) as conn:
            refused = []
            for position, (record, rvn) in enumerate(claims):
                row = conn.execute(
                    "SELECT rvn FROM claims WHERE group_name = ?", (record.group,)
                ).fetchone()
                if (row is None) != (rvn is None) or (row is not None and row[0] != rvn):
                    refused.append(position)
            if refused:
                return refused
            conn.executemany(
                "INSERT INTO claims (group_name, holder, token, rvn, taken_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (group_name) DO UPDATE SET "
                "holder = excluded.holder, token = excluded.token, rvn = excluded.rvn, "
                "taken_at = excluded.taken_at",
                [(r.group, r.holder, r.token, r.rvn, r.taken_at) for r, _ in claims],
            )
        return []

    def beat(self, beat: Beat) -> None:
        """Write a claiming process's heartbeat."""
        with self._store.transaction("heartbeat", write=True) as conn:
            conn.execute(
                "INSERT INTO claim_holders (holder, rvn, ttl_s, spreads, beat_at, asks) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (holder) DO UPDATE SET "
                "rvn = excluded.rvn, ttl_s = excluded.ttl_s, spreads = excluded.spreads, "
                "beat_at = excluded.beat_at, asks = excluded.asks",
                (
                    beat.holder,
                    beat.rvn,
                    beat.ttl_s,
                    int(beat.spreads),
                    beat.at,
                    json.dumps(list(beat.asks)),
                ),
            )
            conn.execute(
                "DELETE FROM claim_holders WHERE beat_at < ?", (beat.at - HEARTBEAT_KEEP_S,)
            )

    def beats(self) -> dict[str, Beat]:
        """Every heartbeat, by holder."""
        with self._store.transaction("read heartbeats", write=False) as conn:
            rows = conn.execute(
                "SELECT holder, rvn, ttl_s, spreads, beat_at, asks FROM claim_holders"
            ).fetchall()
        return {
            holder: Beat(holder, rvn, ttl_s, bool(spreads), at, tuple(json.loads(asks)))
            for holder, rvn, ttl_s, spreads, at, asks in rows
        }
