"""`failover move` and `validate` on a bad day on real AWS, as processes against the strict sandbox.

A reply lost after AWS applied the attach, a tag-scoped IAM policy, a standby in another
subnet of the AZ, a call throttled without end: each is documented EC2 behaviour the
sandbox models (tests/sandbox/test_aws_failures.py). AWS state and the call log are read
back after every command.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from failover.aws.clients import CONNECT_TIMEOUT_S, READ_TIMEOUT_S
from failover.sandbox.world import World

from ..conftest import run_cli
from .conftest import Sandbox
from .test_move_cli import stderr_line

SandboxFactory = Callable[..., Sandbox]
_AMI = "ami-12c6146b"
PROCESS_SLACK_S = 10  # starting Python, importing boto3, exiting (botocore's retries took ~45 s)


def untag(sb: Sandbox, *resource_ids: str) -> None:
    """Take the failover:group tag off these resources."""
    sb.ec2.delete_tags(Resources=list(resource_ids), Tags=[{"Key": "failover:group"}])


def applied(sb: Sandbox, action: str) -> int:
    """How many calls of `action` AWS applied (a lost reply's call included, DryRun not)."""
    return sum(
        1 for c in sb.layer.calls_to(action, dry_run=False) if c.error is None or c.lost_reply
    )


def test_lost_attach_reply_ends_on_the_requested_standby_with_one_detach(
    sandbox: SandboxFactory,
) -> None:
    """Lost reply: AWS attached, the answer was lost and the retry refused (InUse). AWS shows
    the ENI on the target: the move is done (exit 0), never undone, one detach in total."""
    sb = sandbox(detach_delay_s=0.1)
    world = sb.world("eni", standbys=2)
    assert world.eni_id
    config = sb.config(sb.group(world, "eni"))
    target = world.standbys[1]
    sb.layer.lose_replies("AttachNetworkInterface")

    done = run_cli("move", "g", "--to", target, "--yes", "--config", str(config))

    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert sb.eni_owner(world.eni_id) == target
    assert applied(sb, "DetachNetworkInterface") == 1
    attaches = [
        (c.params["InstanceId"], c.error, c.lost_reply)
        for c in sb.layer.calls_to("AttachNetworkInterface", dry_run=False)
    ]
    assert attaches == [
        (target, "InternalError", True),
        (target, "InvalidNetworkInterface.InUse", False),
    ]
    assert f"{world.primary} to {target}" in done.stdout or target in done.stdout
    assert f"from {target}" not in done.stdout


def test_tag_scoped_validate_names_every_untagged_member(sandbox: SandboxFactory) -> None:
    """Tag-scoped IAM: validate DryRuns every member with real ids and reads the tags from the
    Describe answers: the untagged second standby is named (exit 2); nothing is changed."""
    sb = sandbox(tag_scoped=True)
    world = sb.world("eni", standbys=2)
    untagged = world.standbys[1]
    untag(sb, untagged)
    config = sb.config(sb.group(world, "eni"))
    sb.layer.reset_log()

    done = run_cli("validate", "--config", str(config))

    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.splitlines()
    assert any(f"instance {untagged} has no failover:group tag" in line for line in lines)
    assert any(
        line.startswith(f"group g: AttachNetworkInterface to {untagged}: missing IAM permission")
        for line in lines
    )
    assert not [line for line in lines if world.standbys[0] in line]
    assert sb.layer.mutating_calls() == []


def test_tag_scoped_move_to_an_untagged_standby_never_leaves_the_primary(
    sandbox: SandboxFactory,
) -> None:
    """Tag-scoped IAM: the attach is DryRun before the detach; refused, the move stops there:
    exit 1, one line, the ENI never left the primary (no detach sent)."""
    sb = sandbox(tag_scoped=True)
    world = sb.world("eni", standbys=1)
    assert world.eni_id
    untagged = world.standbys[0]
    untag(sb, untagged)
    config = sb.config(sb.group(world, "eni"))
    sb.layer.reset_log()

    done = run_cli("move", "g", "--to", untagged, "--yes", "--config", str(config))

    assert done.returncode == 1, done.stdout + done.stderr
    line = done.stderr.splitlines()[-1]
    assert line.startswith("failover: missing IAM permission ec2:AttachNetworkInterface on ")
    assert untagged in line
    assert "Traceback" not in done.stderr
    assert sb.eni_owner(world.eni_id) == world.primary
    assert sb.layer.calls_to("DetachNetworkInterface", dry_run=False) == []


def other_subnet_member(sb: Sandbox, world: World) -> str:
    """A tagged member in a second subnet of the group's AZ."""
    subnet = sb.ec2.create_subnet(
        VpcId=world.vpc_id, CidrBlock="10.0.128.0/18", AvailabilityZone=world.az_a
    )["Subnet"]["SubnetId"]
    reply = sb.ec2.run_instances(
        ImageId=_AMI,
        InstanceType="t3.large",
        MinCount=1,
        MaxCount=1,
        SubnetId=subnet,
        SecurityGroupIds=[world.sg_id],
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": "failover:group", "Value": "g"}]}
        ],
    )
    instance: str = reply["Instances"][0]["InstanceId"]
    eth0 = reply["Instances"][0]["NetworkInterfaces"][0]["NetworkInterfaceId"]
    sb.ec2.create_tags(Resources=[eth0], Tags=[{"Key": "failover:group", "Value": "g"}])
    return instance


