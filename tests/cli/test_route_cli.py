"""`route` groups and groups across AZs, driven through the real CLI against moto's server.

The overlay address is routed by two tables to the primary's eth0 in AZ a; the standby is in
AZ b. Each test reads DescribeRouteTables (or DescribeAddresses) back with its own client and
counts the ReplaceRoute calls in the strict layer's log.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from failover.sandbox.world import World

from ..conftest import history, run_cli
from .conftest import Sandbox

SandboxFactory = Callable[..., Sandbox]

# EC2's view of health only, so a pass needs no probe target: fall 1 / rise 1 make one
# `check` run detect the dead primary and count the standby healthy.
EC2_ONLY = {"checks": [{"type": "ec2"}], "fall": 1, "rise": 1}


def route_world(sb: Sandbox) -> tuple[World, Path]:
    world = sb.world("route", cross_az=True)
    return world, sb.config(sb.group(world, "route", **EC2_ONLY))


def routed_to(sb: Sandbox, world: World, instance_id: str) -> bool:
    """Every table routes the overlay CIDR to `instance_id`'s eth0, and the route is active."""
    eth0 = sb.eth0(instance_id)
    return set(sb.routes(world).values()) == {(eth0, "active")}


def replace_routes(sb: Sandbox) -> list[str]:
    """The tables of the ReplaceRoute calls AWS applied, in order."""
    return [
        c.params["RouteTableId"]
        for c in sb.layer.calls_to("ReplaceRoute")
        if c.error is None and not c.dry_run
    ]


def check(config: Path) -> subprocess.CompletedProcess[str]:
    done = run_cli("check", "--config", str(config))
    assert "Traceback" not in done.stdout + done.stderr
    return done


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.mark.parametrize("death", ["stop", "terminate"])
def test_one_check_points_both_tables_at_the_standby_in_the_other_az(
    sandbox: SandboxFactory, death: str
) -> None:
    """Acceptance: the primary (AZ a) dies; one `check` points both tables at the standby's eth0
    in AZ b with exactly two ReplaceRoute calls, and DescribeRouteTables shows both `active`."""
    sb = sandbox()
    world, config = route_world(sb)
    primary, standby = world.primary, world.standbys[0]
    assert routed_to(sb, world, primary)
    if death == "stop":
        sb.ec2.stop_instances(InstanceIds=[primary])
    else:
        sb.ec2.terminate_instances(InstanceIds=[primary])
    assert {state for _, state in sb.routes(world).values()} == {"blackhole"}
    sb.layer.reset_log()

    done = check(config)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("g: moved "), done.stdout
    assert f" -> {standby}" in done.stdout
    assert routed_to(sb, world, standby)
    assert replace_routes(sb) == list(world.route_tables)


def test_move_to_the_standby_and_status_reports_it_active_with_each_members_az(
    sandbox: SandboxFactory,
) -> None:
    """Acceptance: `move GROUP --to STANDBY --yes` repoints both tables; `status --json` then
    reports the standby as active and each member's AZ."""
    sb = sandbox()
    world, config = route_world(sb)
    standby = world.standbys[0]

    preview = run_cli("move", "g", "--to", standby, "--dry-run", "--config", str(config))
    assert preview.returncode == 0, preview.stderr
    first, second = world.route_tables
    assert f"1. route the overlay CIDR in {first} to {standby}'s eth0" in preview.stdout
    assert f"2. route the overlay CIDR in {second} to {standby}'s eth0" in preview.stdout
    assert f"target {standby}: running, {world.az_b}" in preview.stdout
    assert sb.layer.mutating_calls() == []

    done = run_cli("move", "g", "--to", standby, "--yes", "--config", str(config))
    assert done.returncode == 0, done.stdout + done.stderr
    assert routed_to(sb, world, standby)
    assert replace_routes(sb) == [first, second]

    status = run_cli("status", "--json", "--config", str(config))
    assert status.returncode == 0, status.stderr
    (group,) = json.loads(status.stdout)["groups"]
    assert (group["mode"], group["resource"], group["active"]) == ("route", world.cidr, standby)
    assert {m["instance"]: m["az"] for m in group["members"]} == {
        world.primary: world.az_a,
        standby: world.az_b,
    }
    assert group["routes"] == [
        {"table": t, "to": standby, "state": "active"} for t in world.route_tables
    ]
    text = run_cli("status", "--config", str(config))
    assert re.search(rf"{standby}\s+{world.az_b}\s", text.stdout), text.stdout


def test_a_half_done_move_is_finished_by_the_next_check_with_one_replace_route(
    sandbox: SandboxFactory,
) -> None:
    """Acceptance: one table already points at the standby (a crash mid-move), the primary is
    dead: the next pass sends exactly one ReplaceRoute, to the lagging table."""
    sb = sandbox()
    world, config = route_world(sb)
    primary, standby = world.primary, world.standbys[0]
    first, second = world.route_tables
    sb.ec2.replace_route(
        RouteTableId=first, DestinationCidrBlock=world.cidr, NetworkInterfaceId=sb.eth0(standby)
    )
    sb.ec2.stop_instances(InstanceIds=[primary])
    status = json.loads(run_cli("status", "--json", "--config", str(config)).stdout)
    assert status["groups"][0]["active"] is None  # the tables disagree
    sb.layer.reset_log()

    done = check(config)
    assert done.returncode == 0, done.stdout + done.stderr
    assert routed_to(sb, world, standby)
    assert replace_routes(sb) == [second]


