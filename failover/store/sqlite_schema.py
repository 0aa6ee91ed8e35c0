"""The SQLite state file's schema, its migrations, and rows <-> the ports' values.

Tables (schema version 4, kept in `PRAGMA user_version`):

    moves          one row per move: the MoveRecord's fields except `steps`
                   (move_id PRIMARY KEY; `group_name` because GROUP is an SQL keyword;
                   `forced` 0/1; outcome 'in-progress' marks the journal's open intent)
    steps          the move's step events, a child table: step_id INTEGER PRIMARY KEY
                   (insertion order, never reused because rows are never deleted),
                   move_id REFERENCES moves, then the StepRecord's fields
    member_health  MemberHealth by (group_name, instance_id), upserted
    member_eth0    each member's primary ENI (eth0) by (group_name, instance_id), as a read
                   showed it (an instance keeps its eth0 for life): written when it changes
    group_state    GroupState by group_name, upserted
    claims         a group's claim: holder, fencing token, version (store/sqlite_claims.py)
    claim_holders  a claiming process's heartbeat and the groups it asks to be handed

Version 2 added `moves.driver`, `moves.os_user`, `group_state.held_by` (a hold stored
before it reads as the flap limit's) and the two claim tables; version 3
`moves.operator_forced` and `member_health.probed_at`; version 4 `member_eth0`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from failover.core.ports import GroupState, MemberHealth, MoveRecord, StepRecord

SCHEMA_VERSION = 4
"""The schema this code writes; `PRAGMA user_version` records the file's."""

_SCHEMA_V1 = (
    """
    CREATE TABLE IF NOT EXISTS moves (
        move_id     TEXT PRIMARY KEY,
        group_name  TEXT NOT NULL,
        mode        TEXT NOT NULL,
        resource    TEXT NOT NULL,
        source      TEXT,
        target      TEXT NOT NULL,
        caller      TEXT NOT NULL,
        reason      TEXT NOT NULL,
        started_at  REAL NOT NULL,
        outcome     TEXT NOT NULL,
        finished_at REAL,
        forced      INTEGER NOT NULL,
        token       INTEGER,
        detail      TEXT NOT NULL
    )
    """,
    "CREATE INDEX IF NOT EXISTS moves_by_group ON moves (group_name, started_at)",
    "CREATE INDEX IF NOT EXISTS moves_by_outcome ON moves (outcome, started_at)",
    """
    CREATE TABLE IF NOT EXISTS steps (
        step_id     INTEGER PRIMARY KEY,
        move_id     TEXT NOT NULL REFERENCES moves (move_id),
        kind        TEXT NOT NULL,
        description TEXT NOT NULL,
        phase       TEXT NOT NULL,
        at          REAL NOT NULL,
        elapsed_s   REAL NOT NULL,
        detail      TEXT NOT NULL
    )
    """,
    "CREATE INDEX IF NOT EXISTS steps_by_move ON steps (move_id, step_id)",
    """
    CREATE TABLE IF NOT EXISTS member_health (
        group_name  TEXT NOT NULL,
        instance_id TEXT NOT NULL,
        healthy     INTEGER NOT NULL,
        successes   INTEGER NOT NULL,
        failures    INTEGER NOT NULL,
        reason      TEXT NOT NULL,
        changed_at  REAL NOT NULL,
        PRIMARY KEY (group_name, instance_id)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS group_state (
        group_name  TEXT PRIMARY KEY,
        held        INTEGER NOT NULL,
        held_reason TEXT NOT NULL,
        status      TEXT NOT NULL,
        updated_at  REAL NOT NULL
    )
    """,
)

_SCHEMA_V2 = (
    "ALTER TABLE moves ADD COLUMN driver TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE moves ADD COLUMN os_user TEXT",
    "ALTER TABLE group_state ADD COLUMN held_by TEXT NOT NULL DEFAULT ''",
    # Before version 2 the flap limit was the only thing that held a group.
    "UPDATE group_state SET held_by = 'flap-limit' WHERE held = 1",
    """
    CREATE TABLE IF NOT EXISTS claims (
        group_name  TEXT PRIMARY KEY,
        holder      TEXT NOT NULL,
        token       INTEGER NOT NULL,
        rvn         TEXT NOT NULL,
        taken_at    REAL NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS claim_holders (
        holder      TEXT PRIMARY KEY,
        rvn         TEXT NOT NULL,
        ttl_s       REAL NOT NULL,
        spreads     INTEGER NOT NULL,
        beat_at     REAL NOT NULL,
        asks        TEXT NOT NULL
    )
    """,
)

# v3: whether the operator passed --force (apart from Force being allowed), and when each
# health verdict was made (stored health is a hint with an age).
_SCHEMA_V3 = (
    "ALTER TABLE moves ADD COLUMN operator_forced INTEGER",
    "ALTER TABLE member_health ADD COLUMN probed_at REAL NOT NULL DEFAULT 0",
)

