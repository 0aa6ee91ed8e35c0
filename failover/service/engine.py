"""One move, step by step: observe, plan, journal, act, re-observe, under AWS's rules.

The daemon, the cron check and the manual `failover move` all drive this engine.
Before every step it reads AWS fresh and skips what is already true, so a move that
a crash interrupted is finished by running it again (`resume`). The journal gets the
intent before the first AWS call and every step before and after its call.

Reads are not repeated without cause: one observation serves the choice, the plan and
the first mutating step's checks; a wait polls only the floating resource; the next
mutating step reads the group again, since a call of ours came in between (`_Read`).

A stop request (the CLI's SIGINT/SIGTERM) is honoured at step boundaries: before each
step, before each mutating call and between the polls of a wait, never in the middle of
a call. The journal records where the move stopped and keeps it open for the next run,
unless no mutating call had been sent (then it is closed as `interrupted`).
"""

from __future__ import annotations

import logging
import signal
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from failover.core.durations import format_duration, when
from failover.core.errors import (
    CloudError,
    FailoverError,
    LeaseLostError,
    MoveFailedError,
    MoveInterruptedError,
    PermanentCloudError,
    PermissionDeniedError,
    StuckDetachError,
    TransientCloudError,
)
from failover.core.model import MUTATING_STEPS, GroupView, Plan, Step, StepKind
from failover.core.planner import (
    expected_eip_target,
    plan_move,
    rule_violation,
    step_done,
)
from failover.core.ports import Clock, Cloud, MoveRecord, StepRecord, Store
from failover.service import converge
from failover.service.targets import FORCED_DETAIL, Targets

if TYPE_CHECKING:
    from failover.config import Group

log = logging.getLogger(__name__)

# How long AWS gets to carry an EIP along with a reassigned secondary IP before we
# re-associate it ourselves (AWS does it asynchronously, usually within seconds).
EIP_FOLLOW_GRACE_S = 5.0
# The longest gap between two polls of a wait.
WAIT_POLL_S = 0.2
# How old the engine's own read of a group may be and still stand in for a fresh one before
# a mutating call (if no mutating call of ours came after it). Observe-then-call was never
# atomic: under pacing the old re-read already sat this long before its call (a Describe
# pair, then the wait for a mutating token), and AWS's own refusal, answered by retargeting,
# is the backstop. Past this age, or after any mutating call, the step reads AWS again.
FRESH_VIEW_S = 1.0
# Steps that put the resource on the target: AWS's refusal of one may be the target's fault.
_TARGET_STEPS = frozenset(
    {StepKind.ATTACH, StepKind.ASSIGN_IP, StepKind.ASSOCIATE_EIP, StepKind.REPLACE_ROUTE}
)
# Waits whose outcome shows in the floating resource alone (not in the members' interfaces).
_RESOURCE_WAITS = frozenset(
    {
        StepKind.WAIT_DETACHED,
        StepKind.WAIT_ATTACHED,
        StepKind.WAIT_EIP_FOLLOWS,
        StepKind.WAIT_EIP,
        StepKind.WAIT_ROUTES,
    }
)


@dataclass(frozen=True)
class _Read:
    """A view the engine read, and when (monotonic) its members and its floating resource were read.

    None: read before a mutating call of ours, so it may no longer be what AWS says.
    """

    view: GroupView
    members_at: float | None
    resource_at: float | None

    def fresh(self, now: float) -> bool:
        """Whether the whole view may stand in for a re-read at `now` (FRESH_VIEW_S)."""
        if self.members_at is None or self.resource_at is None:
            return False
        return now - min(self.members_at, self.resource_at) <= FRESH_VIEW_S

    def spent(self) -> _Read:
        """This read after a mutating call: still a base for polling the resource, never fresh."""
        return replace(self, members_at=None, resource_at=None)


