"""Route tables in the strict layer: ReplaceRoute's refusals, `blackhole`, source/dest check, lost replies.

Each behaviour is shown twice where moto departs from EC2: plain moto lets it through, the
strict layer answers as EC2 does. Where moto already agrees with EC2, the test pins it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from failover.sandbox.strict import StrictLayer
from failover.sandbox.world import World, build_world

from ..clocks import FakeClock
from .conftest import client
from .test_strict_layer import eni_of, error_of, eth0_of, instance_of

Make = Callable[..., StrictLayer]


def route_of(ec2: Any, table_id: str, cidr: str) -> dict[str, Any]:
    """The route for `cidr` in one table, as DescribeRouteTables shows it."""
    table = ec2.describe_route_tables(RouteTableIds=[table_id])["RouteTables"][0]
    return next(r for r in table["Routes"] if r.get("DestinationCidrBlock") == cidr)  # type: ignore[no-any-return]


def route_world(ec2: Any) -> tuple[World, str, str]:
    """A route group across two AZs: (world, its cidr, the standby's eth0)."""
    world = build_world(ec2, mode="route", cross_az=True)
    assert world.cidr
    return world, world.cidr, eth0_of(ec2, world.standbys[0])


def replace(ec2: Any, table_id: str, cidr: str, eni_id: str, **extra: Any) -> Any:
    """ReplaceRoute of `cidr` in one table to an ENI."""
    return ec2.replace_route(
        RouteTableId=table_id, DestinationCidrBlock=cidr, NetworkInterfaceId=eni_id, **extra
    )


# ---- the world ------------------------------------------------------------------------------


def test_route_world_routes_the_overlay_to_the_primary_in_two_tables(
    strict: Make, ec2: Any
) -> None:
    """build_world(route): two tables route the /32 to the primary's eth0; standbys in AZ b."""
    strict()
    world, cidr, _ = route_world(ec2)
    assert len(world.route_tables) == 2
    for table_id in world.route_tables:
        route = route_of(ec2, table_id, cidr)
        assert route["NetworkInterfaceId"] == eth0_of(ec2, world.primary)
        assert route["State"] == "active"
    assert instance_of(ec2, world.primary)["Placement"]["AvailabilityZone"] == world.az_a
    assert instance_of(ec2, world.standbys[0])["Placement"]["AvailabilityZone"] == world.az_b
    for member in (world.primary, *world.standbys):
        assert eni_of(ec2, eth0_of(ec2, member))["SourceDestCheck"] is False


# ---- ReplaceRoute's refusals ----------------------------------------------------------------


@pytest.mark.parametrize("layered", [False, True], ids=["plain-moto", "strict"])
def test_replace_route_on_a_missing_route_is_invalid_parameter_value(
    strict: Make, ec2: Any, layered: bool
) -> None:
    """Rule: ReplaceRoute never creates a route. AWS (and moto since PR 6425) say InvalidParameterValue."""
    if layered:
        strict()
    world, _, standby_eth0 = route_world(ec2)
    table_id = world.route_tables[0]
    with pytest.raises(ClientError) as caught:
        replace(ec2, table_id, "198.51.100.7/32", standby_eth0)
    reply = caught.value.response
    assert (reply["Error"]["Code"], reply["ResponseMetadata"]["HTTPStatusCode"]) == (
        "InvalidParameterValue",
        400,
    )
    assert reply["Error"]["Message"] == (
        "There is no route defined for '198.51.100.7/32' in the route table. "
        "Use CreateRoute instead."
    )
    table = ec2.describe_route_tables(RouteTableIds=[table_id])["RouteTables"][0]
    assert "198.51.100.7/32" not in {r.get("DestinationCidrBlock") for r in table["Routes"]}


@pytest.mark.parametrize("layered", [False, True], ids=["plain-moto", "strict"])
def test_replace_route_on_an_unknown_table_is_not_found(
    strict: Make, ec2: Any, layered: bool
) -> None:
    """Rule: an unknown table is InvalidRouteTableID.NotFound (moto agrees; pinned)."""
    if layered:
        strict()
    world, cidr, standby_eth0 = route_world(ec2)
    code, status = error_of(
        ec2.replace_route,
        RouteTableId="rtb-0123456789abcdef0",
        DestinationCidrBlock=cidr,
        NetworkInterfaceId=standby_eth0,
    )
    assert (code, status) == ("InvalidRouteTableID.NotFound", 400)
    for table_id in world.route_tables:
        assert route_of(ec2, table_id, cidr)["NetworkInterfaceId"] == eth0_of(ec2, world.primary)


def test_replace_route_to_an_eni_of_another_vpc_is_refused(strict: Make, ec2: Any) -> None:
    """Rule: a route's ENI must be in the table's VPC. Plain moto routes there; EC2 refuses."""
    world, cidr, _ = route_world(ec2)
    stranger = build_world(ec2, mode="eip", standbys=0)
    foreign_eth0 = eth0_of(ec2, stranger.primary)
    table_id = world.route_tables[0]
    replace(ec2, table_id, cidr, foreign_eth0)  # plain moto
    assert route_of(ec2, table_id, cidr)["NetworkInterfaceId"] == foreign_eth0
    replace(ec2, table_id, cidr, eth0_of(ec2, world.primary))

    strict()
    with pytest.raises(ClientError) as caught:
        replace(ec2, table_id, cidr, foreign_eth0)
    assert caught.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert "belong to different networks" in caught.value.response["Error"]["Message"]
    assert route_of(ec2, table_id, cidr)["NetworkInterfaceId"] == eth0_of(ec2, world.primary)


def test_replace_route_to_the_current_target_is_accepted(strict: Make, ec2: Any) -> None:
    """ReplaceRoute to the ENI the route already targets succeeds and changes nothing."""
    strict()
    world, cidr, _ = route_world(ec2)
    primary_eth0 = eth0_of(ec2, world.primary)
    replace(ec2, world.route_tables[0], cidr, primary_eth0)
    route = route_of(ec2, world.route_tables[0], cidr)
    assert (route["NetworkInterfaceId"], route["State"]) == (primary_eth0, "active")


# ---- blackhole --------------------------------------------------------------------------------


@pytest.mark.parametrize("layered", [False, True], ids=["plain-moto", "strict"])
def test_route_to_a_stopped_or_terminated_instance_is_blackhole(
    strict: Make, ec2: Any, layered: bool
) -> None:
    """AWS: a route whose target is not available is `blackhole`. Plain moto keeps `active`."""
    if layered:
        strict()
    world, cidr, _ = route_world(ec2)
    table_id = world.route_tables[0]
    down = "blackhole" if layered else "active"
    ec2.stop_instances(InstanceIds=[world.primary])
    assert route_of(ec2, table_id, cidr)["State"] == down
    ec2.start_instances(InstanceIds=[world.primary])
    assert route_of(ec2, table_id, cidr)["State"] == "active"
    ec2.terminate_instances(InstanceIds=[world.primary])
    route = route_of(ec2, table_id, cidr)
    assert route["State"] == down
    # The route still names its dead target: only ReplaceRoute moves it.
    assert route["NetworkInterfaceId"].startswith("eni-")


def test_route_to_a_detached_eni_is_blackhole(strict: Make, ec2: Any) -> None:
    """A route to an ENI attached to no instance forwards nowhere: `blackhole`."""
    strict()
    world, cidr, _ = route_world(ec2)
    spare = ec2.create_network_interface(SubnetId=world.subnet_a, Groups=[world.sg_id])
    spare_id = spare["NetworkInterface"]["NetworkInterfaceId"]
    replace(ec2, world.route_tables[0], cidr, spare_id)
    route = route_of(ec2, world.route_tables[0], cidr)
    assert (route["NetworkInterfaceId"], route["State"]) == (spare_id, "blackhole")


@pytest.mark.parametrize("layered", [False, True], ids=["plain-moto", "strict"])
def test_a_route_to_an_instance_shows_its_eth0(strict: Make, ec2: Any, layered: bool) -> None:
    """AWS: a route made with InstanceId targets the instance's interface and shows it as
    NetworkInterfaceId; plain moto shows InstanceId alone."""
    if layered:
        strict()
    world, cidr, _ = route_world(ec2)
    table_id = world.route_tables[0]
    ec2.replace_route(RouteTableId=table_id, DestinationCidrBlock=cidr, InstanceId=world.primary)
    route = route_of(ec2, table_id, cidr)
    assert route["InstanceId"] == world.primary
    shown = eth0_of(ec2, world.primary) if layered else None
    assert route.get("NetworkInterfaceId") == shown


# ---- the source/destination check -------------------------------------------------------------


@pytest.mark.parametrize("layered", [False, True], ids=["plain-moto", "strict"])
def test_instance_source_dest_check_is_its_primary_enis(
    strict: Make, ec2: Any, layered: bool
) -> None:
    """AWS: an instance's SourceDestCheck is its eth0's. Plain moto keeps two unrelated flags."""
    if layered:
        strict()
    world = build_world(ec2, mode="eni")
    eth0 = eth0_of(ec2, world.primary)
    assert eni_of(ec2, eth0)["SourceDestCheck"] is True
    # What `validate` tells the operator to run: aws ec2 modify-instance-attribute --no-source-dest-check
    ec2.modify_instance_attribute(InstanceId=world.primary, SourceDestCheck={"Value": False})
    assert instance_of(ec2, world.primary)["SourceDestCheck"] is False
    seen = eni_of(ec2, eth0)["SourceDestCheck"]
    nic = next(
        n
        for n in instance_of(ec2, world.primary)["NetworkInterfaces"]
        if n["NetworkInterfaceId"] == eth0
    )
    assert (seen, nic["SourceDestCheck"]) == ((False, False) if layered else (True, True))

    ec2.modify_network_interface_attribute(NetworkInterfaceId=eth0, SourceDestCheck={"Value": True})
    assert eni_of(ec2, eth0)["SourceDestCheck"] is True
    assert instance_of(ec2, world.primary)["SourceDestCheck"] is layered


def test_secondary_eni_source_dest_check_is_its_own(strict: Make, ec2: Any) -> None:
    """Only eth0 speaks for the instance: a secondary ENI's flag leaves the instance's alone."""
    strict()
    world = build_world(ec2, mode="eni")
    assert world.eni_id
    ec2.modify_network_interface_attribute(
        NetworkInterfaceId=world.eni_id, SourceDestCheck={"Value": True}
    )
    ec2.modify_instance_attribute(InstanceId=world.primary, SourceDestCheck={"Value": False})
    assert eni_of(ec2, world.eni_id)["SourceDestCheck"] is True
    assert eni_of(ec2, eth0_of(ec2, world.primary))["SourceDestCheck"] is False


# ---- a lost reply -----------------------------------------------------------------------------


def test_lost_replace_route_reply_was_applied_and_the_retry_succeeds(
    strict: Make, ec2: Any
) -> None:
    """AWS applies ReplaceRoute, the reply is lost (InternalError 500): the route moved all the same.

    botocore retries it; ReplaceRoute to the route's current target is accepted, so the retry
    succeeds. Plain moto never loses a reply.
    """
    world, cidr, standby_eth0 = route_world(ec2)
    first, second = world.route_tables
    replace(ec2, first, cidr, standby_eth0)  # plain moto: answered
    replace(ec2, first, cidr, eth0_of(ec2, world.primary))

    layer = strict()
    layer.lose_replies("ReplaceRoute")
    code, status = error_of(
        ec2.replace_route,
        RouteTableId=first,
        DestinationCidrBlock=cidr,
        NetworkInterfaceId=standby_eth0,
    )
    assert (code, status) == ("InternalError", 500)
    assert route_of(ec2, first, cidr)["NetworkInterfaceId"] == standby_eth0

    retrying = client("ec2", config=Config(retries={"total_max_attempts": 2, "mode": "standard"}))
    layer.lose_replies("ReplaceRoute")
    layer.reset_log()
    replace(retrying, second, cidr, standby_eth0)
    assert [c.error for c in layer.calls_to("ReplaceRoute")] == ["InternalError", None]
    assert route_of(ec2, second, cidr)["NetworkInterfaceId"] == standby_eth0
    assert route_of(ec2, second, cidr)["State"] == "active"


# ---- throttling -------------------------------------------------------------------------------


def test_replace_route_has_its_own_token_bucket(strict: Make, ec2: Any) -> None:
    """EC2 meters ReplaceRoute in its own bucket (50 burst, 5/s); plain moto never throttles.

    Spending it leaves the attach bucket full, and spending the attach bucket leaves it alone.
    """
    world, cidr, standby_eth0 = route_world(ec2)
    table_id = world.route_tables[0]

    def dry_replace() -> str:
        return error_of(
            ec2.replace_route,
            RouteTableId=table_id,
            DestinationCidrBlock=cidr,
            NetworkInterfaceId=standby_eth0,
            DryRun=True,
        )[0]

    primary_eth0 = eth0_of(ec2, world.primary)
    for _ in range(60):  # plain moto: never throttled (it ignores DryRun here, so no DryRun)
        replace(ec2, table_id, cidr, primary_eth0)

    clock = FakeClock()
    strict(token_buckets=True, clock=clock)
    answers = [dry_replace() for _ in range(55)]
    assert answers == ["DryRunOperation"] * 50 + ["RequestLimitExceeded"] * 5
    attach = error_of(
        ec2.attach_network_interface,
        NetworkInterfaceId=standby_eth0,
        InstanceId=world.primary,
        DeviceIndex=3,
        DryRun=True,
    )
    assert attach[0] == "DryRunOperation"
    clock.advance(0.2)  # one token back
    assert [dry_replace() for _ in range(2)] == ["DryRunOperation", "RequestLimitExceeded"]
