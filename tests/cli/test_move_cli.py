"""`failover move` as a real process against moto's server: every mode, --to, --dry-run, the TTY rule, --force.

Each test reads the AWS state back (who owns the ENI, the IP, the Elastic IP) with its own
client and checks the strict layer's call log, not only the exit code.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest

from failover.sandbox.world import World

from ..conftest import run_cli
from .conftest import Sandbox

SandboxFactory = Callable[..., Sandbox]


def stderr_line(done: subprocess.CompletedProcess[str]) -> str:
    """The one line an error leaves on stderr (DESIGN: one line, never a traceback)."""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    return lines[0]


def owner(sb: Sandbox, world: World, mode: str) -> str | set[str] | None:
    """Who holds the group's resource in AWS now (for secondary-ip: every holder of the IP)."""
    if mode == "eni":
        assert world.eni_id is not None
        return sb.eni_owner(world.eni_id)
    if mode == "secondary-ip":
        return sb.ip_holders(world)
    assert world.allocation_id is not None
    return sb.eip_owner(world.allocation_id)


def expected(mode: str, instance_id: str) -> str | set[str]:
    return {instance_id} if mode == "secondary-ip" else instance_id


MODES = ["eni", "secondary-ip", "eip"]


@pytest.mark.parametrize("mode", MODES)
def test_move_yes_puts_the_resource_on_the_first_standby(
    sandbox: SandboxFactory, mode: str
) -> None:
    """Rule: `move GROUP --yes` moves the group's resource to the first running standby, in every mode."""
    sb = sandbox(detach_delay_s=0.1, eip_follow_delay_s=0.1)
    world = sb.world(mode, standbys=2)
    config = sb.config(sb.group(world, mode))
    done = run_cli("move", "g", "--yes", "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    standby = world.standbys[0]
    assert owner(sb, world, mode) == expected(mode, standby)
    assert f"to {standby}" in done.stdout
    if mode == "secondary-ip":
        # The IP is gone from the primary, and the group's Elastic IP is still on it.
        assert world.allocation_id is not None
        assert sb.eip_owner(world.allocation_id) == standby
    if mode == "eni":
        att = sb.eni_attachment(world.eni_id or "")
        assert att is not None
        assert att["DeviceIndex"] == 1
        assert att["DeleteOnTermination"] is False


@pytest.mark.parametrize("mode", MODES)
def test_move_to_puts_the_resource_on_the_named_member(sandbox: SandboxFactory, mode: str) -> None:
    """Rule: `move GROUP --to INSTANCE --yes` moves to that member, not to the preferred standby."""
    sb = sandbox(eip_follow_delay_s=0.1)
    world = sb.world(mode, standbys=2)
    config = sb.config(sb.group(world, mode))
    chosen = world.standbys[1]
    done = run_cli("move", "g", "--to", chosen, "--yes", "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert owner(sb, world, mode) == expected(mode, chosen)
    if mode == "secondary-ip":
        assert world.allocation_id is not None
        assert sb.eip_owner(world.allocation_id) == chosen


def test_move_to_the_member_that_already_has_it_is_nothing_to_do(sandbox: SandboxFactory) -> None:
    """Rule: a step AWS already shows as done is not redone: --to the active member makes no call."""
    sb = sandbox()
    world = sb.world("eni")
    config = sb.config(sb.group(world, "eni"))
    done = run_cli("move", "g", "--to", world.primary, "--yes", "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert "nothing to do" in done.stdout
    assert sb.eni_owner(world.eni_id or "") == world.primary
    assert sb.layer.mutating_calls() == []


def test_dry_run_prints_the_plan_and_changes_nothing(sandbox: SandboxFactory) -> None:
    """Rule: `--dry-run` shows the plan (every step, in order) and makes no mutating call."""
    sb = sandbox()
    world = sb.world("eni")
    eni = world.eni_id or ""
    config = sb.config(sb.group(world, "eni"))
    done = run_cli("move", "g", "--dry-run", "--config", str(config))
    assert done.returncode == 0, done.stderr
    standby = world.standbys[0]
    assert f"move {eni} from {world.primary} to {standby}" in done.stdout
    steps = [
        f"1. detach {eni} from {world.primary}",
        f"2. wait until {eni} is available",
        f"3. attach {eni} to {standby} at device index 1",
        f"4. wait until {eni} is attached to {standby}",
    ]
    for step in steps:
        assert step in done.stdout
    assert sb.layer.calls, "a dry run still reads AWS to plan"
    assert sb.layer.mutating_calls() == []
    assert sb.eni_owner(eni) == world.primary


def test_no_tty_and_no_yes_refuses_with_exit_2_before_any_call(sandbox: SandboxFactory) -> None:
    """Rule: without a TTY and without --yes, `move` refuses (exit 2, one line naming --yes), touching nothing."""
    sb = sandbox()
    world = sb.world("eni")
    config = sb.config(sb.group(world, "eni"))
    done = run_cli("move", "g", "--config", str(config))
    assert done.returncode == 2
    assert "--yes" in stderr_line(done)
    assert sb.layer.calls == []
    assert sb.eni_owner(world.eni_id or "") == world.primary


def test_stuck_detach_from_a_running_primary_stops_and_asks_for_force(
    sandbox: SandboxFactory,
) -> None:
    """Rule: a planned move whose detach hangs never Forces on its own; --force does, and finishes it.

    Without --force: exit 1, one line naming --force, the ENI still on the primary (its detach
    hanging) and only graceful detaches sent. With --force: exit 0 and the ENI on the standby.
    """
    sb = sandbox()
    world = sb.world("eni")
    eni = world.eni_id or ""
    sb.layer.stick_detach(eni)
    config = sb.config(sb.group(world, "eni"), defaults={"detach_timeout": "1s"})

    stuck = run_cli("move", "g", "--yes", "--config", str(config))
    assert stuck.returncode == 1, stuck.stderr
    line = stderr_line(stuck)
    assert "--force" in line
    assert "detach_timeout" in line
    att = sb.eni_attachment(eni)
    assert att is not None
    assert att["InstanceId"] == world.primary
    assert att["Status"] in ("attached", "detaching")
    detaches = [c for c in sb.layer.calls_to("DetachNetworkInterface") if not c.dry_run]
    assert [c.params.get("Force") for c in detaches] == [False]
    assert not sb.layer.calls_to("AttachNetworkInterface", dry_run=False)

    forced = run_cli("move", "g", "--yes", "--force", "--config", str(config))
    assert forced.returncode == 0, forced.stderr
    assert sb.eni_owner(eni) == world.standbys[0]
    detaches = [c for c in sb.layer.calls_to("DetachNetworkInterface") if not c.dry_run]
    assert [c.params.get("Force") for c in detaches] == [False, True]