def test_a_standby_in_another_subnet_is_named_by_validate_and_refused_by_move(
    sandbox: SandboxFactory,
) -> None:
    """Subnets: a secondary IP moves only within its subnet. validate names the standby in
    another subnet of the AZ (exit 2); `move --to` it exits 3 before any AssignPrivateIpAddresses."""
    sb = sandbox()
    world = sb.world("secondary-ip")
    elsewhere = other_subnet_member(sb, world)
    group = sb.group(world, "secondary-ip", members=[world.primary, world.standbys[0], elsewhere])
    config = sb.config(group)
    sb.layer.reset_log()

    validate = run_cli("validate", "--config", str(config))
    assert validate.returncode == 2, validate.stdout + validate.stderr
    [problem] = [line for line in validate.stderr.splitlines() if elsewhere in line]
    assert "moves only within its subnet" in problem

    move = run_cli("move", "g", "--to", elsewhere, "--yes", "--config", str(config))
    assert move.returncode == 3, move.stdout + move.stderr
    line = stderr_line(move)
    assert elsewhere in line
    assert "subnet" in line
    assert sb.layer.calls_to("AssignPrivateIpAddresses") == []
    assert sb.ip_holders(world) == {world.primary}


def test_a_move_throttled_without_end_fails_after_move_timeout_in_one_line(
    sandbox: SandboxFactory,
) -> None:
    """Bounded calls: every DetachNetworkInterface throttled (100 %): the move gives up at
    move_timeout plus at most one call's timeout (exit 1, one line naming the throttling), and
    the ENI stays on the primary. The exact bound is proved on a fake clock in
    tests/engine/test_bounded_calls.py; here the process also starts and exits (slack)."""
    sb = sandbox()
    world = sb.world("eni")
    assert world.eni_id
    config = sb.config(
        sb.group(world, "eni"), defaults={"move_timeout": "3s", "detach_timeout": "1s"}
    )
    sb.layer.inject_faults(1.0, ("RequestLimitExceeded",), actions=("DetachNetworkInterface",))

    started = time.monotonic()
    done = run_cli("move", "g", "--yes", "--config", str(config))
    elapsed = time.monotonic() - started
    print(f"throttled move ended after {elapsed:.1f}s (move_timeout 3s)")
    assert elapsed < 3 + CONNECT_TIMEOUT_S + READ_TIMEOUT_S + PROCESS_SLACK_S

    assert done.returncode == 1, done.stdout + done.stderr
    line = stderr_line(done)
    assert "RequestLimitExceeded" in line
    assert "DetachNetworkInterface" in line
    assert sb.eni_owner(world.eni_id) == world.primary
    detaches = sb.layer.calls_to("DetachNetworkInterface", dry_run=False)
    assert detaches
    assert {c.error for c in detaches} == {"RequestLimitExceeded"}