def test_a_member_with_the_source_dest_check_on_fails_validate_and_is_refused(
    sandbox: SandboxFactory,
) -> None:
    """Acceptance: `validate` names the member and the command that fixes it and exits non-zero;
    `move --to` it exits 3 with no ReplaceRoute sent."""
    sb = sandbox()
    world, config = route_world(sb)
    standby = world.standbys[0]
    sb.ec2.modify_instance_attribute(InstanceId=standby, SourceDestCheck={"Value": True})
    sb.layer.reset_log()

    done = run_cli("validate", "--config", str(config))
    assert done.returncode != 0
    assert "Traceback" not in done.stdout + done.stderr
    fix = f"aws ec2 modify-instance-attribute --instance-id {standby} --no-source-dest-check"
    (line,) = [x for x in done.stderr.splitlines() if "source/destination" in x]
    assert f"the source/destination check is on for {standby}" in line
    assert fix in line

    moved = run_cli("move", "g", "--to", standby, "--yes", "--config", str(config))
    assert moved.returncode == 3, moved.stdout + moved.stderr
    assert "source/destination check is on" in one_line(moved)
    assert sb.layer.mutating_calls() == []
    assert routed_to(sb, world, world.primary)

    sb.ec2.modify_instance_attribute(InstanceId=standby, SourceDestCheck={"Value": False})
    fixed = run_cli("validate", "--config", str(config))
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr


def test_validate_names_a_missing_table_and_a_table_without_the_route(
    sandbox: SandboxFactory,
) -> None:
    """Rule: every listed table exists and already routes the cidr (ReplaceRoute cannot create it)."""
    sb = sandbox()
    world = sb.world("route", cross_az=True)
    first, _ = world.route_tables
    sb.ec2.delete_route(RouteTableId=first, DestinationCidrBlock=world.cidr)
    ghost = "rtb-0123456789abcdef0"
    group = sb.group(world, "route", **EC2_ONLY)
    group["route_tables"] = [*world.route_tables, ghost]
    config = sb.config(group)
    sb.layer.reset_log()
    done = run_cli("validate", "--config", str(config))
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"route table {first} has no route for {world.cidr}" in done.stderr
    assert f"route table {ghost} does not exist" in done.stderr
    moved = run_cli("move", "g", "--yes", "--config", str(config))
    assert moved.returncode == 3, moved.stdout + moved.stderr
    assert sb.layer.mutating_calls() == []


def test_eip_group_across_two_azs_validates_and_moves_to_the_other_az(
    sandbox: SandboxFactory,
) -> None:
    """Acceptance: an `eip` group with members in two AZs validates and moves to the standby
    in the other AZ (DescribeAddresses shows it there)."""
    sb = sandbox()
    world = sb.world("eip", cross_az=True)
    assert world.allocation_id is not None
    standby = world.standbys[0]
    config = sb.config(sb.group(world, "eip"))
    done = run_cli("validate", "--config", str(config))
    assert done.returncode == 0, done.stdout + done.stderr
    moved = run_cli("move", "g", "--to", standby, "--yes", "--config", str(config))
    assert moved.returncode == 0, moved.stdout + moved.stderr
    address = sb.ec2.describe_addresses(AllocationIds=[world.allocation_id])["Addresses"][0]
    assert (address["InstanceId"], address["NetworkInterfaceId"]) == (standby, sb.eth0(standby))
    assert [c.action for c in sb.layer.mutating_calls()] == ["AssociateAddress"]


def test_eni_group_across_two_azs_still_fails_validate(sandbox: SandboxFactory) -> None:
    """Rule: an ENI belongs to one AZ; `eni` groups keep the one-AZ rule."""
    sb = sandbox()
    world = sb.world("eni", cross_az=True)
    config = sb.config(sb.group(world, "eni"))
    done = run_cli("validate", "--config", str(config))
    assert done.returncode == 2
    assert "same AZ only" in done.stderr


# ---- a crash between the two ReplaceRoutes -----------------------------------------------------


@pytest.mark.process
def test_check_killed_between_the_two_replace_routes_is_finished_by_the_next_check(
    sandbox: SandboxFactory,
) -> None:
    """Acceptance: `failover check` is killed (SIGKILL) right after AWS applied the first
    ReplaceRoute; the next `check` resumes the journaled move and sends exactly one
    ReplaceRoute, to the second table; one move record, succeeded."""
    sb = sandbox()
    world, config = route_world(sb)
    primary, standby = world.primary, world.standbys[0]
    first, second = world.route_tables
    sb.ec2.stop_instances(InstanceIds=[primary])
    sb.layer.reset_log()

    crash = sb.signalled_after(["check", "--config", str(config)], "ReplaceRoute")
    assert crash.returncode == -signal.SIGKILL
    assert replace_routes(sb) == [first]
    assert sb.routes(world)[first][0] == sb.eth0(standby)
    assert sb.routes(world)[second][0] == sb.eth0(primary)
    (crashed,) = history(config)
    assert (crashed["outcome"], crashed["from"], crashed["to"]) == ("in-progress", primary, standby)
    sb.layer.reset_log()

    done = check(config)
    assert done.returncode == 0, done.stdout + done.stderr
    assert routed_to(sb, world, standby)
    assert replace_routes(sb) == [second]
    (record,) = history(config)
    assert (record["move_id"], record["outcome"]) == (crashed["move_id"], "succeeded")
