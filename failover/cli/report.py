"""What the commands print: plans, status and history, as text for people and JSON for tools."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from failover.core.durations import when
from failover.core.model import GroupView, Instance, Plan
from failover.core.ports import GroupState, MemberHealth, MoveRecord

if TYPE_CHECKING:
    from failover.config import Group


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


# Group states, worst first: the first that applies is the group's; the first four exit 1.
_TROUBLE = ("unowned", "failed", "down", "degraded")


def group_state(view: GroupView, stored: GroupState, active_verdict: str | None) -> str:
    """unowned (nobody has the resource), failed (EC2 says its owner is down), down (its
    owner failed `fall` probes), degraded (the last pass found no healthy standby), held,
    or ok: the first that applies."""
    if view.active is None:
        return "unowned"
    active = view.member(view.active)
    if active is None or active.failed_in_ec2:
        return "failed"
    if active_verdict == "down":
        return "down"
    if stored.status == "degraded":
        return "degraded"
    if stored.held:
        return "held"
    return "ok"


def troubled(groups: Sequence[Mapping[str, Any]]) -> bool:
    """Whether any group is unowned, failed, down or degraded (`status` then exits 1)."""
    return any(g["state"] in _TROUBLE for g in groups)


def member_verdict(
    member: Instance, known: MemberHealth | None, rise: int, fall: int
) -> tuple[str, str, bool | None]:
    """(verdict, reason, healthy) of one member, as `status` shows it.

    verdict: healthy, failing (healthy, but failing: n/fall), rising (passing, not yet
    `rise` passes), down (EC2 says so, or `fall` failed probes), unknown (never probed).
    """
    if member.failed_in_ec2:
        checks = ", status checks impaired" if member.status_ok is False else ""
        return "down", f"EC2: {member.state}{checks}", False
    if known is None:
        return "unknown", f"EC2: {member.state}; no probe results yet", None
    reason = known.reason or ("all checks passed" if known.healthy else "no verdict yet")
    if known.healthy:
        return ("failing" if known.failures else "healthy"), reason, True
    if known.failures >= fall:
        return "down", reason, False
    return "rising", reason, False


def verdict_text(member: Mapping[str, Any]) -> str:
    """The HEALTH column: `healthy`, `not yet healthy (1/2)`, `failing (1/3)`, `DOWN`, `unknown`."""
    verdict = member["verdict"]
    if verdict == "rising":
        return f"not yet healthy ({member['passes']}/{member['rise']})"
    if verdict == "failing":
        return f"failing ({member['failures']}/{member['fall']})"
    return "DOWN" if verdict == "down" else verdict


def status_json(
    view: GroupView,
    group: Group,
    stored: GroupState,
    health: Mapping[str, MemberHealth],
    last: MoveRecord | None,
    now: float,
) -> dict[str, Any]:
    """One group of `status --json`, in the shape the README's schema documents."""
    policy = group.policy
    members = []
    verdicts = {}
    for member in view.members:
        known = health.get(member.instance_id)
        verdict, reason, healthy = member_verdict(member, known, policy.rise, policy.fall)
        verdicts[member.instance_id] = verdict
        probed_at = known.probed_at if known is not None and known.probed_at > 0 else None
        members.append(
            {
                "instance": member.instance_id,
                "healthy": healthy,
                "verdict": verdict,
                "reason": reason,
                "state": member.state,
                "az": member.az or None,
                "passes": known.successes if known else 0,
                "failures": known.failures if known else 0,
                "rise": policy.rise,
                "fall": policy.fall,
                "last_probe": iso(probed_at),
                "last_probe_age_s": None
                if probed_at is None
                else round(max(0.0, now - probed_at), 3),
            }
        )
    shown: dict[str, Any] = {
        "name": view.group,
        "mode": str(view.mode),
        "resource": group.resource,
        "active": view.active,
        "state": group_state(view, stored, verdicts.get(view.active or "")),
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


_GROUP_COLUMNS = ("GROUP", "MODE", "RESOURCE", "ACTIVE", "STATE")
_MEMBER_COLUMNS = ("", "MEMBER", "AZ", "EC2", "HEALTH", "PROBED", "REASON")


def status_text(groups: Sequence[Mapping[str, Any]]) -> str:
    """`status` for people: a table of groups, and under each its members with their health."""
    rows = [
        (g["name"], g["mode"], g["resource"], g["active"] or "-", _state_text(g)) for g in groups
    ]
    lines = _table([_GROUP_COLUMNS, *rows])
    out = [lines[0]]
    for g, line in zip(groups, lines[1:], strict=True):
        out.append(line)
        members = [
            (
                "*" if m["instance"] == g["active"] else " ",
                m["instance"],
                m["az"] or "-",
                m["state"],
                verdict_text(m),
                "never" if m["last_probe_age_s"] is None else f"{age(m['last_probe_age_s'])} ago",
                m["reason"],
            )
            for m in g["members"]
        ]
        out += ["  " + row for row in _table([_MEMBER_COLUMNS, *members])]
        for route in g.get("routes", []):
            out.append(f"    route in {route['table']}: to {route['to'] or '-'} ({route['state']})")
        if held := g.get("held"):
            by = "an operator" if held["by"] == "operator" else "the flap limit"
            out.append(
                f"    held by {by}: {held['reason']} (`failover release {g['name']}` ends it)"
            )
        last = g["last_failover"]
        if last:
            out.append(
                f"  last failover {last['started_at']}: {last['from'] or 'nobody'} -> {last['to']} "
                f"{last['outcome']}"
            )
    return "\n".join(out)


def _state_text(group: Mapping[str, Any]) -> str:
    state = str(group["state"])
    if group["held"] and state != "held":
        return f"{state}, held"
    return state


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows as left-aligned columns two spaces apart (the last column is not padded)."""
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(row[:-1]))
        + "  "
        + str(row[-1])
        for row in rows
    ]


def age(seconds: float) -> str:
    """A short age: 12s, 4m, 3h, 2d."""
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def iso(epoch: float | None) -> str | None:
    """An ISO-8601 UTC timestamp, or None (JSON null) when unknown."""
    return None if epoch is None else when(epoch)


def move_json(record: MoveRecord) -> dict[str, Any]:
    """One move of `history --json` (and `last_failover`): unknown values are null.

    `forced` is whether the operator passed --force (null for moves recorded before the
    store kept it); `driver` and `os_user` are null where the store does not keep them.
    """
    return {
        "move_id": record.move_id,
        "group": record.group,
        "mode": record.mode,
        "resource": record.resource,
        "from": record.source,
        "to": record.target,
        "caller": record.caller or None,
        "driver": record.driver or None,
        "os_user": record.os_user,
        "reason": record.reason,
        "started_at": iso(record.started_at),
        "finished_at": iso(record.finished_at),
        "outcome": record.outcome,
        "forced": record.operator_forced,
        "detail": record.detail or None,
        "steps": [
            {
                "step": s.kind,
                "description": s.description,
                "phase": s.phase,
                "at": iso(s.at),
                "elapsed_s": round(s.elapsed_s, 3),
                "detail": s.detail or None,
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
        f"by {_who(r)}{'  forced' if r.operator_forced else ''}  ({r.reason})"
        for r in records
    )


def _who(record: MoveRecord) -> str:
    """The AWS caller, what drove the move and, for a person, the OS user."""
    extra = [part for part in (record.driver, record.os_user and f"user {record.os_user}") if part]
    return record.caller + (f" ({', '.join(extra)})" if extra else "")
