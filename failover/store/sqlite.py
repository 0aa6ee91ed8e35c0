"""SqliteStore: the embedded default Store, one SQLite file shared by every local process.

Table design (schema version 2, kept in `PRAGMA user_version`):

    moves          one row per move: the MoveRecord's fields except `steps`
                   (move_id PRIMARY KEY; `group_name` because GROUP is an SQL keyword;
                   `forced` 0/1; `operator_forced` 0/1, NULL in rows older than v2;
                   outcome 'in-progress' marks the journal's open intent)
    steps          the move's step events, a child table: step_id INTEGER PRIMARY KEY
                   (insertion order, never reused because rows are never deleted),
                   move_id REFERENCES moves, then the StepRecord's fields
    member_health  MemberHealth by (group_name, instance_id), upserted (`probed_at` 0
                   in rows older than v2: never known)
    group_state    GroupState by group_name, upserted

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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from failover.core.errors import ConfigError, FailoverError, StateBusyError
from failover.core.ports import GroupMemory, GroupState, MemberHealth, MoveRecord, StepRecord
from failover.store.closing import Closing
from failover.store.holders import describe

SCHEMA_VERSION = 2
"""The schema this code writes; `PRAGMA user_version` records the file's."""

BUSY_TIMEOUT_S = 10.0
"""How long a call waits for another process's write lock before it fails."""

IN_PROGRESS = "in-progress"
"""The outcome of a journaled move that has not finished."""

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

# v2: whether the operator passed --force (apart from Force being allowed), and when each
# health verdict was made (stored health is a hint with an age).
_SCHEMA_V2 = (
    "ALTER TABLE moves ADD COLUMN operator_forced INTEGER",
    "ALTER TABLE member_health ADD COLUMN probed_at REAL NOT NULL DEFAULT 0",
)

# MIGRATIONS[n] brings a file from user_version n to n + 1; append, never edit.
MIGRATIONS: tuple[tuple[str, ...], ...] = (_SCHEMA_V1, _SCHEMA_V2)

_MOVE_COLUMNS = (
    "move_id, group_name, mode, resource, source, target, caller, reason, started_at, "
    "outcome, finished_at, forced, token, detail, operator_forced"
)
_STEP_COLUMNS = "move_id, kind, description, phase, at, elapsed_s, detail"
_HEALTH_COLUMNS = (
    "group_name, instance_id, healthy, successes, failures, reason, changed_at, probed_at"
)
_STATE_COLUMNS = "group_name, held, held_reason, status, updated_at"