# v4: each member's eth0, so a move can DryRun its target's calls on its read's round trip.
_SCHEMA_V4 = (
    """
    CREATE TABLE IF NOT EXISTS member_eth0 (
        group_name  TEXT NOT NULL,
        instance_id TEXT NOT NULL,
        eni_id      TEXT NOT NULL,
        PRIMARY KEY (group_name, instance_id)
    )
    """,
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (_SCHEMA_V1, _SCHEMA_V2, _SCHEMA_V3, _SCHEMA_V4)
"""MIGRATIONS[n] brings a file from user_version n to n + 1; append, never edit."""

MOVE_COLUMNS = (
    "move_id, group_name, mode, resource, source, target, caller, reason, started_at, "
    "outcome, finished_at, forced, token, detail, driver, os_user, operator_forced"
)
STEP_COLUMNS = "move_id, kind, description, phase, at, elapsed_s, detail"
HEALTH_COLUMNS = (
    "group_name, instance_id, healthy, successes, failures, reason, changed_at, probed_at"
)
STATE_COLUMNS = "group_name, held, held_reason, status, updated_at, held_by"

IN_CHUNK = 500
"""Names bound in one `IN (...)`: well under SQLite's limit (32766 since 3.32, 999 before)."""


def move_row(move: MoveRecord) -> tuple[Any, ...]:
    """A MoveRecord as MOVE_COLUMNS."""
    return (
        move.move_id,
        move.group,
        move.mode,
        move.resource,
        move.source,
        move.target,
        move.caller,
        move.reason,
        move.started_at,
        move.outcome,
        move.finished_at,
        int(move.forced),
        move.token,
        move.detail,
        move.driver,
        move.os_user,
        None if move.operator_forced is None else int(move.operator_forced),
    )


def move_from_row(row: Sequence[Any], steps: tuple[StepRecord, ...]) -> MoveRecord:
    """MOVE_COLUMNS back into a MoveRecord."""
    (
        move_id,
        group,
        mode,
        resource,
        source,
        target,
        caller,
        reason,
        started_at,
        outcome,
        finished_at,
        forced,
        token,
        detail,
        driver,
        os_user,
        operator_forced,
    ) = row
    return MoveRecord(
        move_id=move_id,
        group=group,
        mode=mode,
        resource=resource,
        source=source,
        target=target,
        caller=caller,
        reason=reason,
        started_at=started_at,
        outcome=outcome,
        finished_at=finished_at,
        forced=bool(forced),
        token=token,
        steps=steps,
        detail=detail,
        driver=driver,
        os_user=os_user,
        operator_forced=None if operator_forced is None else bool(operator_forced),
    )


def health_from_row(row: Sequence[Any]) -> MemberHealth:
    """HEALTH_COLUMNS back into a MemberHealth."""
    _, instance_id, healthy, successes, failures, reason, changed_at, probed_at = row
    return MemberHealth(
        instance_id=instance_id,
        healthy=bool(healthy),
        successes=successes,
        failures=failures,
        reason=reason,
        changed_at=changed_at,
        probed_at=probed_at,
    )


def state_from_row(row: Sequence[Any]) -> GroupState:
    """STATE_COLUMNS back into a GroupState."""
    group, held, held_reason, status, updated_at, held_by = row
    return GroupState(
        group=group,
        held=bool(held),
        held_reason=held_reason,
        status=status,
        updated_at=updated_at,
        held_by=held_by,
    )


def step_row(move_id: str, step: StepRecord) -> tuple[Any, ...]:
    """A step event as STEP_COLUMNS."""
    return (
        move_id,
        step.kind,
        step.description,
        step.phase,
        step.at,
        step.elapsed_s,
        step.detail,
    )


def chunks(items: Sequence[str], size: int = IN_CHUNK) -> Iterable[Sequence[str]]:
    """`items` in slices of at most `size`."""
    return (items[i : i + size] for i in range(0, len(items), size))


def load_steps(conn: sqlite3.Connection, move_ids: Sequence[str]) -> dict[str, list[StepRecord]]:
    """The step events of `move_ids`, each move's in order."""
    steps: dict[str, list[StepRecord]] = {}
    for chunk in chunks(move_ids):
        marks = ", ".join("?" * len(chunk))
        rows = conn.execute(
            f"SELECT {STEP_COLUMNS} FROM steps WHERE move_id IN ({marks}) ORDER BY step_id",
            list(chunk),
        )
        for move_id, kind, description, phase, at, elapsed_s, detail in rows:
            steps.setdefault(move_id, []).append(
                StepRecord(
                    kind=kind,
                    description=description,
                    phase=phase,
                    at=at,
                    elapsed_s=elapsed_s,
                    detail=detail,
                )
            )
    return steps
