"""Per-group leases with fencing tokens, so that of several orchestrators only one acts on a group.

The Lease port, one algorithm (`TableLease`) over two tables (DynamoDB for production,
memory for tests: `DynamoLease`, `FakeLease`), and `Spreader`, which shares the groups
fairly among the live orchestrators.

Semantics:
- `acquire(group)` takes the group's lease and returns its fencing token, or None while
  another orchestrator holds it. Every take-over (a vacant, released or expired lease)
  writes token + 1, so tokens only grow; `renew` keeps the token. Every write of the
  lease item also writes a fresh random version (`rvn`) and is conditional: on the item
  not existing, on the version read, or (renew, release) on the holder and token, so
  exactly one of any number of racing writers wins.
- The holder renews every `renew_every_s` (a third of the TTL). `check(group, token)` is
  what the engine asks before each step: True while this process holds that token and its
  local monotonic clock says less than `ttl_s - margin_s` has passed since the start of
  the last successful take or renew. It makes no call, so it answers even when DynamoDB
  does not, and a holder that cannot renew stops acting `margin_s` before anyone else
  may take over.
- A contender never compares clocks across hosts (the DynamoDB Lock Client's rule): it
  takes over a held lease only after it has seen the same version, unchanged, for a whole
  TTL by its own monotonic clock, counted from when its first read of it returned. If the
  holder's last successful renewal started at r, the holder stops acting at r + ttl -
  margin by its clock; that write landed after r, so the contender first saw it after r
  and acts no earlier than a TTL later by its clock: the holder has stopped first, with
  `margin_s` to spare.

Clock assumption: no bound on the offset between hosts' wall clocks is needed (wall times
in the item, `renewed_at` and `expires_at`, are for operators and for spreading only).
The monotonic clocks of holder and contender must advance at rates within margin/ttl of
each other (20% with the defaults; NTP-disciplined clocks differ by parts per million)
and must keep counting while a process is paused or its host suspended (a holder frozen
past its TTL must see that time passed; use CLOCK_BOOTTIME for `Clock.monotonic` where
a host can suspend). The margin also bounds how late an AWS call made just after a True
`check` may land: a mutating call that can take longer than `margin_s` (botocore's
timeouts and retries) can land after a take-over; the next holder's observe-before-act
and the journal's fencing token are what correct it, as EC2 itself checks no token.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import secrets
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from failover.aws.dynamodb import EXPIRES, PK, SK
from failover.clock import SystemClock
from failover.errors import CloudError, LeaseLostError
from failover.store.dynamodb import HOLDER_PREFIX, HOLDERS_PK, LEASE_SK, group_pk

if TYPE_CHECKING:
    from failover.aws.dynamodb import DynamoTable
    from failover.ports import Clock

DEFAULT_TTL_S = 15.0
"""A dead orchestrator's groups become takeable this long after its last renewal."""

_HEARTBEAT_KEEP_S = 86400


class Lease(Protocol):
    """One orchestrator's view of the per-group leases: take, keep, give back, check."""

    @property
    def holder_id(self) -> str:
        """Who this orchestrator is in the lease items: host, pid and a random part."""

    @property
    def ttl_s(self) -> float:
        """How long a lease outlives its holder's last renewal."""

    @property
    def renew_every_s(self) -> float:
        """How often the holder should renew (a third of the TTL)."""

    def acquire(self, group: str) -> int | None:
        """Take `group`'s lease: its fencing token, or None while another holds it."""

    def renew(self, group: str, token: int) -> bool:
        """Extend the lease held with `token`; False when it is no longer ours (lost)."""

    def release(self, group: str, token: int) -> None:
        """Give the lease back at once (its token stays, so the next one is higher)."""

    def check(self, group: str, token: int) -> bool:
        """True while we hold `token` and our own clock says it has not expired (no call)."""

    def take(self, groups: Sequence[str], sleep: Callable[[float], None]) -> dict[str, int]:
        """Acquire `groups` for a one-shot command, waiting out dead holders; the tokens got."""

    def heartbeat(self) -> None:
        """Announce this orchestrator as live (for spreading the groups)."""

    def holders(self) -> list[str]:
        """The live orchestrators (heartbeat seen changing within a TTL), this one included."""


