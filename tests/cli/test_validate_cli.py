"""AWS's rules through the CLI: `move` refuses before any mutating call (exit 3), `validate` reports them (exit 2).

moto lets most of these through; the tool must check them itself. Each setup is built in
moto's server, then both commands run as real processes against it.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from typing import Any

import pytest

from ..conftest import run_cli
from .conftest import Sandbox

SandboxFactory = Callable[..., Sandbox]


def stderr_line(done: subprocess.CompletedProcess[str]) -> str:
    """The one line an error leaves on stderr (DESIGN: one line, never a traceback)."""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    return lines[0]


def eth0_of(sb: Sandbox, instance_id: str) -> str:
    reply = sb.ec2.describe_instances(InstanceIds=[instance_id])
    (instance,) = (i for r in reply["Reservations"] for i in r["Instances"])
    return str(
        next(
            n["NetworkInterfaceId"]
            for n in instance["NetworkInterfaces"]
            if n["Attachment"]["DeviceIndex"] == 0
        )
    )


def broken_setup(sb: Sandbox, setup: str) -> tuple[Any, dict[str, Any], str]:
    """A world breaking one AWS rule: (world, the group's config, the member a move would target)."""
    world = sb.world("eni", other_az_member=setup == "cross-az")
    group = sb.group(world, "eni")
    target = world.standbys[0]
    if setup == "cross-az":
        assert world.other_az is not None
        target = world.other_az
    elif setup == "eth0":
        group["eni"] = eth0_of(sb, world.primary)
    elif setup == "index-taken":
        other = sb.ec2.create_network_interface(SubnetId=world.subnet_a)["NetworkInterface"]
        sb.ec2.attach_network_interface(
            NetworkInterfaceId=other["NetworkInterfaceId"], InstanceId=target, DeviceIndex=1
        )
    elif setup == "terminated":
        sb.ec2.terminate_instances(InstanceIds=[target])
    sb.layer.reset_log()
    return world, group, target


SETUPS = [
    pytest.param("cross-az", "same AZ only", "same AZ only", id="cross-az"),
    pytest.param("eth0", "device index 0 can never be detached", "eth0", id="eth0"),
    pytest.param("index-taken", "device index 1 on", "is taken by", id="index-taken"),
    pytest.param("terminated", "is terminated", "terminated", id="terminated"),
]


@pytest.mark.parametrize(("setup", "move_rule", "validate_rule"), SETUPS)
def test_move_refuses_a_rule_violation_before_any_mutating_call(
    sandbox: SandboxFactory, setup: str, move_rule: str, validate_rule: str
) -> None:
    """Rule: cross-AZ target, eth0, taken device index, terminated target: `move` exits 3, touching nothing.

    And `validate` on the same setup exits 2 with a line naming the same rule.
    """
    sb = sandbox()
    world, group, target = broken_setup(sb, setup)
    config = sb.config(group)
    eni = group["eni"]

    refused = run_cli("move", "g", "--to", target, "--yes", "--config", str(config))
    assert refused.returncode == 3, refused.stderr
    line = stderr_line(refused)
    assert move_rule in line
    assert "group g" in line
    assert eni in line
    assert sb.layer.mutating_calls() == []
    att = sb.eni_attachment(eni)
    assert att is not None
    assert att["InstanceId"] == world.primary

    checked = run_cli("validate", "--config", str(config))
    assert checked.returncode == 2, checked.stdout + checked.stderr
    assert "Traceback" not in checked.stdout + checked.stderr
    assert any(validate_rule in line for line in checked.stderr.splitlines()), checked.stderr
    assert sb.layer.mutating_calls() == []


def test_validate_rejects_a_floating_eni_with_delete_on_termination(
    sandbox: SandboxFactory,
) -> None:
    """Rule: a floating ENI must outlive its instance: `validate` names DeleteOnTermination and the fix."""
    sb = sandbox()
    world = sb.world("eni")
    eni = world.eni_id or ""
    att = sb.eni_attachment(eni)
    assert att is not None
    sb.ec2.modify_network_interface_attribute(
        NetworkInterfaceId=eni,
        Attachment={"AttachmentId": att["AttachmentId"], "DeleteOnTermination": True},
    )
    sb.layer.reset_log()
    config = sb.config(sb.group(world, "eni"))
    done = run_cli("validate", "--config", str(config))
    assert done.returncode == 2, done.stdout + done.stderr
    line = stderr_line(done)
    assert "DeleteOnTermination" in line
    assert eni in line
    assert "DeleteOnTermination=false" in line
    assert "modify-network-interface-attribute" in line
    assert sb.layer.mutating_calls() == []
    assert sb.eni_attachment(eni)["DeleteOnTermination"] is True  # type: ignore[index]


@pytest.mark.parametrize(
    ("mode", "action"),
    [
        pytest.param("eni", "AttachNetworkInterface", id="eni-attach"),
        pytest.param("eip", "AssociateAddress", id="eip-associate"),
    ],
)
def test_validate_names_a_missing_iam_permission_found_by_dry_run(
    sandbox: SandboxFactory, mode: str, action: str
) -> None:
    """Rule: every API action a failover needs is tried with DryRun; a denied one is named as ec2:<Action>."""
    sb = sandbox()
    world = sb.world(mode)
    sb.layer.deny(action)
    config = sb.config(sb.group(world, mode))
    done = run_cli("validate", "--config", str(config))
    assert done.returncode == 2, done.stdout + done.stderr
    line = stderr_line(done)
    assert f"ec2:{action}" in line
    assert "group g" in line
    denied = sb.layer.calls_to(action)
    assert denied
    assert all(c.dry_run for c in denied)
    assert all(c.error == "UnauthorizedOperation" for c in denied)
    assert sb.layer.mutating_calls() == []


@pytest.mark.parametrize("mode", ["eni", "secondary-ip", "eip"])
def test_validate_passes_a_correct_setup_with_dry_runs_only(
    sandbox: SandboxFactory, mode: str
) -> None:
    """Rule: a correct setup validates (exit 0), every permission checked with DryRun, nothing changed."""
    sb = sandbox()
    world = sb.world(mode)
    config = sb.config(sb.group(world, mode))
    done = run_cli("validate", "--config", str(config))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == ""
    assert "AWS checks passed" in done.stdout
    dry_runs = {c.action for c in sb.layer.calls if c.dry_run}
    needed = {
        "eni": {"AttachNetworkInterface", "DetachNetworkInterface"},
        "secondary-ip": {"AssociateAddress"},
        "eip": {"AssociateAddress"},
    }[mode]
    assert needed <= dry_runs
    if mode == "secondary-ip":
        # AssignPrivateIpAddresses takes no DryRun: said so, never sent for real to find out.
        assert "AssignPrivateIpAddresses takes no DryRun" in done.stdout
        assert not sb.layer.calls_to("AssignPrivateIpAddresses")
    assert all(c.error == "DryRunOperation" for c in sb.layer.calls if c.dry_run)
    assert sb.layer.mutating_calls() == []


def test_validate_offline_makes_no_aws_call(sandbox: SandboxFactory) -> None:
    """Rule: `validate --offline` checks the schema only: not one call reaches AWS, even with a broken setup."""
    sb = sandbox()
    world = sb.world("eni")
    sb.layer.deny("AttachNetworkInterface")
    config = sb.config(sb.group(world, "eni"))
    done = run_cli("validate", "--offline", "--config", str(config))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "valid" in done.stdout
    assert sb.layer.calls == []
