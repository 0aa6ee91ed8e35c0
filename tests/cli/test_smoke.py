"""The CLI moves an ENI through moto's server: the wiring from config to AWS works end to end."""

from __future__ import annotations

from collections.abc import Callable

from ..conftest import run_cli
from .conftest import Sandbox


def test_move_yes_moves_the_eni_over_the_server(sandbox: Callable[..., Sandbox]) -> None:
    """Rule: `failover move GROUP --yes` moves the ENI to the first running standby."""
    sb = sandbox(detach_delay_s=0.2)
    world = sb.world("eni")
    config = sb.config(sb.group(world, "eni"))
    done = run_cli("move", "g", "--yes", "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert world.eni_id is not None
    assert sb.eni_owner(world.eni_id) == world.standbys[0]
    history = run_cli("history", "--json", "--config", str(config))
    assert '"outcome": "succeeded"' in history.stdout


def test_version_prints_the_installed_version() -> None:
    """Rule: `failover --version` names the version (what an operator quotes in a ticket)."""
    from importlib.metadata import version

    done = run_cli("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"failover {version('failover')}"
