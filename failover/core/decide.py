"""The pure health core: probe results -> member health -> what to do with each group.

No I/O, no clock: values in, values out, every decision with its reason.

A group's states, as the daemon and the cron check see them:

        ok ──active fails `fall` probes──> (candidate healthy?) ──yes──> moving ──> ok
         ^                                      │ no                        │
         │                                      v                           │ > max_moves_per_hour
         └──── a member becomes healthy ─── degraded                        v
                                                                          held ──`release` or `move --force`──> ok
        any state ──`failover hold`──> held (by the operator) ──`failover release`──> ok

Rules, in the order they are applied:
1. A held group moves only when an operator says so (`failover move`). A group AWS does not know at all
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

An operator's `failover move` is the same decision with a MoveRequest: the requested
member (or the best candidate), refused for a flap-limit hold, the cooldown, the flap
limit or an unhealthy target unless `--force` says otherwise; an AWS rule is never
overridden. A hold the operator set with `failover hold` does not refuse it: the move is
the operator's explicit act, and the hold stays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from failover.core.durations import format_duration
from failover.core.model import GroupView
from failover.core.planner import absence, candidates, refusals, rule_violation
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


HELD_BY_OPERATOR = "operator"
"""`GroupState.held_by` of a hold set by `failover hold` (no automatic move until `release`)."""
HELD_BY_FLAP_LIMIT = "flap-limit"
"""`GroupState.held_by` of the hold `max_moves_per_hour` set (`release` or `move --force` clears it)."""


@dataclass(frozen=True)
class Facts:
    """What the store remembers that a decision needs: recent moves and the hold."""

    now: float
    move_times: tuple[float, ...] = ()  # start times of this group's moves, any order
    held: bool = False
    held_reason: str = ""
    network_suspect: bool = False  # every member of every group failed this pass
    held_by: str = ""  # HELD_BY_OPERATOR or HELD_BY_FLAP_LIMIT when held ("" reads as the latter)
    region: str = ""  # where the orchestrator looks (named when the group is not there)


@dataclass(frozen=True)
class MoveRequest:
    """An operator's `failover move`: the member asked for (None: the best candidate) and --force."""

    target: str | None = None
    force: bool = False


@dataclass(frozen=True)
class Decision:
    """What to do with one group, and why (logged once, kept in the history).

    action: stay | move | degraded | hold | held | suspect | cooldown | refused
    `clears_hold`: a forced move that overrides the flap-limit hold also ends it.
    """

    action: str
    reason: str
    target: str | None = None
    source_failed: bool = False
    # Healthy members after `target`, in preference order: where a move goes if the target
    # turns out unfit before the first mutating call (IAM refuses it, say).
    alternatives: tuple[str, ...] = ()
    clears_hold: bool = False

    @property
    def moves(self) -> bool:
        return self.action == "move"


