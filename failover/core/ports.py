"""Protocols the core needs from the outside world: Cloud, Store and Clock.

Adapters implement them (failover/aws, failover/store); tests use the same
contracts. The core never imports an adapter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from failover.core.model import GroupView

if TYPE_CHECKING:
    from failover.config import Group


@dataclass(frozen=True)
class StepRecord:
    """One step of a journaled move: `phase` is started, done, skipped, failed or interrupted."""

    kind: str
    description: str
    phase: str
    at: float
    elapsed_s: float = 0.0
    detail: str = ""


@dataclass(frozen=True)
class MoveRecord:
    """A move as the journal and history keep it.

    outcome: in-progress (the journal's open intent), succeeded, failed, refused,
    interrupted (stopped by a signal before any mutating call).
    `token` is the lease's fencing token when the move ran under a lease.
    `forced`: a Force detach is allowed (the operator's --force, or the member being left
    has failed); `operator_forced`: the operator passed --force (None: recorded before
    the store kept it).
    """

    move_id: str
    group: str
    mode: str
    resource: str
    source: str | None
    target: str
    caller: str
    reason: str
    started_at: float
    outcome: str = "in-progress"
    finished_at: float | None = None
    forced: bool = False
    token: int | None = None
    steps: tuple[StepRecord, ...] = field(default=())
    detail: str = ""
    operator_forced: bool | None = False


@dataclass(frozen=True)
class MemberHealth:
    """A member's probe counters, kept between passes (and between cron runs).

    A member counts as healthy once it has passed `rise` probes in a row, and stops
    counting once it has failed `fall` in a row; a member never seen is not healthy yet.
    `changed_at` is when `healthy` last flipped; `probed_at` when the last verdict was
    made (0: never, or recorded before the store kept it): a verdict is a hint with an age.
    """

    instance_id: str
    healthy: bool = False
    successes: int = 0
    failures: int = 0
    reason: str = ""
    changed_at: float = 0.0
    probed_at: float = 0.0


@dataclass(frozen=True)
class GroupState:
    """What the store remembers of a group besides its members: held for an operator or not.

    `updated_at` is when another field last changed (a pass that changes nothing writes nothing).
    """

    group: str
    held: bool = False
    held_reason: str = ""
    status: str = "ok"  # ok | degraded | held | moving
    updated_at: float = 0.0


@dataclass(frozen=True)
class GroupMemory:
    """What a health pass reads of one group: what load_health (of the members asked about),
    load_group_state and moves_since (start times only, oldest first) would answer."""

    group: str
    health: Mapping[str, MemberHealth]
    state: GroupState
    move_times: tuple[float, ...] = ()


class Store(Protocol):
    """Counters, the journal and the history.

    Every method is one atomic write or read, except the batched ones (`load_groups`,
    `save_health_many`), which are atomic per group: a pass over many groups costs the
    store a few requests, not a few per group.
    """

    def begin_move(self, move: MoveRecord) -> None:
        """Journal a move's intent before its first AWS call."""

    def record_step(self, move_id: str, step: StepRecord) -> None:
        """Append one step event (started, done, skipped, failed) to a journaled move."""

    def finish_move(
        self,
        move_id: str,
        outcome: str,
        finished_at: float,
        detail: str = "",
        target: str | None = None,
    ) -> None:
        """Close a journaled move with its outcome, and its final target when that changed."""

    def open_moves(self, group: str | None = None) -> list[MoveRecord]:
        """Moves whose intent is journaled but not finished (a crash left them), oldest first."""

    def history(self, group: str | None = None, limit: int = 100) -> list[MoveRecord]:
        """Finished and open moves, newest first."""

    def moves_since(self, group: str, since: float) -> list[MoveRecord]:
        """Moves of `group` started at or after `since` (cooldown and flap limit)."""

    def open_move_groups(self) -> set[str]:
        """The groups `open_moves()` would name, in one read however many groups there are."""

    def load_health(self, group: str) -> dict[str, MemberHealth]:
        """Probe counters of a group's members, by instance id."""

    def save_health(self, group: str, members: Sequence[MemberHealth]) -> None:
        """Replace the probe counters of the given members."""

    def load_group_state(self, group: str) -> GroupState:
        """The group's remembered state (held, degraded); a fresh GroupState when unknown."""

    def save_group_state(self, state: GroupState) -> None:
        """Remember the group's state."""

    def load_groups(
        self, members: Mapping[str, Sequence[str]], since: float
    ) -> dict[str, GroupMemory]:
        """For each group named in `members` (group -> instance ids): the counters of those
        members it has, its state, and the start times of its moves at or after `since`."""

    def save_health_many(self, health: Mapping[str, Sequence[MemberHealth]]) -> None:
        """`save_health` of many groups (group -> members) at once; atomic per group."""

    def close(self) -> None:
        """Release the connection."""


class Clock(Protocol):
    """Time, injected so tests never sleep for real unless they mean to."""

    def now(self) -> float:
        """Seconds since the epoch (wall clock: journal and history timestamps)."""

    def monotonic(self) -> float:
        """Seconds on a monotonic clock (deadlines and elapsed times)."""

    def sleep(self, seconds: float) -> None:
        """Block for `seconds`."""


class Cloud(Protocol):
    """EC2 as the engine sees it: observe a group, and the primitive mutating calls."""

    def observe(self, group: Group, *, with_status: bool = False) -> GroupView:
        """Read fresh from AWS everything the planner needs about `group`."""

    def observe_many(
        self, groups: Sequence[Group], *, with_status: bool = False
    ) -> dict[str, GroupView]:
        """Fresh views of many groups in as few calls as EC2 allows (a health pass)."""

    def refresh(self, group: Group, view: GroupView) -> GroupView:
        """`view` with only the floating resource read again (the cheap poll of a wait)."""

    def detach(self, attachment_id: str, *, force: bool) -> None:
        """DetachNetworkInterface (Force only when told)."""

    def attach(self, eni_id: str, instance_id: str, device_index: int) -> str:
        """AttachNetworkInterface; returns the new attachment id."""

    def keep_on_termination(self, eni_id: str, attachment_id: str) -> None:
        """Set the attachment's DeleteOnTermination to false."""

    def assign_ip(self, eni_id: str, ip: str) -> None:
        """AssignPrivateIpAddresses with AllowReassignment=True."""

    def associate_address(self, allocation_id: str, eni_id: str, private_ip: str) -> None:
        """AssociateAddress with AllowReassociation=True."""

    def caller_identity(self) -> str:
        """The ARN of whoever the credentials belong to (STS GetCallerIdentity)."""
