"""The pure core of a move: which member may take the resource, and the steps to get it there.

No boto3, no clock, no sleep, no logging: a GroupView (what AWS says now) and the
group's settings in, a rule violation, a target or a Plan out. Every step has a
`step_done` predicate over a fresh view, so the engine can re-observe before each
step and skip what is already true: running a half-done move again finishes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from failover.core.model import (
    ATTACHABLE_STATES,
    DEAD_STATES,
    GroupView,
    Instance,
    Mode,
    Plan,
    Step,
    StepKind,
)
from failover.core.routes import (
    member_problem,
    route_step_done,
    route_steps,
    route_violation,
    table_problems,
)

if TYPE_CHECKING:
    from failover.config import Group


# Modes whose resource belongs to one AZ (an ENI, a subnet's IP); eip and route groups span AZs.
ONE_AZ_MODES = frozenset({Mode.ENI, Mode.SECONDARY_IP})


def group_az(view: GroupView) -> str | None:
    """The AZ the group lives in: the ENI's, else the active member's, else the primary's."""
    if view.eni is not None:
        return view.eni.az
    active = view.member(view.active) if view.active else None
    if active is not None and active.az:
        return active.az
    return next((m.az for m in view.members if m.exists), None)


def ip_subnet(view: GroupView) -> str | None:
    """The subnet of the ENI holding the group's secondary IP (the only subnet it can live in)."""
    if view.ip is None:
        return None
    for member in view.members:
        for interface in member.interfaces:
            if view.ip in interface.private_ips and interface.subnet_id:
                return interface.subnet_id
    return None


def _subnet_violation(view: GroupView, target: Instance) -> str | None:
    """A secondary IP can only go to an ENI whose subnet holds it: same AZ is not enough."""
    subnet, theirs = ip_subnet(view), target.primary_subnet_id
    if subnet is None or theirs is None or theirs == subnet:
        return None
    return (
        f"target {target.instance_id}'s eth0 is in subnet {theirs}, and {view.ip} belongs to "
        f"subnet {subnet} (a secondary IP moves only within its subnet)"
    )


def rule_violation(view: GroupView, group: Group, target_id: str) -> str | None:
    """The AWS rule (or failover rule) that forbids moving the resource to `target_id`, or None.

    Checked before any mutating call, because moto (and a careless script) would let
    most of these through and real EC2 would not.
    """
    target = view.member(target_id)
    if target is None:
        return f"{target_id} is not a member of group {group.name}"
    if not target.exists:
        return f"instance {target_id} does not exist"
    if target.state in DEAD_STATES:
        return f"target {target_id} is {target.state}: AWS cannot attach to it"
    if target.state not in ATTACHABLE_STATES:
        return f"target {target_id} is {target.state}"
    az = group_az(view) if view.mode in ONE_AZ_MODES else None
    if az and target.az != az:
        return (
            f"target {target_id} is in {target.az}, the group's resource is in {az} (same AZ only)"
        )
    if view.mode == Mode.ENI:
        return _eni_violation(view, group, target)
    if view.mode == Mode.ROUTE:
        return route_violation(view, group, target)
    if target.primary_eni_id is None:
        return f"target {target_id} has no primary network interface"
    if view.mode == Mode.SECONDARY_IP:
        return _subnet_violation(view, target)
    return None


def _eni_violation(view: GroupView, group: Group, target: Instance) -> str | None:
    eni = view.eni
    if eni is None:
        return f"ENI {group.eni} does not exist"
    if eni.attachment is not None and eni.attachment.device_index == 0:
        return (
            f"{eni.eni_id} is the primary interface (eth0) of {eni.attachment.instance_id}: "
            "device index 0 can never be detached"
        )
    taken_by = target.eni_at(group.device_index)
    if taken_by is not None and taken_by != eni.eni_id:
        return f"device index {group.device_index} on {target.instance_id} is taken by {taken_by}"
    return None