# Well under SQLite's bound-parameter limit (32766 since 3.32, 999 before).
_IN_CHUNK = 500


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
            self._connect_read_only() if read_only else self._connect()
        )

    @property
    def path(self) -> str:
        """The database file this store reads and writes."""
        return self._path

    def _connect(self) -> sqlite3.Connection:
        path = self._path
        if path != ":memory:":
            target = Path(path)
            try:
                # is_dir() itself raises PermissionError when a parent is not searchable.
                if target.is_dir():
                    raise ConfigError(f"state.path {path}: is a directory, not a database file")
                target.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(
                    f"state.path {path}: cannot use its directory: {exc.strerror or exc}"
                ) from exc
            # SQLite's own word for both is "unable to open database file"; say which.
            # The directory must be writable too: WAL keeps -wal and -shm files beside it.
            if not os.access(target.parent, os.W_OK):
                raise ConfigError(f"state.path {path}: directory {target.parent} is not writable")
            if target.exists() and not os.access(target, os.R_OK | os.W_OK):
                raise ConfigError(f"state.path {path}: file is not readable and writable")
        try:
            # isolation_level=None: the module's implicit transactions are off, so
            # BEGIN IMMEDIATE / COMMIT below are exactly the transactions that run.
            conn = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise ConfigError(f"state.path {path}: cannot open: {exc}") from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            conn.execute("PRAGMA foreign_keys = ON")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if path != ":memory:" and str(mode).lower() != "wal":
                raise ConfigError(f"state.path {path}: cannot use WAL journal (got {mode})")
            conn.execute("PRAGMA synchronous = NORMAL")
            self._migrate(conn)
        except sqlite3.OperationalError as exc:
            conn.close()
            if _busy(exc):
                raise self._busy_error("open") from exc
            raise ConfigError(f"state.path {path}: not a usable state database: {exc}") from exc
        except sqlite3.Error as exc:
            conn.close()
            raise ConfigError(f"state.path {path}: not a usable state database: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        return conn

    def _connect_read_only(self) -> sqlite3.Connection:
        """A connection that never writes: `mode=ro`, else `immutable=1` (a WAL file in a
        read-only directory with no -shm to share), migrated in memory if it is older."""
        path = self._path
        target = Path(path)
        if path == ":memory:" or not target.exists():
            return self._empty()
        if target.is_dir():
            raise ConfigError(f"state.path {path}: is a directory, not a database file")
        if not os.access(target, os.R_OK):
            raise ConfigError(f"state.path {path}: file is not readable")
        uri = "file:" + quote(str(target.absolute()))
        last: sqlite3.Error | None = None
        for flags in ("mode=ro", "mode=ro&immutable=1"):
            conn = sqlite3.connect(
                f"{uri}?{flags}",
                uri=True,
                timeout=BUSY_TIMEOUT_S,
                isolation_level=None,
                check_same_thread=False,
            )
            try:
                version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            except sqlite3.Error as exc:
                conn.close()
                last = exc
                continue
            if version > SCHEMA_VERSION:
                conn.close()
                raise ConfigError(
                    f"state.path {path}: schema version {version} is newer than this "
                    f"failover understands ({SCHEMA_VERSION}); upgrade failover"
                )
            if version == SCHEMA_VERSION:
                return conn
            # An older file: read it through an upgraded copy in memory, never the file itself.
            memory = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            try:
                conn.backup(memory)
            finally:
                conn.close()
            self._migrate(memory)
            return memory
        raise ConfigError(f"state.path {path}: cannot open read-only: {last}")

    def _empty(self) -> sqlite3.Connection:
        conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        self._migrate(conn)
        return conn

    def _busy_error(self, operation: str) -> StateBusyError:
        return StateBusyError(
            f"state.path {self._path}: busy: another process held its write lock for more "
            f"than {BUSY_TIMEOUT_S:g}s ({operation}; {describe(self._path)}); try again"
        )

    def _migrate(self, conn: sqlite3.Connection) -> None:
        # Under BEGIN IMMEDIATE so two processes opening a fresh file at once cannot
        # both run a migration: the second waits, then sees the new user_version.
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise ConfigError(
                    f"state.path {self._path}: schema version {version} is newer than this "
                    f"failover understands ({SCHEMA_VERSION}); upgrade failover"
                )
            for statements in MIGRATIONS[version:]:
                for statement in statements:
                    conn.execute(statement)
            if version != SCHEMA_VERSION:
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    @contextmanager
    def _transaction(self, operation: str, *, write: bool) -> Iterator[sqlite3.Connection]:
        """One transaction under the lock; sqlite errors become one-line FailoverErrors."""
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
                if _busy(exc):
                    raise self._busy_error(operation) from exc
                raise FailoverError(f"state store {self._path}: {operation}: {exc}") from exc
            except sqlite3.Error as exc:
                raise FailoverError(f"state store {self._path}: {operation}: {exc}") from exc

    def begin_move(self, move: MoveRecord) -> None:
        """Journal a move's intent (and any steps it carries), committed before returning."""
        with self._transaction("begin_move", write=True) as conn:
            try:
                conn.execute(
                    f"INSERT INTO moves ({_MOVE_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
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
                        None if move.operator_forced is None else int(move.operator_forced),
                    ),
                )
            except sqlite3.IntegrityError as exc:
                raise ValueError(f"move {move.move_id} is already journaled") from exc
            conn.executemany(
                f"INSERT INTO steps ({_STEP_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [_step_row(move.move_id, step) for step in move.steps],
            )

    def record_step(self, move_id: str, step: StepRecord) -> None:
        """Append one step event to a journaled move, committed before returning."""
        with self._transaction("record_step", write=True) as conn:
            try:
                conn.execute(
                    f"INSERT INTO steps ({_STEP_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    _step_row(move_id, step),
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
        with self._transaction("finish_move", write=True) as conn:
            cursor = conn.execute(
                "UPDATE moves SET outcome = ?, finished_at = ?, detail = ?,"
                " target = COALESCE(?, target) WHERE move_id = ?",
                (outcome, finished_at, detail, target, move_id),
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
        with self._transaction(operation, write=False) as conn:
            rows = conn.execute(f"SELECT {_MOVE_COLUMNS} FROM moves {clause}", params).fetchall()
            steps = _load_steps(conn, [row[0] for row in rows])
        return [_move_from_row(row, tuple(steps.get(row[0], ()))) for row in rows]

    def open_move_groups(self) -> set[str]:
        """The groups with an in-progress move (one indexed query)."""
        with self._transaction("open_move_groups", write=False) as conn:
            rows = conn.execute(
                "SELECT DISTINCT group_name FROM moves WHERE outcome = ?", (IN_PROGRESS,)
            ).fetchall()
        return {row[0] for row in rows}

    def load_health(self, group: str) -> dict[str, MemberHealth]:
        """Probe counters of a group's members, by instance id."""
        with self._transaction("load_health", write=False) as conn:
            rows = conn.execute(
                f"SELECT {_HEALTH_COLUMNS} FROM member_health WHERE group_name = ?", (group,)
            ).fetchall()
        return {row[1]: _health_from_row(row) for row in rows}

    def save_health(self, group: str, members: Sequence[MemberHealth]) -> None:
        """Upsert the given members' counters in one transaction; other members are untouched."""
        self.save_health_many({group: members})

    def save_health_many(self, health: Mapping[str, Sequence[MemberHealth]]) -> None:
        """Upsert the counters of many groups' members in one transaction."""
        with self._transaction("save_health", write=True) as conn:
            conn.executemany(
                f"INSERT INTO member_health ({_HEALTH_COLUMNS}) "
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

    def load_group_state(self, group: str) -> GroupState:
        """The group's remembered state; `GroupState(group=group)` when never saved."""
        with self._transaction("load_group_state", write=False) as conn:
            row = conn.execute(
                f"SELECT {_STATE_COLUMNS} FROM group_state WHERE group_name = ?", (group,)
            ).fetchone()
        return GroupState(group=group) if row is None else _state_from_row(row)

    def save_group_state(self, state: GroupState) -> None:
        """Upsert the group's state."""
        with self._transaction("save_group_state", write=True) as conn:
            conn.execute(
                "INSERT INTO group_state (group_name, held, held_reason, status, updated_at) "
                "VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (group_name) DO UPDATE SET held = excluded.held, "
                "held_reason = excluded.held_reason, status = excluded.status, "
                "updated_at = excluded.updated_at",
                (state.group, int(state.held), state.held_reason, state.status, state.updated_at),
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
        with self._transaction("load_groups", write=False) as conn:
            for chunk in _chunks(list(members), _IN_CHUNK):
                marks = ", ".join("?" * len(chunk))
                for row in conn.execute(
                    f"SELECT {_HEALTH_COLUMNS} FROM member_health WHERE group_name IN ({marks})",
                    list(chunk),
                ):
                    if row[1] in wanted[row[0]]:
                        health[row[0]][row[1]] = _health_from_row(row)
                for row in conn.execute(
                    f"SELECT {_STATE_COLUMNS} FROM group_state WHERE group_name IN ({marks})",
                    list(chunk),
                ):
                    states[row[0]] = _state_from_row(row)
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
            )
            for g in members
        }

    def close(self) -> None:
        """Close the connection; idempotent. Later calls raise FailoverError."""
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


def _busy(exc: sqlite3.OperationalError) -> bool:
    """SQLITE_BUSY / SQLITE_LOCKED: another connection holds the lock we waited for."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(exc) or "busy" in str(exc)


def _health_from_row(row: Sequence[Any]) -> MemberHealth:
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


def _state_from_row(row: Sequence[Any]) -> GroupState:
    group, held, held_reason, status, updated_at = row
    return GroupState(
        group=group, held=bool(held), held_reason=held_reason, status=status, updated_at=updated_at
    )


def _step_row(move_id: str, step: StepRecord) -> tuple[Any, ...]:
    return (
        move_id,
        step.kind,
        step.description,
        step.phase,
        step.at,
        step.elapsed_s,
        step.detail,
    )


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    return (items[i : i + size] for i in range(0, len(items), size))


def _load_steps(conn: sqlite3.Connection, move_ids: Sequence[str]) -> dict[str, list[StepRecord]]:
    steps: dict[str, list[StepRecord]] = {}
    for chunk in _chunks(move_ids, _IN_CHUNK):
        marks = ", ".join("?" * len(chunk))
        rows = conn.execute(
            f"SELECT {_STEP_COLUMNS} FROM steps WHERE move_id IN ({marks}) ORDER BY step_id",
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


def _move_from_row(row: Sequence[Any], steps: tuple[StepRecord, ...]) -> MoveRecord:
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
        operator_forced=None if operator_forced is None else bool(operator_forced),
    )
