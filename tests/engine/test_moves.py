"""Each mode moves its resource to a same-AZ standby, and AWS shows exactly that afterwards.

Runs the real engine against moto behind the strict layer (EC2's rules, transitions,
throttling), and asserts the AWS state, not that a function ran.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from failover.core.errors import RefusedError, StuckDetachError
from failover.sandbox.world import World

from .conftest import Rig

RigFactory = Callable[..., Rig]


def standby(world: World) -> str:
    return world.standbys[0]


def identity(eni: dict[str, object]) -> dict[str, object]:
    """What must not change when an ENI moves: IPs, MAC, SGs, source/dest check, description, tags."""
    return {
        "ips": sorted(p["PrivateIpAddress"] for p in eni["PrivateIpAddresses"]),  # type: ignore[attr-defined]
        "mac": eni["MacAddress"],
        "groups": sorted(g["GroupId"] for g in eni["Groups"]),  # type: ignore[attr-defined]
        "source_dest": eni.get("SourceDestCheck"),
        "description": eni.get("Description"),
        "tags": sorted((t["Key"], t["Value"]) for t in eni.get("TagSet", [])),  # type: ignore[attr-defined]
    }


def test_eni_mode_moves_the_eni_to_the_standby_at_its_index_unchanged(rig: RigFactory) -> None:
    """Rule: detach, wait for available, attach at the same device index; the ENI keeps its identity."""
    r = rig("eni", layer={"detach_delay_s": 0.3, "attach_delay_s": 0.2})
    before = identity(r.eni())
    result = r.engine.move(r.group, target=standby(r.world))
    eni = r.eni()
    assert result.outcome == "succeeded"
    assert eni["Attachment"]["InstanceId"] == standby(r.world)
    assert eni["Attachment"]["DeviceIndex"] == 1
    assert eni["Attachment"]["Status"] == "attached"
    assert eni["Attachment"]["DeleteOnTermination"] is False
    assert identity(eni) == before
    mutating = [c.action for c in r.layer.mutating_calls()]
    assert mutating == ["DetachNetworkInterface", "AttachNetworkInterface"]


def test_secondary_ip_mode_moves_the_ip_and_it_is_gone_from_the_primary(rig: RigFactory) -> None:
    """Rule: AssignPrivateIpAddresses(AllowReassignment) moves the IP; the EIP follows it."""
    r = rig("secondary-ip", layer={"eip_follow_delay_s": 0.3})
    result = r.engine.move(r.group, target=standby(r.world))
    assert result.outcome == "succeeded"
    assert r.ip_holders() == {standby(r.world)}
    eip = r.eip()
    assert eip["InstanceId"] == standby(r.world)
    assert eip["PrivateIpAddress"] == r.world.ip
    assign = r.layer.calls_to("AssignPrivateIpAddresses")
    assert [c.params.get("AllowReassignment") for c in assign if c.error is None] == [True]
    # AWS carried the EIP: no extra call (the DryRun before the move asked IAM only).
    assert all(c.dry_run for c in r.layer.calls_to("AssociateAddress"))


def test_secondary_ip_mode_reassociates_an_eip_that_did_not_follow(rig: RigFactory) -> None:
    """Rule: confirm the EIP followed the IP; re-associate it (AllowReassociation) when it did not."""
    r = rig("secondary-ip", layer={"eip_follows": False})
    r.engine.steps.eip_grace_s = 0.5
    r.engine.move(r.group, target=standby(r.world))
    eip = r.eip()
    assert r.ip_holders() == {standby(r.world)}
    assert (eip["InstanceId"], eip["PrivateIpAddress"]) == (standby(r.world), r.world.ip)
    assoc = [c for c in r.layer.calls_to("AssociateAddress") if c.error is None]
    assert len(assoc) == 1
    assert assoc[0].params.get("AllowReassociation") is True


def test_eip_mode_moves_the_eip_to_the_standbys_primary_ip(rig: RigFactory) -> None:
    """Rule: AssociateAddress(AllowReassociation=True) to the target's primary ENI and IP."""
    r = rig("eip")
    r.engine.move(r.group, target=standby(r.world))
    eip = r.eip()
    assert eip["InstanceId"] == standby(r.world)
    assert [c.action for c in r.layer.mutating_calls()] == ["AssociateAddress"]


