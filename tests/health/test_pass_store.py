"""What a health pass asks of the store: a few batched requests, and the same decisions.

The monitor runs here on a `FakeCloud` (EC2's answers as values: the store is under test,
not EC2) and a fake clock, over both stores; DynamoDB is moto in-process, its requests
counted on the client.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import cast

import pytest

from failover.aws.dynamodb import DynamoTable
from failover.aws.ec2 import Ec2Cloud
from failover.config import Group, Settings, parse
from failover.core.model import Attachment, Eni, GroupView, Instance, Interface
from failover.core.ports import MoveRecord, Store
from failover.service.engine import Engine
from failover.service.monitor import Monitor
from failover.store import DynamoStore, SqliteStore

from ..clocks import FakeClock
from ..store.moto_dynamodb import fresh_table, in_process_dynamodb

AZ = "us-east-1a"


class FakeCloud:
    """EC2 as `Monitor` observes it: every ENI on its group's first member, `stopped` members
    not running (their ec2 check fails), every other member running with checks ok."""

    def __init__(self) -> None:
        self.stopped: set[str] = set()

    def observe_pass(self, groups: Sequence[Group]) -> dict[str, GroupView]:
        return {g.name: self._view(g) for g in groups}

    def forget_topology(self, instance_ids: Collection[str] | None = None) -> None:
        """Nothing is held: every view is made afresh."""

    def _view(self, group: Group) -> GroupView:
        members = tuple(
            Instance(
                i,
                "stopped" if i in self.stopped else "running",
                AZ,
                f"10.0.0.{n + 10}",
                interfaces=(Interface(eth0_of(i), 0),),
                status_ok=i not in self.stopped,
            )
            for n, i in enumerate(group.instance_ids)
        )
        attachment = Attachment("eni-attach-1", group.instance_ids[0], 1, "attached", False)
        assert group.eni is not None
        return GroupView(group.name, "eni", members, eni=Eni(group.eni, AZ, "in-use", attachment))


def eth0_of(instance_id: str) -> str:
    """The member's primary ENI in FakeCloud's views."""
    return "eni-" + instance_id.removeprefix("i-")


def settings_of(groups: int, path: Path, **policy: object) -> Settings:
    """`groups` eni groups of two members each, checked by the ec2 check alone."""
    return parse(
        {
            "aws": {"region": "us-east-1"},
            "state": {"path": str(path)},
            "defaults": dict(policy),
            "groups": [
                {
                    "name": f"g{n}",
                    "mode": "eni",
                    "eni": f"eni-{n:017x}",
                    "device_index": 1,
                    "members": [f"i-{2 * n:017x}", f"i-{2 * n + 1:017x}"],
                    "checks": [{"type": "ec2"}],
                }
                for n in range(groups)
            ],
        },
        "test",
    )


def monitor_of(store: Store, clock: FakeClock, cloud: FakeCloud) -> Monitor:
    ec2 = cast(Ec2Cloud, cloud)
    return Monitor(ec2, store, Engine(ec2, store, clock), clock)


@contextmanager
def dynamodb_store() -> Iterator[tuple[DynamoStore, Counter[str]]]:
    """A DynamoStore on a fresh table of in-process moto, and a live count of its requests."""
    with in_process_dynamodb() as client:
        calls: Counter[str] = Counter()
        client.meta.events.register(
            "before-call.dynamodb", lambda model, **_: calls.update([model.name])
        )
        name = fresh_table(client)
        calls.clear()
        yield DynamoStore(DynamoTable(client, name)), calls


GROUPS = 300


def test_a_steady_pass_costs_the_store_a_few_requests_per_hundred_groups(tmp_path: Path) -> None:
    """Rule: a pass costs the store O(groups/100) requests when nothing changes: one Query of
    the open moves, BatchGetItem of every group's keys (100 a call) and the counters written
    100 to a transaction; no request per group (it was 6 per group: ~1,800 here). The members'
    eth0s are written by the first pass only (an eth0 never changes), and read with the
    counters' items: no extra key, no extra request in a steady pass."""
    settings = settings_of(GROUPS, tmp_path / "unused.db")
    clock, cloud = FakeClock(wall=1_700_000_000.0, mono=1_700_000_000.0), FakeCloud()
    with dynamodb_store() as (store, calls):
        monitor = monitor_of(store, clock, cloud)
        monitor.run_pass(settings.groups)  # the first pass also indexes each group's moves
        first = sum(calls.values())
        clock.sleep(2.0)
        calls.clear()
        started = time.monotonic()
        outcomes = monitor.run_pass(settings.groups)
        pass_s = time.monotonic() - started  # mostly moto copying its table per transacted item
        steady = dict(calls)
        memory = store.load_groups({g.name: g.instance_ids for g in settings.groups}, 0.0)
    assert {o.outcome for o in outcomes} == {"stay"}
    assert all(
        memory[g.name].eth0s == {i: eth0_of(i) for i in g.instance_ids} for g in settings.groups
    )

    print(f"\nfirst pass {first} requests; steady pass {steady} in {pass_s:.1f}s (moto)")
    keys = GROUPS * (2 + 2)  # per group: two members' counters, state, recent moves
    assert steady == {
        "Query": 1,
        "BatchGetItem": -(-keys // 100),
        "TransactWriteItems": -(-GROUPS * 2 // 100),
    }
    assert sum(steady.values()) < GROUPS / 10


def _seed_moves(store: Store, now: float) -> None:
    """Two finished moves of g0: one a minute ago, one twenty minutes ago."""
    for move_id, ago in (("recent", 60.0), ("earlier", 1200.0)):
        store.begin_move(
            MoveRecord(
                move_id=move_id,
                group="g0",
                mode="eni",
                resource="eni-00000000000000000",
                source="i-00000000000000001",
                target="i-00000000000000000",
                caller="test",
                reason="seeded",
                started_at=now - ago,
            )
        )
        store.finish_move(move_id, "succeeded", now - ago + 5.0)


def _run_scenario(store: Store, path: Path) -> list[tuple[str, str, str]]:
    """The active member of g0 goes down within cooldown, then at the flap limit."""
    settings = settings_of(
        3, path, fall=2, rise=1, cooldown="10m", max_moves_per_hour=2, failback="manual"
    )
    clock, cloud = FakeClock(wall=1_700_000_000.0, mono=1_700_000_000.0), FakeCloud()
    _seed_moves(store, clock.now())
    monitor = monitor_of(store, clock, cloud)
    seen: list[tuple[str, str, str]] = []

    def passes(count: int, step_s: float) -> None:
        for _ in range(count):
            for o in monitor.run_pass(settings.groups):
                seen.append((o.group, o.outcome, o.decision.reason))
            clock.sleep(step_s)

    passes(1, 2.0)
    cloud.stopped.add("i-00000000000000000")
    passes(2, 2.0)  # failing, then down within cooldown
    clock.sleep(600.0)
    passes(2, 2.0)  # down at the flap limit: hold, then held
    return seen


@pytest.mark.parametrize("backend", ["sqlite", "dynamodb"])
def test_batched_reads_decide_cooldown_flap_limit_and_hold_as_before(
    backend: str, tmp_path: Path
) -> None:
    """Rule: batching changes no decision: a group down within cooldown waits, at the flap
    limit is held, and stays held; the others stay, on either store."""
    if backend == "sqlite":
        with SqliteStore(tmp_path / "state.db") as sqlite:
            seen = _run_scenario(sqlite, tmp_path / "state.db")
            state = sqlite.load_group_state("g0")
    else:
        with dynamodb_store() as (dynamo, _):
            seen = _run_scenario(dynamo, tmp_path / "unused.db")
            state = dynamo.load_group_state("g0")

    g0 = [(outcome, reason) for group, outcome, reason in seen if group == "g0"]
    assert [outcome for outcome, _ in g0] == ["stay", "stay", "cooldown", "hold", "held"]
    assert "last move 64s ago, within cooldown 10m" in g0[2][1]
    assert "2 moves in the last hour" in g0[3][1]
    assert {outcome for group, outcome, _ in seen if group != "g0"} == {"stay"}
    assert (state.held, state.status) == (True, "held")


def test_a_group_state_is_written_when_it_changes_not_every_pass(tmp_path: Path) -> None:
    """Rule: `updated_at` alone is no change: entering degraded is written once, and the
    passes after it (degraded still) and before it (ok) write no state."""
    settings = settings_of(2, tmp_path / "unused.db")
    clock, cloud = FakeClock(wall=1_700_000_000.0, mono=1_700_000_000.0), FakeCloud()
    with dynamodb_store() as (store, calls):
        monitor = monitor_of(store, clock, cloud)
        monitor.run_pass(settings.groups)
        cloud.stopped |= {"i-00000000000000000", "i-00000000000000001"}
        writes = []
        for _ in range(5):
            clock.sleep(2.0)
            calls.clear()
            outcomes = monitor.run_pass(settings.groups)
            writes.append((outcomes[0].outcome, calls["PutItem"] + calls["UpdateItem"]))
        state = store.load_group_state("g0")

    # fall is 3: the third failing pass finds g0 down, with no healthy standby.
    assert writes == [("stay", 0), ("stay", 0), ("degraded", 1), ("degraded", 0), ("degraded", 0)]
    assert (state.status, state.updated_at) == ("degraded", 1_700_000_006.0)
