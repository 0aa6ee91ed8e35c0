"""Per-group leases with fencing tokens, so that of several orchestrators only one acts on a group.

The Lease port and its one algorithm, `TableLease`, over any `LeaseTable` (DynamoDB for
production, memory for tests: failover/lease_tables.py). Sharing the groups among live
orchestrators is failover/spread.py; the engine's guard is failover/fence.py.

Two kinds of item:
- a **lease** per group: holder id, fencing token, and a random version (`rvn`) that every
  write changes. Every write is conditional on the version read (or on the item not
  existing), so exactly one of any number of racing writers wins. Each take-over (vacant,
  released, or its holder dead) writes token + 1, so tokens only grow; a holder taking
  its own item back keeps the token.
- a **heartbeat** per orchestrator, written every `renew_every_s` (a third of the TTL) or
  more often: the holder's *session*. It renews every lease the orchestrator holds at
  once, so the cost of staying alive is one write per orchestrator per round, whatever
  the number of groups (5,000 groups renewed one by one every 5 s would be 1,000
  conditional writes a second).

Who may act, and when another may take over:
- `check(group, token)` (the engine asks it before each step; it makes no call) is True
  while this process holds that token and its local monotonic clock says less than
  `ttl_s - margin_s` has passed since the *start* of its last successful heartbeat. A
  heartbeat that completes later than that starts a new session: everything held before
  is void and must be taken again (through the conditional write, which fails if another
  took it meanwhile).
- A contender never compares clocks across hosts (the DynamoDB Lock Client's rule): it
  judges an orchestrator dead once it has seen that orchestrator's heartbeat version
  unchanged (or absent) for a whole TTL by its own monotonic clock, counted from when its
  first read of that version returned. If the holder's last heartbeat started at s, the
  holder stops acting at s + ttl - margin by its clock; that write landed after s, so the
  contender first saw it after s and declares it dead no earlier than s + ttl: the holder
  has stopped first, with `margin_s` to spare. The contender then takes the dead
  holder's leases at once (all of them, in batches), instead of watching each for
  another TTL: take-over comes one TTL plus a polling round after the last heartbeat.
- The heartbeats that prove a holder dead are read *after* the lease item that names it:
  an orchestrator heartbeats before it writes any lease, so a holder that came back (new
  session) and retook its item shows a fresh heartbeat in that later read.

Clock assumption: no bound on the offset between hosts' wall clocks is needed (wall times
in the items are for operators only). The monotonic clocks of holder and contender must
advance at rates within margin/ttl of each other (20% with the defaults; NTP-disciplined
clocks differ by parts per million) and must keep counting while a process is paused or
its host suspended (use CLOCK_BOOTTIME for `Clock.monotonic` where a host can suspend).
The margin also bounds how late an AWS call made just after a True `check` may land: a
mutating call that takes longer than `margin_s` (botocore's timeouts and retries) can land
after a take-over; the next holder's observe-before-act and the journal's fencing token
are what correct it, as EC2 itself checks no token.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from failover.core.ports import Clock

DEFAULT_TTL_S = 15.0
"""A dead orchestrator's groups become takeable this long after its last heartbeat."""

BATCH = 100
"""Lease items written in one all-or-nothing batch (DynamoDB's transaction limit)."""


class Lease(Protocol):
    """One orchestrator's view of the per-group leases: take, give back, check, stay alive."""

    @property
    def holder_id(self) -> str:
        """Who this orchestrator is in the items: host, pid and a random part."""

    @property
    def ttl_s(self) -> float:
        """How long leases outlive their holder's last heartbeat."""

    @property
    def renew_every_s(self) -> float:
        """How often the holder must heartbeat at least (a third of the TTL)."""

    def heartbeat(self) -> None:
        """Renew this orchestrator's session, and with it every lease it holds."""

    def heartbeat_if_due(self) -> None:
        """Heartbeat unless the last one started less than `renew_every_s` ago."""

    def holders(self) -> list[str]:
        """The live orchestrators that take a share of the groups, this one included."""

    def acquire_many(self, groups: Sequence[str]) -> dict[str, int]:
        """Take what can be taken of `groups` now (vacant, released, ours, or a dead holder's)."""

    def release(self, tokens: Mapping[str, int]) -> None:
        """Give these leases back at once (their tokens stay, so the next ones are higher)."""

    def check(self, group: str, token: int) -> bool:
        """True while we hold `token` and our own clock says our session is alive (no call)."""

    def take(self, groups: Sequence[str], sleep: Callable[[float], None]) -> dict[str, int]:
        """Acquire `groups` for a one-shot command, waiting out dead holders; the tokens got."""


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
    """An orchestrator's heartbeat item; `rvn` changes on every write."""

    holder: str
    rvn: str
    ttl_s: float
    spreads: bool  # a daemon taking its share of the groups; False: a one-shot command
    at: float  # the writer's wall clock: for operators, never for decisions


Claim = tuple[LeaseRecord, str | None]
"""Write the record if the item's version is this (None: if the group has no item yet)."""


