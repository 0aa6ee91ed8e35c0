"""The planner by value: one row per AWS rule it checks before any mutating call."""

from __future__ import annotations

import pytest

from failover.config import Group, Member, Policy
from failover.core.model import (
    Address,
    Attachment,
    Eni,
    GroupView,
    Instance,
    Interface,
    Mode,
    StepKind,
)
from failover.core.planner import (
    candidates,
    plan_move,
    rule_violation,
    step_done,
    validation_problems,
)

A, B, C = "i-0aaaaaaaaaaaaaaaa", "i-0bbbbbbbbbbbbbbbb", "i-0cccccccccccccccc"
ENI = "eni-0f0f0f0f0f0f0f0f0"


def group(mode: Mode = Mode.ENI, **kw: object) -> Group:
    defaults: dict[str, object] = {"eni": ENI} if mode is Mode.ENI else {"ip": "10.0.1.50"}
    if mode is Mode.EIP:
        defaults = {"eip": "eipalloc-0123456789abcdef0"}
    defaults.update(kw)
    return Group(
        name="db",
        mode=mode,
        members=tuple(Member(instance=i) for i in (A, B, C)),
        checks=(),
        policy=Policy(),
        **defaults,  # type: ignore[arg-type]
    )


def inst(
    iid: str, *, state: str = "running", az: str = "us-east-1a", extra: tuple[Interface, ...] = ()
) -> Instance:
    eth0 = Interface(f"eni-{iid[2:]}", 0, (f"10.0.1.{ord(iid[3])}",))
    return Instance(iid, state, az, private_ip=eth0.private_ips[0], interfaces=(eth0, *extra))


def eni_view(
    *members: Instance,
    on: str | None = A,
    index: int = 1,
    status: str = "attached",
    dot: bool = False,
) -> GroupView:
    att = Attachment("eni-attach-1", on, index, status, dot) if on else None
    eni = Eni(ENI, "us-east-1a", "in-use" if att else "available", att)
    members = members or (inst(A, extra=(Interface(ENI, 1),)), inst(B), inst(C))
    return GroupView("db", Mode.ENI, members, eni=eni)


@pytest.mark.parametrize(
    ("view", "target", "rule"),
    [
        pytest.param(
            eni_view(inst(A), inst(B, az="us-east-1b"), inst(C)), B, "same AZ only", id="cross-az"
        ),
        pytest.param(
            eni_view(inst(A), inst(B, state="terminated"), inst(C)),
            B,
            "terminated",
            id="terminated",
        ),
        pytest.param(
            eni_view(inst(A), inst(B, state="shutting-down"), inst(C)),
            B,
            "shutting-down",
            id="shutting-down",
        ),
        pytest.param(
            eni_view(inst(A), inst(B, state="missing"), inst(C)), B, "does not exist", id="missing"
        ),
        pytest.param(
            eni_view(inst(A), inst(B, extra=(Interface("eni-0999999999999999a", 1),)), inst(C)),
            B,
            "device index 1 on i-0bbbbbbbbbbbbbbbb is taken by eni-0999999999999999a",
            id="index-taken",
        ),
        pytest.param(eni_view(on=A, index=0), B, "device index 0 can never be detached", id="eth0"),
        pytest.param(eni_view(), "i-0dddddddddddddddd", "not a member", id="not-member"),
    ],
)
def test_rule_violation_refuses_what_aws_would(view: GroupView, target: str, rule: str) -> None:
    """Rule: cross-AZ, dead, missing, taken index, eth0 and non-members are refused up front."""
    violation = rule_violation(view, group(), target)
    assert violation is not None
    assert rule in violation


def test_warm_attach_to_a_stopped_standby_is_legal() -> None:
    """Rule: attach to a stopped instance is allowed (warm attach)."""
    assert rule_violation(eni_view(inst(A), inst(B, state="stopped"), inst(C)), group(), B) is None


def test_candidates_are_running_rule_clean_members_in_preference_order() -> None:
    """Rule: the target is the first other member that is running, same-AZ, index free."""
    view = eni_view(inst(A), inst(B, state="stopped"), inst(C))
    assert candidates(view, group()) == [C]


def test_eni_plan_is_detach_wait_attach_wait() -> None:
    plan = plan_move(eni_view(), group(), B)
    assert [s.kind for s in plan.steps] == [
        StepKind.DETACH,
        StepKind.WAIT_DETACHED,
        StepKind.ATTACH,
        StepKind.WAIT_ATTACHED,
    ]
    assert plan.source == A
    assert plan.steps[2].device_index == 1


def test_half_done_eni_move_skips_what_aws_already_shows() -> None:
    """Rule: re-running a move after a crash right after detach does not detach again."""
    plan = plan_move(eni_view(on=None), group(), B)
    assert [s.kind for s in plan.steps] == [StepKind.ATTACH, StepKind.WAIT_ATTACHED]
    assert {s.kind for s in plan.skipped} == {StepKind.DETACH, StepKind.WAIT_DETACHED}


