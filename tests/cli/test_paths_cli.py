"""Relative paths in the config follow the config file, never the shell (real processes).

A daemon started in one directory and a cron `check` in another must share one state
file (and the claims in it); with paths relative to the shell each made its own and both
acted.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from ..conftest import run_cli
from .conftest import Sandbox

SandboxFactory = Callable[..., Sandbox]


@pytest.mark.process
def test_a_relative_state_path_is_next_to_the_config_whatever_the_directory(
    sandbox: SandboxFactory, tmp_path: Path
) -> None:
    """Rule: `state.path: ./x.db` is beside the config file; `check` from elsewhere uses it.

    `validate` names the state file by its absolute path, so the operator sees which one.
    """
    sb = sandbox()
    world = sb.world("eni")
    etc = tmp_path / "etc"
    etc.mkdir()
    path = sb.config(sb.group(world, "eni"), name="etc/config.yaml")
    document = yaml.safe_load(path.read_text())
    document["state"] = {"path": "./x.db"}
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    shell = tmp_path / "elsewhere"
    shell.mkdir()

    done = run_cli("check", "--config", str(path), cwd=shell)
    assert done.returncode in (0, 1), done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert (etc / "x.db").is_file()
    assert not (shell / "x.db").exists()
    assert list(shell.iterdir()) == []

    # A relative --config from yet another directory names the same file.
    shown = run_cli("validate", "--offline", "--config", "etc/config.yaml", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert f"state: {etc / 'x.db'} (SQLite)" in shown.stdout.splitlines()
    assert sb.layer.mutating_calls() == []