def decide(
    view: GroupView,
    group: Group,
    health: Mapping[str, MemberHealth],
    facts: Facts,
    request: MoveRequest | None = None,
) -> Decision:
    """The one decision for a group, from a fresh AWS view, member health and remembered facts;
    with `request`, the decision on an operator's move under the same rules."""
    if request is not None:
        return _requested(view, group, health, facts, request)
    policy = group.policy
    if facts.held:
        if facts.held_by == HELD_BY_OPERATOR:
            return Decision(
                "held",
                f"held by an operator ({facts.held_reason or 'no reason given'}): no automatic "
                f"move until `failover release {group.name}`",
            )
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
        nobody = _owned_by_nobody(view, group)
        if not healthy:
            return Decision("degraded", f"{nobody} and no member is healthy")
        return Decision(
            "move",
            f"{nobody}; moving it to {_why(healthy[0], health, view)}",
            healthy[0],
            source_failed=True,
            alternatives=tuple(healthy[1:]),
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
            return Decision(
                "degraded", f"{down}; no standby is healthy, running and able to take it"
            )
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
                f"(`failover release {group.name}` or `failover move {group.name} --force` clears it)",
            )
        return Decision(
            "move",
            f"{down}; moving {group.resource} to {_why(healthy[0], health, view)}",
            healthy[0],
            True,
            alternatives=tuple(healthy[1:]),
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


def _owned_by_nobody(view: GroupView, group: Group) -> str:
    """What AWS shows when no member owns the resource, in words that are true of it."""
    routed = {view.route_owner(t) for t in view.route_tables if t.route is not None} - {None}
    if len(routed) > 1:
        return (
            f"{group.resource} is routed to {', '.join(sorted(str(o) for o in routed))} by "
            "different tables (a half-done move)"
        )
    return f"{group.resource} is owned by nobody"


def _requested(
    view: GroupView,
    group: Group,
    health: Mapping[str, MemberHealth],
    facts: Facts,
    request: MoveRequest,
) -> Decision:
    """An operator's move: the same rules, each one `--force` may override named in the refusal."""
    target = request.target or _operator_choice(view, group, health, force=request.force)
    if target is None:
        # The rules that shut members out, and what the probes (perhaps just now) said of the rest.
        sick = [
            f"{i}: {h.reason or 'not healthy yet'}"
            for i in candidates(view, group)
            if (h := health.get(i)) is not None and not h.healthy
        ]
        why = "; ".join([*refusals(view, group), *sick])
        return Decision(
            "refused",
            "no other member is healthy, running and able to take it"
            + (f" ({why})" if why else ""),
        )
    if target == view.active:
        # Nothing to move; the engine still finishes what AWS shows half-done (an EIP that
        # did not follow its IP), as a rerun of any move would.
        return Decision(
            "move", f"manual move to {target}, which already has {group.resource}", target
        )
    if (violation := rule_violation(view, group, target)) is not None:
        return Decision("refused", violation)  # an AWS rule: --force never overrides it
    refusal = _overridable(group, health, facts, target)
    if refusal is not None and not request.force:
        return Decision("refused", f"{refusal}; --force overrides")
    flap_hold = facts.held and facts.held_by != HELD_BY_OPERATOR
    reason = f"manual move to {target}" + (f" (--force: {refusal})" if refusal else "")
    return Decision("move", reason, target, clears_hold=flap_hold)


def _operator_choice(
    view: GroupView, group: Group, health: Mapping[str, MemberHealth], *, force: bool
) -> str | None:
    """The member `failover move` picks without --to: the best healthy candidate.

    When no member has ever been probed (no daemon or cron has run against this store),
    health is unknown for all, and the first running, rule-clean member is the choice;
    so it is with --force when no candidate is healthy.
    """
    options = candidates(view, group)
    if not any(i in health for i in group.instance_ids):
        return options[0] if options else None
    healthy = _healthy_candidates(view, group, health)
    if healthy:
        return healthy[0]
    return options[0] if force and options else None


def _overridable(
    group: Group, health: Mapping[str, MemberHealth], facts: Facts, target: str
) -> str | None:
    """Why an operator's move needs --force: the flap-limit hold, cooldown, flap limit, a sick target."""
    policy = group.policy
    if facts.held and facts.held_by != HELD_BY_OPERATOR:
        return f"group is held by the flap limit ({facts.held_reason or 'flap limit'})"
    if (since := _since_last_move(facts)) is not None and since < policy.cooldown_s:
        return (
            f"last move was {format_duration(max(since, 0.001))} ago, within cooldown "
            f"{format_duration(policy.cooldown_s)}"
        )
    if _moves_last_hour(facts) >= policy.max_moves_per_hour:
        return f"{policy.max_moves_per_hour} moves in the last hour (flap limit)"
    known = health.get(target)
    if known is not None and not known.healthy:
        return f"target {target} is not healthy ({known.reason or 'not enough passes yet'})"
    return None


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