@dataclass(frozen=True)
class LeaseRecord:
    """The lease item of one group. `holder` is "" once released; `rvn` changes on every write."""

    group: str
    holder: str
    token: int
    rvn: str
    ttl_s: float
    renewed_at: float  # the writer's wall clock: for operators, never for decisions

    @property
    def expires_at(self) -> float:
        """When the lease lapses by the writer's wall clock (informative only)."""
        return self.renewed_at + self.ttl_s


class LeaseTable(Protocol):
    """Where lease items and heartbeats live; every write is conditional and atomic."""

    def read(self, group: str) -> LeaseRecord | None:
        """The group's lease item (strongly consistent), None if it never had one."""

    def create(self, record: LeaseRecord) -> bool:
        """Write `record` if the group has no lease item yet; False otherwise."""

    def replace(self, record: LeaseRecord, rvn: str) -> bool:
        """Write `record` if the item's version is still `rvn`; False otherwise."""

    def refresh(self, record: LeaseRecord, holder: str, token: int) -> bool:
        """Write `record` if the item is still held by `holder` with `token`; False otherwise."""

    def beat(self, holder: str, rvn: str, at: float) -> None:
        """Write `holder`'s heartbeat with a fresh version `rvn` (`at`: wall clock, informative)."""

    def beats(self) -> dict[str, str]:
        """Every heartbeat's current version, by holder."""


