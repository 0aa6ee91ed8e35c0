"""The DynamoDB adapter: the only module that calls DynamoDB. One table, plain values in and out.

`DynamoTable` wraps a client and a table name: every read is strongly consistent, every
conditional write answers True (written) or False (the condition said no) instead of
raising, and every other error is translated once into failover's CloudError tree.
Items cross this edge as plain Python values (str, int, float, bool, None, lists, dicts);
numbers come back as `Decimal` (DynamoDB normalizes them, so 1.0 reads back as 1): callers
convert with `float()` / `int()` (the conversions: failover/aws/dynamodb_values.py; keys,
transaction writes and expression arguments: failover/aws/dynamodb_requests.py).
`create_table` (failover/aws/dynamodb_create.py) is what `failover validate --create-table`
runs; the key design of what goes in the table belongs to its users (failover/store/dynamodb.py,
failover/store/dynamodb_lease.py).
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import BotoCoreError, ClientError

from failover.aws.dynamodb_requests import (
    EXPIRES,
    PK,
    SK,
    Delete,
    Put,
    Update,
    Write,
    check_key_schema,
    expression_args,
    key,
    transact_action,
)
from failover.aws.dynamodb_values import from_attribute, from_item, to_item
from failover.aws.errors import error_code, translate
from failover.core.errors import (
    CloudError,
    ConfigError,
    TransientCloudError,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = [
    "BATCH_GET_MAX_KEYS",
    "EXPIRES",
    "PK",
    "SK",
    "TRANSACTION_MAX_ITEMS",
    "Delete",
    "DynamoTable",
    "Put",
    "Update",
    "Write",
    "check_key_schema",
    "translate_dynamodb",
]

TRANSACTION_MAX_ITEMS = 100
"""TransactWriteItems takes at most this many actions."""

BATCH_GET_MAX_KEYS = 100
"""BatchGetItem takes at most this many keys."""

# Throttling and 5xx that botocore's retry mode did not absorb, and conflicts worth a retry.
_TRANSIENT = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "ThrottlingException",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionConflictException",
        "TransactionInProgressException",
    }
)
_CONDITION_FAILED = "ConditionalCheckFailedException"
# A transaction cancelled only because another write touched one of its items: retry it.
_CONFLICT_RETRIES = 5
_CONFLICT_BACKOFF_S = 0.02


class DynamoTable:
    """One DynamoDB table: consistent reads, conditional writes answered as bools.

    Thread-safe as the boto3 client is. `sleep` paces the retries of transactions that
    conflicted with another writer (injected so tests need not wait).
    """

    def __init__(
        self,
        client: DynamoDBClient,
        name: str,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Wrap `client` for table `name`; no call is made until a method is used."""
        self._client: Any = cast(Any, client)  # kwargs built dynamically; the stubs want literals
        self.name = name
        self._sleep = sleep

    def verify(self) -> None:
        """ConfigError unless the table exists with failover's key schema (DescribeTable)."""
        try:
            reply = self._client.describe_table(TableName=self.name)
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                raise ConfigError(
                    f"state.table {self.name}: no such DynamoDB table; create it with "
                    "`failover validate --create-table`"
                ) from None
            raise self._error(exc, "DescribeTable") from None
        except BotoCoreError as exc:
            raise self._error(exc, "DescribeTable") from None
        check_key_schema(self.name, reply["Table"])

    def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        """The item at (pk, sk), read strongly consistent; None when there is none."""
        reply = self._call(
            "GetItem",
            self._client.get_item,
            TableName=self.name,
            Key=key(pk, sk),
            ConsistentRead=True,
        )
        item = reply.get("Item")
        return None if item is None else from_item(item)

    def get_many(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        """The items at `keys` (strongly consistent, BatchGetItem), by key; absent ones left out.

        Keys the service leaves unprocessed (throttling) are asked again, with a short
        backoff, until every one is answered.
        """
        found: dict[tuple[str, str], dict[str, Any]] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), BATCH_GET_MAX_KEYS):
            request: dict[str, Any] = {
                self.name: {
                    "Keys": [key(pk, sk) for pk, sk in unique[start : start + BATCH_GET_MAX_KEYS]],
                    "ConsistentRead": True,
                }
            }
            for attempt in itertools.count():
                reply = self._call(
                    "BatchGetItem", self._client.batch_get_item, RequestItems=request
                )
                for raw in reply.get("Responses", {}).get(self.name, []):
                    item = from_item(raw)
                    found[(str(item[PK]), str(item[SK]))] = item
                request = reply.get("UnprocessedKeys") or {}
                if not request:
                    break
                self._sleep(min(_CONFLICT_BACKOFF_S * 2**attempt, 1.0) * random.uniform(0.5, 1.5))
        return found

    def put(
        self,
        item: Mapping[str, Any],
        *,
        condition: str | None = None,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> bool:
        """PutItem; False (nothing written) when `condition` does not hold."""
        return self._conditional(
            "PutItem",
            self._client.put_item,
            expression_args(condition, names, values),
            TableName=self.name,
            Item=to_item(item),
        )

    def update(
        self,
        pk: str,
        sk: str,
        expression: str,
        *,
        condition: str | None = None,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> bool:
        """UpdateItem with `expression` (atomic on the item); False when `condition` fails."""
        return self._conditional(
            "UpdateItem",
            self._client.update_item,
            expression_args(condition, names, values),
            TableName=self.name,
            Key=key(pk, sk),
            UpdateExpression=expression,
        )

    def increment(
        self,
        pk: str,
        sk: str,
        attribute: str,
        *,
        condition: str | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> int | None:
        """Atomically add 1 to a number attribute (0 when absent); its new value, or None
        when `condition` does not hold."""
        try:
            reply = self._client.update_item(
                TableName=self.name,
                Key=key(pk, sk),
                UpdateExpression="ADD #counter :one",
                ReturnValues="UPDATED_NEW",
                **expression_args(
                    condition, {"#counter": attribute}, {":one": 1, **(values or {})}
                ),
            )
        except ClientError as exc:
            if error_code(exc) == _CONDITION_FAILED:
                return None
            raise self._error(exc, "UpdateItem") from None
        except BotoCoreError as exc:
            raise self._error(exc, "UpdateItem") from None
        return int(from_attribute(reply["Attributes"][attribute]))

    def transact(self, writes: Sequence[Write]) -> bool:
        """Apply all of `writes` or none (TransactWriteItems); False when a condition fails.

        At most TRANSACTION_MAX_ITEMS. A cancellation caused only by a concurrent write to
        the same items is retried a few times; it says nothing about the conditions.
        """
        return not self.transact_refused(writes)

    def transact_refused(self, writes: Sequence[Write]) -> list[int]:
        """Like `transact`; the positions of the writes whose condition failed ([]: applied).

        DynamoDB names each refused write in the cancellation, so a caller can drop those
        and send the rest again instead of trying them one by one.
        """
        if len(writes) > TRANSACTION_MAX_ITEMS:
            raise ValueError(f"a transaction takes at most {TRANSACTION_MAX_ITEMS} items")
        actions = [transact_action(self.name, write) for write in writes]
        for attempt in range(_CONFLICT_RETRIES + 1):
            try:
                self._client.transact_write_items(TransactItems=actions)
            except ClientError as exc:
                if error_code(exc) != "TransactionCanceledException":
                    raise self._error(exc, "TransactWriteItems") from None
                codes = [
                    str(r.get("Code", "None")) for r in exc.response.get("CancellationReasons", [])
                ]
                refused = [i for i, code in enumerate(codes) if code == "ConditionalCheckFailed"]
                if refused:
                    return refused
                if set(codes) <= {"None", "TransactionConflict"} and attempt < _CONFLICT_RETRIES:
                    self._sleep(_CONFLICT_BACKOFF_S * 2**attempt * random.uniform(0.5, 1.5))
                    continue
                raise self._error(exc, "TransactWriteItems") from None
            except BotoCoreError as exc:
                raise self._error(exc, "TransactWriteItems") from None
            return []
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    def query(
        self,
        pk: str,
        *,
        prefix: str | None = None,
        between: tuple[str, str] | None = None,
        forward: bool = True,
        page_size: int | None = None,
        where: str | None = None,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Items of partition `pk` in sort-key order (strongly consistent), page after page.

        `prefix` or `between` (inclusive) narrows the sort key; `where` filters after the
        read; `page_size` caps the items each call reads (DynamoDB's Limit), for a caller
        that may stop iterating early.
        """
        condition, key_values = "#pk = :pk", {":pk": pk}
        if prefix is not None:
            condition += " AND begins_with(#sk, :prefix)"
            key_values[":prefix"] = prefix
        elif between is not None:
            condition += " AND #sk BETWEEN :low AND :high"
            key_values.update({":low": between[0], ":high": between[1]})
        args = expression_args(
            None, {"#pk": PK, "#sk": SK, **(names or {})}, {**key_values, **(values or {})}
        )
        if prefix is None and between is None and "#sk" not in (where or ""):
            args["ExpressionAttributeNames"].pop("#sk")
        if where is not None:
            args["FilterExpression"] = where
        if page_size is not None:
            args["Limit"] = page_size
        return self._pages(
            "Query",
            self._client.query,
            TableName=self.name,
            KeyConditionExpression=condition,
            ScanIndexForward=forward,
            ConsistentRead=True,
            **args,
        )

    def scan(
        self,
        *,
        where: str | None = None,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every item of the table that passes `where` (strongly consistent), in no order."""
        args = expression_args(None, names, values)
        if where is not None:
            args["FilterExpression"] = where
        return self._pages(
            "Scan", self._client.scan, TableName=self.name, ConsistentRead=True, **args
        )

    def _pages(
        self, action: str, method: Callable[..., Any], **kwargs: Any
    ) -> Iterator[dict[str, Any]]:
        while True:
            reply = self._call(action, method, **kwargs)
            for item in reply.get("Items", []):
                yield from_item(item)
            last = reply.get("LastEvaluatedKey")
            if not last:
                return
            kwargs["ExclusiveStartKey"] = last

    def _conditional(
        self, action: str, method: Callable[..., Any], args: dict[str, Any], **kwargs: Any
    ) -> bool:
        try:
            method(**kwargs, **args)
        except ClientError as exc:
            if error_code(exc) == _CONDITION_FAILED:
                return False
            raise self._error(exc, action) from None
        except BotoCoreError as exc:
            raise self._error(exc, action) from None
        return True

    def _call(self, action: str, method: Callable[..., Any], **kwargs: Any) -> dict[str, Any]:
        try:
            return cast(dict[str, Any], method(**kwargs))
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, action) from None

    def _error(self, exc: Exception, action: str) -> CloudError:
        return translate_dynamodb(exc, action, self.name)


def translate_dynamodb(exc: Exception, action: str, table: str) -> CloudError:
    """`translate` for DynamoDB: its own throttling codes, and IAM advice naming dynamodb:*."""
    resource = f"table {table}"
    if isinstance(exc, ClientError) and error_code(exc) in _TRANSIENT:
        message = str(exc.response.get("Error", {}).get("Message", "")) or str(exc)
        return TransientCloudError(action, error_code(exc), message, resource)
    return translate(exc, action, resource, "dynamodb")
