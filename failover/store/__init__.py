"""State store backends behind the Store port; `open_store` picks one from `state` settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from failover.errors import ConfigError
from failover.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from failover.config import StateSettings
    from failover.ports import Store

__all__ = ["SqliteStore", "open_store"]


def open_store(state: StateSettings) -> Store:
    """Open the store `state.backend` names; ConfigError if it cannot be used."""
    if state.backend == "sqlite":
        return SqliteStore(state.path)
    if state.backend == "dynamodb":
        raise ConfigError(
            "state.backend dynamodb is not available yet in this version of failover; "
            "use state.backend sqlite (the default)"
        )
    raise ConfigError(f"state.backend {state.backend!r} is not one of sqlite, dynamodb")
