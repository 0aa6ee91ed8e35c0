"""The DynamoDB state table's keys, and its items <-> the ports' values (the key design is
failover/store/dynamodb.py's docstring)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from failover.aws.dynamodb import PK, SK, Update
from failover.core.ports import GroupState, MemberHealth, MoveRecord, StepRecord

IN_PROGRESS = "in-progress"
"""The outcome of a journaled move that has not finished."""

GROUP_PREFIX = "group#"
MOVE_PREFIX = "move#"
STEP_INFIX = "#step#"
HEALTH_PREFIX = "health#"
STATE_SK = "state"
POINTER_SK = "moveid"
OPEN_PK = "open"
LEASE_SK = "lease"
HOLDERS_PK = "orchestrators"
HOLDER_PREFIX = "holder#"


def group_pk(group: str) -> str:
    """The partition key of everything about `group`."""
    return f"{GROUP_PREFIX}{group}"


def move_sk(started_at: float, move_id: str) -> str:
    """The sort key of a move: start time first, so a partition lists moves oldest first."""
    return f"{MOVE_PREFIX}{time_key(started_at)}#{move_id}"


def step_sk(move_key: str, number: int) -> str:
    """The sort key of a move's `number`-th step: right after the move, in step order."""
    return f"{move_key}{STEP_INFIX}{number:08d}"


def move_and_steps(move_key: str) -> tuple[str, str]:
    """The sort-key range holding exactly one move and its steps."""
    return (move_key, f"{move_key}{STEP_INFIX}~")


def time_key(seconds: float) -> str:
    """Epoch seconds zero-padded to a fixed width: keys sort like the numbers."""
    return f"{seconds:024.6f}"


def state_item(state: GroupState) -> dict[str, Any]:
    """A GroupState as its `state` item."""
    return {
        PK: group_pk(state.group),
        SK: STATE_SK,
        "group": state.group,
        "held": state.held,
        "held_reason": state.held_reason,
        "held_by": state.held_by,
        "status": state.status,
        "updated_at": state.updated_at,
    }


def state_from_item(group: str, item: Mapping[str, Any] | None) -> GroupState:
    """A group's `state` item (None: never written) as a GroupState."""
    if item is None:
        return GroupState(group=group)
    held = bool(item.get("held", False))
    # A hold written before `held_by` existed was the flap limit's (the only one there was).
    held_by = str(item["held_by"]) if "held_by" in item else ("flap-limit" if held else "")
    return GroupState(
        group=group,
        held=held,
        held_reason=str(item.get("held_reason", "")),
        status=str(item.get("status", "ok")),
        updated_at=float(item.get("updated_at", 0)),
        held_by=held_by,
    )


def open_sk(pk: str, sk: str) -> str:
    """The sort key of an open move's marker: the move's partition and sort keys."""
    return f"{pk}|{sk}"


def open_item(pk: str, sk: str) -> dict[str, Any]:
    """The marker of an in-progress move, in the `open` partition."""
    return {PK: OPEN_PK, SK: open_sk(pk, sk), "group_pk": pk, "move_sk": sk}


def pointer_pk(move_id: str) -> str:
    """The partition key of a move id's pointer to its move."""
    return f"moveid#{move_id}"


def started(move: MoveRecord) -> tuple[float, str]:
    """Sort key of moves: start time, then id."""
    return (move.started_at, move.move_id)


def gather(items: Iterable[Mapping[str, Any]], limit: int | None = None) -> list[MoveRecord]:
    """Moves with their steps from move and step items (in key order, either direction).

    With `limit`, stops before the first item of the (limit + 1)-th move.
    """
    order: list[tuple[str, str]] = []
    moves: dict[tuple[str, str], Mapping[str, Any]] = {}
    steps: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for item in items:
        sk = str(item[SK])
        key = (str(item[PK]), sk.partition(STEP_INFIX)[0])
        if key not in steps:
            if limit is not None and len(order) >= limit:
                break
            order.append(key)
            steps[key] = []
        if STEP_INFIX in sk:
            steps[key].append(item)
        else:
            moves[key] = item
    # Steps never exist without their move (it is written first); skip any rather than fail.
    return [move_from_item(moves[key], steps[key]) for key in order if key in moves]


