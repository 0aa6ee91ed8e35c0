"""The `recent` item of a DynamoDB group partition: the flap limit's and cooldown's index.

    pk               sk        attributes
    group#<group>    recent    start#<move_id>: the move's started_at, one per recent move
                               complete_from: every move of the group started at or after
                               it has its start#

Kept by hand, like the `open` markers and for the same reason (a GSI is only eventually
consistent): `begin_move` sets the move's `start#` in the transaction that journals it, so a
health pass reads its groups' recent moves with their other keys (BatchGetItem) instead of
one Query per group. The invariant holds whatever the interleaving of its writers:
- `begin_move`'s set is idempotent and commutes with every other write;
- an item without `complete_from` (moves journaled before the index existed) or complete
  from later than the `since` asked is not trusted: the reader Queries the group's moves
  and writes them with `complete_from = since` (`recent_rebuild`): every move its strongly
  consistent Query missed was journaled after it, and set its own start#;
- `trim_recent`, before each `begin_move`, drops start times older than RECENT_KEEP_S and
  raises `complete_from` past them in the same write, conditional on the `complete_from` it
  read: a concurrent rebuild turns it into a no-op, never a gap.
Rolling upgrade: an orchestrator of an older version journals moves without their start#;
run one version at a time against a table.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from failover.aws.dynamodb import DynamoTable, Update
from failover.core.ports import MoveRecord

RECENT_SK = "recent"
START_PREFIX = "start#"
COMPLETE_FROM = "complete_from"
RECENT_KEEP_S = 86_400.0
"""How long before a group's newest move `recent` keeps older moves' start times (the flap
limit looks back an hour; the margin covers clocks that disagree)."""
# Start times one write sets or drops at most: an update expression is at most 4 KB.
_WRITE_MAX = 100


def recent_times(item: Mapping[str, Any] | None, since: float) -> tuple[float, ...] | None:
    """Start times at or after `since`, oldest first; None unless `item` is complete from `since`."""
    if item is None or item.get(COMPLETE_FROM) is None or float(item[COMPLETE_FROM]) > since:
        return None
    times = (float(v) for k, v in item.items() if k.startswith(START_PREFIX))
    return tuple(sorted(t for t in times if t >= since))


def recent_rebuild(pk: str, since: float, moves: Sequence[MoveRecord]) -> Update | None:
    """The write that makes `recent` complete from `since`, given the group's `moves` since
    then (read consistently); None when it cannot be one write (the reader Queries again)."""
    if not math.isfinite(since) or len(moves) > _WRITE_MAX:
        return None
    names = {f"#s{n}": START_PREFIX + m.move_id for n, m in enumerate(moves)}
    values: dict[str, Any] = {f":s{n}": m.started_at for n, m in enumerate(moves)}
    sets = "".join(f", #s{n} = :s{n}" for n in range(len(moves)))
    return Update(
        pk,
        RECENT_SK,
        f"SET #complete = :since{sets}",
        names={"#complete": COMPLETE_FROM, **names},
        values={":since": since, **values},
    )


def trim_recent(table: DynamoTable, pk: str, started_at: float) -> None:
    """Drop from `recent` the start times older than RECENT_KEEP_S before `started_at`.

    `complete_from` is raised past them in the same write, conditional on the value read:
    a concurrent rebuild (which may lower it) makes this trim a no-op, never a gap.
    """
    item = table.get(pk, RECENT_SK)
    if item is None:
        return
    cut = started_at - RECENT_KEEP_S
    old = sorted(
        (float(v), k) for k, v in item.items() if k.startswith(START_PREFIX) and float(v) < cut
    )[:_WRITE_MAX]
    if not old:
        return
    names = {f"#s{n}": name for n, (_, name) in enumerate(old)}
    removal = "REMOVE " + ", ".join(names)
    seen = item.get(COMPLETE_FROM)
    if seen is None:
        # Nothing is claimed complete: dropping start times cannot hide a move.
        table.update(
            pk,
            RECENT_SK,
            removal,
            condition="attribute_not_exists(#complete)",
            names={"#complete": COMPLETE_FROM, **names},
        )
        return
    table.update(
        pk,
        RECENT_SK,
        f"{removal} SET #complete = :raised",
        condition="#complete = :seen",
        names={"#complete": COMPLETE_FROM, **names},
        values={":raised": max(cut, float(seen)), ":seen": seen},
    )