def new_holder_id() -> str:
    """host:pid:random, unique per process even when a pid is reused."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


@dataclass
class _Held:
    token: int
    since: float  # monotonic time at the start of the last successful take or renew


@dataclass
class _Seen:
    rvn: str
    since: float  # monotonic time when the read that first showed this version returned


class TableLease:
    """The lease algorithm (see the module docstring) over any LeaseTable. Thread-safe."""

    def __init__(
        self,
        table: LeaseTable,
        clock: Clock,
        holder_id: str | None = None,
        ttl_s: float = DEFAULT_TTL_S,
        margin_s: float | None = None,
    ) -> None:
        """Lease groups in `table` as `holder_id` (new_holder_id() when None).

        `margin_s` (a fifth of the TTL when None) is how long before the TTL a holder that
        could not renew stops acting; it must leave room for one missed renewal.
        """
        margin = ttl_s / 5 if margin_s is None else margin_s
        if ttl_s <= 0 or not 0 < margin < ttl_s - ttl_s / 3:
            raise ValueError(
                f"lease margin {margin:g}s must be above 0 and below the TTL ({ttl_s:g}s) "
                "minus the renew interval (a third of it)"
            )
        self._table = table
        self._clock = clock
        self._holder_id = holder_id or new_holder_id()
        self._ttl_s = ttl_s
        self._margin_s = margin
        self._lock = threading.Lock()
        self._held: dict[str, _Held] = {}
        self._seen: dict[str, _Seen] = {}
        self._beats_seen: dict[str, _Seen] = {}

    @property
    def holder_id(self) -> str:
        """Who this orchestrator is in the lease items."""
        return self._holder_id

    @property
    def ttl_s(self) -> float:
        """How long a lease outlives its holder's last renewal."""
        return self._ttl_s

    @property
    def margin_s(self) -> float:
        """How long before the TTL a holder that cannot renew stops acting."""
        return self._margin_s

    @property
    def renew_every_s(self) -> float:
        """How often the holder should renew: a third of the TTL."""
        return self._ttl_s / 3

    def _record(self, group: str, token: int, holder: str | None = None) -> LeaseRecord:
        return LeaseRecord(
            group=group,
            holder=self._holder_id if holder is None else holder,
            token=token,
            rvn=secrets.token_hex(16),
            ttl_s=self._ttl_s,
            renewed_at=self._clock.now(),
        )

    def acquire(self, group: str) -> int | None:
        """Take `group`'s lease if it is vacant, released, ours, or seen unchanged for a TTL."""
        started = self._clock.monotonic()
        current = self._table.read(group)
        if current is None or current.holder != self._holder_id:
            with self._lock:
                self._held.pop(group, None)  # the item does not name us: whatever we had is gone
        if current is None:
            record = self._record(group, 1)
            taken = self._table.create(record)
        elif current.holder == self._holder_id:
            # Ours already (a renewal whose reply was lost): refresh it, keeping the token.
            record = self._record(group, current.token)
            taken = self._table.replace(record, current.rvn)
        elif current.holder == "" or self._waited_out(group, current):
            record = self._record(group, current.token + 1)
            taken = self._table.replace(record, current.rvn)
        else:
            return None
        with self._lock:
            self._seen.pop(group, None)
            if not taken:
                return None
            self._held[group] = _Held(record.token, started)
        return record.token

    def _waited_out(self, group: str, current: LeaseRecord) -> bool:
        """True once this version has been seen unchanged for a whole TTL (ours or its own)."""
        now = self._clock.monotonic()
        with self._lock:
            seen = self._seen.get(group)
            if seen is None or seen.rvn != current.rvn:
                self._seen[group] = _Seen(current.rvn, now)
                return False
            return now - seen.since >= max(current.ttl_s, self._ttl_s)

    def take(self, groups: Sequence[str], sleep: Callable[[float], None]) -> dict[str, int]:
        """Acquire each of `groups`, waiting out holders that stopped renewing; the tokens got.

        For one-shot commands (`check`, `move`): a group whose holder is seen renewing (its
        version changes), or that another contender takes first, is given up at once; a
        dead holder's lease is taken once its version stayed unchanged for a TTL. Each group
        is waited on for at most two TTLs, all of them at the same time.
        """
        taken: dict[str, int] = {}
        first: dict[str, str] = {}
        pending = list(dict.fromkeys(groups))
        deadline = self._clock.monotonic() + 2 * self._ttl_s + self._margin_s
        while pending:
            waiting = []
            for group in pending:
                token = self.acquire(group)
                if token is not None:
                    taken[group] = token
                    continue
                with self._lock:
                    seen = self._seen.get(group)
                if seen is None or first.setdefault(group, seen.rvn) != seen.rvn:
                    continue  # another writer won, or the holder renewed: it is alive
                waiting.append(group)
            pending = waiting
            if pending and self._clock.monotonic() >= deadline:
                break
            if pending:
                sleep(self._ttl_s / 10)
        return taken

    def renew(self, group: str, token: int) -> bool:
        """Extend our lease (conditional on holder and token); False once it is lost.

        A failed call raises CloudError and changes nothing here: `check` keeps counting
        down from the last renewal that is known to have landed.
        """
        with self._lock:
            held = self._held.get(group)
        if held is None or held.token != token:
            return False
        started = self._clock.monotonic()
        if self._table.refresh(self._record(group, token), self._holder_id, token):
            with self._lock:
                if self._held.get(group) is held:
                    held.since = started
            return True
        with self._lock:
            if self._held.get(group) is held:
                del self._held[group]
        return False

    def release(self, group: str, token: int) -> None:
        """Stop acting on `group` now, then mark its item released (if still ours)."""
        with self._lock:
            held = self._held.get(group)
            if held is not None and held.token == token:
                del self._held[group]
        self._table.refresh(self._record(group, token, holder=""), self._holder_id, token)

    def check(self, group: str, token: int) -> bool:
        """True while we hold `token` and less than TTL - margin passed since it was renewed."""
        with self._lock:
            held = self._held.get(group)
            if held is None or held.token != token:
                return False
            return self._clock.monotonic() - held.since < self._ttl_s - self._margin_s

    def held(self) -> dict[str, int]:
        """The groups this process believes it holds, with their tokens (check each!)."""
        with self._lock:
            return {group: held.token for group, held in self._held.items()}

    def heartbeat(self) -> None:
        """Write this orchestrator's heartbeat with a fresh version."""
        self._table.beat(self._holder_id, secrets.token_hex(16), self._clock.now())

    def holders(self) -> list[str]:
        """Live orchestrators: those whose heartbeat version changed within a TTL (by our clock).

        Judged like the leases, without comparing clocks across hosts; a heartbeat first seen
        counts as live for a TTL, so a new process waits that long before taking a dead
        orchestrator's share.
        """
        beats = self._table.beats()
        now = self._clock.monotonic()
        live = {self._holder_id}
        with self._lock:
            for holder, rvn in beats.items():
                seen = self._beats_seen.get(holder)
                if seen is None or seen.rvn != rvn:
                    seen = self._beats_seen[holder] = _Seen(rvn, now)
                if now - seen.since < self._ttl_s:
                    live.add(holder)
            for gone in self._beats_seen.keys() - beats.keys():
                del self._beats_seen[gone]
        return sorted(live)


