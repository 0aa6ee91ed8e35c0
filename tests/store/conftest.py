"""Fixtures for the Store contract suite: one `store` per backend, and helpers to reopen it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from failover.config import StateSettings
from failover.ports import Store
from failover.store import open_store

StoreFactory = Callable[[], Store]


@pytest.fixture(params=["sqlite"])
def state_settings(request: pytest.FixtureRequest, tmp_path: Path) -> StateSettings:
    """Settings of a fresh, empty store for each backend under test."""
    if request.param == "sqlite":
        return StateSettings(backend="sqlite", path=str(tmp_path / "state" / "failover.db"))
    raise AssertionError(f"no fixture for backend {request.param}")


@pytest.fixture
def store_factory(state_settings: StateSettings) -> Iterator[StoreFactory]:
    """Open another store on the same backing state (what a second process would see)."""
    opened: list[Store] = []

    def factory() -> Store:
        store = open_store(state_settings)
        opened.append(store)
        return store

    yield factory
    for store in opened:
        store.close()


@pytest.fixture
def store(store_factory: StoreFactory) -> Store:
    """A fresh, empty store of the backend under test."""
    return store_factory()
