"""EC2's route-table rules over moto: ReplaceRoute's targets, `blackhole` routes, source/dest check.

moto already answers ReplaceRoute on an unknown table (`InvalidRouteTableID.NotFound`) and on a
destination the table has no route for (`InvalidParameterValue`, as AWS does since moto PR 6425);
the sandbox's self-tests pin both. What moto gets wrong is fixed here:

- a route's State is always `active` in moto; AWS shows `blackhole` when the target is not
  available (the EC2 API Reference's example: a terminated NAT instance), so a route to an ENI
  that is gone, detached, or on an instance that is not running is a `blackhole` here;
- moto routes to an ENI of another VPC; AWS refuses with `InvalidParameterValue` ("... belong to
  different networks", the words AWS uses for a gateway of another VPC);
- an instance's SourceDestCheck *is* its primary ENI's attribute on AWS (ModifyInstanceAttribute
  and ModifyNetworkInterfaceAttribute change the same flag); moto keeps two unrelated copies;
- a route made with InstanceId (a NAT instance, or CloudFormation's AWS::EC2::Route) targets
  the instance's network interface, which DescribeRouteTables shows as NetworkInterfaceId
  next to InstanceId; moto shows no interface.
"""

from __future__ import annotations

from typing import Any

from ._eips import error

# Instance states in which an ENI-targeted route forwards packets.
_FORWARDING_STATES = ("running",)


def route_state(route: Any) -> str:
    """What DescribeRouteTables shows as a route's State: `blackhole` when its target is down."""
    eni = route.interface
    if eni is not None:
        if eni.id not in eni.ec2_backend.enis or eni.instance is None:
            return "blackhole"
        return "active" if eni.instance.state in _FORWARDING_STATES else "blackhole"
    instance = route.instance
    if instance is not None and instance.state not in _FORWARDING_STATES:
        return "blackhole"
    return "active"


def _flag(value: Any) -> bool:
    # The query protocol's booleans may reach moto as "true"/"false" strings.
    return value is True or str(value).lower() == "true"


def route_eni_id(route: Any) -> str | None:
    """The NetworkInterfaceId DescribeRouteTables shows: the target ENI, or the instance's eth0."""
    if route.interface is not None:
        return str(route.interface.id)
    primary = route.instance.nics.get(0) if route.instance is not None else None
    return str(primary.id) if primary is not None else None


class RouteRules:
    """ReplaceRoute's target checks and one source/destination check per instance, as on EC2."""

    def _replace_route(self, backend: Any, params: dict[str, Any], now: float) -> None:
        # moto answers an unknown table and a missing route itself, with AWS's codes.
        table = backend.get_route_table(params.get("RouteTableId"))
        eni_id = params.get("NetworkInterfaceId")
        if not eni_id:
            return
        eni = backend.get_network_interface(eni_id)
        if eni.vpc_id != table.vpc_id:
            raise error(
                "InvalidParameterValue",
                f"route table {table.id} and network interface {eni.id} belong to different "
                "networks",
            )

    def _instance_source_dest_check(self, backend: Any, params: dict[str, Any], now: float) -> None:
        check = params.get("SourceDestCheck")
        if not isinstance(check, dict) or "Value" not in check:
            return
        flag = _flag(check["Value"])
        instance = backend.get_instance(params.get("InstanceId"))
        instance.source_dest_check = flag
        primary = instance.nics.get(0)
        if primary is not None:
            primary.source_dest_check = flag

    def sync_source_dest_check(self, backend: Any, params: dict[str, Any]) -> None:
        """After ModifyNetworkInterfaceAttribute: a primary ENI's flag is its instance's flag."""
        if "SourceDestCheck" not in params:
            return
        check = params["SourceDestCheck"]
        flag = _flag(check.get("Value") if isinstance(check, dict) else check)
        eni = backend.get_network_interface(params.get("NetworkInterfaceId"))
        eni.source_dest_check = flag
        if eni.instance is not None and eni.instance.nics.get(0) is eni:
            eni.instance.source_dest_check = flag