def move_item(pk: str, sk: str, move: MoveRecord) -> dict[str, Any]:
    """A MoveRecord (without its steps) as its move item."""
    return {
        PK: pk,
        SK: sk,
        "move_id": move.move_id,
        "group": move.group,
        "mode": move.mode,
        "resource": move.resource,
        "source": move.source,
        "target": move.target,
        "caller": move.caller,
        "reason": move.reason,
        "started_at": move.started_at,
        "outcome": move.outcome,
        "finished_at": move.finished_at,
        "forced": move.forced,
        "token": move.token,
        "detail": move.detail,
        "driver": move.driver,
        "os_user": move.os_user,
        "step_count": len(move.steps),
        "operator_forced": move.operator_forced,
    }


def step_item(pk: str, sk: str, number: int, move_id: str, step: StepRecord) -> dict[str, Any]:
    """A move's `number`-th step event as its item."""
    # A step is only ever read with its move, never queried by field: one JSON attribute
    # keeps the item small (floats exactly, as JSON writes their repr).
    event = {
        "kind": step.kind,
        "description": step.description,
        "phase": step.phase,
        "at": step.at,
        "elapsed_s": step.elapsed_s,
        "detail": step.detail,
    }
    return {PK: pk, SK: step_sk(sk, number), "step": json.dumps(event, separators=(",", ":"))}


def step_from_item(item: Mapping[str, Any]) -> tuple[int, StepRecord]:
    """A step item as (its number, the StepRecord)."""
    number = int(str(item[SK]).rpartition(STEP_INFIX)[2])
    event = json.loads(str(item["step"]))
    return number, StepRecord(
        kind=str(event["kind"]),
        description=str(event["description"]),
        phase=str(event["phase"]),
        at=float(event["at"]),
        elapsed_s=float(event["elapsed_s"]),
        detail=str(event["detail"]),
    )


def _number(numbered: tuple[int, StepRecord]) -> int:
    return numbered[0]


def _optional_float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def move_from_item(item: Mapping[str, Any], steps: Iterable[Mapping[str, Any]]) -> MoveRecord:
    """A move item and its step items as a MoveRecord (steps in order)."""
    token = item.get("token")
    os_user = item.get("os_user")
    return MoveRecord(
        move_id=str(item["move_id"]),
        group=str(item["group"]),
        mode=str(item["mode"]),
        resource=str(item["resource"]),
        source=None if item.get("source") is None else str(item["source"]),
        target=str(item["target"]),
        caller=str(item["caller"]),
        reason=str(item["reason"]),
        started_at=float(item["started_at"]),
        outcome=str(item["outcome"]),
        finished_at=_optional_float(item.get("finished_at")),
        forced=bool(item["forced"]),
        token=None if token is None else int(token),
        steps=tuple(step for _, step in sorted(map(step_from_item, steps), key=_number)),
        detail=str(item["detail"]),
        driver=str(item.get("driver") or ""),
        os_user=None if os_user is None else str(os_user),
        # Absent from items written before the store kept it: unknown, not "no".
        operator_forced=None
        if item.get("operator_forced") is None
        else bool(item["operator_forced"]),
    )


_COUNTERS = ("healthy", "successes", "failures", "reason", "changed_at", "probed_at")


def health_update(group: str, member: MemberHealth) -> Update:
    """A member's probe counters set on its `health#` item; its `eth0` attribute stays."""
    values = {
        ":instance_id": member.instance_id,
        ":healthy": member.healthy,
        ":successes": member.successes,
        ":failures": member.failures,
        ":reason": member.reason,
        ":changed_at": member.changed_at,
        ":probed_at": member.probed_at,
    }
    names = {f"#{name}": name for name in ("instance_id", *_COUNTERS)}
    expression = "SET " + ", ".join(f"#{name} = :{name}" for name in ("instance_id", *_COUNTERS))
    return Update(
        group_pk(group), HEALTH_PREFIX + member.instance_id, expression, names=names, values=values
    )


def eth0_update(group: str, instance_id: str, eni_id: str) -> Update:
    """A member's eth0 set on its `health#` item; its counters (if any) stay."""
    return Update(
        group_pk(group),
        HEALTH_PREFIX + instance_id,
        "SET instance_id = :instance_id, eth0 = :eth0",
        values={":instance_id": instance_id, ":eth0": eni_id},
    )


def health_from_item(item: Mapping[str, Any]) -> MemberHealth | None:
    """A `health#` item as MemberHealth; None when it holds only the member's eth0 (no verdict)."""
    if "healthy" not in item:
        return None
    return MemberHealth(
        instance_id=str(item["instance_id"]),
        healthy=bool(item["healthy"]),
        successes=int(item["successes"]),
        failures=int(item["failures"]),
        reason=str(item["reason"]),
        changed_at=float(item["changed_at"]),
        probed_at=float(item.get("probed_at", 0)),
    )
