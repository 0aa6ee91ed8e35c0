"""One step of a move: read AWS first, skip what it shows done, and believe a refusal only after re-reading."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from failover.core.durations import format_duration
from failover.core.errors import (
    FailoverError,
    MoveFailedError,
    PermanentCloudError,
    StuckDetachError,
    TransientCloudError,
)
from failover.core.model import MUTATING_STEPS, GroupView, Step, StepKind
from failover.core.planner import expected_eip_target, rule_violation, step_done
from failover.core.ports import Clock, Cloud, MoveRecord
from failover.service import converge
from failover.service.interruption import Interruptions
from failover.service.reads import Read, Reader
from failover.service.targets import FORCED_DETAIL

if TYPE_CHECKING:
    from failover.config import Group

log = logging.getLogger(__name__)

# How long AWS gets to carry an EIP along with a reassigned secondary IP before we
# re-associate it ourselves (AWS does it asynchronously, usually within seconds).
EIP_FOLLOW_GRACE_S = 5.0
# Steps that put the resource on the target: AWS's refusal of one may be the target's fault.
_TARGET_STEPS = frozenset(
    {StepKind.ATTACH, StepKind.ASSIGN_IP, StepKind.ASSOCIATE_EIP, StepKind.REPLACE_ROUTE}
)


class TargetRefused(Exception):
    """The chosen target cannot take the resource (AWS refused, or a rule says no)."""

    def __init__(self, target: str, why: str, cause: FailoverError | None = None) -> None:
        super().__init__(why)
        self.target, self.why, self.cause = target, why, cause


class StepRunner:
    """Runs one step of a plan against the Cloud: the call, its wait, the Force-detach last resort."""

    def __init__(
        self,
        cloud: Cloud,
        clock: Clock,
        reader: Reader,
        interruptions: Interruptions,
        *,
        guard: Callable[[str], None] | None = None,
        eip_grace_s: float = EIP_FOLLOW_GRACE_S,
    ) -> None:
        self.cloud, self.clock, self.reader = cloud, clock, reader
        self._interruptions = interruptions
        # Called with the group name before every mutating call; raises to abandon (lease lost).
        self._guard = guard
        self.eip_grace_s = eip_grace_s

    def run(
        self, group: Group, record: MoveRecord, step: Step, deadline: float, read: Read
    ) -> tuple[str, Read]:
        """Run one step from the last read of the group; return its detail and the newest read."""
        if step.kind in MUTATING_STEPS:
            return self._mutate(group, step, deadline, read)
        if step.kind is StepKind.WAIT_DETACHED:
            return self._wait_detached(group, record, step, deadline, read)
        if step.kind is StepKind.WAIT_EIP_FOLLOWS:
            grace = min(deadline, self.clock.monotonic() + self.eip_grace_s)
            read = self.reader.wait(group, step, grace, read)
            followed = step_done(step, read.view, group)
            return ("followed the IP" if followed else "did not follow: re-associating"), read
        read = self.reader.wait(group, step, deadline, read)
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

    def _mutate(self, group: Group, step: Step, deadline: float, read: Read) -> tuple[str, Read]:
        """Read AWS (or take `read` while fresh), skip if already true, re-check the rules, then call.

        Only the first attempt may take `read`; a retry after a transient error reads again.
        """
        handed = [read]
        calls = [0]

        def attempt() -> tuple[str, Read]:
            current = self.reader.current(group, handed.pop() if handed else None)
            view = current.view
            if step_done(step, view, group):
                return "already true in AWS", current
            if view.active != step.target and (
                violation := rule_violation(view, group, step.target)
            ):
                raise TargetRefused(step.target, violation)
            # The last boundary before a call that changes AWS (after one that may have landed).
            self._interruptions.checkpoint(sent=calls[0] > 0)
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
    ) -> tuple[str, Read]:
        """AWS refused a step's call: read AWS before believing it.

        A call retried after its reply was lost is refused against the state it made
        (AttachNetworkInterface, which takes no idempotency token, answers InUse): a step
        AWS shows done is done. An ENI still attached elsewhere (a detach settling) is a
        wait, until the deadline. Only a refusal AWS's state does not explain is the
        target's, and moves the resource on to another member.
        """
        read = self.reader.observe(group)
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
            raise TargetRefused(step.target, why, exc) from None
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
            raise TargetRefused(
                step.target, f"{step.target} has no private IP to take the Elastic IP"
            )
        self.cloud.associate_address(step.resource, *want)
        return f"on {want[0]} / {want[1]}"

    def _wait_detached(
        self, group: Group, record: MoveRecord, step: Step, deadline: float, read: Read
    ) -> tuple[str, Read]:
        """Wait for `available`; past detach_timeout, Force only when the member being left has failed.

        Force is a last resort: AWS may keep the device index busy on the old instance and
        its OS keeps a stale interface, so a planned move from a healthy member never uses it.
        """
        timeout = group.policy.detach_timeout_s
        read = self.reader.wait(group, step, min(deadline, self.clock.monotonic() + timeout), read)
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
        read = self.reader.wait(group, step, deadline, read.spent())
        if not step_done(step, read.view, group):
            raise MoveFailedError(
                group.name,
                step.resource,
                f"forced detach from {source} did not finish before move_timeout",
            )
        return f"{FORCED_DETAIL} the detach from {source} after detach_timeout", read
