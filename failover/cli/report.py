"""What the commands print: plans, status and history, as text for people and JSON for tools."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from failover.core.durations import when
from failover.core.model import GroupView, Plan
from failover.core.ports import GroupState, MemberHealth, MoveRecord


def plan_text(
    view: GroupView, plan: Plan, resource: str, open_moves: Sequence[MoveRecord] = ()
) -> str:
    """The plan shown before a move asks for confirmation (and by --dry-run)."""
    lines = []
    for record in open_moves:
        lines.append(
            f"first, finish move {record.move_id} ({record.source} -> {record.target}) "
            f"left unfinished at {when(record.started_at)}"
        )
    lines.append(
        f"group {plan.group}: move {resource} from {plan.source or 'nobody'} to {plan.target}"
    )
    target = view.member(plan.target)
    if target is not None:
        lines.append(f"  target {target.instance_id}: {target.state}, {target.az}")
    for number, step in enumerate(plan.steps, 1):
        lines.append(f"  {number}. {step.describe()}")
    for step in plan.skipped:
        lines.append(f"  -  {step.describe()} (already true)")
    return "\n".join(lines)


def group_state(view: GroupView, stored: GroupState) -> str:
    """ok, held, degraded, unowned (nobody has the resource) or failed (its owner is down)."""
    if stored.held:
        return "held"
    if view.active is None:
        return "unowned"
    active = view.member(view.active)
    if active is None or active.failed_in_ec2:
        return "failed"
    return stored.status if stored.status in ("degraded",) else "ok"


def status_json(
    view: GroupView,
    resource: str,
    stored: GroupState,
    health: Mapping[str, MemberHealth],
    last: MoveRecord | None,
) -> dict[str, Any]:
    """One group of `status --json`, in the shape DESIGN.md promises."""
    members = []
    for member in view.members:
        known = health.get(member.instance_id)
        healthy: bool | None
        if member.failed_in_ec2:
            healthy, reason = (
                False,
                f"EC2: {member.state}"
                + (", status checks impaired" if member.status_ok is False else ""),
            )
        elif known is not None:
            healthy, reason = (
                known.healthy,
                known.reason or ("healthy" if known.healthy else "not healthy yet"),
            )
        else:
            healthy, reason = None, f"EC2: {member.state}; no probe results yet"
        members.append(
            {
                "instance": member.instance_id,
                "healthy": healthy,
                "reason": reason,
                "state": member.state,
                "az": member.az,
            }
        )
    shown: dict[str, Any] = {
        "name": view.group,
        "mode": str(view.mode),
        "resource": resource,
        "active": view.active,
        "state": group_state(view, stored),
        "held": {"by": stored.held_by or "flap-limit", "reason": stored.held_reason}
        if stored.held
        else None,
        "members": members,
        "last_failover": move_json(last) if last else None,
    }
    if view.route_tables:
        # Which member each table routes the overlay to: tables that disagree are a half-done move.
        shown["routes"] = [
            {
                "table": t.table_id,
                "to": view.route_owner(t),
                "state": t.route.state if t.route else ("no route" if t.exists else "missing"),
            }
            for t in view.route_tables
        ]
    return shown


def status_text(groups: Sequence[Mapping[str, Any]]) -> str:
    """`status` for people: a block per group."""
    lines = []
    for g in groups:
        lines.append(
            f"{g['name']:<20} {g['mode']:<13} {g['resource']:<26} active={g['active'] or '-'}  {g['state']}"
        )
        for m in g["members"]:
            mark = {True: "healthy", False: "DOWN", None: "unknown"}[m["healthy"]]
            star = "*" if m["instance"] == g["active"] else " "
            lines.append(
                f"  {star} {m['instance']:<21} {m['az'] or '-':<15} {mark:<8} {m['reason']}"
            )
        for route in g.get("routes", []):
            lines.append(
                f"    route in {route['table']}: to {route['to'] or '-'} ({route['state']})"
            )
        if held := g.get("held"):
            by = "an operator" if held["by"] == "operator" else "the flap limit"
            lines.append(
                f"    held by {by}: {held['reason']} (`failover release {g['name']}` ends it)"
            )
        last = g["last_failover"]
        if last:
            lines.append(
                f"    last failover {last['started_at']}: {last['from']} -> {last['to']} {last['outcome']}"
            )
    return "\n".join(lines)


def move_json(record: MoveRecord) -> dict[str, Any]:
    """One move of `history --json`."""
    return {
        "move_id": record.move_id,
        "group": record.group,
        "mode": record.mode,
        "resource": record.resource,
        "from": record.source,
        "to": record.target,
        "caller": record.caller,
        "driver": record.driver or None,
        "os_user": record.os_user,
        "reason": record.reason,
        "started_at": when(record.started_at),
        "finished_at": when(record.finished_at),
        "outcome": record.outcome,
        "forced": record.forced,
        "detail": record.detail,
        "steps": [
            {
                "step": s.kind,
                "description": s.description,
                "phase": s.phase,
                "at": when(s.at),
                "elapsed_s": round(s.elapsed_s, 3),
                "detail": s.detail,
            }
            for s in record.steps
        ],
    }


def history_text(records: Sequence[MoveRecord]) -> str:
    """`history` for people: one line a move, newest first."""
    if not records:
        return "no moves recorded"
    return "\n".join(
        f"{when(r.started_at)}  {r.group:<16} {r.outcome:<11} {r.source or '-'} -> {r.target}  "
        f"by {_who(r)}  ({r.reason})"
        for r in records
    )


def _who(record: MoveRecord) -> str:
    """The AWS caller, what drove the move and, for a person, the OS user."""
    extra = [part for part in (record.driver, record.os_user and f"user {record.os_user}") if part]
    return record.caller + (f" ({', '.join(extra)})" if extra else "")
