"""The planner by value for `route` groups and groups across AZs: one row per rule, no AWS."""

from __future__ import annotations

from dataclasses import replace

import pytest

from failover.config import Group, Member, Policy
from failover.core.decide import Facts, decide
from failover.core.model import (
    UNREAD_STATE,
    Address,
    GroupView,
    Instance,
    Interface,
    Mode,
    Route,
    RouteTable,
    StepKind,
)
from failover.core.planner import (
    candidates,
    plan_move,
    refusals,
    rule_violation,
    step_done,
    validation_problems,
)
from failover.core.ports import MemberHealth

A, B, C = "i-0aaaaaaaaaaaaaaaa", "i-0bbbbbbbbbbbbbbbb", "i-0cccccccccccccccc"
T1, T2 = "rtb-0111111111111111a", "rtb-0222222222222222b"
CIDR, VPC = "198.18.0.10/32", "vpc-0123456789abcdef0"


def eth0(iid: str) -> str:
    return f"eni-{iid[2:]}"


def route_group(**kw: object) -> Group:
    fields: dict[str, object] = {"cidr": CIDR, "route_tables": (T1, T2), **kw}
    return Group(
        name="sap",
        mode=Mode.ROUTE,
        members=tuple(Member(instance=i) for i in (A, B, C)),
        checks=(),
        policy=Policy(),
        **fields,  # type: ignore[arg-type]
    )


def member(
    iid: str,
    *,
    az: str = "us-east-1a",
    state: str = "running",
    check: bool | None = False,
    vpc: str = VPC,
) -> Instance:
    nic = Interface(eth0(iid), 0, (f"10.0.0.{ord(iid[3])}",), source_dest_check=check)
    return Instance(iid, state, az, private_ip=nic.private_ips[0], interfaces=(nic,), vpc_id=vpc)


def table(table_id: str, to: str | None, *, state: str = "active", **kw: object) -> RouteTable:
    route = Route(eth0(to), state) if to else None
    fields: dict[str, object] = {"vpc_id": VPC, "local_cidrs": ("10.0.0.0/16",), **kw}
    return RouteTable(table_id, route=route, **fields)  # type: ignore[arg-type]


def view(*members: Instance, tables: tuple[RouteTable, ...] = (), to: str | None = A) -> GroupView:
    members = members or (member(A), member(B, az="us-east-1b"), member(C, az="us-east-1c"))
    tables = tables or (table(T1, to), table(T2, to))
    return GroupView("sap", Mode.ROUTE, members, route_tables=tables)


# ---- who is active ---------------------------------------------------------------------------


def test_active_member_is_the_one_whose_eth0_every_table_targets() -> None:
    """Rule: the active member is whoever AWS routes the overlay to: the target of the tables."""
    assert view(to=A).active == A
    assert view(to=B).active == B


def test_tables_that_disagree_are_a_half_done_move_with_no_active_member() -> None:
    """Rule: tables pointing at different members are a half-done move: nobody owns the address."""
    split = view(tables=(table(T1, B), table(T2, A)))
    assert split.active is None


def test_a_half_done_move_is_finished_at_once_toward_the_best_healthy_member() -> None:
    """Rule: tables that disagree are decided like an unowned resource, and said as they are."""
    split = view(tables=(table(T1, B), table(T2, A)))
    health = {i: MemberHealth(i, healthy=True, successes=2) for i in (A, B, C)}
    decision = decide(split, route_group(), health, Facts(now=0.0))
    assert (decision.action, decision.target) == ("move", A)
    assert decision.reason.startswith(
        f"{CIDR} is routed to {A}, {B} by different tables (a half-done move); moving it to {A}"
    )


def test_a_route_to_a_non_member_eni_names_that_eni() -> None:
    foreign = RouteTable(T1, vpc_id=VPC, route=Route("eni-0999999999999999f", "active"))
    assert view(tables=(foreign,)).active == "eni-0999999999999999f"


def test_a_blackhole_route_to_a_vanished_eni_is_owned_by_nobody() -> None:
    """Rule: a terminated member's eth0 is gone; its blackhole routes deliver to nobody."""
    gone = Route("eni-0999999999999999f", "blackhole")
    tables = (RouteTable(T1, vpc_id=VPC, route=gone), RouteTable(T2, vpc_id=VPC, route=gone))
    assert view(tables=tables).active is None
    assert view(tables=(table(T1, A, state="blackhole"),)).active == A


