"""Fixtures for the Store contract suite: one `store` per backend, and helpers to reopen it.

The DynamoDB backend runs on moto, its requests serialized as DynamoDB serializes writes
to one item (see moto_dynamodb.py). This process talks to moto in-process (`mock_aws`,
fast); the suite's child processes reach the same moto state through moto's server on
127.0.0.1, named by AWS_ENDPOINT_URL. Each test gets a new table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from failover.aws.dynamodb import DynamoTable
from failover.config import StateSettings
from failover.core.ports import Store
from failover.sandbox.server import SandboxServer
from failover.store import DynamoStore
from failover.wiring import open_store

from .moto_dynamodb import fresh_table, in_process_dynamodb, serialized_dynamodb

StoreFactory = Callable[[], Store]


@dataclass(frozen=True)
class Backend:
    """A fresh, empty store's settings, and how this process opens another view of it."""

    settings: StateSettings
    open: StoreFactory


@pytest.fixture(scope="session")
def dynamodb_url() -> Iterator[str]:
    """moto's server for the session, its DynamoDB requests serialized; its URL."""
    with serialized_dynamodb(), SandboxServer() as server:
        yield server.url


@pytest.fixture
def dynamodb_env(
    request: pytest.FixtureRequest, aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> str:
    """Point boto3 (here and in child processes) at the session's moto server; its URL."""
    url: str = request.getfixturevalue("dynamodb_url")
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    return url


@pytest.fixture(scope="module")
def moto_client() -> Iterator[Any]:
    """A DynamoDB client on in-process moto (mock_aws), for this module's tests."""
    with in_process_dynamodb() as client:
        yield client


@pytest.fixture(params=["sqlite", "dynamodb"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Each backend under test, empty."""
    if request.param == "sqlite":
        settings = StateSettings(backend="sqlite", path=str(tmp_path / "state" / "failover.db"))
        return Backend(settings, lambda: open_store(settings))
    if request.param == "dynamodb":
        # The client has moto's AWS endpoint, answered in-process; AWS_ENDPOINT_URL (for the
        # children) does not reroute it. Both reach the same moto state.
        client = request.getfixturevalue("moto_client")
        request.getfixturevalue("dynamodb_env")
        name = fresh_table(client)
        return Backend(
            StateSettings(backend="dynamodb", table=name),
            lambda: DynamoStore(DynamoTable(client, name)),
        )
    raise AssertionError(f"no fixture for backend {request.param}")


@pytest.fixture
def state_settings(backend: Backend) -> StateSettings:
    """Settings of a fresh, empty store for each backend under test."""
    return backend.settings


@pytest.fixture
def store_factory(backend: Backend) -> Iterator[StoreFactory]:
    """Open another store on the same backing state (what a second process would see)."""
    opened: list[Store] = []

    def factory() -> Store:
        store = backend.open()
        opened.append(store)
        return store

    yield factory
    for store in opened:
        store.close()


@pytest.fixture
def store(store_factory: StoreFactory) -> Store:
    """A fresh, empty store of the backend under test."""
    return store_factory()