class MemoryLeaseTable:
    """A LeaseTable in a dict behind a lock: one instance shared by several FakeLeases."""

    def __init__(self) -> None:
        """An empty table."""
        self._lock = threading.Lock()
        self._records: dict[str, LeaseRecord] = {}
        self._beats: dict[str, str] = {}

    def read(self, group: str) -> LeaseRecord | None:
        """The group's lease item."""
        with self._lock:
            return self._records.get(group)

    def create(self, record: LeaseRecord) -> bool:
        """Write `record` if the group has none."""
        with self._lock:
            if record.group in self._records:
                return False
            self._records[record.group] = record
            return True

    def replace(self, record: LeaseRecord, rvn: str) -> bool:
        """Write `record` if the version is still `rvn`."""
        with self._lock:
            current = self._records.get(record.group)
            if current is None or current.rvn != rvn:
                return False
            self._records[record.group] = record
            return True

    def refresh(self, record: LeaseRecord, holder: str, token: int) -> bool:
        """Write `record` if still held by `holder` with `token`."""
        with self._lock:
            current = self._records.get(record.group)
            if current is None or (current.holder, current.token) != (holder, token):
                return False
            self._records[record.group] = record
            return True

    def beat(self, holder: str, rvn: str, at: float) -> None:
        """Write `holder`'s heartbeat version."""
        with self._lock:
            self._beats[holder] = rvn

    def beats(self) -> dict[str, str]:
        """Every heartbeat's version, by holder."""
        with self._lock:
            return dict(self._beats)


class FakeLease(TableLease):
    """The lease algorithm over a MemoryLeaseTable: the same contract, no AWS."""

    def __init__(
        self,
        table: LeaseTable | None = None,
        clock: Clock | None = None,
        holder_id: str | None = None,
        ttl_s: float = DEFAULT_TTL_S,
        margin_s: float | None = None,
    ) -> None:
        """Share `table` between FakeLeases to model several orchestrators."""
        super().__init__(
            table if table is not None else MemoryLeaseTable(),
            clock if clock is not None else SystemClock(),
            holder_id,
            ttl_s,
            margin_s,
        )


class DynamoLeaseTable:
    """Lease items and heartbeats in the store's DynamoDB table (keys: failover/store/dynamodb.py).

    Lease: pk group#<group>, sk lease. Heartbeat: pk orchestrators, sk holder#<id>, with the
    table's TTL attribute `expires` a day after it was written, so DynamoDB eventually
    deletes the heartbeats of orchestrators long gone (liveness never reads `expires`).
    """

    def __init__(self, table: DynamoTable) -> None:
        """Use `table` (made by `create_table`)."""
        self._table = table

    def read(self, group: str) -> LeaseRecord | None:
        """The group's lease item, strongly consistent."""
        item = self._table.get(group_pk(group), LEASE_SK)
        if item is None:
            return None
        return LeaseRecord(
            group=group,
            holder=str(item["holder"]),
            token=int(item["token"]),
            rvn=str(item["rvn"]),
            ttl_s=float(item["ttl_s"]),
            renewed_at=float(item["renewed_at"]),
        )

    def create(self, record: LeaseRecord) -> bool:
        """PutItem if no lease item exists."""
        return self._table.put(_lease_item(record), condition="attribute_not_exists(pk)")

    def replace(self, record: LeaseRecord, rvn: str) -> bool:
        """PutItem if the item's version is `rvn`."""
        return self._table.put(_lease_item(record), condition="rvn = :rvn", values={":rvn": rvn})

    def refresh(self, record: LeaseRecord, holder: str, token: int) -> bool:
        """PutItem if the item is held by `holder` with `token` (TOKEN is a reserved word)."""
        return self._table.put(
            _lease_item(record),
            condition="holder = :holder AND #token = :token",
            names={"#token": "token"},
            values={":holder": holder, ":token": token},
        )

    def beat(self, holder: str, rvn: str, at: float) -> None:
        """PutItem of the holder's heartbeat."""
        self._table.put(
            {
                PK: HOLDERS_PK,
                SK: HOLDER_PREFIX + holder,
                "holder": holder,
                "rvn": rvn,
                "beat_at": at,
                EXPIRES: math.ceil(at) + _HEARTBEAT_KEEP_S,
            }
        )

    def beats(self) -> dict[str, str]:
        """Every heartbeat's version, by holder (one Query)."""
        items = self._table.query(HOLDERS_PK, prefix=HOLDER_PREFIX)
        return {str(i["holder"]): str(i["rvn"]) for i in items}