def candidates(view: GroupView, group: Group, exclude: frozenset[str] = frozenset()) -> list[str]:
    """Members that could take the resource now, in preference order: running and rule-clean."""
    return [
        m.instance_id
        for m in view.members
        if m.instance_id != view.active
        and m.instance_id not in exclude
        and m.state == "running"
        and rule_violation(view, group, m.instance_id) is None
    ]


def refusals(view: GroupView, group: Group) -> list[str]:
    """Why each other member cannot take the resource now (not running, or an AWS rule)."""
    reasons = []
    for m in view.members:
        if m.instance_id == view.active:
            continue
        if m.state != "running":
            reasons.append(f"{m.instance_id} is {m.state}")
        elif (violation := rule_violation(view, group, m.instance_id)) is not None:
            reasons.append(f"{m.instance_id}: {violation}")
    return reasons


def expected_eip_target(view: GroupView, group: Group, target_id: str) -> tuple[str, str] | None:
    """(ENI, private IP) the group's Elastic IP must point at once the move is done."""
    target = view.member(target_id)
    if target is None or target.primary_eni_id is None:
        return None
    if view.mode == Mode.SECONDARY_IP and group.ip:
        return target.primary_eni_id, group.ip
    if target.private_ip is None:
        return None
    return target.primary_eni_id, target.private_ip


def step_done(step: Step, view: GroupView, group: Group) -> bool:
    """Whether AWS already shows what `step` is for; pure, so every step is idempotent."""
    target = view.member(step.target)
    att = view.eni.attachment if view.eni else None
    on_target = att is not None and att.instance_id == step.target
    match step.kind:
        case StepKind.DETACH:
            return att is None or on_target or att.status in ("detaching", "detached")
        case StepKind.WAIT_DETACHED:
            return att is None or on_target
        case StepKind.ATTACH:
            return on_target
        case StepKind.WAIT_ATTACHED:
            return on_target and att is not None and att.status == "attached"
        case StepKind.ASSIGN_IP:
            return (
                target is not None
                and group.ip is not None
                and target.holds_ip(group.ip) is not None
            )
        case StepKind.WAIT_IP:
            return len(view.ip_holders) == 1 and view.ip_holders[0][1] == step.target
        case StepKind.REPLACE_ROUTE | StepKind.WAIT_ROUTES:
            return route_step_done(step, view)
        case StepKind.WAIT_EIP_FOLLOWS | StepKind.ASSOCIATE_EIP | StepKind.WAIT_EIP:
            want = expected_eip_target(view, group, step.target)
            address = view.address
            return (
                want is not None
                and address is not None
                and (address.eni_id, address.private_ip) == want
            )
    return False  # pragma: no cover - every StepKind is matched above


def plan_move(view: GroupView, group: Group, target_id: str) -> Plan:
    """The steps that move the group's resource to `target_id`, with those already true skipped."""
    source = view.active
    steps: list[Step] = []
    if view.mode == Mode.ENI:
        att = view.eni.attachment if view.eni else None
        leaving = att.instance_id if att is not None else None
        source = source or leaving
        steps = [
            Step(StepKind.DETACH, group.resource, target_id, source=leaving),
            Step(StepKind.WAIT_DETACHED, group.resource, target_id, source=leaving),
            Step(
                StepKind.ATTACH,
                group.resource,
                target_id,
                source=leaving,
                device_index=group.device_index,
            ),
            Step(StepKind.WAIT_ATTACHED, group.resource, target_id, source=leaving),
        ]
    elif view.mode == Mode.SECONDARY_IP:
        assert group.ip is not None
        steps = [
            Step(StepKind.ASSIGN_IP, group.ip, target_id, source=source),
            Step(StepKind.WAIT_IP, group.ip, target_id, source=source),
        ]
        if group.eip:
            steps += [
                Step(StepKind.WAIT_EIP_FOLLOWS, group.eip, target_id, source=source),
                Step(StepKind.ASSOCIATE_EIP, group.eip, target_id, source=source),
                Step(StepKind.WAIT_EIP, group.eip, target_id, source=source),
            ]
    elif view.mode == Mode.ROUTE:
        steps = route_steps(view, group, target_id, source)
    else:
        assert group.eip is not None
        steps = [
            Step(StepKind.ASSOCIATE_EIP, group.eip, target_id, source=source),
            Step(StepKind.WAIT_EIP, group.eip, target_id, source=source),
        ]
    todo = tuple(s for s in steps if not step_done(s, view, group))
    done = tuple(s for s in steps if step_done(s, view, group))
    return Plan(group=group.name, source=source, target=target_id, steps=todo, skipped=done)


