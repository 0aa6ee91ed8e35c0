"""One move, step by step: observe, plan, journal, act, re-observe, under AWS's rules.

The daemon, the cron check and the manual `failover move` all drive this engine.
Before every step it reads AWS fresh and skips what is already true, so a move that
a crash interrupted is finished by running it again (`resume`). The journal gets the
intent before the first AWS call and every step before and after its call. Reads and
their freshness are in `reads`, one step's calls and waits in `steps`, a run's journal
events in `journal`, and stopping at a step boundary in `interruption`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from failover.core.durations import when
from failover.core.errors import (
    FailoverError,
    LeaseLostError,
    MoveFailedError,
    MoveInterruptedError,
    PermissionDeniedError,
)
from failover.core.model import MUTATING_STEPS, GroupView, Mode, Plan
from failover.core.planner import plan_move, rule_violation
from failover.core.ports import Clock, Cloud, MoveRecord, StepRecord, Store
from failover.service.identity import CallerIdentity
from failover.service.interruption import (
    BEFORE_CALL,
    Interruptions,
    Stop,
    StopRequest,
    signal_name,
)
from failover.service.journal import MoveJournal, StepListener
from failover.service.reads import FRESH_VIEW_S, Observation, Read, Reader, Taking, WaitListener
from failover.service.steps import EIP_FOLLOW_GRACE_S, StepRunner, TargetRefused
from failover.service.targets import Targets

if TYPE_CHECKING:
    from failover.config import Group

__all__ = [
    "EIP_FOLLOW_GRACE_S",
    "FRESH_VIEW_S",
    "Engine",
    "MoveResult",
    "Observation",
    "StepListener",
    "StopRequest",
    "Taking",
    "WaitListener",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MoveResult:
    """How a move ended: `succeeded`, or `nothing-to-do` when AWS already had it right."""

    group: str
    outcome: str
    source: str | None
    target: str
    move_id: str | None = None
    elapsed_s: float = 0.0
    resumed: bool = False
    steps: tuple[StepRecord, ...] = field(default=())
    skipped: tuple[str, ...] = ()  # targets passed over before the move: why each


class Engine:
    """Runs moves against a Cloud, journaling each step in a Store."""

    def __init__(
        self,
        cloud: Cloud,
        store: Store,
        clock: Clock,
        *,
        on_step: StepListener | None = None,
        guard: Callable[[str], None] | None = None,
        token_of: Callable[[str], int | None] | None = None,
        eip_follow_grace_s: float = EIP_FOLLOW_GRACE_S,
        driver: str = "",
        os_user: str | None = None,
        stop: StopRequest | None = None,
        on_wait: WaitListener | None = None,
    ) -> None:
        self.cloud, self.store, self.clock = cloud, store, clock
        # Who starts the moves of this engine, for the history: daemon, check, move, lambda.
        self.driver, self._os_user = driver, os_user
        self._on_step = on_step
        # Asked at every step boundary: a signal's number there stops the move (see interruption).
        self._interruptions = Interruptions(stop, cloud, store, clock)
        # Called with the group name before every mutating call; raises to abandon (lease lost).
        self._guard = guard
        # The lease's fencing token of a group, journaled with every move begun under it.
        self._token_of = token_of
        self.targets = Targets(cloud, store)
        self.reader = Reader(cloud, clock, self._interruptions.checkpoint, on_wait)
        self.steps = StepRunner(
            cloud,
            clock,
            self.reader,
            self._interruptions,
            guard=guard,
            eip_grace_s=eip_follow_grace_s,
        )
        # STS, asked off the move's path: after its first mutating call (see identity).
        self.identity = CallerIdentity(lambda: cloud.caller_identity())

    # -- choosing -----------------------------------------------------------------------------

    def choose_target(self, view: GroupView, group: Group, requested: str | None) -> str:
        """`requested` if AWS's rules allow it, else the first running, rule-clean standby."""
        return self.targets.choose(view, group, requested)

    def preview(self, group: Group, target: str | None = None) -> tuple[GroupView, Plan]:
        """What a move would do now: the view it starts from and its plan. Touches nothing."""
        view = self.cloud.observe(group)
        chosen = self.choose_target(view, group, target)
        return view, plan_move(view, group, chosen)

    # -- moving ------------------------------------------------------------------------------

    def observe(self, group: Group, taking: Taking | None = None) -> Observation:
        """Read the group from AWS now: a move started within FRESH_VIEW_S may start from it.

        `taking`: the likely target and its remembered eth0, whose DryRuns go out with the read;
        the move uses their verdicts only for the very calls the read leads to.
        """
        read = self.reader.observe(group, taking)
        return Observation(read.view, read.resource_at or 0.0, read.asked)

    def move(
        self,
        group: Group,
        *,
        target: str | None = None,
        force: bool = False,
        source_failed: bool = False,
        reason: str = "",
        alternatives: Sequence[str] = (),
        observed: Observation | None = None,
    ) -> MoveResult:
        """Move the group's resource to `target` (or the best candidate).

        The caller finishes a journaled move first (`resume`; the switchover service does).
        `force` (the operator's --force) and `source_failed` (probes or EC2 say the member
        being left is down) are what allow a Force detach when a graceful one hangs.
        Before the first mutating call of a move of several calls, the target's calls are
        DryRun: a target IAM refuses (or one a Force detach may have left with its device index
        busy) is passed over for the next of `alternatives` (members the caller also judged
        fit), never half-moved to. A move of one call is its own check. Verdicts sent with the
        read (`observed.asked`: the likely target's, its eth0 remembered) stand for the very
        calls the read leads to; any other is DryRun now.
        `observed`: the read the caller decided on, used instead of a new one while fresh.
        """
        # move_timeout counts from here: the DryRuns before the first mutating call are the move's.
        started = self.clock.monotonic()
        # One read serves the choice, the plan, the journal and (while fresh) the first step.
        read = (
            Read(observed.view, observed.at, observed.at, observed.asked)
            if observed is not None and self.clock.monotonic() - observed.at <= FRESH_VIEW_S
            else self.reader.observe(group)
        )
        view = read.view
        chosen = self.choose_target(view, group, target)
        plan = plan_move(view, group, chosen)
        if not plan.steps:
            return MoveResult(group.name, "nothing-to-do", view.active, chosen)
        options = [chosen] + [
            a
            for a in alternatives
            if a not in (chosen, view.active) and rule_violation(view, group, a) is None
        ]
        if plan.one_call and group.mode is not Mode.ENI:
            # A move that is one call is its own permission check: refused, it changed nothing,
            # and the refusal, judged on a fresh read, passes the target over as a DryRun would.
            # Without the DryRun a move is a round trip shorter and costs one token, not two, of
            # the action's bucket (an AZ failure moves hundreds). An ENI keeps its screening:
            # the Force-detach memory is no IAM question.
            picked, skipped = chosen, []
        else:
            with self.cloud.bounded(self._time_left(group, started)):
                screened = self.targets.screen(group, view, options, force=force, asked=read.asked)
            if screened.picked is None:
                raise screened.refusal(group)
            picked, skipped = screened.picked, screened.skipped
        if picked != chosen:
            log.warning("group %s: passed over %s", group.name, "; ".join(skipped))
            chosen, plan = picked, plan_move(view, group, picked)
        leaving = view.member(plan.source) if plan.source else None
        record = MoveRecord(
            move_id=uuid.uuid4().hex[:12],
            group=group.name,
            mode=str(group.mode),
            resource=group.resource,
            source=plan.source,
            target=chosen,
            # Known when an earlier move of this process asked; else written in when STS answers.
            caller=self.identity.known() or "",
            reason=(reason or f"manual move to {chosen}")
            + (f" (passed over {'; '.join(skipped)})" if skipped else ""),
            started_at=self.clock.now(),
            forced=force or source_failed or leaving is None or leaving.failed_in_ec2,
            token=self._token_of(group.name) if self._token_of is not None else None,
            driver=self.driver,
            os_user=self._os_user,
            operator_forced=force,
        )
        if (signum := self._interruptions.requested()) is not None:
            raise MoveInterruptedError(group.name, group.resource, signal_name(signum), signum)
        if self._guard is not None:
            self._guard(group.name)  # no journal entry for a move we may not make
        self.store.begin_move(record)
        if not record.caller:
            self.identity.when_known(lambda arn: self.store.record_caller(record.move_id, arn))
        log.info(
            "move %s of group %s: %s -> %s (%s)",
            record.move_id,
            group.name,
            plan.source,
            chosen,
            record.reason,
        )
        result = self._execute(group, record, read, started=started)
        return replace(result, skipped=tuple(skipped))

    def resume(self, group: Group, *, force: bool = False) -> list[MoveResult]:
        """Finish every move of `group` the journal shows as started but not finished.

        Whether a hanging detach may be Forced is judged again now, not trusted from the
        journal: the member being left may have recovered since the crash. A resumed move
        may Force only with the operator's `force`, or when its journal allowed it and EC2
        still shows that member failed. Otherwise a hang ends the resume, and the health
        pass (which knows the probes) decides again.
        """
        results = []
        for journaled in self.store.open_moves(group.name):
            read = self.reader.observe(group)
            leaving = read.view.member(journaled.source) if journaled.source else None
            still_failed = leaving is None or leaving.failed_in_ec2
            record = replace(journaled, forced=force or (journaled.forced and still_failed))
            log.warning(
                "group %s: resuming move %s (%s -> %s) left unfinished at %s",
                group.name,
                record.move_id,
                record.source,
                record.target,
                when(record.started_at),
            )
            results.append(self._execute(group, record, read, resumed=True))
        return results

    def caller(self) -> str:
        """Who is acting, for the audit trail (asked of STS once per process; waits for it)."""
        return self.identity.get()

    def _time_left(self, group: Group, started: float) -> Callable[[], float]:
        """Seconds left of the move begun at `started` (monotonic), for the Cloud's bound."""
        return lambda: started + group.policy.move_timeout_s - self.clock.monotonic()

    def _execute(
        self,
        group: Group,
        record: MoveRecord,
        read: Read | None,
        *,
        resumed: bool = False,
        started: float | None = None,
    ) -> MoveResult:
        start = self.clock.monotonic() if started is None else started
        deadline = start + group.policy.move_timeout_s
        target, tried = record.target, set[str]()
        journal = MoveJournal(self.store, self.clock, record, self._on_step)
        first: TargetRefused | None = None
        try:
            # No call of the move starts after its deadline (the error path's read is outside).
            with self.cloud.bounded(self._time_left(group, start)):
                while True:
                    try:
                        self._run_plan(group, journal, target, deadline, read)
                        break
                    except TargetRefused as refused:
                        first = first or refused
                        tried.add(refused.target)
                        target, read = self._next_target(group, journal, tried, refused)
            if first is not None and target == record.source:
                # Back where it started (never left unowned): the move failed, and why.
                if isinstance(first.cause, PermissionDeniedError):
                    raise first.cause
                raise MoveFailedError(
                    group.name,
                    group.resource,
                    f"{first.target} refused ({first.why}); it stays on {target}",
                )
        except LeaseLostError:
            # Another orchestrator holds the group now: its journal replay finishes the move.
            log.error(
                "move %s of group %s abandoned: the lease was lost", record.move_id, group.name
            )
            raise
        except Stop as stop:
            raise self._interruptions.stopped(group, journal, stop.signum) from None
        except FailoverError as exc:
            journal.close_failed(self.cloud, group, exc)
            raise
        finally:
            self.identity.start()  # a move that made no mutating call still names its caller
        elapsed = self.clock.monotonic() - start
        detail = (
            f"now on {target}"
            if target == record.target
            else f"now on {target} (instead of {record.target})"
        )
        self.store.finish_move(record.move_id, "succeeded", self.clock.now(), detail, target)
        log.info(
            "move %s of group %s succeeded in %.2fs: %s",
            record.move_id,
            group.name,
            elapsed,
            detail,
        )
        return MoveResult(
            group.name,
            "succeeded",
            record.source,
            target,
            record.move_id,
            elapsed,
            resumed,
            tuple(journal.events),
        )

    def _next_target(
        self,
        group: Group,
        journal: MoveJournal,
        tried: set[str],
        refused: TargetRefused,
    ) -> tuple[str, Read]:
        """After a target refused: the next candidate, and the member being left as the last resort.

        Never leave the ENI detached while any member can take it, even the one it came from.
        The read it chose on is handed to the next attempt, which re-reads if it is no longer fresh.
        """
        read = self.reader.observe(group)
        view = read.view
        screened = self.targets.after_refusal(group, view, journal.record.source, tried)
        picked = screened.picked
        if picked is None:
            if isinstance(refused.cause, PermissionDeniedError) and len(screened.denied) == len(
                screened.skipped
            ):
                # IAM refused every member it was asked about: that is the one thing to fix.
                raise refused.cause
            passed = f"; passed over {'; '.join(screened.skipped)}" if screened.skipped else ""
            raise MoveFailedError(
                group.name,
                group.resource,
                f"{refused.target} refused ({refused.why}) and no other member can take it{passed}",
            )
        journal.emit(
            None,
            StepRecord(
                "retarget",
                f"{refused.target} refused: {refused.why}; trying {picked}",
                "done",
                self.clock.now(),
            ),
        )
        return picked, read

    def _run_plan(
        self,
        group: Group,
        journal: MoveJournal,
        target: str,
        deadline: float,
        read: Read | None,
    ) -> None:
        read = self.reader.current(group, read)
        view = read.view
        if view.active != target and (violation := rule_violation(view, group, target)) is not None:
            raise TargetRefused(target, violation)
        plan = plan_move(view, group, target)
        for step in plan.skipped:
            journal.step(step, "skipped", None, "already true in AWS")
        for step in plan.steps:
            self._interruptions.checkpoint()
            began = self.clock.monotonic()
            journal.step(step, "started")
            try:
                detail, read = self.steps.run(group, journal.record, step, deadline, read)
            except LeaseLostError:
                raise  # a lost lease: journal nothing more, the group is another's now
            except Stop as stop:
                detail = BEFORE_CALL if step.kind in MUTATING_STEPS and not stop.sent else ""
                journal.step(step, "interrupted", began, detail)
                raise
            except TargetRefused as refused:
                # Closed in the journal too: the retarget that follows is a new attempt.
                journal.step(step, "failed", began, refused.why)
                raise
            except FailoverError as exc:
                journal.step(step, "failed", began, str(exc))
                raise
            journal.step(step, "done", began, detail)
            if step.kind in MUTATING_STEPS:
                # Not before: STS must never delay a call that changes AWS (see identity).
                self.identity.start()
