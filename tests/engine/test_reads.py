"""How the EC2 adapter reads: ids named, unknown ids dropped by AWS's own list, per AZ.

Rules (EC2 API reference): an id EC2 does not know fails the whole describe, and the error
names the missing ids; DescribeInstanceStatus takes at most 100 ids a call; DescribeInstances
fails for ids in a disrupted AZ, or for none.
"""

from __future__ import annotations

from collections.abc import Callable

from .conftest import Rig

RigFactory = Callable[..., Rig]
UNKNOWN = "i-0123456789abcdef0"


def test_one_unknown_id_costs_one_more_call_not_one_per_id(rig: RigFactory) -> None:
    """Rule: a status batch with an unknown id is asked again without it (AWS names it),
    never split into one call per id; the unknown one comes back `missing`."""
    r = rig("eni", world={"standbys": 3})
    members = [r.world.primary, *r.world.standbys]
    r.layer.reset_log()
    status, failed = r.cloud.instance_status([*members, UNKNOWN])
    assert failed == {}
    assert status[UNKNOWN] == ("missing", None, False)
    assert {status[i][0] for i in members} == {"running"}
    assert len(r.layer.calls_to("DescribeInstanceStatus")) == 2
    r.layer.reset_log()
    found, failed = r.cloud.describe_members([*members, UNKNOWN])
    assert failed == {}
    assert found[UNKNOWN].state == "missing"
    assert [c.error for c in r.layer.calls_to("DescribeInstances")] == [
        "InvalidInstanceID.NotFound",
        None,
    ]


def test_members_are_read_per_az_once_their_az_is_known(rig: RigFactory) -> None:
    """Rule: after the first read, instances are asked per AZ by id, so a disrupted AZ fails
    only its own batch: the other AZ's members are read, the disrupted ones reported."""
    r = rig("eip", world={"other_az_member": True})
    a_members = [r.world.primary, *r.world.standbys]
    other = r.world.other_az
    assert other is not None
    r.cloud.describe_members([*a_members, other])  # learns the AZs
    r.layer.disrupt_az(r.world.az_a)
    r.layer.reset_log()
    found, failed = r.cloud.describe_members([*a_members, other])
    assert set(failed) == set(a_members)
    assert {e.code for e in failed.values()} == {"Unavailable"}
    assert found[other].state == "running"
    batches = {tuple(c.params["InstanceIds"]) for c in r.layer.calls_to("DescribeInstances")}
    assert batches == {tuple(a_members), (other,)}


def test_a_first_read_that_fails_learns_the_azs_from_the_network_interfaces(
    rig: RigFactory,
) -> None:
    """Rule: members never read before are asked together; if an AZ fails that batch, their
    AZs come from DescribeNetworkInterfaces (attachment.instance-id narrows it) and the
    healthy AZ is read on its own."""
    r = rig("eip", world={"other_az_member": True})
    other = r.world.other_az
    assert other is not None
    fresh = type(r.cloud)(r.ec2)  # a new process: no AZ known yet
    r.layer.disrupt_az(r.world.az_a)
    r.layer.reset_log()
    found, failed = fresh.describe_members([r.world.primary, other])
    assert set(failed) == {r.world.primary}
    assert found[other].state == "running"
    [discovery] = r.layer.calls_to("DescribeNetworkInterfaces")
    assert [f["Name"] for f in discovery.params["Filters"]] == ["attachment.instance-id"]
