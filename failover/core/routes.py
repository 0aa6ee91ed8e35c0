"""The pure rules of `route` groups: where an overlay route may point, and the steps that move it.

A route group floats an overlay address (a CIDR outside the VPC, usually a /32) by pointing
its route in every listed table at the active member's eth0. Members may sit in any AZ of
the VPC, so the group survives the loss of one. What AWS requires, checked before any call:

- the member's eth0 has its source/destination check off, else AWS drops the packets it
  receives for an address that is not its own (and the replies it sends from it);
- every table exists, is in the members' VPC and already holds a route for the CIDR
  (ReplaceRoute never creates one: AWS answers InvalidParameterValue);
- the CIDR lies outside the VPC's CIDR blocks (a table's `local` routes), where the VPC
  would deliver it locally instead;
- the target is running: a route to a stopped or terminated instance is a `blackhole`.

A move replaces the route table by table, in the configured order, each step skipped when the
table already points at the target; tables that disagree are a half-done move, finished by
touching only the tables that lag.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from failover.core.model import GroupView, Instance, RouteTable, Step, StepKind

if TYPE_CHECKING:
    from failover.config import Group


def _overlaps(cidr: str, local: str) -> bool:
    try:
        return ipaddress.ip_network(cidr).overlaps(ipaddress.ip_network(local))
    except ValueError:  # an IPv6 local route, or a value EC2 never sends
        return False


def table_problems(view: GroupView, group: Group) -> list[str]:
    """What about the listed tables (or the members' VPC) would make every move of the group fail."""
    problems: list[str] = []
    vpcs = sorted({m.vpc_id for m in view.members if m.exists and m.vpc_id})
    if len(vpcs) > 1:
        problems.append(f"the members are in several VPCs ({', '.join(vpcs)}): a route is per VPC")
    cidr = group.cidr or ""
    for table in view.route_tables:
        problem = _table_problem(table, cidr, vpcs)
        if problem is not None:
            problems.append(problem)
    return problems


def _table_problem(table: RouteTable, cidr: str, vpcs: list[str]) -> str | None:
    if not table.exists:
        return f"route table {table.table_id} does not exist"
    if vpcs and table.vpc_id not in vpcs:
        return (
            f"route table {table.table_id} is in {table.vpc_id}, the members in {', '.join(vpcs)}"
        )
    if table.route is None:
        return (
            f"route table {table.table_id} has no route for {cidr} (ReplaceRoute cannot create "
            f"one): add it with `aws ec2 create-route --route-table-id {table.table_id} "
            f"--destination-cidr-block {cidr} --network-interface-id ENI_OF_THE_ACTIVE_MEMBER`"
        )
    for local in table.local_cidrs:
        if _overlaps(cidr, local):
            return (
                f"{cidr} overlaps {table.vpc_id}'s CIDR block {local} (in {table.table_id}): "
                "an overlay address must lie outside the VPC"
            )
    return None


def member_problem(member: Instance) -> str | None:
    """Why no overlay route may point at `member`'s eth0 (its source/destination check), or None."""
    eth0 = member.primary_eni_id
    if eth0 is None:
        return f"{member.instance_id} has no primary network interface"
    check = member.source_dest_check
    if check is False:
        return None
    state = "on" if check else "not reported by EC2"
    return (
        f"the source/destination check is {state} for {member.instance_id} ({eth0}): AWS drops "
        f"the packets it forwards; fix with `aws ec2 modify-instance-attribute --instance-id "
        f"{member.instance_id} --no-source-dest-check`"
    )


def route_violation(view: GroupView, group: Group, target: Instance) -> str | None:
    """The rule that forbids pointing the group's routes at `target`, or None."""
    if target.state != "running":
        return f"target {target.instance_id} is {target.state}: a route to it would be a blackhole"
    if (problem := member_problem(target)) is not None:
        return problem
    problems = table_problems(view, group)
    return problems[0] if problems else None


def route_steps(view: GroupView, group: Group, target_id: str, source: str | None) -> list[Step]:
    """One ReplaceRoute per listed table, in the configured order, then the confirmation."""
    assert group.cidr is not None
    steps = [
        Step(StepKind.REPLACE_ROUTE, table_id, target_id, source=source)
        for table_id in group.route_tables
    ]
    return [*steps, Step(StepKind.WAIT_ROUTES, group.cidr, target_id, source=source)]


def route_step_done(step: Step, view: GroupView) -> bool:
    """REPLACE_ROUTE: the table targets the target's eth0. WAIT_ROUTES: every table does, `active`."""
    target = view.member(step.target)
    eth0 = target.primary_eni_id if target is not None else None
    if eth0 is None or not view.route_tables:
        return False
    if step.kind is StepKind.REPLACE_ROUTE:
        table = next((t for t in view.route_tables if t.table_id == step.resource), None)
        return table is not None and table.route is not None and table.route.eni_id == eth0
    return all(
        t.route is not None and t.route.eni_id == eth0 and t.route.state == "active"
        for t in view.route_tables
    )
