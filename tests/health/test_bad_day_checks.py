"""`failover check` on a bad day on real AWS: a disrupted AZ, a tag-scoped policy, a big account.

The cron check runs as a process against the strict sandbox (tests/sandbox/test_aws_failures.py
shows each behaviour against plain moto); members are probed on their own loopback addresses.
AWS state, the store and the call log are read back after every run.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from failover.sandbox.strict import Call
from failover.sandbox.world import World

from ..conftest import run_cli
from .conftest import HealthRig, Loopback, Sandbox, read_store

_AMI = "ami-12c6146b"
SandboxFactory = Callable[..., Sandbox]
LoopbackFactory = Callable[..., Loopback]


def check(config: Path) -> subprocess.CompletedProcess[str]:
    return run_cli("check", "--config", str(config), timeout=120)


def eni_group_in_zone_b(sb: Sandbox, world: World, name: str) -> tuple[str, str, str]:
    """A second eni group in the world's other AZ: (primary, standby, floating ENI)."""
    tags = [{"Key": "failover:group", "Value": name}]
    reply = sb.ec2.run_instances(
        ImageId=_AMI,
        InstanceType="t3.large",
        MinCount=2,
        MaxCount=2,
        SubnetId=world.subnet_b,
        SecurityGroupIds=[world.sg_id],
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
    )
    primary, standby = (i["InstanceId"] for i in reply["Instances"])
    eni = sb.ec2.create_network_interface(
        SubnetId=world.subnet_b,
        Groups=[world.sg_id],
        TagSpecifications=[{"ResourceType": "network-interface", "Tags": tags}],
    )["NetworkInterface"]["NetworkInterfaceId"]
    sb.ec2.attach_network_interface(NetworkInterfaceId=eni, InstanceId=primary, DeviceIndex=1)
    return primary, standby, eni


def test_a_disrupted_az_blinds_only_its_groups_and_the_other_az_fails_over(
    sandbox: SandboxFactory, loopback: LoopbackFactory
) -> None:
    """AZ disruption: DescribeInstances fails for the disrupted AZ. One check still fails over
    the group in the other AZ whose primary died; the disrupted AZ's group is reported
    `unknown` (alert, exit 1), not moved, its counters unchanged."""
    sb = sandbox()
    world = sb.world("eni")
    assert world.eni_id
    b_primary, b_standby, b_eni = eni_group_in_zone_b(sb, world, "b")
    lo = loopback([world.primary, world.standbys[0], b_primary, b_standby])
    members = {m["instance"]: m for m in lo.members()}
    group_a = sb.group(
        world,
        "eni",
        name="a",
        members=[members[world.primary], members[world.standbys[0]]],
        checks=[lo.check()],
    )
    group_b = {
        "name": "b",
        "mode": "eni",
        "eni": b_eni,
        "device_index": 1,
        "members": [members[b_primary], members[b_standby]],
        "checks": [lo.check()],
    }
    config = sb.config(
        group_a, group_b, defaults={"interval": "2s", "timeout": "300ms", "fall": 1, "rise": 1}
    )
    first = check(config)
    assert first.returncode == 0, first.stdout + first.stderr
    health_a = read_store(sb.tmp_path / "state.db", lambda s: s.load_health("a"))

    lo.stop(b_primary)
    sb.layer.disrupt_az(world.az_a)
    sb.layer.reset_log()
    done = check(config)

    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    lines = dict(line.split(": ", 1) for line in done.stdout.splitlines())
    assert lines["a"].startswith("unknown: AWS could not be read")
    assert lines["b"].startswith(f"moved {b_primary} -> {b_standby}")
    assert "ALERT unknown group=a" in done.stderr
    sb.layer.restore_az()
    assert sb.eni_owner(b_eni) == b_standby
    assert sb.eni_owner(world.eni_id) == world.primary
    assert read_store(sb.tmp_path / "state.db", lambda s: s.load_health("a")) == health_a