@dataclass(frozen=True)
class Observation:
    """A read of a group the engine may start a move from while it is fresh (`at`: monotonic)."""

    view: GroupView
    at: float


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


class _TargetRefused(Exception):
    """The chosen target cannot take the resource (AWS refused, or a rule says no)."""

    def __init__(self, target: str, why: str, cause: FailoverError | None = None) -> None:
        super().__init__(why)
        self.target, self.why, self.cause = target, why, cause


class _Stop(Exception):
    """A stop was requested; raised at a step boundary and turned into MoveInterruptedError.

    `sent`: the step had already sent its call once (a retry was due), so AWS may have applied it.
    """

    def __init__(self, signum: int, *, sent: bool = False) -> None:
        super().__init__(signum)
        self.signum, self.sent = signum, sent


# The detail of a mutating step's `interrupted` event when its call was never sent.
_BEFORE_CALL = "stopped before its call"


StepListener = Callable[[Step | None, StepRecord], None]
# (step, seconds waited so far, seconds the wait may take): a wait's progress, for a TTY.
WaitListener = Callable[[Step, float, float], None]
# The number of the signal that asked the move to stop, or None.
StopRequest = Callable[[], int | None]


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
        self._on_wait = on_wait
        # Asked at every step boundary: a signal's number there stops the move (see module doc).
        self._stop = stop
        # Called with the group name before every mutating call; raises to abandon (lease lost).
        self._guard = guard
        # The lease's fencing token of a group, journaled with every move begun under it.
        self._token_of = token_of
        self._eip_grace_s = eip_follow_grace_s
        self.targets = Targets(cloud, store)
        self._caller: str | None = None

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

    def observe(self, group: Group) -> Observation:
        """Read the group from AWS now: a move started within FRESH_VIEW_S may start from it."""
        read = self._observe(group)
        return Observation(read.view, read.resource_at or 0.0)

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
        Before the first mutating call, the target's calls are DryRun: a target IAM refuses
        (or one a Force detach may have left with its device index busy) is passed over for
        the next of `alternatives` (members the caller also judged fit), never half-moved to.
        `observed`: the read the caller decided on, used instead of a new one while fresh.
        """
        # move_timeout counts from here: the DryRuns before the first mutating call are the move's.
        started = self.clock.monotonic()
        # One read serves the choice, the plan, the journal and (while fresh) the first step.
        read = (
            _Read(observed.view, observed.at, observed.at)
            if observed is not None and self.clock.monotonic() - observed.at <= FRESH_VIEW_S
            else self._observe(group)
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
        with self.cloud.bounded(self._time_left(group, started)):
            screened = self.targets.screen(group, view, options, force=force)
        picked, skipped = screened.picked, screened.skipped
        if picked is None:
            raise screened.refusal(group)
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
            caller=self.caller(),
            reason=(reason or f"manual move to {chosen}")
            + (f" (passed over {'; '.join(skipped)})" if skipped else ""),
            started_at=self.clock.now(),
            forced=force or source_failed or leaving is None or leaving.failed_in_ec2,
            token=self._token_of(group.name) if self._token_of is not None else None,
            driver=self.driver,
            os_user=self._os_user,
            operator_forced=force,
        )
        if (signum := self._stop_requested()) is not None:
            raise MoveInterruptedError(group.name, group.resource, _signal_name(signum), signum)
        if self._guard is not None:
            self._guard(group.name)  # no journal entry for a move we may not make
        self.store.begin_move(record)
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
            read = self._observe(group)
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
        """Who is acting, for the audit trail (asked of STS once per process)."""
        if self._caller is None:
            self._caller = self.cloud.caller_identity()
        return self._caller

    def _time_left(self, group: Group, started: float) -> Callable[[], float]:
        """Seconds left of the move begun at `started` (monotonic), for the Cloud's bound."""
        return lambda: started + group.policy.move_timeout_s - self.clock.monotonic()

    def _execute(
        self,
        group: Group,
        record: MoveRecord,
        read: _Read | None,
        *,
        resumed: bool = False,
        started: float | None = None,
    ) -> MoveResult:
        start = self.clock.monotonic() if started is None else started
        deadline = start + group.policy.move_timeout_s
        target, tried = record.target, set[str]()
        events: list[StepRecord] = []
        first: _TargetRefused | None = None
        try:
            # No call of the move starts after its deadline (the error path's read is outside).
            with self.cloud.bounded(self._time_left(group, start)):
                while True:
                    try:
                        self._run_plan(group, record, target, deadline, events, read)
                        break
                    except _TargetRefused as refused:
                        first = first or refused
                        tried.add(refused.target)
                        target, read = self._next_target(group, record, tried, refused, events)
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
        except _Stop as stop:
            raise self._interrupted(group, record, events, stop.signum) from None
        except FailoverError as exc:
            self._close_failed(group, record, exc)
            raise
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
            tuple(events),
        )

    def _next_target(
        self,
        group: Group,
        record: MoveRecord,
        tried: set[str],
        refused: _TargetRefused,
        events: list[StepRecord],
    ) -> tuple[str, _Read]:
        """After a target refused: the next candidate, and the member being left as the last resort.

        Never leave the ENI detached while any member can take it, even the one it came from.
        The read it chose on is handed to the next attempt, which re-reads if it is no longer fresh.
        """
        read = self._observe(group)
        view = read.view
        screened = self.targets.after_refusal(group, view, record.source, tried)
        picked = screened.picked
        if picked is None:
            passed = f"; passed over {'; '.join(screened.skipped)}" if screened.skipped else ""
            raise MoveFailedError(
                group.name,
                group.resource,
                f"{refused.target} refused ({refused.why}) and no other member can take it{passed}",
            )
        self._emit(
            None,
            record,
            events,
            StepRecord(
                "retarget",
                f"{refused.target} refused: {refused.why}; trying {picked}",
                "done",
                self.clock.now(),
            ),
        )
        return picked, read

    def _interrupted(
        self, group: Group, record: MoveRecord, events: list[StepRecord], signum: int
    ) -> MoveInterruptedError:
        """Journal where a stopped move stands and say it: open if a mutating call may have been sent."""
        name = _signal_name(signum)
        steps = (*record.steps, *events)
        sent = any(
            s.kind in MUTATING_STEPS
            and (
                s.phase in ("done", "failed")
                or (s.phase == "interrupted" and s.detail != _BEFORE_CALL)
            )
            for s in steps
        )
        finished = [s.description for s in steps if s.phase in ("done", "skipped")]
        self._emit(
            None,
            record,
            events,
            StepRecord("interrupted", f"stopped by {name}", "interrupted", self.clock.now()),
        )
        aws_now = ""
        try:
            aws_now = self.cloud.observe(group).whereabouts()
        except CloudError as exc:
            log.warning("group %s: cannot read AWS after the stop: %s", group.name, exc)
        if not sent:
            self.store.finish_move(
                record.move_id, "interrupted", self.clock.now(), f"stopped by {name}: nothing sent"
            )
        error = MoveInterruptedError(
            group.name,
            group.resource,
            name,
            signum,
            move_id=record.move_id,
            source=record.source,
            target=record.target,
            unfinished=sent,
            after=finished[-1] if finished else None,
            aws_now=aws_now,
        )
        # The driver reports it (the CLI's one line, a check's outcome): logged only for the record.
        log.info("%s", error)
        return error

    def _stop_requested(self) -> int | None:
        return self._stop() if self._stop is not None else None

    def _checkpoint(self, *, sent: bool = False) -> None:
        """A step boundary: raise _Stop if a stop was requested."""
        if (signum := self._stop_requested()) is not None:
            raise _Stop(signum, sent=sent)

    def _close_failed(self, group: Group, record: MoveRecord, exc: FailoverError) -> None:
        """Close the journal entry, unless the resource is left unowned: then the next run finishes it."""
        try:
            view = self.cloud.observe(group)
        except CloudError:
            return  # cannot tell: keep the journal open, the next run re-reads AWS
        if view.active is None:
            log.error(
                "move %s of group %s stopped with %s unowned; the next run finishes it",
                record.move_id,
                group.name,
                group.resource,
            )
            return
        self.store.finish_move(record.move_id, "failed", self.clock.now(), str(exc))

    def _run_plan(
        self,
        group: Group,
        record: MoveRecord,
        target: str,
        deadline: float,
        events: list[StepRecord],
        read: _Read | None,
    ) -> None:
        read = self._current(group, read)
        view = read.view
        if view.active != target and (violation := rule_violation(view, group, target)) is not None:
            raise _TargetRefused(target, violation)
        plan = plan_move(view, group, target)
        for step in plan.skipped:
            self._emit(
                step, record, events, self._event(step, "skipped", None, "already true in AWS")
            )
        for step in plan.steps:
            self._checkpoint()
            began = self.clock.monotonic()
            self._emit(step, record, events, self._event(step, "started"))
            try:
                detail, read = self._run_step(group, record, step, deadline, read)
            except LeaseLostError:
                raise  # a lost lease: journal nothing more, the group is another's now
            except _Stop as stop:
                detail = _BEFORE_CALL if step.kind in MUTATING_STEPS and not stop.sent else ""
                self._emit(step, record, events, self._event(step, "interrupted", began, detail))
                raise
            except _TargetRefused as refused:
                # Closed in the journal too: the retarget that follows is a new attempt.
                self._emit(step, record, events, self._event(step, "failed", began, refused.why))
                raise
            except FailoverError as exc:
                self._emit(step, record, events, self._event(step, "failed", began, str(exc)))
                raise
            self._emit(step, record, events, self._event(step, "done", began, detail))

    def _event(
        self, step: Step, phase: str, began: float | None = None, detail: str = ""
    ) -> StepRecord:
        """A journal event for `step`; `began` (monotonic) gives its elapsed time."""
        elapsed = self.clock.monotonic() - began if began is not None else 0.0
        return StepRecord(step.kind, step.describe(), phase, self.clock.now(), elapsed, detail)

    def _emit(
        self, step: Step | None, record: MoveRecord, events: list[StepRecord], event: StepRecord
    ) -> None:
        self.store.record_step(record.move_id, event)
        events.append(event)
        if self._on_step is not None:
            self._on_step(step, event)

    # -- reading AWS -------------------------------------------------------------------------

    def _observe(self, group: Group) -> _Read:
        """Read the whole group from AWS now (its age counted from before the call)."""
        at = self.clock.monotonic()
        return _Read(self.cloud.observe(group), at, at)

    def _current(self, group: Group, read: _Read | None) -> _Read:
        """`read` while it is fresh (FRESH_VIEW_S, no mutating call since), else a new read."""
        if read is not None and read.fresh(self.clock.monotonic()):
            return read
        return self._observe(group)

    # -- one step ----------------------------------------------------------------------------

    def _run_step(
        self, group: Group, record: MoveRecord, step: Step, deadline: float, read: _Read
    ) -> tuple[str, _Read]:
        """Run one step from the last read of the group; return its detail and the newest read."""
        if step.kind in MUTATING_STEPS:
            return self._mutate(group, step, deadline, read)
        if step.kind is StepKind.WAIT_DETACHED:
            return self._wait_detached(group, record, step, deadline, read)
        if step.kind is StepKind.WAIT_EIP_FOLLOWS:
            grace = min(deadline, self.clock.monotonic() + self._eip_grace_s)
            read = self._wait(group, step, grace, read)
            followed = step_done(step, read.view, group)
            return ("followed the IP" if followed else "did not follow: re-associating"), read
        read = self._wait(group, step, deadline, read)
        view = read.view
        if not step_done(step, view, group):
            raise MoveFailedError(
                group.name,
                step.resource,
                f"{step.describe()}: not true after move_timeout {format_duration(group.policy.move_timeout_s)}",
            )
        if step.kind is StepKind.WAIT_ATTACHED and view.eni and view.eni.attachment:
            att = view.eni.attachment
            if att.delete_on_termination:
                # A floating ENI must outlive the instance it is on.
                self.cloud.keep_on_termination(view.eni.eni_id, att.attachment_id)
                return (
                    f"attached as {att.attachment_id}; DeleteOnTermination turned off",
                    read.spent(),
                )
            return f"attached as {att.attachment_id}", read
        return "", read

    def _wait(self, group: Group, step: Step, deadline: float, base: _Read) -> _Read:
        """Poll until AWS shows the step done, every poll a read made after the step's call.

        Waits for the ENI or the EIP depend on nothing else, so a poll re-reads only the
        floating resource (one describe) over `base`, the read the step's call was made on:
        the members it carries are used only for the target's primary ENI and IP, which no
        move changes. Other waits (an IP leaving its old ENI) read the whole group. Polls
        stay at most WAIT_POLL_S apart, because the slack after AWS finished is failover
        time the user waits for (bench/RESULTS.md).
        """
        last = [base]
        began = self.clock.monotonic()

        def poll() -> _Read:
            self._checkpoint()
            at = self.clock.monotonic()
            if self._on_wait is not None:
                self._on_wait(step, at - began, max(0.0, deadline - began))
            if step.kind in _RESOURCE_WAITS:
                read = _Read(self.cloud.refresh(group, last[0].view), last[0].members_at, at)
            else:
                read = _Read(self.cloud.observe(group), at, at)
            last[0] = read
            return read

        return converge.until(
            poll,
            lambda read: step_done(step, read.view, group),
            clock=self.clock,
            deadline=deadline,
            max_wait_s=WAIT_POLL_S,
        )

    def _mutate(self, group: Group, step: Step, deadline: float, read: _Read) -> tuple[str, _Read]:
        """Read AWS (or take `read` while fresh), skip if already true, re-check the rules, then call.

        Only the first attempt may take `read`; a retry after a transient error reads again.
        """
        handed = [read]
        calls = [0]

        def attempt() -> tuple[str, _Read]:
            current = self._current(group, handed.pop() if handed else None)
            view = current.view
            if step_done(step, view, group):
                return "already true in AWS", current
            if view.active != step.target and (
                violation := rule_violation(view, group, step.target)
            ):
                raise _TargetRefused(step.target, violation)
            # The last boundary before a call that changes AWS (after one that may have landed).
            self._checkpoint(sent=calls[0] > 0)
            if self._guard is not None:
                self._guard(group.name)
            calls[0] += 1
            try:
                return self._call(group, step, view), current.spent()
            except PermanentCloudError as exc:
                return self._judge_refusal(group, step, exc)

        return converge.until(attempt, lambda _: True, clock=self.clock, deadline=deadline)

    def _judge_refusal(
        self, group: Group, step: Step, exc: PermanentCloudError
    ) -> tuple[str, _Read]:
        """AWS refused a step's call: read AWS before believing it.

        A call retried after its reply was lost is refused against the state it made
        (AttachNetworkInterface, which takes no idempotency token, answers InUse): a step
        AWS shows done is done. An ENI still attached elsewhere (a detach settling) is a
        wait, until the deadline. Only a refusal AWS's state does not explain is the
        target's, and moves the resource on to another member.
        """
        read = self._observe(group)
        view = read.view
        if step_done(step, view, group):
            log.warning(
                "group %s: %s answered %s, but AWS shows it done (a retried call whose first "
                "reply was lost)",
                group.name,
                step.describe(),
                exc.code,
            )
            return f"done in AWS (the call was answered {exc.code})", read
        att = view.eni.attachment if view.eni else None
        if step.kind is StepKind.ATTACH and exc.code.endswith(".InUse") and att is not None:
            raise TransientCloudError(
                exc.action,
                exc.code,
                f"{step.resource} is still {att.status} on {att.instance_id}",
                exc.resource,
            ) from None
        if step.kind in _TARGET_STEPS:
            # A rule the fresh read shows broken says why in the operator's words.
            why = rule_violation(view, group, step.target) or f"{exc.code}: {exc.message}"
            raise _TargetRefused(step.target, why, exc) from None
        raise exc

    def _call(self, group: Group, step: Step, view: GroupView) -> str:
        target = view.member(step.target)
        assert target is not None
        if step.kind is StepKind.REPLACE_ROUTE:
            assert group.cidr is not None
            assert target.primary_eni_id is not None
            self.cloud.replace_route(step.resource, group.cidr, target.primary_eni_id)
            return f"{group.cidr} -> {target.primary_eni_id}"
        if step.kind is StepKind.DETACH:
            assert view.eni is not None
            assert view.eni.attachment is not None
            self.cloud.detach(view.eni.attachment.attachment_id, force=False)
            return f"detaching {view.eni.attachment.attachment_id}"
        if step.kind is StepKind.ATTACH:
            assert step.device_index is not None
            return f"attachment {self.cloud.attach(step.resource, step.target, step.device_index)}"
        if step.kind is StepKind.ASSIGN_IP:
            assert target.primary_eni_id is not None
            self.cloud.assign_ip(target.primary_eni_id, step.resource)
            return f"on {target.primary_eni_id}"
        want = expected_eip_target(view, group, step.target)
        if want is None:
            raise _TargetRefused(
                step.target, f"{step.target} has no private IP to take the Elastic IP"
            )
        self.cloud.associate_address(step.resource, *want)
        return f"on {want[0]} / {want[1]}"

    def _wait_detached(
        self, group: Group, record: MoveRecord, step: Step, deadline: float, read: _Read
    ) -> tuple[str, _Read]:
        """Wait for `available`; past detach_timeout, Force only when the member being left has failed.

        Force is a last resort: AWS may keep the device index busy on the old instance and
        its OS keeps a stale interface, so a planned move from a healthy member never uses it.
        """
        timeout = group.policy.detach_timeout_s
        read = self._wait(group, step, min(deadline, self.clock.monotonic() + timeout), read)
        view = read.view
        if step_done(step, view, group):
            return "", read
        att = view.eni.attachment if view.eni else None
        source = att.instance_id if att else step.source
        if not record.forced:
            # AWS's own word for where the detach stands (`detaching`), not our guess.
            state = att.status if att else (view.eni.status if view.eni else "unknown")
            raise StuckDetachError(
                group.name,
                step.resource,
                f"detach from {source} did not finish within detach_timeout {format_duration(timeout)}: "
                f"AWS shows the attachment {state}; {source} is running, so Force was not used; "
                f"rerun with --force to force the detach (AWS may keep device index {att.device_index if att else '?'} "
                f"busy on {source} until it is stopped and started)",
            )
        if att is not None:
            log.warning(
                "group %s: detach of %s from %s hangs after %s; forcing it",
                group.name,
                step.resource,
                source,
                format_duration(timeout),
            )
            if self._guard is not None:
                self._guard(group.name)
            self.cloud.detach(att.attachment_id, force=True)
        read = self._wait(group, step, deadline, read.spent())
        if not step_done(step, read.view, group):
            raise MoveFailedError(
                group.name,
                step.resource,
                f"forced detach from {source} did not finish before move_timeout",
            )
        return f"{FORCED_DETAIL} the detach from {source} after detach_timeout", read


def _signal_name(signum: int) -> str:
    """SIGINT, SIGTERM, ... (the number itself for a signal Python does not name)."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
