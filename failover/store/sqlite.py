"""SqliteStore: the embedded default Store, one SQLite file shared by every local process.

The tables and their migrations are in failover/store/sqlite_schema.py (the schema
version is kept in `PRAGMA user_version`); opening the file (read-write or read-only) is
failover/store/sqlite_connection.py; the per-group claims that live in the same file are
failover/store/sqlite_claims.py.

Steps live in a child table rather than a JSON column so that `record_step` is one
INSERT: appending never rewrites the move, and two processes appending to the same
move cannot lose each other's events (a read-modify-write of a JSON list could).

Durability and concurrency: WAL journal with `synchronous=NORMAL`: every commit is in
the WAL before the call returns, so a SIGKILL of the process right after loses nothing;
only a power loss of the host can drop the last commits. That trade (an fsync per step
was most of a move's own overhead, see bench/RESULTS.md) is safe because the journal is
not the truth: every step is re-checked against AWS, and a resource a lost journal left
owned by nobody is moved at once by the next pass. Every call is one transaction; writes take `BEGIN IMMEDIATE` so the write
lock is taken up front (no deadlocking upgrade from a read lock), and a 10 s busy
timeout lets a cron `failover check` and an on-call `failover move` queue behind each
other instead of failing. WAL needs a local filesystem (not NFS): keep `state.path`
on local disk.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from failover.core.errors import FailoverError
from failover.core.ports import GroupMemory, GroupState, MemberHealth, MoveRecord, StepRecord
from failover.store.closing import Closing
from failover.store.sqlite_connection import (
    BUSY_TIMEOUT_S,
    busy,
    busy_error,
    connect,
    connect_read_only,
)
from failover.store.sqlite_schema import (
    HEALTH_COLUMNS,
    MOVE_COLUMNS,
    SCHEMA_VERSION,
    STATE_COLUMNS,
    STEP_COLUMNS,
    chunks,
    health_from_row,
    load_steps,
    move_from_row,
    move_row,
    state_from_row,
    step_row,
)

__all__ = ["BUSY_TIMEOUT_S", "IN_PROGRESS", "SCHEMA_VERSION", "SqliteStore"]

IN_PROGRESS = "in-progress"
"""The outcome of a journaled move that has not finished."""


class SqliteStore(Closing):
    """The Store port on one SQLite file: every method is one committed transaction."""

    def __init__(self, path: str | os.PathLike[str], *, read_only: bool = False) -> None:
        """Open (creating if needed) the database at `path`; ConfigError if it cannot be used.

        `read_only` (status, history): nothing is created or written, so a read-only state
        directory works; a file that does not exist yet reads as an empty store.
        """
        self._path = str(path)
        # One connection behind a lock, not one per thread: the daemon's worker threads
        # come and go, and per-thread connections could not all be closed by close()
        # (a leaked one is a ResourceWarning and holds the WAL open). Calls are short
        # and SQLite serializes writers anyway, so the lock costs nothing that matters.
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = (
            connect_read_only(self._path) if read_only else connect(self._path)
        )

    @property
    def path(self) -> str:
        """The database file this store reads and writes."""
        return self._path

    @contextmanager
    def transaction(self, operation: str, *, write: bool) -> Iterator[sqlite3.Connection]:
        """One transaction under the lock (a write one takes the write lock up front); sqlite
        errors become one-line FailoverErrors. The claims in the same file use it too."""
        with self._lock:
            conn = self._conn
            if conn is None:
                raise FailoverError(f"state store {self._path}: {operation}: store is closed")
            try:
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    yield conn
                except BaseException:
                    # SQLite may already have rolled back (disk full, I/O error).
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                if busy(exc):
                    raise busy_error(self._path, operation) from exc
                raise FailoverError(f"state store {self._path}: {operation}: {exc}") from exc
            except sqlite3.Error as exc:
                raise FailoverError(f"state store {self._path}: {operation}: {exc}") from exc

    def begin_move(self, move: MoveRecord) -> None:
        """Journal a move's intent (and any steps it carries), committed before returning."""
        with self.transaction("begin_move", write=True) as conn:
            try:
                conn.execute(
                    f"INSERT INTO moves ({MOVE_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    move_row(move),
                )
            except sqlite3.IntegrityError as exc:
                raise ValueError(f"move {move.move_id} is already journaled") from exc
            conn.executemany(
                f"INSERT INTO steps ({STEP_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [step_row(move.move_id, step) for step in move.steps],
            )

    def record_step(self, move_id: str, step: StepRecord) -> None:
        """Append one step event to a journaled move, committed before returning."""
        with self.transaction("record_step", write=True) as conn:
            try:
                conn.execute(
                    f"INSERT INTO steps ({STEP_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    step_row(move_id, step),
                )
            except sqlite3.IntegrityError as exc:
                raise KeyError(f"move {move_id} is not journaled") from exc

    def finish_move(
        self,
        move_id: str,
        outcome: str,
        finished_at: float,
        detail: str = "",
        target: str | None = None,
    ) -> None:
        """Close a journaled move with its outcome (and its final target, if it changed)."""
        with self.transaction("finish_move", write=True) as conn:
            cursor = conn.execute(
                "UPDATE moves SET outcome = ?, finished_at = ?, detail = ?,"
                " target = COALESCE(?, target) WHERE move_id = ?",
                (outcome, finished_at, detail, target, move_id),
            )
            if cursor.rowcount == 0:
                raise KeyError(f"move {move_id} is not journaled")

    def record_caller(self, move_id: str, caller: str) -> None:
        """Name the caller of a journaled move, committed before returning."""
        with self.transaction("record_caller", write=True) as conn:
            cursor = conn.execute(
                "UPDATE moves SET caller = ? WHERE move_id = ?", (caller, move_id)
            )
            if cursor.rowcount == 0:
                raise KeyError(f"move {move_id} is not journaled")

    def open_moves(self, group: str | None = None) -> list[MoveRecord]:
        """In-progress moves (what a crash left), oldest first, with their steps."""
        where, params = "outcome = ?", [IN_PROGRESS]
        if group is not None:
            where, params = where + " AND group_name = ?", [*params, group]
        return self._select_moves("open_moves", f"WHERE {where} ORDER BY started_at, rowid", params)

    def history(self, group: str | None = None, limit: int = 100) -> list[MoveRecord]:
        """Finished and open moves, newest first, at most `limit`, with their steps."""
        where, params = ("WHERE group_name = ?", [group]) if group is not None else ("", [])
        return self._select_moves(
            "history", f"{where} ORDER BY started_at DESC, rowid DESC LIMIT ?", [*params, limit]
        )

    def moves_since(self, group: str, since: float) -> list[MoveRecord]:
        """Moves of `group` started at or after `since`, oldest first, with their steps."""
        return self._select_moves(
            "moves_since",
            "WHERE group_name = ? AND started_at >= ? ORDER BY started_at, rowid",
            [group, since],
        )

    def _select_moves(self, operation: str, clause: str, params: Sequence[Any]) -> list[MoveRecord]:
        # Moves and their steps are read in one transaction: one WAL snapshot, so a
        # step committed between the two queries cannot appear without its move.
        with self.transaction(operation, write=False) as conn:
            rows = conn.execute(f"SELECT {MOVE_COLUMNS} FROM moves {clause}", params).fetchall()
            steps = load_steps(conn, [row[0] for row in rows])
        return [move_from_row(row, tuple(steps.get(row[0], ()))) for row in rows]

    def open_move_groups(self) -> set[str]:
        """The groups with an in-progress move (one indexed query)."""
        with self.transaction("open_move_groups", write=False) as conn:
            rows = conn.execute(
                "SELECT DISTINCT group_name FROM moves WHERE outcome = ?", (IN_PROGRESS,)
            ).fetchall()
        return {row[0] for row in rows}

    def load_health(self, group: str) -> dict[str, MemberHealth]:
        """Probe counters of a group's members, by instance id."""
        with self.transaction("load_health", write=False) as conn:
            rows = conn.execute(
                f"SELECT {HEALTH_COLUMNS} FROM member_health WHERE group_name = ?", (group,)
            ).fetchall()
        return {row[1]: health_from_row(row) for row in rows}

    def save_health(self, group: str, members: Sequence[MemberHealth]) -> None:
        """Upsert the given members' counters in one transaction; other members are untouched."""
        self.save_health_many({group: members})

    def save_health_many(self, health: Mapping[str, Sequence[MemberHealth]]) -> None:
        """Upsert the counters of many groups' members in one transaction."""
        with self.transaction("save_health", write=True) as conn:
            conn.executemany(
                f"INSERT INTO member_health ({HEALTH_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (group_name, instance_id) DO UPDATE SET "
                "healthy = excluded.healthy, successes = excluded.successes, "
                "failures = excluded.failures, reason = excluded.reason, "
                "changed_at = excluded.changed_at, probed_at = excluded.probed_at",
                [
                    (
                        group,
                        m.instance_id,
                        int(m.healthy),
                        m.successes,
                        m.failures,
                        m.reason,
                        m.changed_at,
                        m.probed_at,
                    )
                    for group, members in health.items()
                    for m in members
                ],
            )

    def save_eth0s(self, eth0s: Mapping[str, Mapping[str, str]]) -> None:
        """Upsert members' primary ENIs (group -> instance -> eth0) in one transaction."""
        rows = [(g, i, eni) for g, members in eth0s.items() for i, eni in members.items()]
        if not rows:
            return
        with self.transaction("save_eth0s", write=True) as conn:
            conn.executemany(
                "INSERT INTO member_eth0 (group_name, instance_id, eni_id) VALUES (?, ?, ?) "
                "ON CONFLICT (group_name, instance_id) DO UPDATE SET eni_id = excluded.eni_id",
                rows,
            )

    def load_group_state(self, group: str) -> GroupState:
        """The group's remembered state; `GroupState(group=group)` when never saved."""
        with self.transaction("load_group_state", write=False) as conn:
            row = conn.execute(
                f"SELECT {STATE_COLUMNS} FROM group_state WHERE group_name = ?", (group,)
            ).fetchone()
        return GroupState(group=group) if row is None else state_from_row(row)

    def save_group_state(self, state: GroupState) -> None:
        """Upsert the group's state."""
        with self.transaction("save_group_state", write=True) as conn:
            conn.execute(
                f"INSERT INTO group_state ({STATE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (group_name) DO UPDATE SET held = excluded.held, "
                "held_reason = excluded.held_reason, status = excluded.status, "
                "updated_at = excluded.updated_at, held_by = excluded.held_by",
                (
                    state.group,
                    int(state.held),
                    state.held_reason,
                    state.status,
                    state.updated_at,
                    state.held_by,
                ),
            )

    def save_status(self, group: str, status: str, updated_at: float) -> None:
        """Set the group's status alone (a hold another process wrote meanwhile stays)."""
        with self.transaction("save_status", write=True) as conn:
            conn.execute(
                f"INSERT INTO group_state ({STATE_COLUMNS}) VALUES (?, 0, '', ?, ?, '') "
                "ON CONFLICT (group_name) DO UPDATE SET status = excluded.status, "
                "updated_at = excluded.updated_at",
                (group, status, updated_at),
            )

    def save_hold(self, group: str, held_by: str, reason: str, updated_at: float) -> None:
        """Set the group's hold alone (`held_by` "" releases it); its status stays."""
        with self.transaction("save_hold", write=True) as conn:
            conn.execute(
                f"INSERT INTO group_state ({STATE_COLUMNS}) VALUES (?, ?, ?, 'ok', ?, ?) "
                "ON CONFLICT (group_name) DO UPDATE SET held = excluded.held, "
                "held_reason = excluded.held_reason, held_by = excluded.held_by, "
                "updated_at = excluded.updated_at",
                (group, int(bool(held_by)), reason if held_by else "", updated_at, held_by),
            )

    def load_groups(
        self, members: Mapping[str, Sequence[str]], since: float
    ) -> dict[str, GroupMemory]:
        """Counters, state and recent move start times of many groups, in one transaction
        (a few `IN` queries per 500 groups)."""
        wanted = {g: set(ids) for g, ids in members.items()}
        health: dict[str, dict[str, MemberHealth]] = {g: {} for g in members}
        states: dict[str, GroupState] = {}
        moves: dict[str, list[float]] = {g: [] for g in members}
        eth0s: dict[str, dict[str, str]] = {g: {} for g in members}
        with self.transaction("load_groups", write=False) as conn:
            for chunk in chunks(list(members)):
                marks = ", ".join("?" * len(chunk))
                for row in conn.execute(
                    f"SELECT {HEALTH_COLUMNS} FROM member_health WHERE group_name IN ({marks})",
                    list(chunk),
                ):
                    if row[1] in wanted[row[0]]:
                        health[row[0]][row[1]] = health_from_row(row)
                for row in conn.execute(
                    f"SELECT {STATE_COLUMNS} FROM group_state WHERE group_name IN ({marks})",
                    list(chunk),
                ):
                    states[row[0]] = state_from_row(row)
                for group, instance_id, eni_id in conn.execute(
                    "SELECT group_name, instance_id, eni_id FROM member_eth0 "
                    f"WHERE group_name IN ({marks})",
                    list(chunk),
                ):
                    if instance_id in wanted[group]:
                        eth0s[group][instance_id] = eni_id
                for group, started_at in conn.execute(
                    "SELECT group_name, started_at FROM moves "
                    f"WHERE group_name IN ({marks}) AND started_at >= ? "
                    "ORDER BY started_at, rowid",
                    [*chunk, since],
                ):
                    moves[group].append(started_at)
        return {
            g: GroupMemory(
                group=g,
                health=health[g],
                state=states.get(g, GroupState(group=g)),
                move_times=tuple(moves[g]),
                eth0s=eth0s[g],
            )
            for g in members
        }

    def close(self) -> None:
        """Close the connection; idempotent. Later calls raise FailoverError."""
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