def test_tag_scoped_automatic_failover_passes_over_an_untagged_standby(
    sandbox: SandboxFactory, loopback: LoopbackFactory
) -> None:
    """Tag-scoped IAM: the preferred standby is untagged; its attach is DryRun before the
    detach, refused, and the failover goes to the second, tagged standby, naming the first."""
    sb = sandbox(tag_scoped=True)
    world = sb.world("eni", standbys=2)
    assert world.eni_id
    untagged, tagged = world.standbys
    sb.ec2.delete_tags(Resources=[untagged], Tags=[{"Key": "failover:group"}])
    lo = loopback([world.primary, untagged, tagged])
    group = sb.group(world, "eni", members=lo.members(), checks=[lo.check()])
    config = sb.config(group, defaults={"interval": "2s", "timeout": "300ms", "fall": 1, "rise": 1})
    first = check(config)
    assert first.returncode == 0, first.stdout + first.stderr

    lo.stop(world.primary)
    done = check(config)

    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith(f"g: moved {world.primary} -> {tagged}"), done.stdout
    assert sb.eni_owner(world.eni_id) == tagged
    attaches = sb.layer.calls_to("AttachNetworkInterface", dry_run=False)
    assert [
        c.params["InstanceId"] for c in attaches if c.params["InstanceId"] != world.primary
    ] == [tagged]
    assert f"passed over {untagged}" in done.stderr


def test_tag_scoped_eip_failover_is_its_own_permission_check(
    sandbox: SandboxFactory, loopback: LoopbackFactory
) -> None:
    """Tag-scoped IAM, eip: a move that is one call needs no DryRun first. The preferred
    standby's eth0 is untagged: its AssociateAddress is refused and changes nothing (the EIP
    stays on the primary), and the same move goes on to the tagged standby."""
    sb = sandbox(tag_scoped=True)
    world = sb.world("eip", standbys=2)
    assert world.allocation_id
    untagged, tagged = world.standbys
    sb.ec2.delete_tags(Resources=[untagged, sb.eth0(untagged)], Tags=[{"Key": "failover:group"}])
    lo = loopback([world.primary, untagged, tagged])
    group = sb.group(world, "eip", members=lo.members(), checks=[lo.check()])
    config = sb.config(group, defaults={"interval": "2s", "timeout": "300ms", "fall": 1, "rise": 1})
    first = check(config)
    assert first.returncode == 0, first.stdout + first.stderr

    lo.stop(world.primary)
    sb.layer.reset_log()
    done = check(config)

    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith(f"g: moved {world.primary} -> {tagged}"), done.stdout
    assert sb.eip_owner(world.allocation_id) == tagged
    associations = [
        (c.params["NetworkInterfaceId"], c.dry_run, c.error)
        for c in sb.layer.calls_to("AssociateAddress")
    ]
    assert associations == [
        (sb.eth0(untagged), False, "UnauthorizedOperation"),
        (sb.eth0(tagged), True, "DryRunOperation"),
        (sb.eth0(tagged), False, None),
    ]


# ---- Every Describe names ids, paginates or narrows ---------------------------------------

_IDS = {
    "DescribeInstances": "InstanceIds",
    "DescribeInstanceStatus": "InstanceIds",
    "DescribeNetworkInterfaces": "NetworkInterfaceIds",
    "DescribeAddresses": "AllocationIds",
}
_NARROWING = {
    "attachment.instance-id",
    "group-id",
    "mac-address",
    "private-dns-name",
    "private-ip-address",
    "subnet-id",
    "vpc-id",
}


def bounded_read(call: Call) -> bool:
    """AWS's rules for a describe: instances only by id (in a disrupted AZ a filter is no
    instance id); anything else by id, paginated (MaxResults), or by a narrowing filter."""
    params = call.params
    if params.get(_IDS.get(call.action, "")):
        return True
    if call.action in ("DescribeInstances", "DescribeInstanceStatus"):
        return False
    filters = {f["Name"] for f in params.get("Filters") or []}
    return "MaxResults" in params or bool(filters & _NARROWING)


@pytest.mark.parametrize("mode", ["eni", "secondary-ip", "eip"])
def test_every_describe_of_a_pass_and_a_move_names_ids_or_paginates(
    sandbox: SandboxFactory, mode: str
) -> None:
    """Big accounts: on an account with more ENIs than an unnarrowed describe may list, a
    check and a move each succeed, and every Describe they send names its ids (or pages a
    narrowing filter)."""
    sb = sandbox()
    world = sb.world(mode, standbys=2)
    sb.layer.big_account(eni_threshold=2)
    config = sb.config(sb.group(world, mode, checks=[{"type": "ec2"}]), defaults={"rise": 1})
    sb.layer.reset_log()

    passed = check(config)
    moved = run_cli("move", "g", "--yes", "--config", str(config))

    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert moved.returncode == 0, moved.stdout + moved.stderr
    describes = [c for c in sb.layer.calls if c.action.startswith("Describe")]
    assert {c.action for c in describes} >= {"DescribeInstances", "DescribeInstanceStatus"}
    assert [c for c in describes if not bounded_read(c)] == []
    assert [c for c in describes if c.error is not None] == []


