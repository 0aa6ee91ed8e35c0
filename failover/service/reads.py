"""The engine's reads of a group: one stands in for AWS only while fresh and before any call of ours."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from failover.core.model import GroupView, Permission, Step, StepKind
from failover.core.planner import step_done
from failover.core.ports import Clock, Cloud
from failover.service import converge

if TYPE_CHECKING:
    from failover.config import Group

# The longest gap between two polls of a wait.
WAIT_POLL_S = 0.2
# How old the engine's own read of a group may be and still stand in for a fresh one before
# a mutating call (if no mutating call of ours came after it). Observe-then-call was never
# atomic: under pacing the old re-read already sat this long before its call (a Describe
# pair, then the wait for a mutating token), and AWS's own refusal, answered by retargeting,
# is the backstop. Past this age, or after any mutating call, the step reads AWS again.
FRESH_VIEW_S = 1.0
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

# (step, seconds waited so far, seconds the wait may take): a wait's progress, for a TTY.
WaitListener = Callable[[Step, float, float], None]


@dataclass(frozen=True)
class Read:
    """A view the engine read, and when (monotonic) its members and its floating resource were read.

    None: read before a mutating call of ours, so it may no longer be what AWS says.
    Reads are not repeated without cause: one read serves the choice, the plan and the
    first mutating step's checks; a wait polls only the floating resource; the next
    mutating step reads the group again, since a call of ours came in between.
    """

    view: GroupView
    members_at: float | None
    resource_at: float | None
    # IAM's verdicts on a target's calls asked on the read's own round trip (Cloud.observe_asking).
    asked: Mapping[str, Permission] = field(default_factory=dict)

    def fresh(self, now: float) -> bool:
        """Whether the whole view may stand in for a re-read at `now` (FRESH_VIEW_S)."""
        if self.members_at is None or self.resource_at is None:
            return False
        return now - min(self.members_at, self.resource_at) <= FRESH_VIEW_S

    def spent(self) -> Read:
        """This read after a mutating call: still a base for polling the resource, never fresh."""
        return replace(self, members_at=None, resource_at=None)


@dataclass(frozen=True)
class Observation:
    """A read of a group the engine may start a move from while it is fresh (`at`: monotonic)."""

    view: GroupView
    at: float
    asked: Mapping[str, Permission] = field(default_factory=dict)  # as Read's


Taking = tuple[str, str | None]
"""A move's likely target and its eth0 as an earlier read showed it (None: unknown), whose
DryRuns go out with the read (Cloud.observe_asking)."""


class Reader:
    """Reads a group from AWS, reuses a read while fresh, and polls until a step shows done."""

    def __init__(
        self,
        cloud: Cloud,
        clock: Clock,
        checkpoint: Callable[[], None],
        on_wait: WaitListener | None = None,
    ) -> None:
        self.cloud, self.clock = cloud, clock
        # A step boundary between polls: raises to stop the move (see interruption).
        self._checkpoint = checkpoint
        self._on_wait = on_wait

    def observe(self, group: Group, taking: Taking | None = None) -> Read:
        """Read the whole group from AWS now (its age counted from before the call); with
        `taking`, that target's DryRuns go out on the same round trip."""
        at = self.clock.monotonic()
        if taking is None:
            return Read(self.cloud.observe(group), at, at)
        view, asked = self.cloud.observe_asking(group, *taking)
        return Read(view, at, at, asked)

    def current(self, group: Group, read: Read | None) -> Read:
        """`read` while it is fresh (FRESH_VIEW_S, no mutating call since), else a new read."""
        if read is not None and read.fresh(self.clock.monotonic()):
            return read
        return self.observe(group)

    def wait(self, group: Group, step: Step, deadline: float, base: Read) -> Read:
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

        def poll() -> Read:
            self._checkpoint()
            at = self.clock.monotonic()
            if self._on_wait is not None:
                self._on_wait(step, at - began, max(0.0, deadline - began))
            if step.kind in _RESOURCE_WAITS:
                read = Read(self.cloud.refresh(group, last[0].view), last[0].members_at, at)
            else:
                read = Read(self.cloud.observe(group), at, at)
            last[0] = read
            return read

        return converge.until(
            poll,
            lambda read: step_done(step, read.view, group),
            clock=self.clock,
            deadline=deadline,
            max_wait_s=WAIT_POLL_S,
        )
