"""Opening the state database: read-write in WAL mode and migrated, or read-only without a write."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from urllib.parse import quote

from failover.core.errors import ConfigError, StateBusyError
from failover.store.holders import describe
from failover.store.sqlite_schema import MIGRATIONS, SCHEMA_VERSION

BUSY_TIMEOUT_S = 10.0
"""How long a call waits for another process's write lock before it fails."""


def connect(path: str) -> sqlite3.Connection:
    """Open (creating and migrating if needed) the database at `path` for reading and writing."""
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
        # BEGIN IMMEDIATE / COMMIT (SqliteStore.transaction) are exactly the transactions that run.
        conn = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise ConfigError(f"state.path {path}: cannot open: {exc}") from exc
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        mode = _enter_wal(conn)
        if path != ":memory:" and str(mode).lower() != "wal":
            raise ConfigError(f"state.path {path}: cannot use WAL journal (got {mode})")
        conn.execute("PRAGMA synchronous = NORMAL")
        migrate(path, conn)
    except sqlite3.OperationalError as exc:
        conn.close()
        if busy(exc):
            raise busy_error(path, "open") from exc
        raise ConfigError(f"state.path {path}: not a usable state database: {exc}") from exc
    except sqlite3.Error as exc:
        conn.close()
        raise ConfigError(f"state.path {path}: not a usable state database: {exc}") from exc
    except BaseException:
        conn.close()
        raise
    return conn


_WAL_RETRY_S = 0.01


def _enter_wal(conn: sqlite3.Connection) -> str:
    """`PRAGMA journal_mode = WAL`, waiting up to BUSY_TIMEOUT_S as every other statement does.

    SQLite answers this pragma's lock conflict at once, without calling the busy handler, so
    of two processes opening a fresh file together (two on-call `move`s, a cron `check` and a
    `move`) one failed in a few milliseconds with a false "busy for more than 10s"."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            return str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
        except sqlite3.OperationalError as exc:
            if not busy(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(_WAL_RETRY_S)


def connect_read_only(path: str) -> sqlite3.Connection:
    """A connection that never writes: `mode=ro`, else `immutable=1` (a WAL file in a
    read-only directory with no -shm to share), migrated in memory if it is older."""
    target = Path(path)
    if path == ":memory:" or not target.exists():
        return _empty(path)
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
        migrate(path, memory)
        return memory
    raise ConfigError(f"state.path {path}: cannot open read-only: {last}")


def _empty(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    migrate(path, conn)
    return conn


def busy_error(path: str, operation: str) -> StateBusyError:
    """The one-line error for a write lock another process held past BUSY_TIMEOUT_S."""
    return StateBusyError(
        f"state.path {path}: busy: another process held its write lock for more "
        f"than {BUSY_TIMEOUT_S:g}s ({operation}; {describe(path)}); try again"
    )


def migrate(path: str, conn: sqlite3.Connection) -> None:
    """Bring `conn` to SCHEMA_VERSION; ConfigError if it is newer than this failover."""
    # Under BEGIN IMMEDIATE so two processes opening a fresh file at once cannot
    # both run a migration: the second waits, then sees the new user_version.
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise ConfigError(
                f"state.path {path}: schema version {version} is newer than this "
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


def busy(exc: sqlite3.OperationalError) -> bool:
    """SQLITE_BUSY / SQLITE_LOCKED: another connection holds the lock we waited for."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(exc) or "busy" in str(exc)