# ---- the rules ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("routed", "target", "rule"),
    [
        pytest.param(
            view(member(A), member(B, check=True), member(C)),
            B,
            f"source/destination check is on for {B}",
            id="source-dest-check-on",
        ),
        pytest.param(
            view(member(A), member(B, check=None), member(C)),
            B,
            "source/destination check is not reported",
            id="source-dest-check-unknown",
        ),
        pytest.param(
            view(member(A), member(B, state="stopped"), member(C)),
            B,
            "stopped: a route to it would be a blackhole",
            id="stopped",
        ),
        pytest.param(
            view(tables=(table(T1, A), RouteTable(T2, exists=False))),
            B,
            f"route table {T2} does not exist",
            id="table-missing",
        ),
        pytest.param(
            view(tables=(table(T1, A), table(T2, A, vpc_id="vpc-0fedcba9876543210"))),
            B,
            f"route table {T2} is in vpc-0fedcba9876543210",
            id="table-in-another-vpc",
        ),
        pytest.param(
            view(tables=(table(T1, A), table(T2, None))),
            B,
            f"route table {T2} has no route for {CIDR}",
            id="no-route",
        ),
        pytest.param(
            view(tables=(table(T1, A, local_cidrs=("198.18.0.0/16",)), table(T2, A))),
            B,
            "overlaps vpc-0123456789abcdef0's CIDR block 198.18.0.0/16",
            id="cidr-in-vpc",
        ),
        pytest.param(
            view(member(A), member(B, vpc="vpc-0fedcba9876543210"), member(C)),
            B,
            "several VPCs",
            id="members-in-two-vpcs",
        ),
    ],
)
def test_route_rule_violation_refuses_before_any_call(
    routed: GroupView, target: str, rule: str
) -> None:
    """Rule: source/dest check off, tables exist in the VPC with a route, cidr outside the VPC."""
    violation = rule_violation(routed, route_group(), target)
    assert violation is not None
    assert rule in violation


def test_route_groups_and_eip_groups_span_azs_while_eni_groups_do_not() -> None:
    """Rule: eip and route members may be in any AZ; eni and secondary-ip keep the one-AZ rule."""
    assert rule_violation(view(), route_group(), B) is None  # us-east-1b, the group starts in 1a
    eip_members = (member(A), member(B, az="us-east-1b"))
    address = Address("eipalloc-0123456789abcdef0", "203.0.113.1", "eipassoc-1", eth0(A), None, A)
    eip_view = GroupView("web", Mode.EIP, eip_members, address=address)
    eip_group = replace(route_group(), mode=Mode.EIP, eip=address.allocation_id, cidr=None)
    assert rule_violation(eip_view, eip_group, B) is None
    assert validation_problems(eip_view, eip_group) == []
    ip_view = GroupView("web", Mode.SECONDARY_IP, eip_members, ip="10.0.0.97")
    ip_group = replace(eip_group, mode=Mode.SECONDARY_IP, ip="10.0.0.97", eip=None)
    assert "same AZ only" in (rule_violation(ip_view, ip_group, B) or "")


def test_a_member_breaking_a_rule_is_not_a_candidate() -> None:
    """Rule: a member with the source/destination check on is skipped; the next one is chosen."""
    routed = view(member(A), member(B, check=True), member(C, az="us-east-1c"))
    assert candidates(routed, route_group()) == [C]
    (why,) = refusals(view(member(A), member(B, check=True)), route_group())
    assert why.startswith(f"{B}: the source/destination check is on")
    assert "--no-source-dest-check" in why


def test_validate_names_each_member_with_the_check_on_and_the_command_that_fixes_it() -> None:
    """Rule: `validate` names the member and `aws ec2 modify-instance-attribute --no-source-dest-check`."""
    routed = view(member(A), member(B, check=True), member(C, check=True))
    problems = validation_problems(routed, route_group())
    assert [p for p in problems if "source/destination" in p] == [
        f"the source/destination check is on for {i} ({eth0(i)}): AWS drops the packets it "
        f"forwards; fix with `aws ec2 modify-instance-attribute --instance-id {i} "
        "--no-source-dest-check`"
        for i in (B, C)
    ]