def screened_before_move(group: Group) -> bool:
    """Whether a move of `group` DryRuns its target's calls before its first mutating call, as
    far as the config tells before any read: an ENI's always (the Force-detach memory and a
    detach come first), a secondary IP's whose Elastic IP must follow it, a route's over several
    tables. A move that is one call is its own permission check (Engine.move)."""
    if group.mode is Mode.ENI:
        return True
    if group.mode is Mode.SECONDARY_IP:
        return bool(group.eip)
    return group.mode is Mode.ROUTE and len(group.route_tables) > 1


def absence(view: GroupView, group: Group) -> str | None:
    """What of the group AWS does not know at all (every member, or the floating resource), or None.

    Nothing to judge or move then: the usual cause is a wrong `aws.region` or wrong ids,
    not a failure of the members.
    """
    if view.members and not any(m.exists for m in view.members):
        return f"none of its instances exist ({', '.join(m.instance_id for m in view.members)})"
    if view.mode == Mode.ENI and view.eni is None:
        return f"ENI {group.eni} does not exist"
    if group.eip and view.address is None:
        return f"Elastic IP {group.eip} does not exist"
    return None


def validation_problems(view: GroupView, group: Group) -> list[str]:
    """Everything about a group's AWS setup that would make a failover fail or lose the resource."""
    problems: list[str] = []
    for member in view.members:
        if not member.exists:
            problems.append(f"instance {member.instance_id} does not exist")
        elif member.state in DEAD_STATES:
            problems.append(
                f"instance {member.instance_id} is {member.state}: it can never take the resource; "
                "replace it in the group's members"
            )
    az = group_az(view) if view.mode in ONE_AZ_MODES else None
    for member in view.members:
        if member.exists and az and member.az != az:
            problems.append(
                f"{member.instance_id} is in {member.az}, the group is in {az} (same AZ only)"
            )
    if view.mode == Mode.ENI:
        eni = view.eni
        if eni is None:
            return [*problems, f"ENI {group.eni} does not exist"]
        att = eni.attachment
        if att is not None and att.device_index == 0:
            problems.append(
                f"{eni.eni_id} is eth0 (device index 0) of {att.instance_id}: it can never be detached; "
                "use a secondary ENI"
            )
        if att is not None and att.delete_on_termination:
            problems.append(
                f"{eni.eni_id} has DeleteOnTermination on: it dies with {att.instance_id}; fix with "
                f"`aws ec2 modify-network-interface-attribute --network-interface-id {eni.eni_id} "
                f"--attachment AttachmentId={att.attachment_id},DeleteOnTermination=false`"
            )
        for member in view.members:
            if att is not None and member.instance_id == att.instance_id:
                continue
            taken_by = member.eni_at(group.device_index)
            if member.exists and taken_by is not None and taken_by != eni.eni_id:
                problems.append(
                    f"device index {group.device_index} on standby {member.instance_id} is taken by {taken_by}"
                )
    if view.mode == Mode.ROUTE:
        problems += [
            problem
            for member in view.members
            if member.exists and member.state not in DEAD_STATES
            if (problem := member_problem(member)) is not None
        ]
        problems += table_problems(view, group)
    if view.mode == Mode.SECONDARY_IP and not view.ip_holders:
        problems.append(f"{group.ip} is not assigned to any member's network interface")
    if view.mode == Mode.SECONDARY_IP:
        problems += [
            violation
            for member in view.members
            if member.exists and (violation := _subnet_violation(view, member)) is not None
        ]
    if group.eip and view.address is None:
        problems.append(f"Elastic IP {group.eip} does not exist")
    return problems
