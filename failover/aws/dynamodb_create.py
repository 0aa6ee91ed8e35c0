"""`failover validate --create-table`: make failover's DynamoDB table, or check an existing one."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import BotoCoreError, ClientError, WaiterError

from failover.aws.dynamodb import EXPIRES, PK, SK, check_key_schema, translate_dynamodb
from failover.aws.errors import error_code
from failover.core.errors import TransientCloudError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def create_table(client: DynamoDBClient, name: str, wait_s: float = 300.0) -> bool:
    """Create failover's table (on-demand billing) unless it exists; True if this call made it.

    Waits until the table is ACTIVE, then enables DynamoDB TTL on `expires` for a table it
    made. An existing table with another key schema is a ConfigError (nothing is changed).
    """
    api: Any = cast(Any, client)
    try:
        api.create_table(
            TableName=name,
            KeySchema=[
                {"AttributeName": PK, "KeyType": "HASH"},
                {"AttributeName": SK, "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": PK, "AttributeType": "S"},
                {"AttributeName": SK, "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        created = True
    except ClientError as exc:
        if error_code(exc) != "ResourceInUseException":
            raise translate_dynamodb(exc, "CreateTable", name) from None
        created = False
    except BotoCoreError as exc:
        raise translate_dynamodb(exc, "CreateTable", name) from None
    delay = 2
    try:
        api.get_waiter("table_exists").wait(
            TableName=name,
            WaiterConfig={"Delay": delay, "MaxAttempts": max(1, math.ceil(wait_s / delay))},
        )
        table = api.describe_table(TableName=name)["Table"]
        check_key_schema(name, table)
        if created:
            api.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": EXPIRES},
            )
    except WaiterError as exc:
        raise TransientCloudError(
            "DescribeTable", "NotActive", f"table not ACTIVE after {wait_s:g}s: {exc}", name
        ) from None
    except (ClientError, BotoCoreError) as exc:
        raise translate_dynamodb(exc, "CreateTable", name) from None
    return created
