"""One health pass over many groups: observe in batches, probe every member, decide, act.

The cron check runs one pass; the daemon runs passes on a schedule. Both go through
here, so a group is judged the same way however the orchestrator is run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from failover.core.decide import Decision, Facts, decide, network_suspect, update_health
from failover.core.errors import FailoverError, MoveInterruptedError, RefusedError
from failover.core.model import GroupView, Instance
from failover.core.ports import Clock, Cloud, GroupMemory, GroupState, MemberHealth, Store
from failover.probes import ProbeResult, ProbeTarget, probe_targets, run_probes
from failover.service.engine import Engine, MoveResult

if TYPE_CHECKING:
    from failover.config import Group

log = logging.getLogger(__name__)

Alert = Callable[[str, str, str], None]  # (event, group, message)
Prober = Callable[[Sequence[ProbeTarget]], list[ProbeResult]]

# Exit-code severity of each outcome (DESIGN.md): 1 failed or no healthy active member,
# 3 refused by a safety rule, 0 otherwise.
_SEVERITY = {
    "failed": 1,
    "interrupted": 1,
    "degraded": 1,
    "refused": 3,
    "cooldown": 3,
    "hold": 3,
    "held": 3,
    "suspect": 3,
}


@dataclass(frozen=True)
class GroupOutcome:
    """What one pass did with one group."""

    group: str
    decision: Decision
    outcome: str  # stay | moved | would-move | failed | interrupted | refused | degraded | cooldown | hold | held | suspect
    active: str | None
    result: MoveResult | None = None
    error: str = ""

    @property
    def exit_code(self) -> int:
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


def log_alert(event: str, group: str, message: str) -> None:
    log.warning("ALERT %s group=%s: %s", event, group, message)


def ec2_verdict(instance: Instance) -> tuple[bool, str]:
    """The `ec2` check: running with both status checks ok. No verdict counts as a failure."""
    if instance.state != "running":
        return False, f"ec2: {instance.state}"
    if instance.status_ok is True:
        return True, "ec2: running, checks ok"
    if instance.status_ok is False:
        return False, "ec2: status checks impaired"
    return False, "ec2: no status-check verdict yet"


def verdicts(
    pairs: Sequence[tuple[Group, GroupView]],
    prober: Prober,
    *,
    only: Collection[str] | None = None,
) -> dict[tuple[str, str], tuple[bool, str]]:
    """(group, instance) -> (ok, reason): one probe of every check of each member, folded.

    The `ec2` check reads the view's state and status checks; the others probe now.
    `only` limits it to those instances (a manual move re-probing its candidates).
    """
    targets: list[ProbeTarget] = []
    for group, view in pairs:
        addresses = {m.instance_id: m.private_ip or "" for m in view.members}
        targets += [
            t for t in probe_targets(group, addresses) if only is None or t.instance_id in only
        ]
    results = prober(targets) if targets else []
    failures: dict[tuple[str, str], list[str]] = {}
    for r in results:
        failures.setdefault((r.group, r.instance_id), [])
        if not r.ok:
            failures[(r.group, r.instance_id)].append(f"{r.check} {r.reason}")
    out: dict[tuple[str, str], tuple[bool, str]] = {}
    for group, view in pairs:
        has_ec2 = any(c.type == "ec2" for c in group.checks)
        for member in view.members:
            if only is not None and member.instance_id not in only:
                continue
            key = (group.name, member.instance_id)
            bad = list(failures.get(key, []))
            if has_ec2:
                ok, why = ec2_verdict(member)
                if not ok:
                    bad.insert(0, why)
            out[key] = (not bad, "; ".join(bad) if bad else "all checks passed")
    return out


class Monitor:
    """Runs health passes; keeps only the last EC2 verdicts in memory (counters live in the store)."""

    def __init__(
        self,
        cloud: Cloud,
        store: Store,
        engine: Engine,
        clock: Clock,
        *,
        prober: Prober = run_probes,
        alert: Alert = log_alert,
        max_parallel_moves: int = 8,
        on_health: Callable[[str, Mapping[str, MemberHealth]], None] | None = None,
        on_move: Callable[[str, str, float], None] | None = None,
        after_move: Callable[[Group, MoveResult, str], None] | None = None,
        region: str = "",
    ) -> None:
        self.cloud, self.store, self.engine, self.clock = cloud, store, engine, clock
        self._region = region
        self._probe, self._alert = prober, alert
        self._parallel = max_parallel_moves
        # Metrics and post-move hooks observe; a move never waits on them.
        self._on_health, self._on_move, self._after_move = on_health, on_move, after_move
        self._status_cache: dict[str, bool | None] = {}
        # Members' primary IPs as the last pass saw them: the `{address}` of post-move hooks.
        self._private_ips: dict[str, str] = {}

    def run_pass(
        self, groups: Sequence[Group], *, dry_run: bool = False, ec2_due: bool = True
    ) -> list[GroupOutcome]:
        """Probe every member of `groups`, decide for each group, and make the moves decided."""
        if not dry_run:
            # One read names the groups a crash left a move in; only those are resumed.
            unfinished = self.store.open_move_groups()
            for group in groups:
                if group.name in unfinished:
                    self._finish_open_moves(group)
        views = self._observe(groups, ec2_due=ec2_due)
        verdicts = self._probe_all(groups, views)
        now = self.clock.now()
        # A member AWS does not know (a wrong region, a wrong id) says nothing of our network.
        known = {(g.name, m.instance_id) for g in groups for m in views[g.name].members if m.exists}
        suspect = network_suspect([ok for key, (ok, _) in verdicts.items() if key in known])
        if suspect:
            self._alert(
                "suspect",
                "*",
                "every member of every group failed this pass: suspecting our own network",
            )
        # Every group's counters, state and last hour of moves in a few batched reads.
        memory = self.store.load_groups({g.name: g.instance_ids for g in groups}, now - 3600.0)
        healths = self._fold_health(groups, memory, verdicts, now, save=not dry_run)
        decisions: list[tuple[Group, Decision, GroupState]] = []
        for group in groups:
            health = healths[group.name]
            state = memory[group.name].state
            facts = Facts(
                now=now,
                move_times=memory[group.name].move_times,
                held=state.held,
                held_reason=state.held_reason,
                network_suspect=suspect,
                region=self._region,
            )
            decision = decide(views[group.name], group, health, facts)
            log.info("group %s: %s: %s", group.name, decision.action, decision.reason)
            decisions.append((group, decision, state))
        return self._act(decisions, views, dry_run=dry_run)

    def _finish_open_moves(self, group: Group) -> None:
        """A crash left a move half-done: finish it before judging the group."""
        if self.store.open_moves(group.name):
            try:
                for result in self.engine.resume(group):
                    # A crash may have come between the move and its hook.
                    if result.outcome == "succeeded":
                        self._moved(group, result)
            except FailoverError as exc:
                self._alert("move-failed", group.name, f"could not finish a journaled move: {exc}")

    def _observe(self, groups: Sequence[Group], *, ec2_due: bool) -> dict[str, GroupView]:
        """Batched views; status checks fetched only when due, else the last ones reused.

        Instance state (stopped, terminated) comes with every pass from DescribeInstances;
        the status checks (DescribeInstanceStatus) change at most once a minute on AWS, so
        the daemon asks for them on the ec2 check's slower interval.
        """
        ec2_members = [
            i for g in groups if any(c.type == "ec2" for c in g.checks) for i in g.instance_ids
        ]
        # A member never asked about (a group a reload added) has no verdict to reuse:
        # ask now rather than fail its ec2 check until the status is next due.
        unknown = any(i not in self._status_cache for i in ec2_members)
        wants_status = bool(ec2_members) and (ec2_due or unknown)
        views = self.cloud.observe_many(groups, with_status=wants_status)
        self._private_ips.update(
            {m.instance_id: m.private_ip for v in views.values() for m in v.members if m.private_ip}
        )
        if wants_status:
            for view in views.values():
                self._status_cache.update({m.instance_id: m.status_ok for m in view.members})
            return views
        return {
            name: replace(
                view,
                members=tuple(
                    replace(m, status_ok=self._status_cache.get(m.instance_id))
                    for m in view.members
                ),
            )
            for name, view in views.items()
        }

    def _probe_all(
        self, groups: Sequence[Group], views: dict[str, GroupView]
    ) -> dict[tuple[str, str], tuple[bool, str]]:
        """(group, instance) -> (ok, reason), every check of a member folded into one verdict."""
        return verdicts([(g, views[g.name]) for g in groups], self._probe)

    def _fold_health(
        self,
        groups: Sequence[Group],
        memory: Mapping[str, GroupMemory],
        verdicts: dict[tuple[str, str], tuple[bool, str]],
        now: float,
        *,
        save: bool = True,
    ) -> dict[str, dict[str, MemberHealth]]:
        """Fold this pass into the counters; a dry run decides on them but remembers nothing.

        Every counter changes every pass (a streak grows by one), so all are written, in
        one batched write for the whole pass.
        """
        folded: dict[str, dict[str, MemberHealth]] = {}
        for group in groups:
            previous = memory[group.name].health
            folded[group.name] = {
                i: update_health(
                    previous.get(i, MemberHealth(i)), *verdicts[(group.name, i)], now, group.policy
                )
                for i in group.instance_ids
            }
        if save:
            self.store.save_health_many({g: list(h.values()) for g, h in folded.items()})
        if self._on_health is not None:
            for name, updated in folded.items():
                self._on_health(name, updated)
        return folded

    def _act(
        self,
        decisions: list[tuple[Group, Decision, GroupState]],
        views: dict[str, GroupView],
        *,
        dry_run: bool,
    ) -> list[GroupOutcome]:
        moving = [(g, d) for g, d, _ in decisions if d.moves]
        results: dict[str, GroupOutcome] = {}
        if moving and not dry_run:
            # Groups move in parallel (an AZ failure moves hundreds); botocore's retry mode
            # paces each call, and the pool bounds how many moves storm EC2 at once.
            with ThreadPoolExecutor(max_workers=max(1, min(self._parallel, len(moving)))) as pool:
                futures = {g.name: pool.submit(self._move, g, d) for g, d in moving}
            results = {name: f.result() for name, f in futures.items()}
        outcomes = []
        for group, decision, state in decisions:
            view = views[group.name]
            if decision.moves:
                outcome = results.get(group.name) or GroupOutcome(
                    group.name, decision, "would-move", view.active
                )
            else:
                outcome = GroupOutcome(group.name, decision, decision.action, view.active)
            outcomes.append(outcome)
            if not dry_run:
                self._remember(group, decision, outcome, state)
        return outcomes

    def _move(self, group: Group, decision: Decision) -> GroupOutcome:
        assert decision.target is not None
        self._alert("move-started", group.name, decision.reason)
        started = self.clock.monotonic()
        outcome = self._try_move(group, decision)
        if self._on_move is not None:
            outcome_name = {"moved": "succeeded"}.get(outcome.outcome, outcome.outcome)
            self._on_move(group.name, outcome_name, self.clock.monotonic() - started)
        if outcome.result is not None and outcome.result.outcome == "succeeded":
            self._moved(group, outcome.result)
        return outcome

    def _moved(self, group: Group, result: MoveResult) -> None:
        """Hand a finished move to the post-move hook, with the new active member's address."""
        if self._after_move is None:
            return
        member = group.member(result.target)
        address = (member.address if member else None) or self._private_ips.get(result.target, "")
        self._after_move(group, result, address)

    def _try_move(self, group: Group, decision: Decision) -> GroupOutcome:
        assert decision.target is not None
        try:
            result = self.engine.move(
                group,
                target=decision.target,
                source_failed=decision.source_failed,
                reason=decision.reason,
            )
        except RefusedError as exc:
            self._alert("move-refused", group.name, str(exc))
            return GroupOutcome(group.name, decision, "refused", None, error=str(exc))
        except MoveInterruptedError as exc:
            if exc.unfinished:  # the resource may be owned by nobody until the next run
                self._alert("move-failed", group.name, str(exc))
            return GroupOutcome(group.name, decision, "interrupted", None, error=str(exc))
        except FailoverError as exc:
            self._alert("move-failed", group.name, str(exc))
            return GroupOutcome(group.name, decision, "failed", None, error=str(exc))
        self._alert(
            "move-finished",
            group.name,
            f"{result.source} -> {result.target} in {result.elapsed_s:.1f}s",
        )
        return GroupOutcome(group.name, decision, "moved", result.target, result=result)

    def _remember(
        self, group: Group, decision: Decision, outcome: GroupOutcome, state: GroupState
    ) -> None:
        """Keep the group's status; alert on entering degraded or held, not on every pass."""
        status = {"degraded": "degraded", "hold": "held", "held": "held"}.get(outcome.outcome, "ok")
        if status != state.status and status in ("degraded", "held"):
            self._alert(status, group.name, decision.reason)
        held = state.held or outcome.outcome == "hold"
        new = replace(
            state,
            held=held,
            held_reason=decision.reason if outcome.outcome == "hold" else state.held_reason,
            status=status,
            updated_at=self.clock.now(),
        )
        # `updated_at` alone changing is no change: an idle group costs no write.
        if replace(new, updated_at=state.updated_at) != state:
            self.store.save_group_state(new)
