"""Test support for DynamoDB on moto: item-level atomicity moto lacks, a server, a table.

Real DynamoDB applies the writes to one item one at a time, so a conditional write or a
`list_append` never loses a concurrent one. moto's models have no lock: two threads (of
`mock_aws`, or of its threaded server) can both pass a condition, and 8 threads appending
to one list lose about a third of their appends. `serialized_dynamodb` puts one lock around
moto's DynamoDB request handler, process-wide, which makes moto at least as strict as
DynamoDB (every request linearizable); moto's EC2 and other services are untouched.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.responses import DynamoHandler

from failover.aws.dynamodb_create import create_table

REGION = "us-east-1"
AWS_URL = f"https://dynamodb.{REGION}.amazonaws.com"
"""DynamoDB's own endpoint: what mock_aws answers in-process (and never reached for real)."""
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
}
_LOCK = threading.RLock()


@contextmanager
def serialized_dynamodb() -> Iterator[None]:
    """Serialize every DynamoDB request moto serves in this process (in-process or server)."""
    original = DynamoHandler.__dict__["call_action"]

    def serialized(self: Any) -> Any:
        with _LOCK:
            return original(self)

    DynamoHandler.call_action = serialized  # type: ignore[method-assign]
    try:
        yield
    finally:
        DynamoHandler.call_action = original  # type: ignore[method-assign]


def dynamodb_client(endpoint_url: str | None = None) -> Any:
    """A DynamoDB client for moto (in-process when `endpoint_url` is None)."""
    return boto3.client("dynamodb", region_name=REGION, endpoint_url=endpoint_url)


def fresh_table(client: Any) -> str:
    """Create a table with a new name (so tests never see each other's items); its name."""
    name = f"failover-{uuid.uuid4().hex[:10]}"
    assert create_table(client, name) is True
    return name


@contextmanager
def in_process_dynamodb() -> Iterator[Any]:
    """Serialized in-process moto with fake credentials; a client on it (one per module:
    building a client costs more than most tests)."""
    with pytest.MonkeyPatch.context() as env, serialized_dynamodb(), mock_aws():
        for name, value in FAKE_AWS_ENV.items():
            env.setenv(name, value)
        env.delenv("AWS_PROFILE", raising=False)
        yield dynamodb_client(AWS_URL)