@pytest.mark.parametrize("mode", ["eni", "secondary-ip", "eip"])
def test_moving_to_the_active_member_is_nothing_to_do(rig: RigFactory, mode: str) -> None:
    """Rule: every step is checked against AWS first; what is already true is not redone."""
    r = rig(mode)
    assert r.engine.move(r.group, target=r.world.primary).outcome == "nothing-to-do"
    assert r.layer.mutating_calls() == []


def test_slow_detach_completes_without_force(rig: RigFactory) -> None:
    """Rule: a detach takes seconds on AWS (`detaching`); wait for `available`, do not Force."""
    r = rig("eni", layer={"detach_delay_s": 2.0}, detach_timeout="5s")
    r.engine.move(r.group, target=standby(r.world))
    assert r.eni_owner() == standby(r.world)
    detaches = [c for c in r.layer.calls_to("DetachNetworkInterface") if c.error is None]
    assert [c.params.get("Force") for c in detaches] == [False]


def test_stuck_detach_is_forced_when_the_member_being_left_has_failed(rig: RigFactory) -> None:
    """Rule: Force only after detach_timeout and only when the member being left has failed."""
    r = rig("eni", layer={"detach_delay_s": 0.2}, detach_timeout="1s")
    r.layer.stick_detach(r.world.eni_id or "")
    r.ec2.stop_instances(InstanceIds=[r.world.primary])
    r.engine.move(r.group, target=standby(r.world))
    assert r.eni_owner() == standby(r.world)
    forces = [
        c.params.get("Force") for c in r.layer.calls_to("DetachNetworkInterface") if c.error is None
    ]
    assert forces == [False, True]
    (record,) = r.store.history("g")
    assert record.outcome == "succeeded"
    assert any(
        s.detail == f"forced the detach from {r.world.primary} after detach_timeout"
        for s in record.steps
    )


def test_stuck_detach_is_forced_from_a_running_member_with_operator_force(rig: RigFactory) -> None:
    """Rule: the operator's --force allows Force from a running member."""
    r = rig("eni", detach_timeout="1s")
    r.layer.stick_detach(r.world.eni_id or "")
    r.engine.move(r.group, target=standby(r.world), force=True)
    assert r.eni_owner() == standby(r.world)


def test_planned_move_with_a_hanging_detach_stops_and_leaves_the_eni_where_it_was(
    rig: RigFactory,
) -> None:
    """Rule: never Force away from a running, healthy member; stop and tell the operator about --force.

    The message names AWS's own state of the attachment (`detaching`), not a guess.
    """
    r = rig("eni", detach_timeout="1s")
    r.layer.stick_detach(r.world.eni_id or "")
    with pytest.raises(StuckDetachError, match="--force") as caught:
        r.engine.move(r.group, target=standby(r.world))
    att = r.eni()["Attachment"]
    assert att["InstanceId"] == r.world.primary
    assert att["Status"] == "detaching"
    assert "AWS shows the attachment detaching" in str(caught.value)
    assert "stays attached" not in str(caught.value)
    assert [c.params.get("Force") for c in r.layer.calls_to("DetachNetworkInterface")] == [False]
    (record,) = r.store.history("g")
    assert record.outcome == "failed"


@pytest.mark.parametrize("mode", ["eni", "secondary-ip", "eip"])
def test_thirty_percent_throttling_still_completes_the_move(rig: RigFactory, mode: str) -> None:
    """Rule: botocore's retry mode absorbs throttling and 5xx per call; the move still finishes."""
    r = rig(mode, layer={"seed": 7, "eip_follow_delay_s": 0.1})
    r.layer.inject_faults(0.3)
    r.engine.move(r.group, target=standby(r.world))
    r.layer.inject_faults(0.0)
    calls = len(r.layer.calls)
    faulted = sum(1 for c in r.layer.calls if c.error in ("RequestLimitExceeded", "InternalError"))
    print(f"{mode}: {calls} EC2/STS calls, {faulted} answered with an injected fault")
    if mode == "eni":
        assert r.eni_owner() == standby(r.world)
    elif mode == "secondary-ip":
        assert r.ip_holders() == {standby(r.world)}
    else:
        assert r.eip()["InstanceId"] == standby(r.world)
    assert faulted > 0
    assert calls < 80


