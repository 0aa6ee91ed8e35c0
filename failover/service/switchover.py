"""The one guarded path every move takes, whoever starts it: claim the group, finish what the
journal left, read AWS, decide, move, alert, run the `after_move` hook, record metrics,
release.

Drivers: the daemon's and the cron check's health passes (failover/service/monitor.py)
call `run` for each group their batched pass decided must move, and `resume` for each
group with an open move; the Lambda handler runs the same pass; `failover move` calls
`run` with the operator's MoveRequest. The claim is the group's lease (DynamoDB) or
claim (SQLite), taken by the driver beforehand (a daemon holds its share for its life, a
one-shot command takes what it needs: failover/coord/handover.py) and pinned here for the
whole path, so no lease round gives it away mid-move and the engine's guard checks it
between steps. The decision is made again on a read of AWS and of the store made after
the claim: a pass's decision may predate a move another holder made meanwhile.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from failover.core.decide import Decision, Facts, MoveRequest, decide
from failover.core.errors import FailoverError, MoveInterruptedError, RefusedError
from failover.core.model import GroupView, Plan
from failover.core.planner import plan_move
from failover.core.ports import Clock, GroupMemory, MemberHealth, MoveRecord, Store
from failover.service import early
from failover.service.engine import FRESH_VIEW_S, Engine, MoveResult, Observation

if TYPE_CHECKING:
    from failover.config import Group
    from failover.coord.fence import Fence

log = logging.getLogger(__name__)

Alert = Callable[[str, str, str], None]  # (event, group, message)
AfterMove = Callable[["Group", MoveResult, str], None]  # (group, result, the new member's address)
OnMove = Callable[[str, str, float], None]  # (group, succeeded | failed | refused, seconds)
FreshHealth = Callable[["Group", GroupView, Mapping[str, MemberHealth]], Mapping[str, MemberHealth]]
"""Make sure the stored health an operator's move decides on is fresh (re-probe what is stale)."""

# Exit-code severity of each outcome (DESIGN.md): 1 failed or no healthy active member,
# 3 refused by a safety rule, 0 otherwise.
_SEVERITY = {
    "failed": 1,
    "interrupted": 1,
    "unknown": 1,
    "degraded": 1,
    "refused": 3,
    "cooldown": 3,
    "hold": 3,
    "held": 3,
    "suspect": 3,
}


def log_alert(event: str, group: str, message: str) -> None:
    """The alert every driver sends: one log line (notifications are chained after it)."""
    log.warning("ALERT %s group=%s: %s", event, group, message)


@dataclass(frozen=True)
class GroupOutcome:
    """What the guarded path (or a pass) did with one group.

    outcome: stay | moved | nothing-to-do | would-move | failed | refused | degraded |
    cooldown | hold | held | suspect | unknown (AWS could not be read) | interrupted (a signal
    stopped the move at a step boundary). `finished`: journaled moves finished first.
    """

    group: str
    decision: Decision
    outcome: str
    active: str | None
    result: MoveResult | None = None
    error: str = ""
    finished: tuple[MoveResult, ...] = field(default=())
    hold_cleared: bool = False

    @property
    def exit_code(self) -> int:
        """0 ok, 1 failed or degraded, 3 refused by a safety rule."""
        return _SEVERITY.get(self.outcome, 0)

    def summary(self) -> str:
        """The one line `failover check` prints for the group."""
        if self.outcome == "moved" and self.result is not None:
            r = self.result
            return (
                f"{self.group}: moved {r.source or 'nobody'} -> {r.target} in {r.elapsed_s:.1f}s "
                f"({self.decision.reason})"
            )
        if self.outcome == "failed":
            return f"{self.group}: FAILED: {self.error}"
        if self.outcome == "interrupted":
            return f"{self.group}: INTERRUPTED: {self.error}"
        if self.outcome == "refused":
            return f"{self.group}: refused: {self.error}"
        return f"{self.group}: {self.outcome}: {self.decision.reason}"


