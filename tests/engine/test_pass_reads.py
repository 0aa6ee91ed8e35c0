"""A health pass's reads (Ec2Cloud.observe_pass): state and ownership fresh, the topology held.

Rules: a steady pass sends DescribeInstanceStatus (IncludeAllInstances, so stopped members
are seen) and keyed reads of the floating resources, and no DescribeInstances; a change made
in AWS behind the tool's back shows in the next pass's ownership, and the members' topology
is read again in that same pass; a disrupted AZ still leaves its groups unread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from failover.config import parse
from failover.core.model import UNREAD_STATE, GroupView
from failover.sandbox.strict import Call

from .conftest import REGION, Rig, group_config

RigFactory = Callable[..., Rig]


def _actions(calls: list[Call]) -> list[str]:
    return sorted(c.action for c in calls if c.service == "ec2")


def _fresh(r: Rig, view: GroupView) -> GroupView:
    """The group as a move reads it (everything fresh), stamped like `view`."""
    return replace(r.cloud.observe(r.group, with_status=True), observed_at=view.observed_at)


def _instance_reads(r: Rig) -> list[set[str]]:
    return [set(c.params["InstanceIds"]) for c in r.layer.calls_to("DescribeInstances")]


@pytest.mark.parametrize(
    ("mode", "ownership_read"),
    [
        ("eni", ["DescribeNetworkInterfaces"]),
        ("secondary-ip", ["DescribeAddresses", "DescribeNetworkInterfaces"]),
        ("eip", ["DescribeAddresses"]),
        ("route", ["DescribeRouteTables"]),
    ],
)
def test_a_steady_pass_reads_state_and_ownership_by_id_and_no_topology(
    rig: RigFactory, mode: str, ownership_read: list[str]
) -> None:
    """Rule: after the first pass, a pass sends DescribeInstanceStatus with IncludeAllInstances
    and keyed lookups of the floating resource only; never DescribeInstances."""
    r = rig(mode, world={"standbys": 2})
    first = r.cloud.observe_pass([r.group])
    assert len(r.layer.calls_to("DescribeInstances")) == 1
    r.layer.reset_log()

    view = r.cloud.observe_pass([r.group])["g"]

    assert _actions(r.layer.calls) == sorted(["DescribeInstanceStatus", *ownership_read])
    [status] = r.layer.calls_to("DescribeInstanceStatus")
    assert status.params["IncludeAllInstances"] is True
    assert set(status.params["InstanceIds"]) == {r.world.primary, *r.world.standbys}
    keyed = [c for c in r.layer.calls if c.action != "DescribeInstanceStatus"]
    ids = ("NetworkInterfaceIds", "AllocationIds", "RouteTableIds")
    assert all(any(c.params.get(k) for k in ids) for c in keyed), keyed
    assert view.active == first["g"].active == r.world.primary
    assert view == _fresh(r, view)


def test_a_stopped_member_is_seen_at_once_and_its_topology_read_again(rig: RigFactory) -> None:
    """Rule: state comes from every pass's DescribeInstanceStatus (IncludeAllInstances: a
    stopped instance is listed); a state change re-reads that member's topology, alone."""
    r = rig("eni")
    r.cloud.observe_pass([r.group])
    standby = r.world.standbys[0]
    r.ec2.stop_instances(InstanceIds=[standby])
    r.layer.reset_log()

    view = r.cloud.observe_pass([r.group])["g"]

    member = view.member(standby)
    assert member is not None
    assert member.state == "stopped"
    assert member.primary_eni_id is not None  # the topology is still there
    assert _instance_reads(r) == [{standby}]
    r.layer.reset_log()
    r.cloud.observe_pass([r.group])
    assert _instance_reads(r) == []


