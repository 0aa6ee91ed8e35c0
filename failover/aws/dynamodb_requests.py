"""DynamoDB request parts: the table's key schema, a transaction's writes, and expression arguments."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from failover.aws.dynamodb_values import to_attribute, to_item
from failover.core.errors import ConfigError

PK = "pk"
"""The partition key attribute (a string)."""

SK = "sk"
"""The sort key attribute (a string)."""

EXPIRES = "expires"
"""The table's DynamoDB TTL attribute (epoch seconds): set only on items that may vanish."""


@dataclass(frozen=True)
class Put:
    """A PutItem inside a transaction, with an optional condition on the item it replaces."""

    item: Mapping[str, Any]
    condition: str | None = None
    names: Mapping[str, str] | None = None
    values: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Update:
    """An UpdateItem inside a transaction."""

    pk: str
    sk: str
    expression: str
    condition: str | None = None
    names: Mapping[str, str] | None = None
    values: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Delete:
    """A DeleteItem inside a transaction."""

    pk: str
    sk: str


Write = Put | Update | Delete
"""One action of a transaction."""


def check_key_schema(name: str, table: Mapping[str, Any]) -> None:
    """ConfigError unless `table` (DescribeTable's) has failover's keys: pk HASH, sk RANGE."""
    keys = {k["AttributeName"]: k["KeyType"] for k in table.get("KeySchema", [])}
    if keys != {PK: "HASH", SK: "RANGE"}:
        raise ConfigError(
            f"state.table {name}: key schema is {keys}, not failover's "
            f"({PK} HASH, {SK} RANGE); point state.table at another table"
        )


def key(pk: str, sk: str) -> dict[str, Any]:
    """The key of the item at (pk, sk)."""
    return {PK: {"S": pk}, SK: {"S": sk}}


def expression_args(
    condition: str | None,
    names: Mapping[str, str] | None,
    values: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """A request's condition and its attribute names and values, leaving out what is empty."""
    args: dict[str, Any] = {}
    if condition is not None:
        args["ConditionExpression"] = condition
    if names:
        args["ExpressionAttributeNames"] = dict(names)
    if values:
        args["ExpressionAttributeValues"] = {k: to_attribute(v) for k, v in values.items()}
    return args


def transact_action(table: str, write: Write) -> dict[str, Any]:
    """`write` as one of TransactWriteItems' TransactItems on `table`."""
    if isinstance(write, Put):
        put = {"TableName": table, "Item": to_item(write.item)}
        return {"Put": {**put, **expression_args(write.condition, write.names, write.values)}}
    if isinstance(write, Update):
        update = {
            "TableName": table,
            "Key": key(write.pk, write.sk),
            "UpdateExpression": write.expression,
        }
        args = expression_args(write.condition, write.names, write.values)
        return {"Update": {**update, **args}}
    return {"Delete": {"TableName": table, "Key": key(write.pk, write.sk)}}
