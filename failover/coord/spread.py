"""Share the groups among the live orchestrators: each holds at most its fair share."""

from __future__ import annotations

import contextlib
import hashlib
import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from failover.core.errors import FailoverError
from failover.core.ports import Lease

if TYPE_CHECKING:
    from failover.coord.fence import Fence


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
    """One orchestrator's rounds of heartbeat, assign, give back and take.

    Call `rebalance(groups)` often (the daemon: every half interval, so a dead orchestrator
    is noticed soon), while a Keeper heartbeats for the lease (failover/coord/fence.py; a
    slow round must not starve the session, so rounds never heartbeat). A round computes
    `assign` over the live orchestrators, gives back what is no longer assigned to it (a
    holder joined: the new owner takes it at its next round) and what a live one-shot
    holder asks for (`failover move`, failover/coord/handover.py), and takes what is
    assigned to it, not asked for, and free: vacant, released, or held by an orchestrator
    whose heartbeat it has seen unchanged for a TTL. A dead orchestrator's groups are taken
    a TTL and one or two rounds after its last heartbeat. With a `fence`, a group pinned
    there (a move of it under way in this process) is given back only after the move, and
    the fence learns what is held after each round.
    """

    def __init__(self, lease: Lease, fence: Fence | None = None) -> None:
        """Spread for `lease`'s holder (and keep `fence` up to date, if given)."""
        self._lease = lease
        self._fence = fence
        self._held: dict[str, int] = {}

    @property
    def held(self) -> dict[str, int]:
        """The groups this orchestrator holds after the last round, with their tokens."""
        return dict(self._held)

    def rebalance(self, groups: Sequence[str]) -> dict[str, int]:
        """One round; returns the groups now held, with their tokens."""
        lease, me = self._lease, self._lease.holder_id
        valid = {g: t for g, t in self._held.items() if lease.check(g, t)}
        try:
            owner = assign(groups, lease.holders())
        except FailoverError:  # the table (DynamoDB or the state file) did not answer
            # No view of the others: keep what we still hold, claim and give back nothing.
            return self._keep(valid)
        asked = lease.requested()  # read with the heartbeats, just now
        give = {g: t for g, t in valid.items() if owner.get(g) != me or g in asked}
        if self._fence is not None:
            give = self._fence.release_unpinned(give)
        if give:
            # Dropped locally already; if the release is lost, its holder looks dead a TTL later.
            with contextlib.suppress(FailoverError):
                lease.release(give)
        kept = {g: t for g, t in valid.items() if g not in give}
        wanted = [g for g in groups if owner.get(g) == me and g not in kept and g not in asked]
        if wanted:
            with contextlib.suppress(FailoverError):
                kept.update(lease.acquire_many(wanted))
        return self._keep(kept)

    def _keep(self, held: dict[str, int]) -> dict[str, int]:
        self._held = held
        if self._fence is not None:
            self._fence.hold(held)
        return dict(held)
