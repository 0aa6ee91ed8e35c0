"""State store backends behind the Store port (the wiring picks one from the `state` settings)."""

from failover.store.dynamodb import DynamoStore
from failover.store.sqlite import SqliteStore

__all__ = ["DynamoStore", "SqliteStore"]
