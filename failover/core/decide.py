"""The pure health core: probe results -> member health -> what to do with each group.

No I/O, no clock: values in, values out, every decision with its reason.

A group's states, as the daemon and the cron check see them:

        ok ──active fails `fall` probes──> (candidate healthy?) ──yes──> moving ──> ok
         ^                                      │ no                        │
         │                                      v                           │ > max_moves_per_hour
         └──── a member becomes healthy ─── degraded                        v
                                                                          held ──operator `move --force`──> ok

Rules, in the order they are applied:
1. A held group moves only when an operator says so. A group AWS does not know at all
   (no member exists, or its resource does not: a wrong region or wrong ids) is
   `degraded`, named as such, never mistaken for failed members or our own network.
2. If every member of every group failed in the same pass, suspect our own network.
3. Nobody owns the resource (a detach finished, an attach never came): move it to the
   best healthy member, at once: leaving it unowned is the one thing worse than a move.
   An instance outside the group owns it: never take it back automatically; `degraded`.
4. The active member is down after `fall` consecutive failures; then: no healthy
   candidate is `degraded` (even within a cooldown: nowhere to go is the news); no move
   within `cooldown` of the last one; `max_moves_per_hour` reached holds the group; else
   move to the highest-preference healthy candidate.
5. `failback: auto` moves back to a higher-preference member once it has passed `rise`
   probes and the cooldown is over.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from failover.core.durations import format_duration
from failover.core.model import GroupView
from failover.core.planner import absence, candidates
from failover.core.ports import MemberHealth

if TYPE_CHECKING:
    from failover.config import Group, Policy


def update_health(
    prev: MemberHealth, ok: bool, reason: str, now: float, policy: Policy
) -> MemberHealth:
    """One probe pass's verdict folded into a member's counters (rise/fall hysteresis)."""
    if ok:
        successes = prev.successes + 1
        healthy = prev.healthy or successes >= policy.rise
        changed = now if healthy != prev.healthy else prev.changed_at
        return replace(
            prev,
            healthy=healthy,
            successes=successes,
            failures=0,
            reason=reason,
            changed_at=changed,
            probed_at=now,
        )
    failures = prev.failures + 1
    healthy = prev.healthy and failures < policy.fall
    changed = now if healthy != prev.healthy else prev.changed_at
    return replace(
        prev,
        healthy=healthy,
        successes=0,
        failures=failures,
        reason=reason,
        changed_at=changed,
        probed_at=now,
    )


def is_down(health: MemberHealth | None, policy: Policy) -> bool:
    """Down means `fall` consecutive failures: one bad probe is not a failover."""
    return health is not None and health.failures >= policy.fall


@dataclass(frozen=True)
class Facts:
    """What the store remembers that a decision needs: recent moves and the hold."""

    now: float
    move_times: tuple[float, ...] = ()  # start times of this group's moves, any order
    held: bool = False
    held_reason: str = ""
    network_suspect: bool = False  # every member of every group failed this pass
    region: str = ""  # where the orchestrator looks (named when the group is not there)


@dataclass(frozen=True)
class Decision:
    """What to do with one group, and why (logged once, kept in the history).

    action: stay | move | degraded | hold | held | suspect | cooldown
    """

    action: str
    reason: str
    target: str | None = None
    source_failed: bool = False

    @property
    def moves(self) -> bool:
        return self.action == "move"


def decide(
    view: GroupView, group: Group, health: Mapping[str, MemberHealth], facts: Facts
) -> Decision:
    """The one decision for a group, from a fresh AWS view, member health and remembered facts."""
    policy = group.policy
    if facts.held:
        return Decision("held", f"held for an operator: {facts.held_reason or 'flap limit'}")
    if (absent := absence(view, group)) is not None:
        return Decision("degraded", absent_text(absent, facts.region))
    active = view.active
    healthy = _healthy_candidates(view, group, health)
    if active is not None and active not in group.instance_ids:
        # Someone moved it by hand to a non-member: taking it back could cut live traffic.
        return Decision(
            "degraded",
            f"{group.resource} is on {active}, which is not a member of the group: "
            "an operator must move it (`failover move`) or add the instance to the group",
        )
    if active is None:
        if facts.network_suspect:
            return Decision(
                "suspect", "every member of every group failed: suspecting our own network"
            )
        if not healthy:
            return Decision(
                "degraded", f"{group.resource} is owned by nobody and no member is healthy"
            )
        return Decision(
            "move",
            f"{group.resource} is owned by nobody; moving it to {_why(healthy[0], health, view)}",
            healthy[0],
            source_failed=True,
        )
    active_health = health.get(active)
    if is_down(active_health, policy):
        assert active_health is not None
        down = f"active {active} failed {active_health.failures} probes ({active_health.reason})"
        if facts.network_suspect:
            return Decision(
                "suspect",
                f"{down}, but every member of every group failed: suspecting our own network",
            )
        # Nowhere to go outranks "not now": a cooldown must not hide a group that is down.
        if not healthy:
            return Decision("degraded", f"{down}; no standby is healthy, running and in the AZ")
        if (since := _since_last_move(facts)) is not None and since < policy.cooldown_s:
            return Decision(
                "cooldown",
                f"{down}; last move {format_duration(max(since, 0.001))} ago, within cooldown "
                f"{format_duration(policy.cooldown_s)}",
            )
        if _moves_last_hour(facts) >= policy.max_moves_per_hour:
            return Decision(
                "hold",
                f"{down}; {policy.max_moves_per_hour} moves in the last hour: holding for an operator "
                "(`failover move --force` clears it)",
            )
        return Decision(
            "move",
            f"{down}; moving {group.resource} to {_why(healthy[0], health, view)}",
            healthy[0],
            True,
        )
    # A failback leaves a working member: only for a target whose current streak is `rise`
    # passes (hysteresis alone keeps a flapping member "healthy"), never on a suspect pass.
    if policy.failback == "auto" and not facts.network_suspect:
        risen = [i for i in healthy if health[i].successes >= policy.rise]
        preferred = _failback_target(view, group, active, risen)
        if preferred is not None:
            since = _since_last_move(facts)
            if (since is None or since >= policy.cooldown_s) and _moves_last_hour(
                facts
            ) < policy.max_moves_per_hour:
                return Decision(
                    "move",
                    f"failback: {preferred} (preferred over {active}) passed {policy.rise} probes and the cooldown is over",
                    preferred,
                )
    return Decision("stay", f"active {active} is {_health_text(active_health, policy)}")


def absent_text(absent: str, region: str) -> str:
    """`absence` as the operator reads it: where we looked, and what to check."""
    where = f"in region {region}" if region else "in this region"
    return f"{absent} {where}: check aws.region and the ids (`failover validate`)"


def network_suspect(results: Sequence[bool]) -> bool:
    """True when a pass probed at least two members and every one failed."""
    return len(results) >= 2 and not any(results)


def _healthy_candidates(
    view: GroupView, group: Group, health: Mapping[str, MemberHealth]
) -> list[str]:
    """Running, same-AZ, index-free members (planner rules) that have passed `rise` probes."""
    return [
        i
        for i in candidates(view, group)
        if (h := health.get(i)) is not None and h.healthy and not is_down(h, group.policy)
    ]


def _failback_target(view: GroupView, group: Group, active: str, healthy: list[str]) -> str | None:
    order = list(group.instance_ids)
    if active not in order:
        return healthy[0] if healthy else None
    better = [i for i in healthy if order.index(i) < order.index(active)]
    return better[0] if better else None


def _since_last_move(facts: Facts) -> float | None:
    return facts.now - max(facts.move_times) if facts.move_times else None


def _moves_last_hour(facts: Facts) -> int:
    return sum(1 for t in facts.move_times if facts.now - t < 3600.0)


def _health_text(health: MemberHealth | None, policy: Policy) -> str:
    if health is None:
        return "not probed yet"
    if health.failures:
        return f"failing ({health.failures}/{policy.fall} failures: {health.reason})"
    return (
        "healthy"
        if health.healthy
        else f"up, not yet healthy ({health.successes}/{policy.rise} passes)"
    )


def _why(target: str, health: Mapping[str, MemberHealth], view: GroupView) -> str:
    h = health.get(target)
    member = view.member(target)
    az = f", {member.az}" if member else ""
    passed = f"healthy, {h.successes} passes" if h else "healthy"
    return f"{target} ({passed}{az})"


def manual_target(view: GroupView, group: Group, health: Mapping[str, MemberHealth]) -> str | None:
    """The member `failover move` picks without --to: the best healthy candidate.

    When no member has ever been probed (no daemon or cron has run against this store),
    health is unknown for all, and the first running, rule-clean member is the choice.
    """
    if not any(i in health for i in group.instance_ids):
        options = candidates(view, group)
        return options[0] if options else None
    healthy = _healthy_candidates(view, group, health)
    return healthy[0] if healthy else None


def manual_refusal(
    group: Group, health: Mapping[str, MemberHealth], facts: Facts, target: str
) -> str | None:
    """Why an operator's move must be confirmed with --force (hold, cooldown, flap limit, sick target)."""
    policy = group.policy
    if facts.held:
        return f"group is held for an operator ({facts.held_reason}); --force moves and clears the hold"
    if (since := _since_last_move(facts)) is not None and since < policy.cooldown_s:
        return (
            f"last move was {format_duration(max(since, 0.001))} ago, within cooldown "
            f"{format_duration(policy.cooldown_s)}; --force overrides"
        )
    if _moves_last_hour(facts) >= policy.max_moves_per_hour:
        return f"{policy.max_moves_per_hour} moves in the last hour (flap limit); --force overrides"
    known = health.get(target)
    if known is not None and not known.healthy:
        return f"target {target} is not healthy ({known.reason or 'not enough passes yet'}); --force overrides"
    return None
