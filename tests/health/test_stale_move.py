"""A manual move never trusts a stale verdict: the real CLI, a cron-style check, then a dead standby.

The standby passes a `check`; its service then dies and no pass runs for three intervals.
`failover move --yes` (no --to) must probe it again, refuse (exit 3) and move nothing;
once the service is back, the same move goes ahead.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from ..conftest import run_cli
from .conftest import Loopback, Sandbox, read_store

INTERVAL_S = 1.0


@pytest.mark.process
def test_a_move_re_probes_a_stale_standby_and_refuses_when_it_died_since(
    sandbox: Callable[..., Sandbox], loopback: Callable[..., Loopback]
) -> None:
    """Rule: a manual move probes its candidates again when their verdict is older than one interval."""
    sb = sandbox()
    world = sb.world("eni")
    eni = world.eni_id or ""
    standby = world.standbys[0]
    lo = loopback([world.primary, standby])
    config = sb.config(
        sb.group(world, "eni", members=lo.members(), checks=[lo.check()]),
        defaults={"interval": f"{INTERVAL_S:g}s", "timeout": "300ms", "rise": 1},
    )
    checked = run_cli("check", "--config", str(config))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    stored = read_store(sb.tmp_path / "state.db", lambda s: s.load_health("g"))
    assert stored[standby].healthy

    lo.stop(standby)
    time.sleep(3 * INTERVAL_S)  # three intervals with no pass: the stored verdict is stale
    sb.layer.reset_log()
    refused = run_cli("move", "g", "--yes", "--config", str(config))
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert "Traceback" not in refused.stdout + refused.stderr
    (line,) = refused.stderr.splitlines()
    assert "refused: no other member is healthy" in line
    assert f"{standby}: probed again now" in line
    assert sb.layer.mutating_calls() == []
    assert sb.eni_owner(eni) == world.primary
    assert read_store(sb.tmp_path / "state.db", lambda s: s.history("g")) == []

    # The same stale verdict, re-probed while the standby answers, lets the move go ahead.
    lo.start(standby)
    moved = run_cli("move", "g", "--yes", "--config", str(config))
    assert moved.returncode == 0, moved.stdout + moved.stderr
    assert sb.eni_owner(eni) == standby


@pytest.mark.process
def test_a_move_to_a_stale_target_names_it_and_the_fresh_probe(
    sandbox: Callable[..., Sandbox], loopback: Callable[..., Loopback]
) -> None:
    """Rule: `--to` a member whose stale verdict fails now is refused, naming what the probe saw."""
    sb = sandbox()
    world = sb.world("eni")
    standby = world.standbys[0]
    lo = loopback([world.primary, standby])
    config = sb.config(
        sb.group(world, "eni", members=lo.members(), checks=[lo.check()]),
        defaults={"interval": f"{INTERVAL_S:g}s", "timeout": "300ms", "rise": 1},
    )
    assert run_cli("check", "--config", str(config)).returncode == 0
    lo.stop(standby)
    time.sleep(3 * INTERVAL_S)
    sb.layer.reset_log()
    refused = run_cli("move", "g", "--to", standby, "--yes", "--config", str(config))
    assert refused.returncode == 3, refused.stdout + refused.stderr
    (line,) = refused.stderr.splitlines()
    assert f"target {standby} is not healthy (probed again now" in line
    assert "--force overrides" in line
    assert sb.layer.mutating_calls() == []
    assert sb.eni_owner(world.eni_id or "") == world.primary
