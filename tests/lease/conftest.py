"""Fixtures for the Lease contract suite: several orchestrators per backend on one fake clock.

`rig.lease(name)` is one orchestrator's lease; all of a rig's leases share one backing table
and one FakeClock, so TTLs pass by `rig.clock.advance(...)`, never by sleeping.
`rig.cut(lease)` makes every later call of that lease to its table fail as a network
error would (for DynamoDB: a client whose calls raise botocore's EndpointConnectionError).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from failover.aws.dynamodb import DynamoTable
from failover.coord.lease import Beat, Claim, LeaseRecord, LeaseTable, TableLease
from failover.coord.lease_memory import FakeLease, MemoryLeaseTable
from failover.core.errors import TransientCloudError
from failover.store.dynamodb_lease import DynamoLeaseTable
from failover.store.sqlite import SqliteStore
from failover.store.sqlite_claims import SqliteClaims

from ..clocks import FakeClock
from ..store.moto_dynamodb import fresh_table, in_process_dynamodb

TTL_S = 15.0


@dataclass
class Switch:
    """Whether one orchestrator's link to the table is cut."""

    cut: bool = False
    calls: int = 0  # every call this orchestrator made to its table
    # Run once right before this orchestrator's next batch write (a racing writer).
    before_write: Callable[[], None] | None = None

    def race(self) -> None:
        hook, self.before_write = self.before_write, None
        if hook is not None:
            hook()


class CuttableTable:
    """A LeaseTable as one orchestrator reaches it: every call fails once cut."""

    def __init__(self, table: LeaseTable, switch: Switch) -> None:
        self._table, self._switch = table, switch

    def _reach(self, action: str) -> LeaseTable:
        self._switch.calls += 1
        if self._switch.cut:
            raise TransientCloudError(action, "NetworkError", "link cut by the test")
        return self._table

    def read_many(self, groups: Sequence[str]) -> dict[str, LeaseRecord]:
        return self._reach("read_many").read_many(groups)

    def write_all(self, claims: Sequence[Claim]) -> list[int]:
        table = self._reach("write_all")
        self._switch.race()
        return table.write_all(claims)

    def beat(self, beat: Beat) -> None:
        self._reach("beat").beat(beat)

    def beats(self) -> dict[str, Beat]:
        return self._reach("beats").beats()


class CuttableClient:
    """A boto3 client whose every call raises a connection error once cut."""

    def __init__(self, client: Any, switch: Switch) -> None:
        self._client, self._switch = client, switch

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            self._switch.calls += 1
            if self._switch.cut:
                raise EndpointConnectionError(
                    endpoint_url="https://dynamodb.us-east-1.amazonaws.com"
                )
            if name == "transact_write_items":
                self._switch.race()
            return attribute(*args, **kwargs)

        return call


@dataclass
class Rig:
    """Orchestrators on one backend and one clock; `groups` is how many the fair-share test spreads."""

    clock: FakeClock
    groups: int
    _make: Callable[[str, Switch], TableLease]
    _switches: dict[str, Switch] = field(default_factory=dict)

    def lease(self, name: str, **options: Any) -> TableLease:
        switch = self._switches.setdefault(name, Switch())
        return self._make(name, switch, **options)

    def cut(self, lease: TableLease) -> None:
        self._switches[lease.holder_id].cut = True

    def uncut(self, lease: TableLease) -> None:
        self._switches[lease.holder_id].cut = False

    def calls(self, lease: TableLease) -> int:
        return self._switches[lease.holder_id].calls

    def before_write(self, lease: TableLease, hook: Callable[[], None]) -> None:
        self._switches[lease.holder_id].before_write = hook


@pytest.fixture(scope="module")
def moto_client() -> Iterator[Any]:
    """A DynamoDB client on in-process moto (mock_aws), for this module's tests."""
    with in_process_dynamodb() as client:
        yield client


@pytest.fixture(params=["fake", "dynamodb", "sqlite"])
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rig]:
    """Each Lease backend, empty, with a fresh FakeClock."""
    clock = FakeClock()
    if request.param == "fake":
        table = MemoryLeaseTable()

        def make_fake(name: str, switch: Switch, **options: Any) -> TableLease:
            return FakeLease(CuttableTable(table, switch), clock, name, **options)

        yield Rig(clock, 5_000, make_fake)
        return
    if request.param == "sqlite":
        # The claims in a state file: each orchestrator on its own connection, as processes are.
        stores: list[SqliteStore] = []

        def make_sqlite(name: str, switch: Switch, **options: Any) -> TableLease:
            stores.append(SqliteStore(tmp_path / "state.db"))
            return TableLease(
                CuttableTable(SqliteClaims(stores[-1]), switch), clock, name, **options
            )

        yield Rig(clock, 5_000, make_sqlite)
        for store in stores:
            store.close()
        return
    if request.param == "dynamodb":
        client = request.getfixturevalue("moto_client")
        name = fresh_table(client)

        def make_dynamo(holder: str, switch: Switch, **options: Any) -> TableLease:
            cuttable = CuttableClient(client, switch)
            return TableLease(
                DynamoLeaseTable(DynamoTable(cuttable, name)), clock, holder, **options
            )

        # moto answers a few hundred calls a second: spread fewer groups than the fake.
        yield Rig(clock, 30, make_dynamo)
        return
    raise AssertionError(f"no rig for backend {request.param}")
