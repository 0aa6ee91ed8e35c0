"""The state file as other processes and permissions leave it (real processes).

- `status` and `history` only read: they work on a read-only state directory (an
  auditor's account, a mounted snapshot) and create nothing there.
- A state database another process keeps write-locked is busy, not bad input: exit 3,
  naming the holder when /proc shows it, never exit 2 "not a usable state database".
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from ..conftest import cli_env, failover_cmd, run_cli
from .conftest import Sandbox

SandboxFactory = Callable[..., Sandbox]


def bound_by_permissions() -> list[str]:
    """A command prefix under which the permission bits apply: as root, setpriv without the
    capabilities that override them; as anyone else, nothing."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root and setpriv is missing: cannot drop CAP_DAC_OVERRIDE")
    return [setpriv, "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search", "--"]


def run_without_write_access(*args: str) -> subprocess.CompletedProcess[str]:
    """The CLI unable to write where the permission bits say no."""
    return subprocess.run(
        [*bound_by_permissions(), *failover_cmd(*args)],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env=cli_env(),
        check=False,
    )


@pytest.mark.process
def test_status_and_history_work_on_a_read_only_state_directory(
    sandbox: SandboxFactory, tmp_path: Path
) -> None:
    """Rule: read-only commands open the state read-only: they need no write access and create nothing."""
    sb = sandbox(detach_delay_s=0.1)
    world = sb.world("eni")
    config = sb.config(sb.group(world, "eni"))
    document = yaml.safe_load(config.read_text())
    state_dir = tmp_path / "state"
    document["state"] = {"path": str(state_dir / "x.db")}
    config.write_text(yaml.safe_dump(document))
    assert run_cli("move", "g", "--yes", "--config", str(config)).returncode == 0
    for path in state_dir.iterdir():
        path.chmod(0o444)
    state_dir.chmod(0o555)
    before = sorted(p.name for p in state_dir.iterdir())
    try:
        status = run_without_write_access("status", "--json", "--config", str(config))
        history = run_without_write_access("history", "--json", "--config", str(config))
        # The test's own check that the directory really refuses writes to such a process.
        probe = subprocess.run(
            [*bound_by_permissions(), "touch", str(state_dir / "probe")],
            capture_output=True,
            check=False,
        )
    finally:
        state_dir.chmod(0o755)
    assert probe.returncode != 0
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["groups"][0]["active"] == world.standbys[0]
    assert history.returncode == 0, history.stderr
    (move,) = json.loads(history.stdout)
    assert (move["to"], move["outcome"]) == (world.standbys[0], "succeeded")
    assert sorted(p.name for p in state_dir.iterdir()) == before


@pytest.mark.process
def test_history_before_any_state_file_exists_creates_none(
    sandbox: SandboxFactory, tmp_path: Path
) -> None:
    """Rule: reading never creates the state file: no file reads as no moves."""
    sb = sandbox()
    world = sb.world("eip")
    config = sb.config(sb.group(world, "eip"))
    done = run_cli("history", "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "no moves recorded"
    assert not (tmp_path / "state.db").exists()


@pytest.mark.process
def test_a_write_locked_state_database_is_busy_exit_3_naming_the_holder(
    sandbox: SandboxFactory, tmp_path: Path
) -> None:
    """Rule: a state database another process keeps locked is busy (exit 3, the holder named),
    not bad input (exit 2); nothing is sent to AWS."""
    sb = sandbox()
    world = sb.world("eni")
    config = sb.config(sb.group(world, "eni"))
    assert run_cli("history", "--config", str(config)).returncode == 0
    database = tmp_path / "state.db"
    run_cli("check", "--dry-run", "--config", str(config))  # creates the file
    assert database.exists()
    holder = sqlite3.connect(database, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # this test process holds the write lock
        sb.layer.reset_log()
        done = run_cli("move", "g", "--yes", "--config", str(config))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert done.returncode == 3, done.stdout + done.stderr
    (line,) = done.stderr.splitlines()
    assert f"state.path {database}: busy" in line
    assert f"pid {os.getpid()}" in line
    assert "not a usable state database" not in line
    assert sb.layer.mutating_calls() == []
    assert sb.eni_owner(world.eni_id or "") == world.primary