def test_validate_reports_every_table_problem() -> None:
    tables = (RouteTable(T1, exists=False), table(T2, None))
    problems = validation_problems(view(tables=tables), route_group())
    assert problems[0] == f"route table {T1} does not exist"
    assert problems[1].startswith(f"route table {T2} has no route for {CIDR}")
    assert "aws ec2 create-route" in problems[1]


# ---- the plan -------------------------------------------------------------------------------


def test_route_plan_is_one_replace_route_per_table_then_the_confirmation() -> None:
    """Rule: a move is one idempotent ReplaceRoute step per table, in order, then a confirmation."""
    plan = plan_move(view(to=A), route_group(), B)
    assert [(s.kind, s.resource) for s in plan.steps] == [
        (StepKind.REPLACE_ROUTE, T1),
        (StepKind.REPLACE_ROUTE, T2),
        (StepKind.WAIT_ROUTES, CIDR),
    ]
    assert plan.source == A


def test_half_done_route_move_touches_only_the_lagging_table() -> None:
    """Rule: a table already pointing at the target is skipped; only the lagging one is replaced."""
    split = view(tables=(table(T1, B), table(T2, A)))
    plan = plan_move(split, route_group(), B)
    assert [(s.kind, s.resource) for s in plan.steps] == [
        (StepKind.REPLACE_ROUTE, T2),
        (StepKind.WAIT_ROUTES, CIDR),
    ]
    assert [s.resource for s in plan.skipped] == [T1]


def test_routes_are_confirmed_only_when_every_table_targets_the_eni_and_is_active() -> None:
    """Rule: DescribeRouteTables must show every route on the target's eth0 and `active`."""
    plan = plan_move(view(to=A), route_group(), B)
    confirm = plan.steps[-1]
    assert not step_done(confirm, view(tables=(table(T1, B), table(T2, A))), route_group())
    blackhole = view(tables=(table(T1, B), table(T2, B, state="blackhole")))
    assert not step_done(confirm, blackhole, route_group())
    assert step_done(confirm, view(to=B), route_group())
    assert plan_move(view(to=B), route_group(), B).steps == ()


# ---- a lost AZ ---------------------------------------------------------------------------------


def test_a_lost_azs_member_is_judged_through_the_regional_route_tables() -> None:
    """Rule (AZ loss): route tables are regional, so a group whose active member's AZ cannot
    be read is judged when the route's ENI is known to be that member's; the unread member is
    never a candidate, and a dead one is left for a standby elsewhere."""
    lost = member(A, state=UNREAD_STATE)
    seen = view(lost, member(B, az="us-east-1b"), member(C, az="us-east-1c"))
    assert seen.judgeable_without([A])
    assert seen.active == A
    assert A not in candidates(seen, route_group())
    health = {
        A: MemberHealth(A, healthy=False, failures=3, reason="tcp refused"),
        B: MemberHealth(B, healthy=True, successes=2),
        C: MemberHealth(C, healthy=True, successes=2),
    }
    decision = decide(seen, route_group(), health, Facts(now=0.0))
    assert (decision.action, decision.target) == ("move", B)


def test_a_route_to_an_eni_no_read_member_has_is_not_judged_while_an_az_is_lost() -> None:
    """Rule (AZ loss): a route to an ENI that no read member has may be the lost member's:
    that group is not judged (it is reported unknown), where it would read as a non-member's."""
    unknown_nics = Instance(A, UNREAD_STATE, "us-east-1a")
    seen = view(unknown_nics, member(B, az="us-east-1b"), member(C, az="us-east-1c"))
    assert not seen.judgeable_without([A])
    assert view(to=B).judgeable_without([A])


def test_secondary_ip_and_eni_groups_are_never_judged_with_a_member_unread() -> None:
    """Rule (AZ loss): an ENI's or a secondary IP's owner is read off the members themselves."""
    for mode in (Mode.ENI, Mode.SECONDARY_IP):
        assert not GroupView("g", mode, (member(A),)).judgeable_without([A])
        assert GroupView("g", mode, (member(A),)).judgeable_without([])
    assert GroupView(
        "g", Mode.EIP, (member(A),), address=Address("eipalloc-1", "192.0.2.1")
    ).judgeable_without([A])