@pytest.mark.parametrize(
    ("setup", "rule"),
    [
        pytest.param("cross-az", "same AZ only", id="cross-az"),
        pytest.param("terminated", "terminated", id="terminated"),
        pytest.param("index-taken", "is taken by", id="index-taken"),
    ],
)
def test_rule_violations_are_refused_before_any_mutating_call(
    rig: RigFactory, setup: str, rule: str
) -> None:
    """Rule: cross-AZ, terminated target, taken device index: refused before AWS is touched."""
    r = rig("eni", world={"other_az_member": setup == "cross-az"})
    target = r.world.other_az if setup == "cross-az" else standby(r.world)
    assert target is not None
    if setup == "terminated":
        r.ec2.terminate_instances(InstanceIds=[target])
    if setup == "index-taken":
        subnet = r.world.subnet_a
        other = r.ec2.create_network_interface(SubnetId=subnet)["NetworkInterface"][
            "NetworkInterfaceId"
        ]
        r.ec2.attach_network_interface(NetworkInterfaceId=other, InstanceId=target, DeviceIndex=1)
    r.layer.reset_log()
    with pytest.raises(RefusedError, match=rule):
        r.engine.move(r.group, target=target)
    assert r.layer.mutating_calls() == []
    assert r.eni_owner() == r.world.primary


def test_next_candidate_takes_the_eni_when_the_chosen_standby_refuses(rig: RigFactory) -> None:
    """Rule: if attaching to the chosen standby fails, try the next; never leave the ENI detached."""
    r = rig("eni", world={"standbys": 2})
    first, second = r.world.standbys
    # Fill the first standby to its instance type's ENI limit at other indexes: index 1 is free,
    # so only AWS itself (AttachmentLimitExceeded) can refuse, after the detach is done.
    for index in range(2, 8):
        eni = r.ec2.create_network_interface(SubnetId=r.world.subnet_a)["NetworkInterface"]
        try:
            r.ec2.attach_network_interface(
                NetworkInterfaceId=eni["NetworkInterfaceId"], InstanceId=first, DeviceIndex=index
            )
        except r.ec2.exceptions.ClientError:
            break
    r.layer.reset_log()
    result = r.engine.move(r.group, target=first)
    assert result.target == second
    assert r.eni_owner() == second
    (record,) = r.store.history("g")
    assert record.target == second
    assert any(s.kind == "retarget" for s in record.steps)


def test_resumed_move_does_not_force_away_from_a_member_that_recovered(rig: RigFactory) -> None:
    """Rule: Force on resume is judged from AWS now, not trusted from the journal."""
    from failover.core.ports import MoveRecord

    r = rig("eni", detach_timeout="1s")
    r.layer.stick_detach(r.world.eni_id or "")
    attachment = r.eni()["Attachment"]["AttachmentId"]
    # A crashed failover: journaled as Force-allowed (the primary was down then), detach sent.
    r.store.begin_move(
        MoveRecord(
            move_id="crashed1",
            group="g",
            mode="eni",
            resource=r.world.eni_id or "",
            source=r.world.primary,
            target=standby(r.world),
            caller="test",
            reason="primary failed",
            started_at=0.0,
            forced=True,
        )
    )
    r.cloud.detach(attachment, force=False)
    r.layer.reset_log()
    with pytest.raises(StuckDetachError, match="--force"):
        r.engine.resume(r.group)
    assert r.eni()["Attachment"]["InstanceId"] == r.world.primary
    assert not r.layer.calls_to("DetachNetworkInterface")  # no Force from a running primary
    # The refused resume closed its journal entry (the ENI is still the primary's); the
    # operator's rerun with --force is a move that finds the detach pending and Forces it.
    assert r.store.open_moves("g") == []
    r.engine.move(r.group, target=standby(r.world), force=True)
    assert r.eni_owner() == standby(r.world)
    assert [c.params.get("Force") for c in r.layer.calls_to("DetachNetworkInterface")] == [True]
