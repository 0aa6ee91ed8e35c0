"""Route tables for the EC2 adapter: DescribeRouteTables by ids, ReplaceRoute, and their values.

Ids named directly are a keyed lookup, so no filter or page size is needed; an unknown id
fails the whole call (`InvalidRouteTableID.NotFound`, naming the ids), so the tables EC2
does know are asked again without them and the others come back as `exists=False`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from failover.aws.errors import error_code, translate
from failover.core.model import Route, RouteTable

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

    from failover.config import Group

NOT_FOUND = "InvalidRouteTableID.NotFound"
# Route table ids per DescribeRouteTables call.
ID_BATCH = 100
_TABLE_ID = re.compile(r"rtb-[0-9a-f]+")


def describe_tables(ec2: EC2Client, table_ids: Sequence[str]) -> dict[str, Mapping[str, Any]]:
    """The route tables EC2 knows of among `table_ids`, as it reports them, by id."""
    found: dict[str, Mapping[str, Any]] = {}
    unique = list(dict.fromkeys(table_ids))
    for start in range(0, len(unique), ID_BATCH):
        chunk = unique[start : start + ID_BATCH]
        while chunk:
            try:
                found.update((t["RouteTableId"], t) for t in _pages(ec2, chunk))
                break
            except ClientError as exc:
                unknown = set(_TABLE_ID.findall(str(exc))) & set(chunk)
                if error_code(exc) != NOT_FOUND or not unknown:
                    raise translate(exc, "DescribeRouteTables", ",".join(chunk)) from None
                chunk = [t for t in chunk if t not in unknown]
            except BotoCoreError as exc:
                raise translate(exc, "DescribeRouteTables", ",".join(chunk)) from None
    return found


def _pages(ec2: EC2Client, table_ids: list[str]) -> list[Mapping[str, Any]]:
    tables: list[Mapping[str, Any]] = []
    params: dict[str, Any] = {"RouteTableIds": table_ids}
    while True:
        reply = ec2.describe_route_tables(**params)
        tables.extend(reply.get("RouteTables", []))
        token = reply.get("NextToken")
        if not token:
            return tables
        params["NextToken"] = token


def group_tables(group: Group, tables: Mapping[str, Mapping[str, Any]]) -> tuple[RouteTable, ...]:
    """The group's listed tables in its order, each read for its CIDR; unknown ones `exists=False`."""
    return tuple(table_view(t, tables.get(t), group.cidr or "") for t in group.route_tables)


def table_view(table_id: str, raw: Mapping[str, Any] | None, cidr: str) -> RouteTable:
    """One listed table as the planner sees it: its VPC, `local` CIDRs and the route for `cidr`."""
    if raw is None:
        return RouteTable(table_id, exists=False)
    routes = raw.get("Routes", [])
    local = tuple(
        str(r["DestinationCidrBlock"])
        for r in routes
        if r.get("GatewayId") == "local" and r.get("DestinationCidrBlock")
    )
    overlay = next((r for r in routes if r.get("DestinationCidrBlock") == cidr), None)
    route = (
        Route(eni_id=overlay.get("NetworkInterfaceId"), state=str(overlay.get("State", "")))
        if overlay is not None
        else None
    )
    return RouteTable(table_id, True, str(raw.get("VpcId", "")), local, route)


def replace_route(ec2: EC2Client, table_id: str, cidr: str, eni_id: str) -> None:
    """ReplaceRoute of `cidr` in one table to an ENI (no idempotency token: callers re-read)."""
    try:
        ec2.replace_route(
            RouteTableId=table_id, DestinationCidrBlock=cidr, NetworkInterfaceId=eni_id
        )
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, "ReplaceRoute", f"{table_id}: {cidr} -> {eni_id}") from None
