"""One health pass over many groups: observe in batches, probe every member, decide, act.

The cron check and the Lambda run one pass; the daemon runs passes on a schedule. All go
through here, so a group is judged the same way however the orchestrator is run; each
group the pass decides to move (and each with a move a crash left open) goes through the
one guarded path, failover/service/switchover.py.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from failover.core.decide import (
    HELD_BY_FLAP_LIMIT,
    Decision,
    Facts,
    decide,
    network_suspect,
    update_health,
)
from failover.core.model import UNREAD_STATE, GroupView, Instance
from failover.core.ports import Clock, Cloud, GroupMemory, GroupState, MemberHealth, Store
from failover.probes import ProbeResult, ProbeTarget, probe_targets
from failover.service import early
from failover.service.engine import Engine
from failover.service.switchover import (
    AfterMove,
    Alert,
    GroupOutcome,
    OnMove,
    Switchover,
    log_alert,
)

if TYPE_CHECKING:
    from failover.config import Group
    from failover.coord.fence import Fence

__all__ = ["Alert", "GroupOutcome", "Monitor", "Prober", "ec2_verdict", "log_alert"]

log = logging.getLogger(__name__)

# How often a pass reads every member's interfaces again (DescribeInstances), whatever else
# hinted at a change: the topology held is a hint about AZs and device indexes, never
# ownership, which every pass and every move step reads fresh.
TOPOLOGY_REFRESH_S = 300.0

Prober = Callable[[Sequence[ProbeTarget]], list[ProbeResult]]


def _run_probes(targets: Sequence[ProbeTarget]) -> list[ProbeResult]:
    """The default prober, imported on the first pass that probes: its event loop's modules
    load after the pass has sent its read of AWS, not before (a cron `check`'s start-up)."""
    from failover.probes.runner import run_probes

    return run_probes(targets)


def ec2_verdict(instance: Instance) -> tuple[bool | None, str]:
    """The `ec2` check: running with both status checks ok. No verdict yet counts as a failure;
    `insufficient-data` is unknown (None): neither a failure nor a pass, so never a Force."""
    if instance.state == UNREAD_STATE:
        return None, "ec2: its AZ could not be read"
    if instance.state != "running":
        return False, f"ec2: {instance.state}"
    if instance.status_ok is True:
        return True, "ec2: running, checks ok"
    if instance.status_ok is False:
        return False, "ec2: status checks impaired"
    if instance.checks_insufficient:
        return None, "ec2: status checks report insufficient-data"
    return False, "ec2: no status-check verdict yet"


def verdicts(
    pairs: Sequence[tuple[Group, GroupView]],
    prober: Prober,
    *,
    only: Collection[str] | None = None,
) -> dict[tuple[str, str], tuple[bool | None, str]]:
    """(group, instance) -> (ok, reason): one probe of every check of each member, folded.

    The `ec2` check reads the view's state and status checks; the others probe now.
    `only` limits it to those instances (a manual move re-probing its candidates). ok is
    None when the only check with something to say had no verdict (EC2's insufficient-data):
    the member's counters stay as they were.
    """
    targets: list[ProbeTarget] = []
    for group, view in pairs:
        addresses = {m.instance_id: m.private_ip or "" for m in view.members}
        unread = {m.instance_id for m in view.members if m.state == UNREAD_STATE}
        targets += [
            t
            for t in probe_targets(group, addresses)
            if (only is None or t.instance_id in only)
            # A member of a lost AZ never read has no address: not probing it is no verdict,
            # where "no address to probe" would count against a member that may be fine.
            and (t.address or t.instance_id not in unread)
        ]
    results = prober(targets) if targets else []
    failures: dict[tuple[str, str], list[str]] = {}
    for r in results:
        failures.setdefault((r.group, r.instance_id), [])
        if not r.ok:
            failures[(r.group, r.instance_id)].append(f"{r.check} {r.reason}")
    out: dict[tuple[str, str], tuple[bool | None, str]] = {}
    for group, view in pairs:
        has_ec2 = any(c.type == "ec2" for c in group.checks)
        for member in view.members:
            if only is not None and member.instance_id not in only:
                continue
            key = (group.name, member.instance_id)
            bad = list(failures.get(key, []))
            if has_ec2:
                ok, why = ec2_verdict(member)
                if ok is False:
                    bad.insert(0, why)
                elif ok is None and key not in failures:
                    out[key] = (None, why)  # nothing else was asked: no verdict
                    continue
            if member.state == UNREAD_STATE and key not in failures:
                out[key] = (None, "its AZ could not be read and it has no address to probe")
                continue
            out[key] = (not bad, "; ".join(bad) if bad else "all checks passed")
    return out


class Monitor:
    """Runs health passes; holds nothing of AWS but when it last asked for the whole topology
    (counters live in the store, the topology in the adapter)."""

    def __init__(
        self,
        cloud: Cloud,
        store: Store,
        engine: Engine,
        clock: Clock,
        *,
        prober: Prober | None = None,
        alert: Alert = log_alert,
        max_parallel_moves: int = 8,
        on_health: Callable[[str, Mapping[str, MemberHealth]], None] | None = None,
        on_move: OnMove | None = None,
        after_move: AfterMove | None = None,
        fence: Fence | None = None,
        region: str = "",
    ) -> None:
        """`fence`: the groups this process holds (None: it is the only one acting)."""
        self.cloud, self.store, self.engine, self.clock = cloud, store, engine, clock
        self._region = region
        self._probe, self._alert = prober or _run_probes, alert
        self._parallel = max_parallel_moves
        self._on_health = on_health  # metrics observe; a pass never waits on them
        self.switchover = Switchover(
            store, engine, clock, fence=fence, alert=alert, on_move=on_move, after_move=after_move
        )
        # When the members' interfaces were last all read again (monotonic; None: at the next pass).
        self._topology_at: float | None = None
        self._topology_lock = threading.Lock()

    def run_pass(self, groups: Sequence[Group], *, dry_run: bool = False) -> list[GroupOutcome]:
        """Probe every member of `groups`, decide for each group, and make the moves decided."""
        if not dry_run:
            # One read names the groups a crash left a move in; only those are resumed.
            unfinished = self.store.open_move_groups()
            for group in groups:
                if group.name in unfinished:
                    self.switchover.resume(group)
                    self.cloud.forget_topology(group.instance_ids)
        views = self._observe(groups)
        # A group AWS could not be read for (a disrupted AZ) is judged on nothing: no move,
        # no counter change; it is reported `unknown` and the pass goes on with the others.
        unread = [g for g in groups if views[g.name].unread]
        groups = [g for g in groups if not views[g.name].unread]
        verdicts = self._probe_all(groups, views)
        now = self.clock.now()
        # A member AWS does not know (a wrong region, a wrong id) says nothing of our network;
        # nor does one with no verdict (EC2's insufficient-data).
        known = {(g.name, m.instance_id) for g in groups for m in views[g.name].members if m.exists}
        suspect = network_suspect(
            [ok for key, (ok, _) in verdicts.items() if key in known and ok is not None]
        )
        if suspect:
            self._alert(
                "suspect",
                "*",
                "every member of every group failed this pass: suspecting our own network",
            )
        # Every group's counters, state and last hour of moves in a few batched reads.
        memory = self.store.load_groups(
            {g.name: g.instance_ids for g in [*groups, *unread]}, now - 3600.0
        )
        healths = self._fold_health(groups, memory, verdicts, now, save=not dry_run)
        if not dry_run:
            # A member's eth0, once shown, lets a later `failover move` DryRun with its read.
            early.remember(self.store, {g.name: views[g.name] for g in groups}, memory)
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
                held_by=state.held_by,
                region=self._region,
            )
            decision = decide(views[group.name], group, health, facts)
            log.info("group %s: %s: %s", group.name, decision.action, decision.reason)
            decisions.append((group, decision, state))
        for group in unread:
            decision = Decision("unknown", f"AWS could not be read: {views[group.name].unread}")
            log.warning("group %s: %s: %s", group.name, decision.action, decision.reason)
            decisions.append((group, decision, memory[group.name].state))
        return self._act(decisions, views, healths, dry_run=dry_run, suspect=suspect)

    def _observe(self, groups: Sequence[Group]) -> dict[str, GroupView]:
        """Every group's view: state, status checks and ownership read now; the members'
        interfaces from the topology the adapter holds, read again every TOPOLOGY_REFRESH_S."""
        now = self.clock.monotonic()
        with self._topology_lock:
            if self._topology_at is None or now - self._topology_at >= TOPOLOGY_REFRESH_S:
                self.cloud.forget_topology()
                self._topology_at = now
        return self.cloud.observe_pass(groups)

    def forget_topology(self) -> None:
        """The next pass reads every member's interfaces again (a reload: SIGHUP)."""
        with self._topology_lock:
            self._topology_at = None

    def _probe_all(
        self, groups: Sequence[Group], views: dict[str, GroupView]
    ) -> dict[tuple[str, str], tuple[bool | None, str]]:
        """(group, instance) -> (ok, reason), every check of a member folded into one verdict."""
        return verdicts([(g, views[g.name]) for g in groups], self._probe)

    def _fold_health(
        self,
        groups: Sequence[Group],
        memory: Mapping[str, GroupMemory],
        verdicts: dict[tuple[str, str], tuple[bool | None, str]],
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
            folded[group.name] = {}
            for i in group.instance_ids:
                before = previous.get(i, MemberHealth(i))
                ok, why = verdicts[(group.name, i)]
                folded[group.name][i] = (
                    before if ok is None else update_health(before, ok, why, now, group.policy)
                )
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
        healths: Mapping[str, Mapping[str, MemberHealth]],
        *,
        dry_run: bool,
        suspect: bool,
    ) -> list[GroupOutcome]:
        moving = [g for g, d, _ in decisions if d.moves]
        results: dict[str, GroupOutcome] = {}
        if moving and not dry_run:
            # Groups move in parallel (an AZ failure moves hundreds); botocore's retry mode
            # paces each call, and the pool bounds how many moves storm EC2 at once.
            with ThreadPoolExecutor(max_workers=max(1, min(self._parallel, len(moving)))) as pool:
                futures = {
                    g.name: pool.submit(
                        self.switchover.run, g, health=healths[g.name], suspect=suspect
                    )
                    for g in moving
                }
            results = {name: f.result() for name, f in futures.items()}
            # A move changes its members' interfaces: the next pass reads them again.
            self.cloud.forget_topology([i for g in moving for i in g.instance_ids])
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
                self._remember(group, outcome, state)
        return outcomes

    def _remember(self, group: Group, outcome: GroupOutcome, state: GroupState) -> None:
        """Keep the group's status; alert on entering degraded or held, not on every pass.

        Only the status is written, and the hold only when the flap limit sets it: a hold an
        operator wrote meanwhile is never undone by a pass that read the state before it.
        """
        status = {"degraded": "degraded", "hold": "held", "held": "held", "unknown": "unknown"}.get(
            outcome.outcome, "ok"
        )
        reason = outcome.decision.reason
        if status != state.status and status in ("degraded", "held", "unknown"):
            self._alert(status, group.name, reason)
        now = self.clock.now()
        if outcome.outcome == "hold":
            self.store.save_hold(group.name, HELD_BY_FLAP_LIMIT, reason, now)
        # An unchanged status costs no write: an idle group writes nothing.
        if status != state.status:
            self.store.save_status(group.name, status, now)
