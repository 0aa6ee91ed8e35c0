"""SqliteStore specifics the contract cannot see: pragmas, schema version, misuse, closing."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from contextlib import closing
from dataclasses import replace
from pathlib import Path

import pytest

from failover.core.errors import ConfigError, FailoverError
from failover.core.ports import MoveRecord, StepRecord
from failover.store.sqlite import SCHEMA_VERSION, SqliteStore
from failover.store.sqlite_claims import SqliteClaims
from failover.store.sqlite_schema import MIGRATIONS

MOVE = MoveRecord(
    move_id="m1",
    group="db",
    mode="eni",
    resource="eni-1",
    source="i-0aa",
    target="i-0bb",
    caller="test",
    reason="drill",
    started_at=1.0,
)
STEP = StepRecord(kind="detach", description="detach eni-1", phase="started", at=2.0)


def test_creates_missing_parent_directories_and_records_the_schema(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "state.db"
    with SqliteStore(path) as store:
        assert store.path == str(path)

    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)


def test_each_connection_writes_the_wal_at_every_commit(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "state.db") as store:
        conn = store._conn
        assert conn is not None
        # 1 is NORMAL: in WAL mode a commit survives a killed process; the engine re-checks
        # AWS before every step, so the fsync FULL adds per step is not bought back.
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("PRAGMA synchronous").fetchone() == (1,)
        assert conn.execute("PRAGMA busy_timeout").fetchone() == (10_000,)


def test_reopening_keeps_the_data_and_the_schema(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with SqliteStore(path) as store:
        store.begin_move(MOVE)
    with SqliteStore(path) as store:
        assert store.open_moves() == [MOVE]


def test_a_file_from_a_newer_failover_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    SqliteStore(path).close()
    with closing(sqlite3.connect(path)) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")

    with pytest.raises(
        ConfigError, match=rf"schema version {SCHEMA_VERSION + 1} is newer.*upgrade failover"
    ):
        SqliteStore(path)


def test_a_version_1_file_is_migrated_keeping_its_moves_with_unknowns_as_none(
    tmp_path: Path,
) -> None:
    """Rule: upgrading keeps the history; what v1 never recorded reads as unknown, not as "no"."""
    path = tmp_path / "state.db"
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        for statement in MIGRATIONS[0]:
            conn.execute(statement)
        conn.execute("PRAGMA user_version = 1")
        conn.execute(
            "INSERT INTO moves (move_id, group_name, mode, resource, source, target, caller, "
            "reason, started_at, outcome, finished_at, forced, token, detail) "
            "VALUES ('m0', 'db', 'eni', 'eni-1', 'i-0aa', 'i-0bb', 'arn', 'old', 1.0, "
            "'succeeded', 2.0, 1, NULL, '')"
        )
        conn.execute(
            "INSERT INTO member_health VALUES ('db', 'i-0bb', 1, 5, 0, 'ok', 1.0)",
        )
    with SqliteStore(path) as store:
        (old,) = store.history()
        assert (old.move_id, old.forced, old.operator_forced) == ("m0", True, None)
        assert store.load_health("db")["i-0bb"].probed_at == 0.0
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)


def test_steps_and_finish_of_an_unknown_move_are_refused(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "state.db") as store:
        with pytest.raises(KeyError, match="move nope is not journaled"):
            store.record_step("nope", STEP)
        with pytest.raises(KeyError, match="move nope is not journaled"):
            store.finish_move("nope", "succeeded", 3.0)
        assert store.history() == []


def test_journaling_a_move_twice_is_refused_and_keeps_the_first(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "state.db") as store:
        store.begin_move(MOVE)
        with pytest.raises(ValueError, match="move m1 is already journaled"):
            store.begin_move(replace(MOVE, reason="again"))
        assert store.open_moves() == [MOVE]


def test_a_closed_store_refuses_calls_and_closes_twice(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db")
    store.close()
    store.close()
    with pytest.raises(FailoverError, match="store is closed"):
        store.open_moves()


def test_a_version_1_file_is_migrated_keeping_its_moves_and_its_flap_limit_hold(
    tmp_path: Path,
) -> None:
    """Rule: an existing state file keeps working after an upgrade: its moves gain an unknown
    driver and OS user, a hold it stored reads as the flap limit's, and the claims exist."""
    path = tmp_path / "state.db"
    with closing(sqlite3.connect(path)) as conn:
        for statement in MIGRATIONS[0]:
            conn.execute(statement)
        conn.execute(
            "INSERT INTO moves VALUES ('m1', 'db', 'eni', 'eni-1', 'i-0aa', 'i-0bb', 'test', "
            "'drill', 1.0, 'succeeded', 2.0, 0, NULL, '')"
        )
        conn.execute("INSERT INTO group_state VALUES ('db', 1, '4 moves in 1h', 'held', 3.0)")
        conn.execute("PRAGMA user_version = 1")
        conn.commit()

    store = SqliteStore(path)
    try:
        (move,) = store.history("db")
        assert (move.move_id, move.driver, move.os_user) == ("m1", "", None)
        state = store.load_group_state("db")
        assert (state.held, state.held_by, state.held_reason) == (
            True,
            "flap-limit",
            "4 moves in 1h",
        )
        assert SqliteClaims(store).read_many(["db"]) == {}
    finally:
        store.close()
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)


_OPENER = """
import os, sys
from failover.core.errors import FailoverError
from failover.store.sqlite_connection import connect
root, rounds = sys.argv[1], int(sys.argv[2])
for i in range(rounds):
    open(os.path.join(root, f"ready{i}-{os.getpid()}"), "w").close()
    while sum(name.startswith(f"ready{i}-") for name in os.listdir(root)) < 2:
        pass  # spin: the two openers leave this barrier within microseconds of each other
    try:
        connect(os.path.join(root, f"{i}.db")).close()
        outcome = "ok"
    except FailoverError as exc:
        outcome = str(exc)
    print(outcome, flush=True)
"""


def test_two_processes_opening_a_fresh_state_file_together_both_open_it(tmp_path: Path) -> None:
    """Rule: a lock conflict while the state file is first put in WAL mode waits like any
    other (SQLite answers that pragma at once, without its busy handler): of two processes
    opening a fresh file at the same instant, neither fails with a false "busy"."""
    rounds = 100
    openers = [
        subprocess.Popen(
            [sys.executable, "-c", _OPENER, str(tmp_path), str(rounds)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outcomes = [line for proc in openers for line in proc.communicate(timeout=120)[0].splitlines()]

    assert [proc.returncode for proc in openers] == [0, 0]
    assert [line for line in outcomes if line != "ok"] == []
    assert len(outcomes) == 2 * rounds
    for i in range(rounds):
        with closing(sqlite3.connect(tmp_path / f"{i}.db")) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
