"""An orchestrator whose DynamoDB calls start failing stops moving before its lease can expire.

In-process: moto's EC2 behind the strict layer, a real Engine whose guard is a Fence over a
lease whose table link the test cuts, and a lease clock the test turns. The move is cut
between its detach and its attach: heartbeats fail, the lease's own clock runs past
TTL - margin, and the engine abandons the move at the next mutating call, leaving the
journal open for the next holder (who finishes it, as test_crash_boundaries shows).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws

from failover.aws.ec2 import Ec2Cloud
from failover.config import parse
from failover.coord.fence import Fence, Keeper
from failover.coord.lease_memory import FakeLease, MemoryLeaseTable
from failover.core.errors import CloudError, LeaseLostError
from failover.core.model import Step
from failover.core.ports import StepRecord
from failover.ops.clock import SystemClock
from failover.sandbox.strict import StrictLayer
from failover.sandbox.world import build_world
from failover.service.engine import Engine
from failover.store.sqlite import SqliteStore

from ..conftest import REGION, join_sts_questions
from ..lease.conftest import CuttableTable, FakeClock, Switch

TTL_S = 3.0


@pytest.fixture
def ec2(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[StrictLayer, object]]:
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    with mock_aws(), StrictLayer() as layer:
        config = Config(retries={"mode": "standard", "max_attempts": 3})
        yield layer, boto3.client("ec2", region_name=REGION, config=config)


def test_engine_abandons_a_move_when_the_session_can_no_longer_be_renewed(
    ec2: tuple[StrictLayer, object], tmp_path: Path
) -> None:
    """Rule: only the holder acts, and it re-checks the lease between steps (no call needed)."""
    layer, client = ec2
    world = build_world(client, mode="eni")
    document = {
        "aws": {"region": REGION},
        "state": {"path": str(tmp_path / "state.db")},
        "defaults": {"move_timeout": "30s", "detach_timeout": "5s"},
        "groups": [
            {
                "name": "g",
                "mode": "eni",
                "eni": world.eni_id,
                "device_index": 1,
                "members": [world.primary, *world.standbys],
            }
        ],
    }
    group = parse(document, "config.yaml").group("g")
    lease_clock, switch = FakeClock(), Switch()
    lease = FakeLease(CuttableTable(MemoryLeaseTable(), switch), lease_clock, "me", ttl_s=TTL_S)
    fence = Fence(lease, {"g": group.resource})
    lease.heartbeat()
    token = lease.acquire("g")
    assert token is not None
    fence.add("g", token)
    keeper = Keeper(fence)

    def cut_after_detach(step: Step | None, event: StepRecord) -> None:
        if event.kind == "wait-detached" and event.phase == "done":
            switch.cut = True  # DynamoDB stops answering
            with pytest.raises(CloudError):
                lease.heartbeat()
            # Still ours while our clock says so...
            lease_clock.advance(TTL_S - lease.margin_s - 0.01)
            assert fence.holds("g")
            # ...and no longer, a margin before anyone else could take it over.
            lease_clock.advance(0.02)
            assert not fence.holds("g")

    store = SqliteStore(str(tmp_path / "state.db"))
    clock = SystemClock()
    sts = boto3.client("sts", region_name=REGION)
    engine = Engine(
        Ec2Cloud(client, sts, clock.now),
        store,
        clock,
        on_step=cut_after_detach,
        guard=fence.guard,
        token_of=fence.token,
    )
    layer.reset_log()
    try:
        with pytest.raises(LeaseLostError, match="no longer holds the lease of group g"):
            engine.move(group, target=world.standbys[0])
        assert [c.action for c in layer.mutating_calls()] == ["DetachNetworkInterface"]
        (journaled,) = store.open_moves("g")
        assert journaled.token == token
        # A failing DynamoDB leaves nothing for the keeper to give back cleanly: it lapses.
        keeper.close()
        assert fence.tokens() == {}
    finally:
        join_sts_questions()
        store.close()
