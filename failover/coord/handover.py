"""How a one-shot command takes groups: `check` and the Lambda waiting out dead holders, and
`failover move` asking the daemon that holds its group to hand the group over.

Both backends keep per-group leases (failover/coord/lease.py): DynamoDB's lease items, the
SQLite state file's claims. A daemon holds its share of the groups for as long as it runs,
so an operator's `failover move` must be handed the group it moves:

The handover protocol
1. The command (a one-shot holder, H) heartbeats and tries to take the group's lease: a
   vacant, released or dead holder's lease is taken at once.
2. If a live daemon D holds it, H writes its heartbeat with `asks: [group]`, and tries
   again every tenth of a TTL. A live one-shot holder (another `move`, a `check`) is not
   asked: H gives up as soon as it has seen that holder's heartbeat change.
3. At its next lease round (every sixth of a TTL or half a health interval, the shorter),
   every daemon reads the heartbeats it reads anyway, and with them the asks of the live
   one-shot holders. D releases the group unless a move of it is under way in D (it
   releases it at the first round after that move), and no daemon takes an asked group.
4. H takes the released lease (token + 1) and at once writes a heartbeat without the ask.
   From here H runs the one guarded path (failover/service/switchover.py) under the lease:
   it finishes a journaled move, reads AWS, decides, moves, alerts, runs the hooks; the
   engine checks the lease between steps.
5. H releases the lease; the daemon the group is assigned to takes it at its next round,
   reads AWS fresh, and with `failback: manual` leaves the resource where H put it.
   Nothing repeats the move: every decision is made on a read of AWS made after its
   maker took the lease.

Failure cases
- D dies before it answers: H sees D's heartbeat unchanged for a TTL, takes the lease
  from the dead holder (token + 1), finishes D's journaled move if D left one, then moves.
  The other daemons take D's other groups a TTL after its death; not the asked one.
- D does not answer within the wait (an older failover, or a move of D's longer than it):
  H gives up, exit 3, naming D; nothing was touched.
- H dies before it took the lease: its ask dies with its heartbeat; a TTL later the
  daemons see H dead, ignore the ask, and the assigned daemon takes the group back.
- H dies mid-move: its lease lapses a TTL after its last heartbeat; the assigned daemon
  takes it from the dead holder and its next pass (run at once for a group with an open
  move) finishes H's journaled move to H's target; failback manual keeps it there.
- Two commands ask for one group: one conditional write takes the lease; the other sees a
  live one-shot holder and gives up (exit 3, or 0 when AWS shows its target reached), or,
  if the first has released the group already, takes it and finds nothing left to do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from failover.core.ports import Lease


@dataclass(frozen=True)
class Taken:
    """What a one-shot take got: tokens by group, and who holds each group refused, in words."""

    tokens: dict[str, int] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)


def describe_holder(lease: Lease, holder: str) -> str:
    """`holder` for an operator: its id (host:pid:random) and what kind of process it is."""
    if not holder:
        return "nobody (the lease was released meanwhile)"
    version, daemon = lease.seen(holder)
    if version is None:
        return f"{holder} (no heartbeat seen)"
    kind = "a failover daemon" if daemon else "another failover move, check or Lambda run"
    return f"{holder} ({kind})"


def take(
    lease: Lease,
    groups: Sequence[str],
    sleep: Callable[[float], None],
    *,
    handover: bool = False,
    wait_s: float | None = None,
    on_ask: Callable[[str, str], None] | None = None,
) -> Taken:
    """Acquire `groups` for a one-shot command (the protocol is the module docstring).

    A group whose holder stopped is taken once its heartbeat stayed unchanged for a TTL.
    A live one-shot holder, or a live daemon unless `handover`, is given up on (as soon as
    its heartbeat is seen to change, or at once when it took the group while we waited);
    with `handover` a daemon is asked for the group (`on_ask(group, holder)` told once) and
    waited for. The waiting stops after `wait_s` of sleeps (two TTLs and the margin when
    None), for all the groups at once.
    """
    tokens: dict[str, int] = {}
    first: dict[str, tuple[str, str | None]] = {}  # group -> (holder, its heartbeat version)
    pending = list(dict.fromkeys(groups))
    budget = 2 * lease.ttl_s + lease.margin_s if wait_s is None else wait_s
    asked: tuple[str, ...] = ()
    told: set[str] = set()
    waited = 0.0
    try:
        while pending:
            lease.heartbeat_if_due()
            got, records = lease.try_take(pending)
            tokens.update(got)
            waiting, of_daemons = [], []
            for group in pending:
                if group in got:
                    continue
                record = records.get(group)
                holder = record.holder if record is not None else ""
                if not holder:
                    waiting.append(group)  # a session lapse, or released and another race: again
                    continue
                version, daemon = lease.seen(holder)
                asks = handover and daemon
                known = first.get(group)
                if known is None or (known[0] != holder and asks):
                    first[group] = (holder, version)
                elif known[0] != holder or (not asks and version != known[1]):
                    continue  # another took it meanwhile, or its holder lives: give up
                if asks:
                    of_daemons.append(group)
                    if on_ask is not None and group not in told:
                        told.add(group)
                        on_ask(group, holder)
                waiting.append(group)
            pending = waiting
            if tuple(of_daemons) != asked:
                # Asked for while a daemon holds them; withdrawn at once once taken, so the
                # daemons take a group back as soon as we release it.
                asked = tuple(of_daemons)
                lease.ask(asked)
            if not pending or waited >= budget:
                break
            step = lease.ttl_s / 10
            sleep(step)
            waited += step
    finally:
        if asked:
            lease.ask(())
    refused = {
        group: describe_holder(lease, first.get(group, ("", None))[0])
        for group in dict.fromkeys(groups)
        if group not in tokens
    }
    return Taken(tokens, refused)