def test_an_eni_moved_behind_the_tools_back_is_seen_on_the_next_pass(rig: RigFactory) -> None:
    """Rule: ownership is read fresh every pass: an ENI moved by someone else shows on its
    new holder, and the group's members are read again in the same pass, so the view's
    interfaces agree with the attachment (no pass judges on a stale topology)."""
    r = rig("eni")
    assert r.world.eni_id is not None
    r.cloud.observe_pass([r.group])
    standby = r.world.standbys[0]
    attachment = r.eni()["Attachment"]["AttachmentId"]
    r.ec2.detach_network_interface(AttachmentId=attachment, Force=True)
    r.ec2.attach_network_interface(
        NetworkInterfaceId=r.world.eni_id, InstanceId=standby, DeviceIndex=1
    )
    assert r.eni_owner() == standby
    r.layer.reset_log()

    view = r.cloud.observe_pass([r.group])["g"]

    assert view.active == standby
    holder, old = view.member(standby), view.member(r.world.primary)
    assert holder is not None
    assert old is not None
    assert holder.eni_at(1) == r.world.eni_id
    assert old.eni_at(1) is None
    assert _instance_reads(r) == [{r.world.primary, standby}]
    assert view == _fresh(r, view)


def test_a_secondary_ip_moved_behind_the_tools_back_is_seen_on_the_next_pass(
    rig: RigFactory, tmp_path: Path
) -> None:
    """Rule: a secondary-ip group's holder is read from its members' ENIs (by id) every pass:
    an IP reassigned by someone else shows on its new holder at once, with no new read of
    the members' topology."""
    r = rig("secondary-ip")
    doc = group_config(r.world, "secondary-ip")
    doc.pop("eip")  # the IP alone: an Elastic IP's own association would also hint a change
    group = parse(
        {"aws": {"region": REGION}, "state": {"path": str(tmp_path / "s.db")}, "groups": [doc]},
        "test",
    ).groups[0]
    r.cloud.observe_pass([group])
    standby = r.world.standbys[0]
    before = r.cloud.observe_pass([group])["g"].member(standby)
    assert before is not None
    assert before.primary_eni_id is not None
    r.ec2.assign_private_ip_addresses(
        NetworkInterfaceId=before.primary_eni_id,
        PrivateIpAddresses=[r.world.ip],
        AllowReassignment=True,
    )
    assert r.ip_holders() == {standby}
    r.layer.reset_log()

    view = r.cloud.observe_pass([group])["g"]

    assert view.active == standby
    assert view.ip_holders == ((before.primary_eni_id, standby),)
    assert _instance_reads(r) == []
    fresh = r.cloud.observe(group, with_status=True)
    assert view == replace(fresh, observed_at=view.observed_at)


def test_a_disrupted_az_leaves_its_groups_unread_though_their_topology_is_held(
    rig: RigFactory,
) -> None:
    """Rule (issue 11): a held topology never hides a disrupted AZ: its members' state
    cannot be read, so a group whose owner is read off its members (secondary-ip) is unread,
    and when no group could be read the pass raises (blind)."""
    r = rig("secondary-ip", world={"other_az_member": True})
    other = r.world.other_az
    assert other is not None
    r.cloud.observe_pass([r.group])
    r.layer.disrupt_az(r.world.az_a)
    r.layer.reset_log()

    with pytest.raises(Exception, match="Unavailable"):
        r.cloud.observe_pass([r.group])

    # The other AZ's member was still read, per AZ.
    batches = [set(c.params["InstanceIds"]) for c in r.layer.calls_to("DescribeInstanceStatus")]
    assert {other} in batches
    assert {c.error for c in r.layer.calls_to("DescribeInstanceStatus")} == {None, "Unavailable"}


def test_an_eip_group_across_a_disrupted_az_is_judged_with_the_lost_member_unknown(
    rig: RigFactory,
) -> None:
    """Rule (AZ loss): an EIP's association is regional, so a pass still judges an eip group
    with a member in a disrupted AZ: that member's state is unknown (never running), its
    interfaces as held; the other AZ's member is read."""
    r = rig("eip", world={"other_az_member": True})
    other = r.world.other_az
    assert other is not None
    r.cloud.observe_pass([r.group])
    r.layer.disrupt_az(r.world.az_a)

    view = r.cloud.observe_pass([r.group])[r.group.name]

    assert view.unread == ""
    primary = view.member(r.world.primary)
    assert primary is not None
    assert primary.state == UNREAD_STATE
    assert primary.primary_eni_id is not None
    assert view.active == r.world.primary
    read = view.member(other)
    assert read is not None
    assert read.state == "running"
