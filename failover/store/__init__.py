"""State store backends behind the Store port (the wiring picks one from the `state` settings).

Each backend is imported when first named: the SQLite one must not pull in DynamoDB's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from failover.store.dynamodb import DynamoStore
    from failover.store.sqlite import SqliteStore

__all__ = ["DynamoStore", "SqliteStore"]


def __getattr__(name: str) -> object:
    """`failover.store.DynamoStore` / `SqliteStore`, imported on first use."""
    if name == "DynamoStore":
        from failover.store.dynamodb import DynamoStore

        return DynamoStore
    if name == "SqliteStore":
        from failover.store.sqlite import SqliteStore

        return SqliteStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
