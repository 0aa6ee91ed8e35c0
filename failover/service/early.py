"""What an operator's move asks IAM on its read's round trip, and the eth0s that makes possible.

A DryRun of the calls that put the resource on a target names the target's eth0 (secondary-ip,
route), which was known only from the move's read, so the DryRun was a round trip of its own
before the mutating call. An instance's primary network interface can never be detached or
replaced, so once any read (a pass, an earlier move) has shown a member's eth0 it is known for
good: the store remembers it, and the move sends its likely target's DryRuns with the read.
The read still decides: a verdict stands only for the very call (same target, eth0 and
parameters) the read leads to (Cloud.permissions_to_take); any other target, or an eth0 the
read does not confirm, is screened after the read as before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from failover.core.decide import MoveRequest
from failover.core.model import GroupView, Mode
from failover.core.planner import screened_before_move
from failover.core.ports import GroupMemory, MoveRecord, Store
from failover.service.reads import Taking

if TYPE_CHECKING:
    from failover.config import Group


def taking(
    store: Store,
    group: Group,
    request: MoveRequest | None,
    memory: GroupMemory | None,
    unfinished: Sequence[object],
) -> Taking | None:
    """The target whose DryRuns go out with an operator's read, and its remembered eth0.

    Only for an operator's move (`request`, with the store's `memory` read before the read of
    AWS) that is DryRun-screened (screened_before_move) and finishes no journaled move
    (`unfinished`). The target is `--to`'s, else the likeliest choice (`likely_target`); None
    when its calls need an eth0 no read has shown yet.
    """
    if request is None or memory is None or unfinished or not screened_before_move(group):
        return None
    if not memory.eth0s and group.mode is not Mode.ENI:
        return None  # no read has shown any member's eth0 yet: no guess is worth a store read
    target = request.target or likely_target(group, memory, store.history(group.name, 1))
    if target is None:
        return None
    eth0 = memory.eth0s.get(target)
    if eth0 is None and group.mode is not Mode.ENI:
        return None
    return target, eth0


def likely_target(
    group: Group, memory: GroupMemory, last_moves: Sequence[MoveRecord]
) -> str | None:
    """The first member, in preference order, whose stored verdict is healthy and which is not
    where the last move in the history left the resource (the primary when there is none).

    A guess from the store alone: a wrong one costs one DryRun sent alongside the read.
    """
    if last_moves:
        last = last_moves[0]
        owner = last.target if last.outcome == "succeeded" else last.source
    else:
        owner = group.instance_ids[0]
    return next(
        (
            i
            for i in group.instance_ids
            if i != owner and (h := memory.health.get(i)) is not None and h.healthy
        ),
        None,
    )


def remember(
    store: Store, views: Mapping[str, GroupView], memory: Mapping[str, GroupMemory]
) -> None:
    """Store each member's eth0 the reads (`views`) show that the store (`memory`) does not
    hold: nothing once known, so a steady pass writes nothing."""
    new = {
        name: {
            m.instance_id: eni
            for m in view.members
            if (eni := m.primary_eni_id) and memory[name].eth0s.get(m.instance_id) != eni
        }
        for name, view in views.items()
        if name in memory
    }
    if changed := {name: eth0s for name, eth0s in new.items() if eth0s}:
        store.save_eth0s(changed)
