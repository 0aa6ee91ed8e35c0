"""Protocols the core and the services need from the outside world: Cloud, Store, Clock,
and the per-group Lease (with the LeaseTable it keeps its items in).

Adapters implement them (failover/aws, failover/store, failover/coord); tests use the
same contracts. The core never imports an adapter.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from failover.core.model import Eni, GroupView, Permission

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
    `token` is the lease's (or SQLite claim's) fencing token the move began under.
    `driver` is what started it (daemon, check, move, lambda; "" when not recorded) and
    `os_user` the person's OS account behind a `failover move` (None: unknown or a service).
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
    driver: str = ""
    os_user: str | None = None
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

    `held_by` says who holds it: "operator" (`failover hold`) or "flap-limit"; "" when not
    held (a hold stored before `held_by` existed reads as the flap limit's).
    `updated_at` is when another field last changed (a pass that changes nothing writes nothing).
    """

    group: str
    held: bool = False
    held_reason: str = ""
    status: str = "ok"  # ok | degraded | held | moving
    updated_at: float = 0.0
    held_by: str = ""


@dataclass(frozen=True)
class GroupMemory:
    """What a health pass reads of one group: what load_health (of the members asked about),
    load_group_state and moves_since (start times only, oldest first) would answer.

    `eth0s`: the primary ENI (device index 0) of each member asked about that an earlier read
    showed. An instance keeps its eth0 for life (it can never be detached), so a move may name
    it before it reads; the read still confirms it before anything rests on it.
    """

    group: str
    health: Mapping[str, MemberHealth]
    state: GroupState
    move_times: tuple[float, ...] = ()
    eth0s: Mapping[str, str] = field(default_factory=dict)


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

    def record_caller(self, move_id: str, caller: str) -> None:
        """Name the caller of a journaled move (STS may answer after the move began)."""

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
        """Remember the group's state (every field)."""

    def save_status(self, group: str, status: str, updated_at: float) -> None:
        """Set only the group's status: a hold written meanwhile by another process stays."""

    def save_hold(self, group: str, held_by: str, reason: str, updated_at: float) -> None:
        """Set only the group's hold (`held_by` "" releases it); its status stays."""

    def load_groups(
        self, members: Mapping[str, Sequence[str]], since: float
    ) -> dict[str, GroupMemory]:
        """For each group named in `members` (group -> instance ids): the counters of those
        members it has, its state, and the start times of its moves at or after `since`."""

    def save_health_many(self, health: Mapping[str, Sequence[MemberHealth]]) -> None:
        """`save_health` of many groups (group -> members) at once; atomic per group."""

    def save_eth0s(self, eth0s: Mapping[str, Mapping[str, str]]) -> None:
        """Remember members' primary ENIs (group -> instance id -> eth0), counters untouched.

        Callers write only what differs from `load_groups`' `eth0s`: an eth0 never changes,
        so a steady pass writes nothing here.
        """

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

    def observe_pass(self, groups: Sequence[Group]) -> dict[str, GroupView]:
        """A health pass's views: state, status checks and ownership fresh; the members'
        interfaces may come from a topology read earlier (never used by a move)."""

    def forget_topology(self, instance_ids: Collection[str] | None = None) -> None:
        """The next `observe_pass` reads these members' interfaces again (all when None)."""

    def refresh(self, group: Group, view: GroupView) -> GroupView:
        """`view` with only the floating resource read again (the cheap poll of a wait)."""

    def describe_enis(self, eni_ids: Sequence[str]) -> dict[str, Eni]:
        """The ENIs AWS knows of among `eni_ids` (tags included)."""

    def bounded(self, time_left: Callable[[], float] | None) -> AbstractContextManager[None]:
        """In the block, no AWS call of this thread starts once `time_left()` is <= 0."""

    def observe_asking(
        self, group: Group, target: str, eth0: str | None
    ) -> tuple[GroupView, dict[str, Permission]]:
        """`observe`, and on the same round trip the DryRuns of the calls that put the resource
        on `target` whose ids are known before the read (its `eth0` as an earlier read showed
        it; None: unknown): their verdicts, by call, for `permissions_to_take`."""

    def permissions_to_take(
        self,
        group: Group,
        view: GroupView,
        target: str,
        asked: Mapping[str, Permission] | None = None,
    ) -> list[Permission]:
        """IAM's verdict (DryRun, real ids) on the calls that put the resource on `target`;
        a verdict in `asked` (from `observe_asking`) stands for exactly the call it asked about."""

    def permissions_to_leave(self, group: Group, view: GroupView) -> list[Permission]:
        """IAM's verdict on the calls made on the resource's holder, and what cannot be asked."""

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

    def replace_route(self, table_id: str, cidr: str, eni_id: str) -> None:
        """ReplaceRoute of `cidr` in one route table to an ENI."""

    def caller_identity(self) -> str:
        """The ARN of whoever the credentials belong to (STS GetCallerIdentity)."""


