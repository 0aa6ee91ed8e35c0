"""policies/failover-ec2.json grants every action failover needs, and each one is needed.

Runs the real engine and the real `failover validate` under moto's IAM enforcement, as a
user holding the actions of the real policy file. moto evaluates actions only: resources
are `"*"` and conditions are dropped (moto ignores both), so these tests prove the action
set; test_policy_lint.py checks the ARNs and the tag conditions against IAM's reference.

Every scenario (a move of each mode, `validate` of each mode, `route` included) succeeds with the whole
policy; with one action removed, each scenario that needs it fails with a message naming
`ec2:<Action>`; and every action of the policy is needed by some scenario.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.exceptions import ClientError

from failover.cli import main
from failover.core.errors import PermissionDeniedError
from failover.service.identity import CALLER_GRACE_S

from .conftest import EC2_ACTIONS, USER, IamRig, RigFactory


@dataclass(frozen=True)
class Scenario:
    """One thing failover does: a move of a mode, or `validate` of a group of a mode."""

    kind: str  # "move" or "validate"
    mode: str
    needs: frozenset[str]
    eip: bool = True  # secondary-ip: the group keeps an Elastic IP on its IP
    layer: dict[str, Any] = field(default_factory=dict)


_OBSERVE = {"ec2:DescribeInstances"}
_VALIDATE = {"ec2:DescribeInstanceStatus"}  # DryRun'd for the `ec2` health check
_ENI = {"ec2:DescribeNetworkInterfaces"}
_EIP = {"ec2:DescribeAddresses"}
_MOVE_ENI = {"ec2:DetachNetworkInterface", "ec2:AttachNetworkInterface"}
_ROUTE = {"ec2:DescribeRouteTables", "ec2:ReplaceRoute"}

SCENARIOS = {
    "move-eni": Scenario("move", "eni", frozenset(_OBSERVE | _ENI | _MOVE_ENI)),
    "move-secondary-ip": Scenario(
        "move", "secondary-ip", frozenset(_OBSERVE | {"ec2:AssignPrivateIpAddresses"}), eip=False
    ),
    # AWS carries the EIP along with the IP: no AssociateAddress.
    "move-secondary-ip-eip": Scenario(
        "move", "secondary-ip", frozenset(_OBSERVE | _EIP | {"ec2:AssignPrivateIpAddresses"})
    ),
    # The EIP did not follow within the grace: failover re-associates it.
    "move-secondary-ip-eip-stays": Scenario(
        "move",
        "secondary-ip",
        frozenset(_OBSERVE | _EIP | {"ec2:AssignPrivateIpAddresses", "ec2:AssociateAddress"}),
        layer={"eip_follows": False},
    ),
    "move-eip": Scenario("move", "eip", frozenset(_OBSERVE | _EIP | {"ec2:AssociateAddress"})),
    "move-route": Scenario("move", "route", frozenset(_OBSERVE | _ROUTE)),
    # validate DryRuns the mutating calls; ModifyNetworkInterfaceAttribute is the engine's
    # DeleteOnTermination fix, which a move on AWS's defaults never needs.
    "validate-eni": Scenario(
        "validate",
        "eni",
        frozenset(
            _OBSERVE | _VALIDATE | _ENI | _MOVE_ENI | {"ec2:ModifyNetworkInterfaceAttribute"}
        ),
    ),
    # AssignPrivateIpAddresses takes no DryRun: validate can only print a note about it.
    "validate-secondary-ip-eip": Scenario(
        "validate",
        "secondary-ip",
        frozenset(_OBSERVE | _VALIDATE | _EIP | {"ec2:AssociateAddress"}),
    ),
    "validate-eip": Scenario(
        "validate", "eip", frozenset(_OBSERVE | _VALIDATE | _EIP | {"ec2:AssociateAddress"})
    ),
    # ReplaceRoute DryRun'd on every listed table.
    "validate-route": Scenario("validate", "route", frozenset(_OBSERVE | _VALIDATE | _ROUTE)),
}


def test_the_policy_grants_what_the_scenarios_need_and_nothing_more() -> None:
    """Least privilege: every action of the policy is needed by some scenario, and vice versa."""
    needed = set().union(*(s.needs for s in SCENARIOS.values()))
    assert needed == set(EC2_ACTIONS)


def run_move(rig: IamRig) -> str | None:
    """Move the group to its standby as the restricted user; None if it worked, else the error."""
    engine, group, store = rig.engine()
    target = rig.world.standbys[0]
    try:
        result = rig.enforced(lambda: engine.move(group, target=target, reason="iam test"))
    except PermissionDeniedError as exc:
        return str(exc)
    finally:
        # STS is asked off the move's path, after its mutating call: its answer is written in
        # by the time the engine settles (as every command does before it closes the store).
        engine.identity.settle(CALLER_GRACE_S)
        history = store.history(group.name, 1)
        store.close()
    assert result.outcome == "succeeded"
    # sts:GetCallerIdentity needs no permission (AWS and moto agree): the audit trail
    # names the restricted user, not "unknown".
    assert history[0].caller.endswith(f":user/{USER}")
    if group.mode == "eni":
        assert rig.eni_owner() == target
    elif group.mode == "secondary-ip":
        assert rig.ip_holders() == {target}
    if group.eip:
        assert rig.eip_owner() == target
    if group.mode == "route":
        assert rig.route_targets() == {rig.eth0(target)}
    return None


def run_validate(
    rig: IamRig, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> str | None:
    """`failover validate` (the CLI's own code) as the restricted user; None if it passed."""
    path = rig.write_config()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", rig.keys["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", rig.keys["aws_secret_access_key"])
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    capsys.readouterr()
    code = rig.enforced(lambda: main(["validate", "--config", str(path)]))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    if code == 0:
        assert "AWS checks passed" in out
        assert not err
        if rig.group_doc["mode"] == "secondary-ip":
            assert "AssignPrivateIpAddresses takes no DryRun" in out
        return None
    assert code == 2, (out, err)
    return err


Runner = Callable[[str, list[str]], str | None]


@pytest.fixture
def run(
    iam_rig: RigFactory, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Runner:
    """`run(scenario_name, actions)`: None if the scenario succeeded, else its error text."""

    def go(name: str, actions: list[str]) -> str | None:
        scenario = SCENARIOS[name]
        rig = iam_rig(scenario.mode, actions, eip=scenario.eip, **scenario.layer)
        if scenario.kind == "move":
            return run_move(rig)
        return run_validate(rig, monkeypatch, capsys)

    return go


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_scenario_succeeds_with_the_policy(run: Runner, name: str) -> None:
    """The whole action set: each mode's move finishes and `validate` passes."""
    assert run(name, EC2_ACTIONS) is None


# Each action with each scenario that needs it (the scenarios that do not need an action
# run with all of the policy above; running them again without it would prove nothing new).
MISSING = [
    pytest.param(action, name, id=f"{action}-{name}")
    for action in EC2_ACTIONS
    for name, scenario in SCENARIOS.items()
    if action in scenario.needs
]


@pytest.mark.parametrize(("missing", "name"), MISSING)
def test_without_one_action_each_scenario_needing_it_fails_naming_it(
    run: Runner, missing: str, name: str
) -> None:
    """One action removed: a move raises PermissionDeniedError, validate exits 2; both name it."""
    error = run(name, [a for a in EC2_ACTIONS if a != missing])
    assert error is not None, f"{name} succeeded without {missing}"
    assert f"missing IAM permission {missing}" in error
    # Only that one (named once per resource it is checked on: each route table).
    assert set(re.findall(r"missing IAM permission (\S+)", error)) == {missing}


def test_moto_enforces_iam_through_the_strict_layer(iam_rig: RigFactory) -> None:
    """The rig is not vacuous: requests the layer answers itself (DryRun, detach) are denied too."""
    rig = iam_rig("eni", ["ec2:DescribeInstances"])
    ec2 = rig.client("ec2")
    reply = rig.admin_ec2.describe_network_interfaces(NetworkInterfaceIds=[rig.world.eni_id])
    attachment_id = reply["NetworkInterfaces"][0]["Attachment"]["AttachmentId"]

    def denied(call: Callable[[], object]) -> str:
        with pytest.raises(ClientError) as caught:
            rig.enforced(call)
        return str(caught.value.response["Error"]["Code"])

    assert denied(lambda: ec2.describe_vpcs()) == "AccessDenied"
    assert denied(lambda: ec2.describe_instance_status(DryRun=True)) == "AccessDenied"
    assert denied(lambda: ec2.detach_network_interface(AttachmentId=attachment_id)) == (
        "AccessDenied"
    )
    assert rig.eni_owner() == rig.world.primary
    assert rig.enforced(lambda: ec2.describe_instances())["Reservations"]
