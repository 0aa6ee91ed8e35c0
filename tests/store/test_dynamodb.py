"""DynamoStore and the DynamoDB adapter, beyond the contract: the table, the keys, the errors."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import replace
from typing import Any

import pytest
from botocore.exceptions import ClientError

from failover.aws.dynamodb import DynamoTable, Put
from failover.aws.dynamodb_create import create_table
from failover.config import StateSettings
from failover.core.errors import (
    ConfigError,
    PermanentCloudError,
    PermissionDeniedError,
    TransientCloudError,
)
from failover.core.ports import GroupState, MemberHealth, MoveRecord, StepRecord
from failover.store import DynamoStore
from failover.store.dynamodb_recent import RECENT_KEEP_S
from failover.wiring import open_store

from .moto_dynamodb import fresh_table

MOVE = MoveRecord(
    move_id="m1",
    group="db",
    mode="eni",
    resource="eni-1",
    source="i-0aa",
    target="i-0bb",
    caller="test",
    reason="drill",
    started_at=1_700_000_000.25,
    token=3,
)
STEP = StepRecord(kind="detach", description="detach eni-1", phase="started", at=2.0)


@pytest.fixture
def client(moto_client: Any) -> Any:
    """A DynamoDB client on in-process moto."""
    return moto_client


def test_create_table_makes_an_on_demand_table_once(client: Any) -> None:
    name = f"made-{uuid.uuid4().hex[:8]}"
    assert create_table(client, name) is True
    assert create_table(client, name) is False

    table = client.describe_table(TableName=name)["Table"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]} == {
        "pk": "HASH",
        "sk": "RANGE",
    }
    assert not table.get("GlobalSecondaryIndexes")
    ttl = client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expires")


def test_a_table_with_another_key_schema_is_a_config_error(client: Any) -> None:
    other = f"other-{uuid.uuid4().hex[:8]}"
    client.create_table(
        TableName=other,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )

    with pytest.raises(ConfigError, match=rf"state\.table {other}: key schema"):
        create_table(client, other)
    with pytest.raises(ConfigError, match=rf"state\.table {other}: key schema"):
        open_store(StateSettings(backend="dynamodb", table=other))


def test_items_live_at_the_documented_keys(client: Any) -> None:
    name = fresh_table(client)
    store = DynamoStore(DynamoTable(client, name))
    store.begin_move(MOVE)
    store.record_step("m1", STEP)
    store.save_health("db", [MemberHealth("i-0aa", healthy=True)])
    store.save_group_state(GroupState("db", status="degraded"))

    keys = {(i["pk"]["S"], i["sk"]["S"]) for i in client.scan(TableName=name)["Items"]}
    move = "move#00000001700000000.250000#m1"
    assert keys == {
        ("group#db", move),
        ("group#db", move + "#step#00000001"),
        ("group#db", "health#i-0aa"),
        ("group#db", "state"),
        ("group#db", "recent"),
        ("moveid#m1", "moveid"),
        ("open", "group#db|" + move),
    }

    store.finish_move("m1", "succeeded", 9.0)
    keys = {(i["pk"]["S"], i["sk"]["S"]) for i in client.scan(TableName=name)["Items"]}
    assert ("open", "group#db|" + move) not in keys
    assert store.history("db")[0].steps == (STEP,)


def test_history_pages_through_steps_and_stops_at_the_limit(client: Any) -> None:
    store = DynamoStore(DynamoTable(client, fresh_table(client)))
    for n in range(5):
        store.begin_move(replace(MOVE, move_id=f"m{n}", started_at=100.0 + n))
        for i in range(20):
            store.record_step(f"m{n}", replace(STEP, description=f"{n}.{i}"))

    (newest, second) = store.history("db", limit=2)
    assert (newest.move_id, second.move_id) == ("m4", "m3")
    assert [s.description for s in newest.steps] == [f"4.{i}" for i in range(20)]
    assert [m.move_id for m in store.history(limit=3)] == ["m4", "m3", "m2"]
    assert store.history("db", limit=0) == []


def test_floats_and_nones_round_trip_exactly(client: Any) -> None:
    store = DynamoStore(DynamoTable(client, fresh_table(client)))
    odd = MoveRecord(
        move_id="m2",
        group="db",
        mode="eip",
        resource="eipalloc-1",
        source=None,
        target="i-0bb",
        caller="test",
        reason="drill",
        started_at=0.1 + 0.2,
        steps=(StepRecord("attach", "attach", "done", 1e-7, 1 / 3, ""),),
    )
    store.begin_move(odd)

    assert store.open_moves() == [odd]


class FailingClient:
    """A client whose every DynamoDB call answers with one AWS error code."""

    def __init__(self, code: str, **extra: Any) -> None:
        self.code, self.extra, self.calls = code, extra, 0

    def __getattr__(self, action: str) -> Any:
        def call(**_: Any) -> Any:
            self.calls += 1
            error = {"Error": {"Code": self.code, "Message": f"{self.code} says no"}}
            raise ClientError({**error, **self.extra}, action)

        return call


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("ThrottlingException", TransientCloudError),
        ("ProvisionedThroughputExceededException", TransientCloudError),
        ("InternalServerError", TransientCloudError),
        ("ResourceNotFoundException", PermanentCloudError),
        ("ValidationException", PermanentCloudError),
    ],
)
def test_errors_are_translated_once(code: str, kind: type[Exception]) -> None:
    table = DynamoTable(FailingClient(code), "failover")  # type: ignore[arg-type]

    with pytest.raises(kind) as raised:
        table.put({"pk": "a", "sk": "b"})

    assert type(raised.value) is kind
    assert str(raised.value) == f"PutItem on table failover: {code}: {code} says no"


def test_a_missing_permission_names_the_dynamodb_action() -> None:
    table = DynamoTable(FailingClient("AccessDeniedException"), "failover")  # type: ignore[arg-type]

    with pytest.raises(PermissionDeniedError) as raised:
        table.get("a", "b")

    assert str(raised.value).startswith(
        "missing IAM permission dynamodb:GetItem on table failover (AccessDeniedException)"
    )


def test_a_transaction_that_conflicted_is_retried_and_a_failed_condition_is_not() -> None:
    slept: list[float] = []
    conflict = FailingClient(
        "TransactionCanceledException",
        CancellationReasons=[{"Code": "None"}, {"Code": "TransactionConflict"}],
    )
    table = DynamoTable(conflict, "failover", sleep=slept.append)  # type: ignore[arg-type]
    with pytest.raises(PermanentCloudError, match="TransactionCanceledException"):
        table.transact([Put({"pk": "a", "sk": "b"})])
    assert conflict.calls == 6
    assert len(slept) == 5

    failed = FailingClient(
        "TransactionCanceledException", CancellationReasons=[{"Code": "ConditionalCheckFailed"}]
    )
    table = DynamoTable(failed, "failover", sleep=slept.append)  # type: ignore[arg-type]
    assert table.transact([Put({"pk": "a", "sk": "b"})]) is False
    assert failed.calls == 1


def _calls(client: Any) -> Counter[str]:
    """A live count of `client`'s DynamoDB requests by operation."""
    calls: Counter[str] = Counter()
    client.meta.events.register(
        "before-call.dynamodb", lambda model, **_: calls.update([model.name])
    )
    return calls