def test_insufficient_data_is_no_failure_and_never_moves(
    health_rig: Callable[..., HealthRig],
) -> None:
    """Status checks: `insufficient-data` is not `impaired`: a primary reporting it while its
    probes pass stays healthy, is never failed over (so never Force-detached from)."""
    rig = health_rig(ec2=True, fall=2, rise=1)
    primary = rig.members()[0]
    rig.run_pass()
    rig.layer.set_status(primary, system="insufficient-data", instance="insufficient-data")
    outcomes = [rig.run_pass()["g0"].outcome for _ in range(3)]
    assert outcomes == ["stay"] * 3
    health: Any = rig.store.load_health("g0")
    assert health[primary].healthy
    assert health[primary].failures == 0
    assert rig.layer.mutating_calls() == []
    assert rig.eni_owner() == primary


def _cross_az_group(
    sb: Sandbox, loopback: LoopbackFactory, mode: str
) -> tuple[World, Loopback, Path, str]:
    """An `eip` or `route` group: the primary in AZ a, its standby in AZ b, probed on loopback;
    one check has run (both healthy). Returns the world, the probes, the config, the eth0 the
    standby owns the resource through."""
    world = sb.world(mode, cross_az=True)
    lo = loopback([world.primary, world.standbys[0]])
    group = sb.group(world, mode, members=lo.members(), checks=[lo.check()])
    config = sb.config(group, defaults={"interval": "2s", "timeout": "300ms", "fall": 1, "rise": 1})
    first = check(config)
    assert first.returncode == 0, first.stdout + first.stderr
    return world, lo, config, sb.eth0(world.standbys[0])


def _owner_eth0(sb: Sandbox, world: World, mode: str) -> set[str | None]:
    """The eth0(s) AWS sends the group's traffic to: the EIP's ENI, or every table's route."""
    if mode == "eip":
        assert world.allocation_id is not None
        reply = sb.ec2.describe_addresses(AllocationIds=[world.allocation_id])
        return {reply["Addresses"][0].get("NetworkInterfaceId")}
    return {eni for eni, _ in sb.routes(world).values()}


@pytest.mark.parametrize("mode", ["eip", "route"])
def test_an_eip_or_route_group_fails_over_out_of_a_lost_az(
    sandbox: SandboxFactory, loopback: LoopbackFactory, mode: str
) -> None:
    """AZ loss: an EIP's association and a route table are regional, so when the primary's AZ
    is lost (its instance reads fail, its service dead) a fresh `check` process still moves
    the resource to the standby in the other AZ, with the mode's mutating calls only. The
    lost member is known by its network interfaces; its state stays unknown."""
    sb = sandbox()
    world, lo, config, standby_eth0 = _cross_az_group(sb, loopback, mode)

    lo.stop(world.primary)
    sb.layer.disrupt_az(world.az_a)
    sb.layer.reset_log()
    done = check(config)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert done.stdout.startswith(f"g: moved {world.primary} -> {world.standbys[0]}"), done.stdout
    assert any(c.error == "Unavailable" for c in sb.layer.calls_to("DescribeInstances"))
    expected = ["AssociateAddress"] if mode == "eip" else ["ReplaceRoute", "ReplaceRoute"]
    assert [c.action for c in sb.layer.mutating_calls()] == expected
    assert _owner_eth0(sb, world, mode) == {standby_eth0}


@pytest.mark.parametrize("mode", ["eip", "route"])
def test_a_lost_az_whose_member_still_answers_moves_nothing(
    sandbox: SandboxFactory, loopback: LoopbackFactory, mode: str
) -> None:
    """AZ loss: AWS cannot read the primary's AZ but its service answers: not being able to
    read a member is no failure, so the resource stays and no mutating call is sent."""
    sb = sandbox()
    world, _, config, _ = _cross_az_group(sb, loopback, mode)
    before = _owner_eth0(sb, world, mode)
    assert before == {sb.eth0(world.primary)}

    sb.layer.disrupt_az(world.az_a)
    sb.layer.reset_log()
    done = check(config)

    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("g: stay"), done.stdout
    assert any(c.error == "Unavailable" for c in sb.layer.calls_to("DescribeInstances"))
    assert sb.layer.mutating_calls() == []
    assert _owner_eth0(sb, world, mode) == before
