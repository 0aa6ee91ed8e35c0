"""`route` moves through the real engine against moto behind the strict layer.

Each test reads DescribeRouteTables back and counts the ReplaceRoute calls the layer logged.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from failover.core.errors import MoveFailedError, RefusedError
from failover.sandbox.strict import Call

from .conftest import Rig

RigFactory = Callable[..., Rig]


def eth0(r: Rig, instance_id: str) -> str:
    reply = r.ec2.describe_instances(InstanceIds=[instance_id])
    nics = reply["Reservations"][0]["Instances"][0]["NetworkInterfaces"]
    return str(next(n for n in nics if n["Attachment"]["DeviceIndex"] == 0)["NetworkInterfaceId"])


def routes(r: Rig) -> list[tuple[str | None, str]]:
    """(target ENI, State) of the overlay route in each of the group's tables, in order."""
    out = []
    for table_id in r.world.route_tables:
        table = r.ec2.describe_route_tables(RouteTableIds=[table_id])["RouteTables"][0]
        route = next(x for x in table["Routes"] if x.get("DestinationCidrBlock") == r.world.cidr)
        out.append((route.get("NetworkInterfaceId"), route["State"]))
    return out


def replace_routes(r: Rig) -> list[Call]:
    return r.layer.calls_to("ReplaceRoute", dry_run=False)


def test_route_move_points_every_table_at_the_standby_in_another_az(rig: RigFactory) -> None:
    """Rule: one ReplaceRoute per table, in the configured order; each route then targets the
    standby's eth0 (in AZ b) and is `active`; nothing else is changed."""
    r = rig("route", world={"cross_az": True})
    standby = r.world.standbys[0]
    result = r.engine.move(r.group, target=standby)
    assert result.outcome == "succeeded"
    assert routes(r) == [(eth0(r, standby), "active")] * 2
    assert [c.params["RouteTableId"] for c in replace_routes(r)] == list(r.world.route_tables)
    assert [c.action for c in r.layer.mutating_calls()] == ["ReplaceRoute", "ReplaceRoute"]
    assert [s.kind for s in result.steps if s.phase == "done"] == [
        "replace-route",
        "replace-route",
        "wait-routes",
    ]


def test_route_move_to_the_active_member_is_nothing_to_do(rig: RigFactory) -> None:
    r = rig("route", world={"cross_az": True})
    result = r.engine.move(r.group, target=r.world.primary)
    assert result.outcome == "nothing-to-do"
    assert r.layer.mutating_calls() == []


def test_lost_replace_route_reply_is_retried_and_the_move_succeeds(rig: RigFactory) -> None:
    """Rule: ReplaceRoute has no idempotency token. AWS applied it and the reply was lost
    (InternalError): botocore's retry meets a table that already points there, and succeeds."""
    r = rig("route", world={"cross_az": True})
    standby = r.world.standbys[0]
    r.layer.lose_replies("ReplaceRoute")
    result = r.engine.move(r.group, target=standby)
    assert result.outcome == "succeeded"
    assert result.target == standby
    assert routes(r) == [(eth0(r, standby), "active")] * 2
    first, second = r.world.route_tables
    assert [(c.params["RouteTableId"], c.error) for c in replace_routes(r)] == [
        (first, "InternalError"),
        (first, None),
        (second, None),
    ]


def test_a_refused_replace_route_is_judged_by_rereading_the_table(rig: RigFactory) -> None:
    """Rule: after ReplaceRoute is refused, the table is read again: a route that vanished in
    between is the rule `no route for the cidr`, one line naming the table, no other call."""
    r = rig("route", world={"cross_az": True})
    first, second = r.world.route_tables
    standby = r.world.standbys[0]
    deleted: list[str] = []

    def delete_route_after_the_read(call: Call) -> None:
        # After the first ReplaceRoute and the read before the second: another hand deletes it.
        if call.action == "DescribeRouteTables" and replace_routes(r) and not deleted:
            deleted.append(second)
            r.ec2.delete_route(RouteTableId=second, DestinationCidrBlock=r.world.cidr)

    r.layer.on_call = delete_route_after_the_read
    try:
        with pytest.raises(MoveFailedError, match=f"route table {second} has no route"):
            r.engine.move(r.group, target=standby)
    finally:
        r.layer.on_call = None
    assert [(c.params["RouteTableId"], c.error) for c in replace_routes(r)] == [
        (first, None),
        (second, "InvalidParameterValue"),
    ]
    # The table that was moved stays moved: a refusal never moves the route back.
    table = r.ec2.describe_route_tables(RouteTableIds=[first])["RouteTables"][0]
    overlay = next(x for x in table["Routes"] if x.get("DestinationCidrBlock") == r.world.cidr)
    assert overlay["NetworkInterfaceId"] == eth0(r, standby)


def test_move_to_a_member_with_the_source_dest_check_on_is_refused_before_any_call(
    rig: RigFactory,
) -> None:
    """Rule: a member whose eth0 checks source/destination cannot forward the overlay address."""
    r = rig("route", world={"cross_az": True})
    standby = r.world.standbys[0]
    r.ec2.modify_instance_attribute(InstanceId=standby, SourceDestCheck={"Value": True})
    r.layer.reset_log()
    with pytest.raises(RefusedError, match=f"source/destination check is on for {standby}"):
        r.engine.move(r.group, target=standby)
    assert r.layer.mutating_calls() == []
    assert routes(r) == [(eth0(r, r.world.primary), "active")] * 2


@pytest.mark.parametrize("lost", [1, 2])
def test_eip_group_moves_across_azs(rig: RigFactory, lost: int) -> None:
    """Rule: an Elastic IP can go to a member in any AZ of the Region (and a lost reply is harmless)."""
    r = rig("eip", world={"cross_az": True})
    standby = r.world.standbys[0]
    r.layer.lose_replies("AssociateAddress", lost)
    result = r.engine.move(r.group, target=standby)
    assert result.outcome == "succeeded"
    assert r.eip()["InstanceId"] == standby
    assert r.eip()["NetworkInterfaceId"] == eth0(r, standby)
