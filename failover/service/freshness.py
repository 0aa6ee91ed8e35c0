"""Stored health is a hint with an age: probe again what a manual move would trust if it is stale.

A verdict the store keeps was made at `probed_at`. A daemon refreshes it every interval;
with a cron check, or no orchestrator running, the standby that was healthy at the last
check may have died since. Before an operator's move trusts a verdict older than one
interval, its members are probed again now, and the fresh answer is what counts.

The seam: `fresh_health(group, view, health, members, now, prober)` takes what the move
already read (the AWS view, the stored health) and returns the health to decide on. It
never writes the store: the counters belong to the passes (the daemon or the cron check).
A move's read of AWS carries no status checks (a pass's verdict is what a move trusts while
recent), so an `ec2` check probed again reads them now (`statuses`), for the due members only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from failover.core.durations import format_duration
from failover.core.model import GroupView
from failover.core.ports import MemberHealth
from failover.service.monitor import Prober, verdicts

if TYPE_CHECKING:
    from failover.config import Group


Statuses = Callable[[Sequence[str]], Mapping[str, tuple[bool | None, bool]]]
"""EC2's status checks of some instances now: (checks ok, insufficient data) by instance id
(DescribeInstanceStatus); an instance it does not name has no verdict."""


def stale(health: MemberHealth, now: float, max_age_s: float) -> bool:
    """Whether a stored verdict is older than `max_age_s` (a verdict of unknown age is)."""
    return health.probed_at <= 0.0 or now - health.probed_at > max_age_s


def fresh_health(
    group: Group,
    view: GroupView,
    health: Mapping[str, MemberHealth],
    members: Iterable[str],
    *,
    now: float,
    prober: Prober,
    statuses: Statuses | None = None,
) -> dict[str, MemberHealth]:
    """`health` with each of `members` whose stored verdict is stale re-judged by a probe now.

    Stale means older than the group's interval. A member never probed keeps no verdict
    (the move's own rules say what unknown means); one that fails now is not healthy,
    whatever its counters said; one that passes keeps its counters (a probe now does not
    make a member that never reached `rise` healthy).
    """
    max_age_s = group.policy.interval_s
    due = [
        i
        for i in dict.fromkeys(members)
        if (h := health.get(i)) is not None and stale(h, now, max_age_s)
    ]
    out = dict(health)
    if not due:
        return out
    if statuses is not None and any(c.type == "ec2" for c in group.checks):
        view = _with_statuses(view, statuses(due))
    found = verdicts([(group, view)], prober, only=frozenset(due))
    for instance_id in due:
        ok, why = found[(group.name, instance_id)]
        before = health[instance_id]
        age = (
            f"{format_duration(round(now - before.probed_at, 3) or 0.001)} old"
            if before.probed_at > 0
            else "of unknown age"
        )
        out[instance_id] = replace(
            before,
            healthy=before.healthy and ok is not False,  # None: no verdict, no news
            reason=f"probed again now (stored verdict {age}): {why}",
            probed_at=now,
        )
    return out


def _with_statuses(view: GroupView, read: Mapping[str, tuple[bool | None, bool]]) -> GroupView:
    """`view` with the status checks just read for the members `read` names."""
    members = tuple(
        replace(m, status_ok=read[m.instance_id][0], checks_insufficient=read[m.instance_id][1])
        if m.instance_id in read
        else m
        for m in view.members
    )
    return replace(view, members=members)
