"""Per-group leases with fencing tokens, so that of several orchestrators only one acts on a group.

The one algorithm of the Lease port (failover/core/ports.py), `TableLease`, over any
`LeaseTable`: the DynamoDB state table (failover/store/dynamodb_lease.py), the SQLite
state file, where the leases are the per-group claims (failover/store/sqlite_claims.py),
or memory for tests (failover/coord/lease_memory.py). Sharing the groups among live
orchestrators is failover/coord/spread.py; the engine's guard is failover/coord/fence.py;
a one-shot command's taking, and the handover of a daemon's group to `failover move`, is
failover/coord/handover.py.

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
  conditional writes a second). A one-shot holder's heartbeat may also name the groups it
  asks a daemon to hand over (`asks`): the ask lives and dies with the heartbeat.

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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from failover.core.ports import Beat, Claim, Lease, LeaseRecord, LeaseTable

if TYPE_CHECKING:
    from failover.core.ports import Clock

__all__ = [
    "BATCH",
    "DEFAULT_TTL_S",
    "Beat",
    "Claim",
    "Lease",
    "LeaseRecord",
    "LeaseTable",
    "TableLease",
    "new_holder_id",
]

DEFAULT_TTL_S = 15.0
"""A dead orchestrator's groups become takeable this long after its last heartbeat."""

BATCH = 100
"""Lease items written in one all-or-nothing batch (DynamoDB's transaction limit)."""


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
    spreads: bool = False  # a daemon
    asks: tuple[str, ...] = ()  # the groups it asks to be handed over


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
        sole_daemon: bool = False,
    ) -> None:
        """Lease groups in `table` as `holder_id` (new_holder_id() when None).

        `margin_s` (a fifth of the TTL when None) is how long before the TTL a holder that
        could not heartbeat stops acting; it must leave room for one missed heartbeat.
        `spreads` False: a one-shot command, which holds what it takes but is given no
        share of the groups by the daemons. `sole_daemon`: this daemon holds the lock that
        allows one daemon per table (the SQLite state file's), so every other daemon seen
        in the table is dead already (its lock went with it): its groups are taken at once.
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
        self._sole_daemon = sole_daemon and spreads
        self._asks: tuple[str, ...] = ()
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
        """Write our heartbeat; raises the table's error (CloudError, or FailoverError from the
        state file) when it fails: the session counts down."""
        started = self._clock.monotonic()
        with self._lock:
            asks = self._asks
        self._table.beat(
            Beat(
                self._holder_id,
                secrets.token_hex(16),
                self._ttl_s,
                self._spreads,
                self._clock.now(),
                asks,
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

    def ask(self, groups: Sequence[str]) -> None:
        """Ask for `groups` to be handed over, in a heartbeat written now; () withdraws."""
        with self._lock:
            self._asks = tuple(dict.fromkeys(groups))
        self.heartbeat()

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
                    spreads, asks = (beat.spreads, beat.asks) if beat is not None else (False, ())
                    self._seen[holder] = _Seen(rvn, ttl, now, now, spreads, asks)
                else:
                    seen.last = now
            # Forget who we stopped reading about: watching one again restarts its TTL (slower, never unsafe).
            for gone in [h for h, s in self._seen.items() if now - s.last > 3 * self._ttl_s]:
                del self._seen[gone]

    def _dead(self, holder: str) -> bool:
        """Seen unchanged for a whole TTL (theirs or ours, the longer) by our clock; or
        another daemon while we are the sole daemon allowed."""
        with self._lock:
            seen = self._seen.get(holder)
            if seen is None:
                return False
            if self._sole_daemon and seen.spreads and holder != self._holder_id:
                return True
            return self._clock.monotonic() - seen.since >= max(seen.ttl_s, self._ttl_s)

    def seen(self, holder: str) -> tuple[str | None, bool]:
        """The version of `holder`'s heartbeat last read (None: never) and whether it spreads."""
        with self._lock:
            seen = self._seen.get(holder)
            return (None, False) if seen is None else (seen.rvn, seen.spreads)

    def requested(self) -> dict[str, str]:
        """Groups asked for by live one-shot holders, as of the last read of the heartbeats."""
        with self._lock:
            askers = [(h, s.asks) for h, s in self._seen.items() if s.asks and h != self._holder_id]
        return {
            group: holder for holder, asks in askers if not self._dead(holder) for group in asks
        }

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
        return self.try_take(groups)[0]

    def try_take(self, groups: Sequence[str]) -> tuple[dict[str, int], dict[str, LeaseRecord]]:
        """`acquire_many`, and the lease items it read (who holds what was not taken)."""
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