def test_detaching_counts_as_detach_done_but_not_as_available() -> None:
    view = eni_view(status="detaching")
    steps = plan_move(eni_view(), group(), B).steps
    assert step_done(steps[0], view, group())
    assert not step_done(steps[1], view, group())


def test_secondary_ip_plan_and_done_only_when_gone_from_old_owner() -> None:
    """Rule: the IP counts as moved only when it is on the target AND gone from the primary."""
    g = group(Mode.SECONDARY_IP, eip="eipalloc-0123456789abcdef0")
    a = inst(A)
    a = Instance(
        A,
        "running",
        "us-east-1a",
        a.private_ip,
        (Interface(a.interfaces[0].eni_id, 0, (*a.interfaces[0].private_ips, "10.0.1.50")),),
    )
    view = GroupView("db", Mode.SECONDARY_IP, (a, inst(B), inst(C)), ip="10.0.1.50")
    plan = plan_move(view, g, B)
    assert [s.kind for s in plan.steps] == [
        StepKind.ASSIGN_IP,
        StepKind.WAIT_IP,
        StepKind.WAIT_EIP_FOLLOWS,
        StepKind.ASSOCIATE_EIP,
        StepKind.WAIT_EIP,
    ]
    b = inst(B)
    b_with_ip = Instance(
        B,
        "running",
        "us-east-1a",
        b.private_ip,
        (Interface(b.interfaces[0].eni_id, 0, (*b.interfaces[0].private_ips, "10.0.1.50")),),
    )
    on_both = GroupView("db", Mode.SECONDARY_IP, (a, b_with_ip, inst(C)), ip="10.0.1.50")
    assert step_done(plan.steps[0], on_both, g)
    assert not step_done(plan.steps[1], on_both, g)
    moved = GroupView("db", Mode.SECONDARY_IP, (inst(A), b_with_ip, inst(C)), ip="10.0.1.50")
    assert step_done(plan.steps[1], moved, g)
    assert moved.active == B


def test_eip_plan_targets_the_standbys_primary_ip() -> None:
    g = group(Mode.EIP)
    b = inst(B)
    on_a = Address(
        "eipalloc-0123456789abcdef0",
        "203.0.113.1",
        "eipassoc-1",
        inst(A).primary_eni_id,
        inst(A).private_ip,
        A,
    )
    view = GroupView("db", Mode.EIP, (inst(A), b, inst(C)), address=on_a)
    plan = plan_move(view, g, B)
    assert [s.kind for s in plan.steps] == [StepKind.ASSOCIATE_EIP, StepKind.WAIT_EIP]
    on_b = Address(
        on_a.allocation_id, on_a.public_ip, "eipassoc-2", b.primary_eni_id, b.private_ip, B
    )
    assert step_done(plan.steps[0], GroupView("db", Mode.EIP, view.members, address=on_b), g)


def test_validate_flags_delete_on_termination_and_says_how_to_fix() -> None:
    """Rule: a floating ENI with DeleteOnTermination on would die with a terminated primary."""
    problems = validation_problems(eni_view(dot=True), group())
    assert any(
        "DeleteOnTermination" in p and "modify-network-interface-attribute" in p for p in problems
    )


def test_validate_flags_taken_index_on_every_standby() -> None:
    view = eni_view(
        inst(A, extra=(Interface(ENI, 1),)),
        inst(B),
        inst(C, extra=(Interface("eni-0999999999999999a", 1),)),
    )
    assert validation_problems(view, group()) == [
        f"device index 1 on standby {C} is taken by eni-0999999999999999a"
    ]


def _on_subnet(iid: str, subnet: str, *, ip: str | None = None) -> Instance:
    ips = (f"10.0.1.{ord(iid[3])}", *((ip,) if ip else ()))
    eth0 = Interface(f"eni-{iid[2:]}", 0, ips, subnet_id=subnet)
    return Instance(iid, "running", "us-east-1a", private_ip=ips[0], interfaces=(eth0,))


def test_a_secondary_ip_moves_only_to_an_eth0_in_its_subnet() -> None:
    """Rule: AssignPrivateIpAddresses needs the IP inside the target ENI's subnet; same AZ is not enough."""
    g = group(Mode.SECONDARY_IP)
    view = GroupView(
        "db",
        Mode.SECONDARY_IP,
        (
            _on_subnet(A, "subnet-a", ip="10.0.1.50"),
            _on_subnet(B, "subnet-a"),
            _on_subnet(C, "subnet-c"),
        ),
        ip="10.0.1.50",
    )
    assert rule_violation(view, g, B) is None
    violation = rule_violation(view, g, C)
    assert violation is not None
    assert "subnet-c" in violation
    assert "subnet-a" in violation
    assert candidates(view, g) == [B]
    assert [p for p in validation_problems(view, g) if C in p]