@dataclass(frozen=True)
class Preview:
    """What `run` with a request would do now (`plan` None unless it moves); touches nothing.

    `observation` is the read it was made on and `health` the verdicts it decided on (stale
    ones probed again); `token` the claim's fencing token held while it was made (None: not
    claimed, or no fence), so `run` under that same claim may start from this read.
    """

    decision: Decision
    view: GroupView
    plan: Plan | None
    unfinished: tuple[MoveRecord, ...] = ()
    observation: Observation | None = None
    health: Mapping[str, MemberHealth] = field(default_factory=dict)
    token: int | None = None


class Switchover:
    """Runs the guarded path for one group at a time (thread-safe across groups)."""

    def __init__(
        self,
        store: Store,
        engine: Engine,
        clock: Clock,
        *,
        fence: Fence | None = None,
        alert: Alert = log_alert,
        on_move: OnMove | None = None,
        after_move: AfterMove | None = None,
        fresh_health: FreshHealth | None = None,
    ) -> None:
        """`fence` None: this process is the only one acting on the store (tests, embedding)."""
        self.store, self.engine, self.clock, self.fence = store, engine, clock, fence
        # Alerts, metrics and post-move hooks observe; a move never waits on them.
        self._alert, self._on_move, self._after_move = alert, on_move, after_move
        self._fresh_health = fresh_health

    @contextlib.contextmanager
    def claimed(self, group: str) -> Iterator[bool]:
        """Pin `group`'s claim for the block: False when this process does not hold it now."""
        fence = self.fence
        if fence is None:
            yield True
            return
        if not fence.pin(group):
            yield False
            return
        try:
            yield True
        finally:
            fence.unpin(group)

    def resume(self, group: Group, *, force: bool = False) -> list[MoveResult]:
        """Finish `group`'s journaled moves (a crash left them) if this process holds it.

        A finished move alerts and runs its hook, since a crash may have come between the
        move and its hook. A move that cannot be finished is alerted and left journaled.
        """
        with self.claimed(group.name) as ours:
            if not ours:
                return []
            try:
                return self._finish(group, force=force)
            except FailoverError as exc:
                self._alert("move-failed", group.name, f"could not finish a journaled move: {exc}")
                return []

    def run(
        self,
        group: Group,
        *,
        health: Mapping[str, MemberHealth] | None = None,
        request: MoveRequest | None = None,
        suspect: bool = False,
        preview: Preview | None = None,
    ) -> GroupOutcome:
        """The guarded path: decide again under the claim, and make the move decided.

        `health`: the counters a pass just folded (None: as the store has them); `request`:
        an operator's move; `suspect`: the pass suspects its own network; `preview`: the
        operator's preview of this move, whose probes are not repeated while fresh, and whose
        read of AWS stands in for a new one if it was made under this claim and is fresh.
        """
        with self.claimed(group.name) as ours:
            if not ours:
                why = (
                    f"this process no longer holds group {group.name}: another holder acts "
                    "on it now"
                )
                return GroupOutcome(
                    group.name, Decision("refused", why), "refused", None, error=why
                )
            return self._run(group, health, request, suspect, preview)

    def _run(
        self,
        group: Group,
        health: Mapping[str, MemberHealth] | None,
        request: MoveRequest | None,
        suspect: bool,
        preview: Preview | None = None,
    ) -> GroupOutcome:
        force = request is not None and request.force
        try:
            finished = tuple(self._finish(group, force=force))
        except FailoverError as exc:
            self._alert("move-failed", group.name, f"could not finish a journaled move: {exc}")
            decision = Decision("failed", f"could not finish a journaled move: {exc}")
            return GroupOutcome(group.name, decision, "failed", None, error=str(exc))
        if finished and request is not None and request.target in (None, finished[-1].target):
            # Rerunning `move GROUP` after a crash means "finish that move", not "move again":
            # a fresh choice would bounce the resource off where it just landed.
            last = finished[-1]
            decision = Decision("move", f"finished move {last.move_id}", last.target)
            return GroupOutcome(group.name, decision, "moved", last.target, last, finished=finished)
        # An operator's move reads the store first: the eth0 it remembers lets the likely
        # target's DryRuns go out with the read of AWS (a pass decided on its own read).
        memory = self._memory(group) if request is not None else None
        try:
            observed = (
                None if finished or preview is None else self._claimed_read(group, preview)
            ) or self.engine.observe(
                group, early.taking(self.store, group, request, memory, finished)
            )
        except FailoverError as exc:
            # Under the claim AWS must be read again; if it cannot be (a disrupted AZ), nothing moves.
            decision = Decision("unknown", f"AWS could not be read: {exc}")
            return GroupOutcome(group.name, decision, "unknown", None, error=str(exc))
        view = observed.view
        probed = preview.health if preview is not None else None
        decision, _ = self._decide(group, view, health, request, suspect, probed, memory)
        # A pass already logged its decision; this one under the claim is news only when asked
        # for by an operator (a pass's repeat goes to debug).
        level = logging.INFO if request is not None else logging.DEBUG
        log.log(level, "group %s: %s: %s", group.name, decision.action, decision.reason)
        try:
            if not decision.moves:
                return GroupOutcome(
                    group.name, decision, decision.action, view.active, finished=finished
                )
            return self._move(group, decision, observed, force=force, finished=finished)
        finally:
            if memory is not None:
                # After the move, never before its mutating call: a store write costs it time.
                try:
                    early.remember(self.store, {group.name: view}, {group.name: memory})
                except FailoverError as exc:  # a hint for later moves, never this one's outcome
                    log.warning("group %s: members' eth0s not remembered: %s", group.name, exc)

    def preview(self, group: Group, request: MoveRequest) -> Preview:
        """What `run(group, request=request)` would do now (--dry-run, and the plan an operator
        confirms): the same reads and the same decision, no change. It takes no claim; made
        under one the caller holds, `run` under that claim may start from its read."""
        token = self.fence.token(group.name) if self.fence is not None else None
        unfinished = tuple(self.store.open_moves(group.name))
        memory = self._memory(group)
        # Only a read made under the claim is one a move starts from: only it carries DryRuns.
        taking = (
            early.taking(self.store, group, request, memory, unfinished)
            if token is not None
            else None
        )
        observation = self.engine.observe(group, taking)
        view = observation.view
        health: Mapping[str, MemberHealth] = {}
        if unfinished and request.target in (None, unfinished[-1].target):
            last = unfinished[-1]
            decision = Decision("move", f"finish move {last.move_id}", last.target)
        else:
            decision, health = self._decide(group, view, None, request, False, memory=memory)
        target = decision.target if decision.moves else None
        plan = plan_move(view, group, target) if target is not None else None
        return Preview(decision, view, plan, unfinished, observation, health, token)

    def _memory(self, group: Group) -> GroupMemory:
        """What the store holds of `group`: counters, state, the last hour's moves, eth0s."""
        since = self.clock.now() - 3600.0
        return self.store.load_groups({group.name: group.instance_ids}, since)[group.name]

    def _claimed_read(self, group: Group, preview: Preview) -> Observation | None:
        """The preview's read if it was made under the claim held now and is still fresh: AWS
        was read under the claim, and nothing of ours has changed it since (DESIGN.md)."""
        observed = preview.observation
        if observed is None or preview.token is None or self.fence is None:
            return None
        if self.fence.token(group.name) != preview.token:
            return None
        if self.clock.monotonic() - observed.at > FRESH_VIEW_S:
            return None
        return observed

    def _decide(
        self,
        group: Group,
        view: GroupView,
        health: Mapping[str, MemberHealth] | None,
        request: MoveRequest | None,
        suspect: bool,
        probed: Mapping[str, MemberHealth] | None = None,
        memory: GroupMemory | None = None,
    ) -> tuple[Decision, Mapping[str, MemberHealth]]:
        """decide() on `view` with the store's facts (`memory`, else read now) and its health
        if not given; the decision and the health it was made on.

        `probed`: verdicts this command probed already (its preview's), each used where it is
        newer than the store's, so a stale verdict is probed again once per move, not twice.
        """
        now = self.clock.now()
        memory = memory or self._memory(group)
        known: Mapping[str, MemberHealth] = memory.health if health is None else health
        if probed:
            known = {
                i: probed[i] if i in probed and probed[i].probed_at > h.probed_at else h
                for i, h in known.items()
            }
        if request is not None and self._fresh_health is not None:
            # The seam where a manual move makes sure its target's health is not stale.
            known = self._fresh_health(group, view, known)
        state = memory.state
        facts = Facts(
            now=now,
            move_times=memory.move_times,
            held=state.held,
            held_reason=state.held_reason,
            network_suspect=suspect,
            held_by=state.held_by,
        )
        return decide(view, group, known, facts, request), known

    def _finish(self, group: Group, *, force: bool) -> list[MoveResult]:
        if not self.store.open_moves(group.name):
            return []
        results = self.engine.resume(group, force=force)
        done = [r for r in results if r.outcome == "succeeded"]
        if done:
            view = self.engine.observe(group).view
            for result in done:
                self._alert(
                    "move-finished",
                    group.name,
                    f"finished journaled move {result.move_id}: {result.source} -> {result.target}",
                )
                self._hook(group, result, view)
        return results

    def _move(
        self,
        group: Group,
        decision: Decision,
        observed: Observation,
        *,
        force: bool,
        finished: tuple[MoveResult, ...],
    ) -> GroupOutcome:
        assert decision.target is not None
        name = group.name
        self._alert("move-started", name, decision.reason)
        started = self.clock.monotonic()
        try:
            result = self.engine.move(
                group,
                target=decision.target,
                force=force,
                source_failed=decision.source_failed,
                reason=decision.reason,
                observed=observed,
                alternatives=decision.alternatives,
            )
        except RefusedError as exc:
            self._alert("move-refused", name, str(exc))
            self._measure(name, "refused", started)
            return GroupOutcome(name, decision, "refused", None, error=str(exc), finished=finished)
        except MoveInterruptedError as exc:
            if exc.unfinished:  # the resource may be owned by nobody until the next run
                self._alert("move-failed", name, str(exc))
            self._measure(name, "failed", started)
            return GroupOutcome(
                name, decision, "interrupted", None, error=str(exc), finished=finished
            )
        except FailoverError as exc:
            self._alert("move-failed", name, str(exc))
            self._measure(name, "failed", started)
            return GroupOutcome(name, decision, "failed", None, error=str(exc), finished=finished)
        if result.outcome != "succeeded":
            self._alert("move-finished", name, f"{group.resource} is on {result.target} already")
            return GroupOutcome(
                name, decision, "nothing-to-do", result.target, result, finished=finished
            )
        self._measure(name, "succeeded", started)
        passed = f" (passed over {'; '.join(result.skipped)})" if result.skipped else ""
        self._alert(
            "move-finished",
            name,
            f"{result.source} -> {result.target} in {result.elapsed_s:.1f}s{passed}",
        )
        cleared = decision.clears_hold
        if cleared:
            self.store.save_hold(name, "", "", self.clock.now())
        self._hook(group, result, observed.view)
        return GroupOutcome(
            name, decision, "moved", result.target, result, finished=finished, hold_cleared=cleared
        )

    def _measure(self, group: str, outcome: str, started: float) -> None:
        if self._on_move is not None:
            self._on_move(group, outcome, self.clock.monotonic() - started)

    def _hook(self, group: Group, result: MoveResult, view: GroupView) -> None:
        """Hand a finished move to the post-move hook, with the new active member's address."""
        if self._after_move is None:
            return
        member = group.member(result.target)
        seen = view.member(result.target)
        address = (member.address if member else None) or (seen.private_ip if seen else None)
        self._after_move(group, result, address or "")
