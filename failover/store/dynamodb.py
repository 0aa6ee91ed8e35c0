"""DynamoStore: the Store port in one DynamoDB table, shared by several orchestrators.

Key design (one table, on-demand billing, string keys `pk` HASH / `sk` RANGE, no index;
the items <-> values codecs are failover/store/dynamodb_items.py):

    pk                   sk                                      item
    group#<group>        move#<started_at>#<move_id>             a move: the MoveRecord's
                                                                 fields and `step_count`
    group#<group>        move#<started_at>#<move_id>#step#<n>    the move's n-th step event
                                                                 (`step`: its fields as JSON)
    group#<group>        health#<instance_id>                    MemberHealth of one member,
                                                                 and `eth0`: its primary ENI
                                                                 as a read showed it
    group#<group>        state                                   GroupState
    group#<group>        recent                                  start times of the group's
                                                                 recent moves (`start#<move_id>`)
                                                                 and `complete_from`
    group#<group>        lease                                   the group's lease
                                                                 (failover/store/dynamodb_lease.py)
    moveid#<move_id>     moveid                                  pointer: the move's group
                                                                 partition and sort key
    open                 group#<group>|move#<started_at>#<id>    marker of an in-progress
                                                                 move (the same two keys)
    orchestrators        holder#<holder_id>                      an orchestrator's heartbeat
                                                                 (failover/store/dynamodb_lease.py)

`<started_at>` is the epoch seconds zero-padded to a fixed width (`%024.6f`) and `<n>` is
zero-padded too, so within a group's partition the moves sort by start time, each followed
by its steps in order: one Query returns moves with their steps, and `moves_since` is one
key range. `expires` (epoch seconds) is the table's DynamoDB TTL attribute, set only on
heartbeats.

Everything the engine asks is about one group, so it reads one partition with strongly
consistent Queries: `history(group)`, `moves_since`, `load_health`, `load_group_state`.
There is no GSI, because a GSI is only eventually consistent and a safety rule (cooldown,
flap limit, an unfinished journal) must not read stale data. Instead the `open` partition
is an index kept by hand: `begin_move` writes a marker in the same transaction as the
move, `finish_move` deletes it in the same transaction as it closes the move, so
`open_moves` (with or without a group) Queries the markers, then each open move (a
crash leaves few). `history()` without a group (an operator command, never the engine's
path) Scans the table, strongly consistent, and sorts client-side; its cost grows with
the table.

A health pass asks about many groups at once: `load_groups` reads, for every group, its
members' `health#` items, `state` and `recent` by key, with strongly consistent BatchGetItem
(100 keys a call), and `open_move_groups` is one Query of the `open` partition. A pass that
changes nothing costs one Query, (members + 2) / 100 BatchGetItem and members / 100
TransactWriteItems (the counters) per group; it was six requests per group.
`recent`, the flap limit's and the cooldown's index of a group's moves, is kept by hand
like `open`: see failover/store/dynamodb_recent.py.

Writes, each atomic:
- `begin_move`: one TransactWriteItems puts the move, its pointer (both conditional on not
  existing, so a move id is journaled at most once), its open marker and any steps it
  carries, and sets its start time in `recent`. Before it, a GetItem of `recent` (and, a
  day after a move, an UpdateItem dropping what is older) keeps that item small.
- `record_step`: an UpdateItem `ADD step_count 1` on the move (conditional on the move
  existing) reserves the step's number n, then a PutItem writes the step at n. DynamoDB
  applies updates to one item one at a time, so concurrent appends (threads or processes)
  get distinct numbers, in the order they were applied: none is lost or reordered. A crash
  between the two calls leaves an unused number, which readers skip. One item per step
  (rather than a list in the move) keeps each write at 1 KB and a move unbounded.
- `finish_move`: one TransactWriteItems: the conditional UpdateItem of the move and the
  deletion of its open marker.
- `save_health`, `save_health_many`: one UpdateItem for one member, else TransactWriteItems
  of up to 100 members, whole groups packed together (a group's members are never split
  between transactions unless it alone has more than 100). They set the counters only, so
  the item's `eth0` stays.
- `save_eth0s`: the same, setting `eth0` only; callers write an eth0 only when it differs
  from what `load_groups` read (the same items, no extra key), so a steady pass writes none.
- `save_group_state`: one PutItem; `save_status` and `save_hold`: one UpdateItem each, of
  their own attributes only, so the daemon's status and an operator's hold never undo
  each other.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from failover.aws.dynamodb import (
    PK,
    SK,
    TRANSACTION_MAX_ITEMS,
    Delete,
    DynamoTable,
    Put,
    Update,
    Write,
)
from failover.core.errors import FailoverError
from failover.core.ports import GroupMemory, GroupState, MemberHealth, MoveRecord, StepRecord
from failover.store.closing import Closing
from failover.store.dynamodb_items import (
    GROUP_PREFIX,
    HEALTH_PREFIX,
    IN_PROGRESS,
    MOVE_PREFIX,
    OPEN_PK,
    POINTER_SK,
    STATE_SK,
    eth0_update,
    gather,
    group_pk,
    health_from_item,
    health_update,
    move_and_steps,
    move_item,
    move_sk,
    open_item,
    open_sk,
    pointer_pk,
    started,
    state_from_item,
    state_item,
    step_item,
    time_key,
)
from failover.store.dynamodb_recent import (
    RECENT_SK,
    START_PREFIX,
    recent_rebuild,
    recent_times,
    trim_recent,
)


class DynamoStore(Closing):
    """The Store port on one DynamoDB table: every write atomic, every read consistent."""

    def __init__(self, table: DynamoTable) -> None:
        """Use `table` (made by `create_table`); no call is made here."""
        self._table = table
        self._closed = False
        self._pointers: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()

    @property
    def table(self) -> str:
        """The DynamoDB table this store reads and writes."""
        return self._table.name

    def _live(self, operation: str) -> DynamoTable:
        if self._closed:
            raise FailoverError(f"state table {self._table.name}: {operation}: store is closed")
        return self._table

    def begin_move(self, move: MoveRecord) -> None:
        """Journal a move's intent and the steps it carries, in one transaction."""
        table = self._live("begin_move")
        pk, sk = group_pk(move.group), move_sk(move.started_at, move.move_id)
        if len(move.steps) > TRANSACTION_MAX_ITEMS - 4:
            raise ValueError(f"move {move.move_id}: too many steps to journal at once")
        trim_recent(table, pk, move.started_at)
        pointer = {PK: pointer_pk(move.move_id), SK: POINTER_SK, "group_pk": pk, "move_sk": sk}
        marker = [Put(open_item(pk, sk))] if move.outcome == IN_PROGRESS else []
        written = table.transact(
            [
                Put(move_item(pk, sk, move), condition="attribute_not_exists(pk)"),
                Put(pointer, condition="attribute_not_exists(pk)"),
                *marker,
                Update(
                    pk,
                    RECENT_SK,
                    "SET #start = :started",
                    names={"#start": START_PREFIX + move.move_id},
                    values={":started": move.started_at},
                ),
                *(
                    Put(step_item(pk, sk, n, move.move_id, step))
                    for n, step in enumerate(move.steps, start=1)
                ),
            ]
        )
        if not written:
            raise ValueError(f"move {move.move_id} is already journaled")
        with self._lock:
            self._pointers[move.move_id] = (pk, sk)

    def record_step(self, move_id: str, step: StepRecord) -> None:
        """Append one step event to a journaled move: reserve its number, then write it."""
        table = self._live("record_step")
        pk, sk = self._resolve(table, move_id)
        number = table.increment(pk, sk, "step_count", condition="attribute_exists(pk)")
        if number is None:
            raise KeyError(f"move {move_id} is not journaled")
        table.put(step_item(pk, sk, number, move_id, step))

    def finish_move(
        self,
        move_id: str,
        outcome: str,
        finished_at: float,
        detail: str = "",
        target: str | None = None,
    ) -> None:
        """Close a journaled move with its outcome (and its final target, if it changed)."""
        table = self._live("finish_move")
        pk, sk = self._resolve(table, move_id)
        expression = "SET outcome = :outcome, finished_at = :finished_at, detail = :detail"
        values: dict[str, Any] = {
            ":outcome": outcome,
            ":finished_at": finished_at,
            ":detail": detail,
        }
        if target is not None:
            expression += ", #target = :target"
            values[":target"] = target
        close = Update(
            pk,
            sk,
            expression,
            condition="attribute_exists(pk)",
            names={"#target": "target"} if target is not None else None,
            values=values,
        )
        marker = open_item(pk, sk)
        if not table.transact([close, Delete(marker[PK], marker[SK])]):
            raise KeyError(f"move {move_id} is not journaled")

    def record_caller(self, move_id: str, caller: str) -> None:
        """Name the caller of a journaled move (one conditional UpdateItem)."""
        table = self._live("record_caller")
        pk, sk = self._resolve(table, move_id)
        written = table.update(
            pk,
            sk,
            "SET caller = :caller",
            condition="attribute_exists(pk)",
            values={":caller": caller},
        )
        if not written:
            raise KeyError(f"move {move_id} is not journaled")

    def _resolve(self, table: DynamoTable, move_id: str) -> tuple[str, str]:
        # The pointer never changes once written, so one read per move id is enough.
        with self._lock:
            known = self._pointers.get(move_id)
        if known is not None:
            return known
        pointer = table.get(pointer_pk(move_id), POINTER_SK)
        if pointer is None:
            raise KeyError(f"move {move_id} is not journaled")
        key = (str(pointer["group_pk"]), str(pointer["move_sk"]))
        with self._lock:
            self._pointers[move_id] = key
        return key

    def open_moves(self, group: str | None = None) -> list[MoveRecord]:
        """In-progress moves (what a crash left), oldest first, with their steps."""
        table = self._live("open_moves")
        prefix = None if group is None else open_sk(group_pk(group), MOVE_PREFIX)
        markers = table.query(OPEN_PK, prefix=prefix)
        # Open moves are few: each one's move and steps are one more Query.
        moves = (
            gather(table.query(str(m["group_pk"]), between=move_and_steps(str(m["move_sk"]))))
            for m in markers
        )
        return sorted((found[0] for found in moves if found), key=started)

    def open_move_groups(self) -> set[str]:
        """The groups with an in-progress move: one Query of the `open` markers."""
        markers = self._live("open_move_groups").query(OPEN_PK)
        return {str(m["group_pk"]).removeprefix(GROUP_PREFIX) for m in markers}

    def history(self, group: str | None = None, limit: int = 100) -> list[MoveRecord]:
        """Finished and open moves, newest first, at most `limit`, with their steps."""
        table = self._live("history")
        if limit <= 0:
            return []
        if group is None:
            moves = gather(self._scan_moves(table))
            return sorted(moves, key=started, reverse=True)[:limit]
        # Newest first, each move's steps come before it: _gather stops at the limit, and
        # small pages keep `history(group, 1)` (status) from reading a long past.
        items = table.query(
            group_pk(group), prefix=MOVE_PREFIX, forward=False, page_size=min(1000, 16 * limit)
        )
        return gather(items, limit)

    def moves_since(self, group: str, since: float) -> list[MoveRecord]:
        """Moves of `group` started at or after `since`, oldest first, with their steps."""
        # The padded key orders like the number, so the range holds every move at or after
        # `since`; the exact comparison drops what rounding to microseconds let in.
        low = MOVE_PREFIX + (time_key(since) if since >= 0 else "")
        items = self._live("moves_since").query(group_pk(group), between=(low, MOVE_PREFIX + "~"))
        return [m for m in gather(items) if m.started_at >= since]

    def _scan_moves(
        self, table: DynamoTable, where: str | None = None, values: Mapping[str, Any] | None = None
    ) -> Iterator[dict[str, Any]]:
        condition = "begins_with(pk, :group) AND begins_with(sk, :move)"
        if where is not None:
            condition += f" AND {where}"
        return table.scan(
            where=condition,
            values={":group": group_pk(""), ":move": MOVE_PREFIX, **(values or {})},
        )

    def load_health(self, group: str) -> dict[str, MemberHealth]:
        """Probe counters of a group's members, by instance id (one consistent Query)."""
        items = self._live("load_health").query(group_pk(group), prefix=HEALTH_PREFIX)
        members = (health_from_item(item) for item in items)
        return {m.instance_id: m for m in members if m is not None}

    def save_health(self, group: str, members: Sequence[MemberHealth]) -> None:
        """Replace the given members' counters all at once; other members are untouched."""
        self._save_health("save_health", {group: members})

    def save_health_many(self, health: Mapping[str, Sequence[MemberHealth]]) -> None:
        """Replace the counters of many groups' members, 100 to a transaction, a group's
        members in the same one."""
        self._save_health("save_health_many", health)

    def save_eth0s(self, eth0s: Mapping[str, Mapping[str, str]]) -> None:
        """Set members' eth0 on their `health#` items (counters untouched), batched like
        save_health_many."""
        self._save_members(
            "save_eth0s",
            {
                g: [eth0_update(g, i, eni) for i, eni in members.items()]
                for g, members in eth0s.items()
            },
        )

    def _save_health(self, operation: str, health: Mapping[str, Sequence[MemberHealth]]) -> None:
        self._save_members(
            operation, {g: [health_update(g, m) for m in members] for g, members in health.items()}
        )

    def _save_members(self, operation: str, writes: Mapping[str, Sequence[Write]]) -> None:
        """Members' item writes, 100 to a transaction, a group's in the same one."""
        table = self._live(operation)
        batch: list[Write] = []
        for group_writes in writes.values():
            if len(batch) + len(group_writes) > TRANSACTION_MAX_ITEMS:
                _write(table, batch)
                batch = []
            if len(group_writes) > TRANSACTION_MAX_ITEMS:
                for start in range(0, len(group_writes), TRANSACTION_MAX_ITEMS):
                    _write(table, group_writes[start : start + TRANSACTION_MAX_ITEMS])
                continue
            batch += group_writes
        _write(table, batch)

    def load_group_state(self, group: str) -> GroupState:
        """The group's remembered state; `GroupState(group=group)` when never saved."""
        item = self._live("load_group_state").get(group_pk(group), STATE_SK)
        return state_from_item(group, item)

    def save_group_state(self, state: GroupState) -> None:
        """Replace the group's state (one PutItem)."""
        self._live("save_group_state").put(state_item(state))

    def save_status(self, group: str, status: str, updated_at: float) -> None:
        """Set the group's status alone (one UpdateItem: a hold written meanwhile stays)."""
        self._live("save_status").update(
            group_pk(group),
            STATE_SK,
            "SET #status = :status, updated_at = :at",
            names={"#status": "status"},
            values={":status": status, ":at": updated_at},
        )

    def save_hold(self, group: str, held_by: str, reason: str, updated_at: float) -> None:
        """Set the group's hold alone (one UpdateItem; `held_by` "" releases it)."""
        self._live("save_hold").update(
            group_pk(group),
            STATE_SK,
            "SET held = :held, held_reason = :reason, held_by = :by, updated_at = :at",
            values={
                ":held": bool(held_by),
                ":reason": reason if held_by else "",
                ":by": held_by,
                ":at": updated_at,
            },
        )

    def load_groups(
        self, members: Mapping[str, Sequence[str]], since: float
    ) -> dict[str, GroupMemory]:
        """Counters, state and recent move start times of many groups by key (BatchGetItem,
        100 keys a call). A group whose `recent` cannot answer for `since` is Queried, and
        its `recent` rebuilt (even on a dry run: an index, not a memory of the pass)."""
        table = self._live("load_groups")
        keys: list[tuple[str, str]] = []
        for group, ids in members.items():
            pk = group_pk(group)
            keys += [(pk, HEALTH_PREFIX + i) for i in ids]
            keys += [(pk, STATE_SK), (pk, RECENT_SK)]
        found = table.get_many(keys)
        memories: dict[str, GroupMemory] = {}
        rebuilt: list[Write] = []
        for group, ids in members.items():
            pk = group_pk(group)
            items = {i: item for i in ids if (item := found.get((pk, HEALTH_PREFIX + i)))}
            health = {i: h for i, item in items.items() if (h := health_from_item(item))}
            eth0s = {i: str(item["eth0"]) for i, item in items.items() if item.get("eth0")}
            times = recent_times(found.get((pk, RECENT_SK)), since)
            if times is None:
                moves = self.moves_since(group, since)
                times = tuple(m.started_at for m in moves)
                if (rebuild := recent_rebuild(pk, since, moves)) is not None:
                    rebuilt.append(rebuild)
            state = state_from_item(group, found.get((pk, STATE_SK)))
            memories[group] = GroupMemory(group, health, state, times, eth0s)
        for start in range(0, len(rebuilt), TRANSACTION_MAX_ITEMS):
            table.transact(rebuilt[start : start + TRANSACTION_MAX_ITEMS])
        return memories

    def close(self) -> None:
        """Stop using the table; idempotent. Later calls raise FailoverError."""
        self._closed = True


def _write(table: DynamoTable, writes: Sequence[Write]) -> None:
    """Unconditional writes: one PutItem or UpdateItem alone, else one transaction (at most 100)."""
    if len(writes) == 1 and isinstance(put := writes[0], Put) and put.condition is None:
        table.put(put.item)
    elif len(writes) == 1 and isinstance(up := writes[0], Update) and up.condition is None:
        table.update(up.pk, up.sk, up.expression, names=up.names, values=up.values)
    elif writes:
        table.transact(writes)