class LeaseTable(Protocol):
    """Where lease items and heartbeats live; every lease write is conditional and atomic."""

    def read_many(self, groups: Sequence[str]) -> dict[str, LeaseRecord]:
        """The lease items of `groups` that exist (strongly consistent), by group."""

    def write_all(self, claims: Sequence[Claim]) -> list[int]:
        """Write all of at most BATCH claims, or none: the positions of the claims whose
        version is not as expected ([] when all were written)."""

    def beat(self, beat: Beat) -> None:
        """Write an orchestrator's heartbeat."""

    def beats(self) -> dict[str, Beat]:
        """Every heartbeat, by holder."""


def new_holder_id() -> str:
    """host:pid:random, unique per process even when a pid is reused."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


@dataclass(frozen=True)
class _Held:
    token: int
    rvn: str  # the version we wrote: our later writes are conditional on it


@dataclass
class _Seen:
    rvn: str  # "" while the orchestrator has no heartbeat item
    ttl_s: float
    since: float  # monotonic time when the read that first showed this version returned
    last: float  # monotonic time of the last read that showed it


class TableLease:
    """The lease algorithm (see the module docstring) over any LeaseTable. Thread-safe."""

    def __init__(
        self,
        table: LeaseTable,
        clock: Clock,
        holder_id: str | None = None,
        ttl_s: float = DEFAULT_TTL_S,
        margin_s: float | None = None,
        *,
        spreads: bool = True,
    ) -> None:
        """Lease groups in `table` as `holder_id` (new_holder_id() when None).

        `margin_s` (a fifth of the TTL when None) is how long before the TTL a holder that
        could not heartbeat stops acting; it must leave room for one missed heartbeat.
        `spreads` False: a one-shot command, which holds what it takes but is given no
        share of the groups by the daemons.
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
        self._spreads = spreads
        self._lock = threading.Lock()
        self._held: dict[str, _Held] = {}
        self._session = 0  # counts lapses: an acquire that straddles one keeps nothing
        self._session_since: float | None = None  # start of the last heartbeat of the session
        self._seen: dict[str, _Seen] = {}

    @property
    def holder_id(self) -> str:
        """Who this orchestrator is in the items."""
        return self._holder_id

    @property
    def ttl_s(self) -> float:
        """How long leases outlive their holder's last heartbeat."""
        return self._ttl_s

    @property
    def margin_s(self) -> float:
        """How long before the TTL a holder that cannot heartbeat stops acting."""
        return self._margin_s

    @property
    def renew_every_s(self) -> float:
        """How often the holder must heartbeat at least: a third of the TTL."""
        return self._ttl_s / 3

    # -- our session -------------------------------------------------------------------

    def heartbeat(self) -> None:
        """Write our heartbeat; raises CloudError when it fails (the session counts down)."""
        started = self._clock.monotonic()
        self._table.beat(
            Beat(
                self._holder_id,
                secrets.token_hex(16),
                self._ttl_s,
                self._spreads,
                self._clock.now(),
            )
        )
        ended = self._clock.monotonic()
        with self._lock:
            since = self._session_since
            if since is None or ended - since >= self._ttl_s - self._margin_s:
                # The session lapsed before this beat landed (or never began): others may
                # have judged us dead and taken our groups. What we held is void.
                self._session += 1
                self._held.clear()
            self._session_since = started

    def heartbeat_if_due(self) -> None:
        """Heartbeat unless the last one started less than `renew_every_s` ago."""
        with self._lock:
            since = self._session_since
        if since is None or self._clock.monotonic() - since >= self.renew_every_s:
            self.heartbeat()

    def _alive(self) -> bool:
        """Our session by our own clock (caller holds the lock)."""
        since = self._session_since
        return since is not None and self._clock.monotonic() - since < self._ttl_s - self._margin_s

    def check(self, group: str, token: int) -> bool:
        """True while we hold `token` and the session is alive (a lapse emptied what we held)."""
        with self._lock:
            held = self._held.get(group)
            return held is not None and held.token == token and self._alive()

    def held(self) -> dict[str, int]:
        """The groups this process took in its current session, with tokens (check each!)."""
        with self._lock:
            return {g: h.token for g, h in self._held.items()}

    # -- the others ---------------------------------------------------------------------

    def _observe(self, beats: Mapping[str, Beat], named: Iterable[str] = ()) -> None:
        """Note each heartbeat's version; `named`: holders we also watch when they have none."""
        now = self._clock.monotonic()
        with self._lock:
            for holder in {*beats, *named}:
                beat = beats.get(holder)
                rvn, ttl = (beat.rvn, beat.ttl_s) if beat is not None else ("", self._ttl_s)
                seen = self._seen.get(holder)
                if seen is None or seen.rvn != rvn:
                    self._seen[holder] = _Seen(rvn, ttl, now, now)
                else:
                    seen.last = now
            # Forget who we stopped reading about: watching one again restarts its TTL (slower, never unsafe).
            for gone in [h for h, s in self._seen.items() if now - s.last > 3 * self._ttl_s]:
                del self._seen[gone]

    def _dead(self, holder: str) -> bool:
        """Seen unchanged for a whole TTL (theirs or ours, the longer) by our clock."""
        with self._lock:
            seen = self._seen.get(holder)
            if seen is None:
                return False
            return self._clock.monotonic() - seen.since >= max(seen.ttl_s, self._ttl_s)

    def _beat_version(self, holder: str) -> str | None:
        with self._lock:
            seen = self._seen.get(holder)
            return None if seen is None else seen.rvn

    def holders(self) -> list[str]:
        """Live daemons: whose heartbeat changed within a TTL by our clock (one read).

        A heartbeat first seen counts as live for a TTL, so a new process waits that long
        before it takes a dead orchestrator's share.
        """
        beats = self._table.beats()
        self._observe(beats)
        live = {h for h, b in beats.items() if b.spreads and not self._dead(h)}
        if self._spreads:
            live.add(self._holder_id)
        return sorted(live)

    # -- taking and giving back ---------------------------------------------------------

    def _record(self, group: str, token: int, holder: str | None = None) -> LeaseRecord:
        return LeaseRecord(
            group=group,
            holder=self._holder_id if holder is None else holder,
            token=token,
            rvn=secrets.token_hex(16),
            taken_at=self._clock.now(),
        )

    def acquire(self, group: str) -> int | None:
        """Take `group`'s lease if it can be taken now: its token, or None."""
        return self.acquire_many([group]).get(group)

    def acquire_many(self, groups: Sequence[str]) -> dict[str, int]:
        """Take each of `groups` that is vacant, released, ours, or held by a dead holder.

        Needs a live session (heartbeat first): a lease taken outside one would be void.
        Reads the items in batches, then the heartbeats, then writes in batches.
        """
        return self._acquire(groups)[0]

    def _acquire(self, groups: Sequence[str]) -> tuple[dict[str, int], dict[str, LeaseRecord]]:
        with self._lock:
            if not self._alive():
                return {}, {}
            session = self._session
        records = self._table.read_many(groups)
        # After the lease reads: see the module docstring on why this order.
        self._observe(self._table.beats(), {r.holder for r in records.values() if r.holder})
        claims: list[Claim] = []
        for group in dict.fromkeys(groups):
            current = records.get(group)
            if current is None:
                claims.append((self._record(group, 1), None))
            elif current.holder == self._holder_id:
                claims.append((self._record(group, current.token), current.rvn))
            elif current.holder == "" or self._dead(current.holder):
                claims.append((self._record(group, current.token + 1), current.rvn))
        written = self._write(claims)
        with self._lock:
            if self._session != session:
                return {}, records  # the session lapsed meanwhile: these are void already
            for record in written:
                self._held[record.group] = _Held(record.token, record.rvn)
        return {r.group: r.token for r in written}, records

    def _write(self, claims: Sequence[Claim]) -> list[LeaseRecord]:
        """Write the claims a batch at a time; a refused batch names the claims that failed,
        and the rest is sent again (one refusal costs one more call, not a hundred)."""
        written: list[LeaseRecord] = []
        for begin in range(0, len(claims), BATCH):
            batch = list(claims[begin : begin + BATCH])
            while batch:
                refused = self._table.write_all(batch)
                if not refused:
                    written += [record for record, _ in batch]
                    break
                batch = [claim for i, claim in enumerate(batch) if i not in set(refused)]
        return written

    def release(self, tokens: Mapping[str, int]) -> None:
        """Stop acting on these groups now, then mark their items released (if still ours)."""
        claims: list[Claim] = []
        with self._lock:
            for group, token in tokens.items():
                held = self._held.get(group)
                if held is not None and held.token == token:
                    del self._held[group]
                    claims.append((self._record(group, token, holder=""), held.rvn))
        self._write(claims)

    def take(self, groups: Sequence[str], sleep: Callable[[float], None]) -> dict[str, int]:
        """Acquire each of `groups`, waiting out holders that stopped; the tokens got.

        For one-shot commands (`check`, `move`): a group whose holder is seen alive (its
        heartbeat changes), or that another contender takes first, is given up at once; a
        dead holder's lease is taken once its heartbeat stayed unchanged for a TTL. Each
        group is waited on for at most two TTLs, all of them at the same time.
        """
        taken: dict[str, int] = {}
        holder_of: dict[str, str] = {}
        version_of: dict[str, str | None] = {}
        pending = list(dict.fromkeys(groups))
        deadline = self._clock.monotonic() + 2 * self._ttl_s + self._margin_s
        while pending:
            self.heartbeat_if_due()
            got, records = self._acquire(pending)
            taken.update(got)
            waiting = []
            for group in pending:
                record = records.get(group)
                if group in got or record is None:
                    continue
                holder = holder_of.setdefault(group, record.holder)
                version = version_of.setdefault(group, self._beat_version(holder))
                if record.holder != holder or self._beat_version(holder) != version:
                    continue  # another contender won, or the holder is alive
                waiting.append(group)
            pending = waiting
            if not pending or self._clock.monotonic() >= deadline:
                break
            sleep(self._ttl_s / 10)
        return taken