def _lease_item(record: LeaseRecord) -> dict[str, Any]:
    return {
        PK: group_pk(record.group),
        SK: LEASE_SK,
        "group": record.group,
        "holder": record.holder,
        "token": record.token,
        "rvn": record.rvn,
        "ttl_s": record.ttl_s,
        "renewed_at": record.renewed_at,
        "expires_at": record.expires_at,
    }


class DynamoLease(TableLease):
    """The lease algorithm over the DynamoDB table."""

    def __init__(
        self,
        table: DynamoTable,
        clock: Clock,
        holder_id: str | None = None,
        ttl_s: float = DEFAULT_TTL_S,
        margin_s: float | None = None,
    ) -> None:
        """Lease groups in `table` (the state table) as `holder_id`."""
        super().__init__(DynamoLeaseTable(table), clock, holder_id, ttl_s, margin_s)


def fair_share(groups: int, live: int) -> int:
    """How many groups one of `live` orchestrators takes at most: ceil(groups / live)."""
    return math.ceil(groups / max(live, 1))


def _score(*parts: str) -> bytes:
    return hashlib.blake2b("\0".join(parts).encode(), digest_size=8).digest()


def assign(groups: Iterable[str], holders: Sequence[str]) -> dict[str, str]:
    """Each group's owner among `holders`: rendezvous hashing with bounded loads.

    Every holder gets at most fair_share(groups, holders); the groups, taken in an order
    fixed by their hash, each go to the highest-scoring holder with room. Every process
    with the same view computes the same answer, and when a holder joins or dies few
    groups other than its own change owner.
    """
    names = sorted(set(groups), key=lambda g: (_score(g), g))
    if not holders:
        return {}
    room = dict.fromkeys(holders, fair_share(len(names), len(holders)))
    owner: dict[str, str] = {}
    for group in names:
        ranked = sorted(holders, key=lambda h: (_score(group, h), h), reverse=True)
        chosen = next(h for h in ranked if room[h] > 0)
        room[chosen] -= 1
        owner[group] = chosen
    return owner


class Spreader:
    """Share the groups among the live orchestrators: each holds at most its fair share.

    Call `rebalance(groups)` every `lease.renew_every_s`: it heartbeats, computes `assign`
    over the live orchestrators, renews what it holds and is still assigned, gives back
    the rest (a holder joined: the new owner takes it at its next round), and tries to
    take what is assigned to it. A dead orchestrator's groups are taken over about two
    TTLs after its last renewal: its heartbeat is seen unchanged for one TTL, then each
    lease for another.
    """

    def __init__(self, lease: Lease) -> None:
        """Spread for `lease`'s holder."""
        self._lease = lease
        self._held: dict[str, int] = {}

    @property
    def held(self) -> dict[str, int]:
        """The groups this orchestrator holds after the last round, with their tokens."""
        return dict(self._held)

    def rebalance(self, groups: Sequence[str]) -> dict[str, int]:
        """One round; returns the groups now held, with their tokens."""
        lease, me = self._lease, self._lease.holder_id
        # A failed heartbeat: the others see it stall; our leases still say what is ours.
        with contextlib.suppress(CloudError):
            lease.heartbeat()
        try:
            owner = assign(groups, lease.holders())
        except CloudError:
            # No view of the others: keep what we hold, claim and give back nothing.
            self._held = {g: t for g, t in self._held.items() if self._keep(g, t)}
            return dict(self._held)
        kept: dict[str, int] = {}
        for group, token in self._held.items():
            if owner.get(group) != me:
                self._give_back(group, token)
            elif self._keep(group, token):
                kept[group] = token
        for group in groups:
            if owner.get(group) == me and group not in kept:
                taken = self._take(group)
                if taken is not None:
                    kept[group] = taken
        self._held = kept
        return dict(kept)

    def _keep(self, group: str, token: int) -> bool:
        try:
            return self._lease.renew(group, token)
        except CloudError:
            # Unknown is not lost: keep it while our own clock says it is still ours.
            return self._lease.check(group, token)

    def _take(self, group: str) -> int | None:
        try:
            return self._lease.acquire(group)
        except CloudError:
            return None

    def _give_back(self, group: str, token: int) -> None:
        # Dropped locally already; if the release is lost, the lease lapses after its TTL.
        with contextlib.suppress(CloudError):
            self._lease.release(group, token)


