"""State store backends behind the Store port; `open_store` picks one from `state` settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from failover.errors import ConfigError
from failover.store.dynamodb import DynamoStore
from failover.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from failover.config import AwsSettings, StateSettings
    from failover.ports import Store

__all__ = ["DynamoStore", "SqliteStore", "open_store"]


def open_store(state: StateSettings, aws: AwsSettings | None = None) -> Store:
    """Open the store `state.backend` names; ConfigError if it cannot be used.

    The DynamoDB backend reaches AWS as `aws` says (boto3's defaults and environment
    when None) and checks that `state.table` exists with failover's key schema.
    """
    if state.backend == "sqlite":
        return SqliteStore(state.path)
    if state.backend == "dynamodb":
        # Imported here: only the DynamoDB backend needs boto3 and a client.
        from failover.aws.clients import make_client
        from failover.aws.dynamodb import DynamoTable
        from failover.config import AwsSettings

        if state.table is None:  # the settings validator already insists on it
            raise ConfigError("state.table is required when state.backend is dynamodb")
        table = DynamoTable(make_client(aws or AwsSettings(), "dynamodb"), state.table)
        table.verify()
        return DynamoStore(table)
    raise ConfigError(f"state.backend {state.backend!r} is not one of sqlite, dynamodb")
