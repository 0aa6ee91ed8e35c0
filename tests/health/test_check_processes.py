"""`failover check` as separate processes: the counters live in the store between cron runs.

Each member is probed on its own loopback address; the moto server behind the strict layer
is EC2. AWS state and the store are read back after every run.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from failover.core.ports import MemberHealth

from ..conftest import run_cli
from .conftest import Loopback, Sandbox, read_store


def _check(config: Path) -> subprocess.CompletedProcess[str]:
    return run_cli("check", "--config", str(config), timeout=60)


def _health(sb: Sandbox, group: str = "g") -> dict[str, MemberHealth]:
    health: dict[str, MemberHealth] = read_store(
        sb.tmp_path / "state.db", lambda s: s.load_health(group)
    )
    return health


def _config(sb: Sandbox, *groups: dict[str, Any], **defaults: Any) -> Path:
    return sb.config(*groups, defaults={"interval": "2s", "timeout": "300ms", **defaults})


def test_check_fails_over_after_exactly_fall_failed_runs(
    sandbox: Callable[..., Sandbox], loopback: Callable[..., Loopback]
) -> None:
    """Rule: the active member is down after `fall` consecutive failures, counted across cron runs."""
    sb = sandbox()
    world = sb.world("eni")
    primary, standby = world.primary, world.standbys[0]
    assert world.eni_id is not None
    lo = loopback([primary, standby])
    group = sb.group(world, "eni", members=lo.members(), checks=[lo.check()])
    config = _config(sb, group, fall=3, rise=2)

    for _ in range(2):  # rise: 2 passes before the standby counts as healthy
        done = _check(config)
        assert done.returncode == 0, done.stdout + done.stderr
    assert _health(sb)[standby].healthy
    assert sb.eni_owner(world.eni_id) == primary

    lo.stop(primary)
    for failed in (1, 2):  # fall - 1 failed runs: not down yet
        done = _check(config)
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.startswith("g: stay:"), done.stdout
        assert sb.eni_owner(world.eni_id) == primary
        assert _health(sb)[primary].failures == failed
    assert sb.layer.mutating_calls() == []

    done = _check(config)  # the fall-th
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith(f"g: moved {primary} -> {standby}"), done.stdout
    assert sb.eni_owner(world.eni_id) == standby
    assert _health(sb)[primary].failures == 3
    moves = read_store(sb.tmp_path / "state.db", lambda s: s.history("g"))
    assert [(m.source, m.target, m.outcome) for m in moves] == [(primary, standby, "succeeded")]
    assert f"active {primary} failed 3 probes" in moves[0].reason
    assert "connection refused" in moves[0].reason
    assert len(sb.layer.calls_to("DetachNetworkInterface")) == 1
    assert len(sb.layer.calls_to("AttachNetworkInterface", dry_run=False)) == 1


def test_check_fails_over_a_stopped_primary_through_the_ec2_check(
    sandbox: Callable[..., Sandbox], loopback: Callable[..., Loopback]
) -> None:
    """Rule: the `ec2` check fails a member EC2 reports not running; `fall` such runs move the ENI."""
    sb = sandbox()
    world = sb.world("eni")
    primary, standby = world.primary, world.standbys[0]
    assert world.eni_id is not None
    lo = loopback([primary, standby])  # the primary's service stays up: only EC2 knows
    group = sb.group(world, "eni", members=lo.members(), checks=[{"type": "ec2"}, lo.check()])
    config = _config(sb, group, fall=2, rise=1)

    sb.ec2.stop_instances(InstanceIds=[primary])
    done = _check(config)  # fall - 1
    assert done.returncode == 0, done.stdout + done.stderr
    assert sb.eni_owner(world.eni_id) == primary
    assert _health(sb)[standby].healthy
    assert _health(sb)[primary].failures == 1
    assert "ec2: stopped" in _health(sb)[primary].reason

    done = _check(config)
    assert done.returncode == 0, done.stdout + done.stderr
    assert sb.eni_owner(world.eni_id) == standby
    moves = read_store(sb.tmp_path / "state.db", lambda s: s.history("g"))
    assert [(m.source, m.target, m.outcome) for m in moves] == [(primary, standby, "succeeded")]
    assert f"active {primary} failed 2 probes (ec2: stopped)" in moves[0].reason


def test_check_reports_degraded_with_exit_1_when_no_standby_is_healthy(
    sandbox: Callable[..., Sandbox], loopback: Callable[..., Loopback]
) -> None:
    """Rule: no healthy candidate is `degraded`: nothing moves, `failover check` exits 1."""
    sb = sandbox()
    world_a, world_b = sb.world("eni"), sb.world("eni")
    assert world_a.eni_id is not None
    assert world_b.eni_id is not None
    lo_a = loopback([world_a.primary, world_a.standbys[0]])
    lo_b = loopback([world_b.primary, world_b.standbys[0]], up=False)  # b: nobody answers
    config = _config(
        sb,
        sb.group(world_a, "eni", name="a", members=lo_a.members(), checks=[lo_a.check()]),
        sb.group(world_b, "eni", name="b", members=lo_b.members(), checks=[lo_b.check()]),
        fall=2,
        rise=1,
    )
    done = _check(config)  # fall - 1: b's primary not down yet
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[1].startswith("b: stay:"), done.stdout

    done = _check(config)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("a: stay:"), done.stdout
    assert lines[1].startswith("b: degraded:"), done.stdout
    assert "no standby is healthy" in lines[1]
    assert sb.eni_owner(world_b.eni_id) == world_b.primary
    assert sb.eni_owner(world_a.eni_id) == world_a.primary
    assert sb.layer.mutating_calls() == []
    state = read_store(sb.tmp_path / "state.db", lambda s: s.load_group_state("b"))
    assert state.status == "degraded"
    assert not state.held