class Fence:
    """Which groups this process holds, with their tokens; `guard` is the engine's check.

    The engine calls `guard(group)` before every mutating AWS call and journals
    `token(group)` with every move it begins. Thread-safe: the daemon's rebalance job
    replaces the tokens while passes run.
    """

    def __init__(self, lease: Lease, resources: Mapping[str, str] | None = None) -> None:
        """Fence for `lease`; `resources` (group -> resource) only words the errors."""
        self._lease = lease
        self._resources = dict(resources or {})
        self._tokens: dict[str, int] = {}
        self._lock = threading.Lock()

    @property
    def lease(self) -> Lease:
        """The lease the tokens come from."""
        return self._lease

    def hold(self, tokens: Mapping[str, int]) -> None:
        """Replace what we hold with `tokens` (a rebalance round's result)."""
        with self._lock:
            self._tokens = dict(tokens)

    def add(self, group: str, token: int) -> None:
        """Hold `group` with `token`."""
        with self._lock:
            self._tokens[group] = token

    def drop(self, group: str) -> int | None:
        """Stop holding `group`; the token it had, if any."""
        with self._lock:
            return self._tokens.pop(group, None)

    def tokens(self) -> dict[str, int]:
        """Every group held, with its token."""
        with self._lock:
            return dict(self._tokens)

    def token(self, group: str) -> int | None:
        """The token `group` is held with, None if it is not."""
        with self._lock:
            return self._tokens.get(group)

    def holds(self, group: str) -> bool:
        """True while the lease says we may act on `group` (no call)."""
        token = self.token(group)
        return token is not None and self._lease.check(group, token)

    def guard(self, group: str) -> None:
        """Raise LeaseLostError unless we may act on `group` now."""
        if not self.holds(group):
            raise LeaseLostError(
                group,
                self._resources.get(group, "?"),
                f"this orchestrator no longer holds the lease of group {group}; abandoning "
                "the move (the new holder finishes it from the journal)",
            )


class Keeper:
    """Renews what a Fence holds every `renew_every_s` in a thread, for one-shot commands."""

    def __init__(self, fence: Fence) -> None:
        """Keep `fence`'s leases alive until `close`."""
        self._fence = fence
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)

    def start(self) -> Keeper:
        """Start renewing."""
        self._thread.start()
        return self

    def _run(self) -> None:
        lease = self._fence.lease
        while not self._stop.wait(lease.renew_every_s):
            for group, token in self._fence.tokens().items():
                try:
                    if not lease.renew(group, token):
                        self._fence.drop(group)
                except CloudError:
                    pass  # unknown is not lost: `check` counts down from the last renewal

    def close(self) -> None:
        """Stop renewing and give back every lease held (a lost release lapses after a TTL)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        release_all(self._fence)


def release_all(fence: Fence) -> None:
    """Give back every lease `fence` holds; a release that fails lapses after its TTL."""
    for group in list(fence.tokens()):
        token = fence.drop(group)
        if token is not None:
            with contextlib.suppress(CloudError):
                fence.lease.release(group, token)


@contextlib.contextmanager
def holding(
    fence: Fence, groups: Sequence[str], sleep: Callable[[float], None]
) -> Iterator[list[str]]:
    """Take `groups`' leases (see `TableLease.take`) and keep them renewed for the block.

    Yields the groups another live orchestrator holds (refused); gives back what was taken.
    """
    taken = fence.lease.take(groups, sleep)
    for group, token in taken.items():
        fence.add(group, token)
    keeper = Keeper(fence).start()
    try:
        yield [g for g in groups if g not in taken]
    finally:
        keeper.close()