def test_moves_journaled_before_the_recent_index_are_read_then_indexed(client: Any) -> None:
    """Rule: a table from before `recent` (or a group never read) is answered by a Query of
    the group's moves, once; from then on the pass reads only keys."""
    name = fresh_table(client)
    store = DynamoStore(DynamoTable(client, name))
    store.begin_move(replace(MOVE, started_at=1000.0))
    store.begin_move(replace(MOVE, move_id="m2", started_at=1100.0))
    client.delete_item(TableName=name, Key={"pk": {"S": "group#db"}, "sk": {"S": "recent"}})

    calls = _calls(client)
    assert store.load_groups({"db": [], "web": []}, 1050.0)["db"].move_times == (1100.0,)
    assert calls["Query"] == 2  # each group once, the never-moved one too

    calls.clear()
    store.begin_move(replace(MOVE, move_id="m3", started_at=1200.0))
    memory = store.load_groups({"db": [], "web": []}, 1060.0)
    assert (memory["db"].move_times, memory["web"].move_times) == ((1100.0, 1200.0), ())
    assert calls["Query"] == 0
    # Asked about an earlier time than it is complete from: read again, never guessed.
    assert store.load_groups({"db": []}, 0.0)["db"].move_times == (1000.0, 1100.0, 1200.0)
    assert calls["Query"] == 1


def test_begin_move_drops_start_times_older_than_a_day_and_stays_exact(client: Any) -> None:
    name = fresh_table(client)
    store = DynamoStore(DynamoTable(client, name))
    day = RECENT_KEEP_S
    store.begin_move(replace(MOVE, started_at=1000.0))
    assert store.load_groups({"db": []}, 0.0)["db"].move_times == (1000.0,)
    store.begin_move(replace(MOVE, move_id="m2", started_at=1000.0 + day / 2))
    store.begin_move(replace(MOVE, move_id="m3", started_at=1001.0 + day))

    recent = client.get_item(TableName=name, Key={"pk": {"S": "group#db"}, "sk": {"S": "recent"}})
    attributes = recent["Item"]
    assert sorted(a for a in attributes if a.startswith("start#")) == ["start#m2", "start#m3"]
    assert float(attributes["complete_from"]["N"]) == 1001.0
    calls = _calls(client)
    assert store.load_groups({"db": []}, 1001.0)["db"].move_times == (
        1000.0 + day / 2,
        1001.0 + day,
    )
    assert calls["Query"] == 0
    assert store.load_groups({"db": []}, 0.0)["db"].move_times == (
        1000.0,
        1000.0 + day / 2,
        1001.0 + day,
    )