@dataclass(frozen=True)
class LeaseRecord:
    """A group's lease item. `holder` is "" once released; `rvn` changes on every write."""

    group: str
    holder: str
    token: int
    rvn: str
    taken_at: float  # the writer's wall clock: for operators, never for decisions


@dataclass(frozen=True)
class Beat:
    """An orchestrator's heartbeat item; `rvn` changes on every write.

    `asks`: the groups this (one-shot) holder asks their daemon to hand over to it, for
    as long as this heartbeat lives (failover/coord/handover.py).
    """

    holder: str
    rvn: str
    ttl_s: float
    spreads: bool  # a daemon taking its share of the groups; False: a one-shot command
    at: float  # the writer's wall clock: for operators, never for decisions
    asks: tuple[str, ...] = ()


Claim = tuple[LeaseRecord, str | None]
"""Write the record if the item's version is this (None: if the group has no item yet)."""


class LeaseTable(Protocol):
    """Where lease items and heartbeats live; every lease write is conditional and atomic."""

    def read_many(self, groups: Sequence[str]) -> dict[str, LeaseRecord]:
        """The lease items of `groups` that exist (strongly consistent), by group."""

    def write_all(self, claims: Sequence[Claim]) -> list[int]:
        """Write all of at most 100 claims, or none: the positions of the claims whose
        version is not as expected ([] when all were written)."""

    def beat(self, beat: Beat) -> None:
        """Write an orchestrator's heartbeat."""

    def beats(self) -> dict[str, Beat]:
        """Every heartbeat, by holder."""


class Lease(Protocol):
    """One orchestrator's view of the per-group leases: take, give back, check, stay alive."""

    @property
    def holder_id(self) -> str:
        """Who this orchestrator is in the items: host, pid and a random part."""

    @property
    def ttl_s(self) -> float:
        """How long leases outlive their holder's last heartbeat."""

    @property
    def margin_s(self) -> float:
        """How long before the TTL a holder that cannot heartbeat stops acting."""

    @property
    def renew_every_s(self) -> float:
        """How often the holder must heartbeat at least (a third of the TTL)."""

    def heartbeat(self) -> None:
        """Renew this orchestrator's session, and with it every lease it holds."""

    def heartbeat_if_due(self) -> None:
        """Heartbeat unless the last one started less than `renew_every_s` ago."""

    def holders(self) -> list[str]:
        """The live orchestrators that take a share of the groups, this one included."""

    def requested(self) -> dict[str, str]:
        """Groups that live one-shot holders ask to be handed over (group -> asker), as of
        the last read of the heartbeats."""

    def ask(self, groups: Sequence[str]) -> None:
        """Ask, in our heartbeat (written now), for `groups` to be handed over; () withdraws."""

    def acquire_many(self, groups: Sequence[str]) -> dict[str, int]:
        """Take what can be taken of `groups` now (vacant, released, ours, or a dead holder's)."""

    def try_take(self, groups: Sequence[str]) -> tuple[dict[str, int], dict[str, LeaseRecord]]:
        """`acquire_many`, and the lease items it read (who holds what is not taken)."""

    def seen(self, holder: str) -> tuple[str | None, bool]:
        """The version of `holder`'s heartbeat last read (None: never) and whether it is a daemon."""

    def release(self, tokens: Mapping[str, int]) -> None:
        """Give these leases back at once (their tokens stay, so the next ones are higher)."""

    def check(self, group: str, token: int) -> bool:
        """True while we hold `token` and our own clock says our session is alive (no call)."""
