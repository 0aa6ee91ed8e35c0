"""A move's calls fit its deadline, and a member Force-detached from is not a target until restarted.

Bounded calls: botocore would retry a throttled call with backoffs of up to 20 s; under a
move's deadline no attempt starts after it, a mutating call tries at most 3 times, and the
move ends at most one call's time after move_timeout. Time is a fake clock that moves only
by the engine's sleeps and by each EC2 call taking CALL_S (the layer's `on_call`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws

from failover.aws import bounds
from failover.aws.ec2 import Ec2Cloud
from failover.config import parse
from failover.core.errors import CloudError, RefusedError, TransientCloudError
from failover.sandbox.strict import Call, StrictLayer
from failover.sandbox.world import build_world
from failover.service.engine import Engine
from failover.store.sqlite import SqliteStore

from ..clocks import FakeClock
from .conftest import REGION, Rig, group_config

CALL_S = 1.0  # how long each EC2 call takes on the fake clock
RigFactory = Callable[..., Rig]


@pytest.fixture
def throttled(aws_env: None, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """An eni group on a fake clock; every DetachNetworkInterface answered RequestLimitExceeded."""
    with mock_aws():
        clock = FakeClock()
        layer = StrictLayer(clock=clock.monotonic)
        layer.install()
        try:
            config = Config(retries={"mode": "standard", "max_attempts": 8})
            ec2 = boto3.client("ec2", region_name=REGION, config=config)
            world = build_world(ec2, mode="eni")
            settings = parse(
                {
                    "aws": {"region": REGION},
                    "state": {"path": str(tmp_path / "state.db")},
                    "groups": [group_config(world, "eni", move_timeout="20s", detach_timeout="2s")],
                },
                "test",
            )
            store = SqliteStore(settings.state.path)
            cloud = Ec2Cloud(ec2, None, clock.now)
            layer.inject_faults(1.0, ("RequestLimitExceeded",), actions=("DetachNetworkInterface",))
            layer.reset_log()

            def takes_time(call: Call) -> None:
                clock.advance(CALL_S)

            layer.on_call = takes_time
            yield {
                "layer": layer,
                "clock": clock,
                "cloud": cloud,
                "engine": Engine(cloud, store, clock),
                "group": settings.groups[0],
                "world": world,
            }
            store.close()
        finally:
            layer.on_call = None
            layer.uninstall()


def test_a_throttled_move_ends_within_move_timeout_and_one_call(throttled: dict[str, Any]) -> None:
    """Rule: under 100 % throttling no attempt starts after the move's deadline, and the move
    ends (RequestLimitExceeded, the real cause) within move_timeout + one call."""
    clock, layer, group = throttled["clock"], throttled["layer"], throttled["group"]
    started = clock.monotonic()
    with pytest.raises(TransientCloudError) as caught:
        throttled["engine"].move(group, target=throttled["world"].standbys[0])
    deadline = started + group.policy.move_timeout_s
    assert caught.value.code == "RequestLimitExceeded"
    detaches = layer.calls_to("DetachNetworkInterface", dry_run=False)
    assert len(detaches) > bounds.MUTATING_ATTEMPTS  # it kept trying until the deadline
    # No call of the move started after the deadline; the last ended within one call of it.
    closing = layer.calls[-2:]  # the read that closes the journal, after the move gave up
    # (the members and the ENI are read at once: in either order)
    assert sorted(c.action for c in closing) == ["DescribeInstances", "DescribeNetworkInterfaces"]
    moving = layer.calls[:-2]
    assert all(c.at < deadline for c in moving)
    assert max(c.at for c in moving) + CALL_S <= deadline + CALL_S
    assert throttled["world"].primary == _owner(throttled)


def _owner(rig: dict[str, Any]) -> str | None:
    view = rig["cloud"].observe(rig["group"])
    return view.active  # type: ignore[no-any-return]


def test_a_mutating_call_is_tried_at_most_three_times(throttled: dict[str, Any]) -> None:
    """Rule: a mutating call gets 3 attempts (client configured for 8): AttachNetworkInterface
    takes no idempotency token, and each retry spends the move's time."""
    cloud, layer, world = throttled["cloud"], throttled["layer"], throttled["world"]
    view = cloud.observe(throttled["group"])
    assert view.eni is not None
    assert view.eni.attachment is not None
    layer.reset_log()
    with pytest.raises(CloudError):
        cloud.detach(view.eni.attachment.attachment_id, force=False)
    assert len(layer.calls_to("DetachNetworkInterface")) == bounds.MUTATING_ATTEMPTS
    reads = throttled["layer"]
    # A 5xx, whose backoff is short (a throttle's would sleep ~40 s here for real).
    reads.inject_faults(1.0, ("InternalError",), actions=("DescribeAddresses",))
    reads.reset_log()
    with pytest.raises(CloudError):
        cloud.describe_addresses(["eipalloc-0123456789abcdef0"])
    # Reads keep the configured retries (botocore's max_attempts: retries after the first).
    assert len(reads.calls_to("DescribeAddresses")) == 1 + 8
    assert world.eni_id


def test_a_member_force_detached_from_is_no_target_until_stopped_and_started(
    rig: RigFactory,
) -> None:
    """Rule: after a Force detach AWS may keep that device index busy on the old instance until
    it is stopped and started: it is passed over (the journal remembers, across restarts) until
    its LaunchTime changes; --force overrides."""
    r = rig("eni", layer={"detach_delay_s": 0.1}, detach_timeout="1s")
    primary, standby = r.world.primary, r.world.standbys[0]
    r.layer.stick_detach(r.world.eni_id or "")
    r.ec2.stop_instances(InstanceIds=[primary])
    r.engine.move(r.group, target=standby)  # forced: the member being left has failed
    assert r.eni_owner() == standby
    r.layer.stick_detach(r.world.eni_id or "", stuck=False)

    restarted = Engine(r.cloud, r.store, r.engine.clock)  # a new process: the journal remembers
    with pytest.raises(RefusedError, match="Force detach") as caught:
        restarted.move(r.group, target=primary)
    assert "stopped and started" in str(caught.value)
    assert r.eni_owner() == standby
    assert r.layer.calls_to("DetachNetworkInterface", dry_run=False)[-1].params["Force"] is True

    r.ec2.start_instances(InstanceIds=[primary])  # LaunchTime moves: the index is free again
    result = restarted.move(r.group, target=primary)
    assert result.outcome == "succeeded"
    assert r.eni_owner() == primary


def test_force_overrides_the_force_detach_memory(rig: RigFactory) -> None:
    """Rule: the operator's --force moves to a member Force-detached from (never an IAM refusal)."""
    r = rig("eni", layer={"detach_delay_s": 0.1}, detach_timeout="1s")
    primary, standby = r.world.primary, r.world.standbys[0]
    r.layer.stick_detach(r.world.eni_id or "")
    r.ec2.stop_instances(InstanceIds=[primary])
    r.engine.move(r.group, target=standby)
    r.layer.stick_detach(r.world.eni_id or "", stuck=False)
    result = r.engine.move(r.group, target=primary, force=True)
    assert result.outcome == "succeeded"
    assert r.eni_owner() == primary


def test_a_deadline_names_the_throttling_even_when_a_read_got_through_after_it(
    aws_env: None,
) -> None:
    """Rule: a move stopped by its deadline names AWS's refusal that kept it from finishing
    (RequestLimitExceeded on DetachNetworkInterface), even when a wait's read succeeded
    between that refusal and the deadline; only the refused call itself getting through
    clears it. Driven through the client's own events: no clock, no timing."""
    client = boto3.client("ec2", region_name=REGION)
    bounds.attach(client)
    model = client.meta.service_model
    events = client.meta.events

    def answered(action: str, error: dict[str, str] | None) -> None:
        response = (None, {"Error": error} if error else {"ResponseMetadata": {}})
        events.emit(
            f"needs-retry.ec2.{action}",
            response=response,
            attempts=1,
            operation=model.operation_model(action),
            caught_exception=None,
            request_dict={"context": {}},
        )

    def refusal_at_deadline() -> str:
        with bounds.bounded(lambda: 0.0), pytest.raises(bounds.DeadlineReached) as caught:
            events.emit("before-send.ec2.DetachNetworkInterface", request=None)
        return str(caught.value)

    throttled = {"Code": "RequestLimitExceeded", "Message": "Request limit exceeded."}
    with bounds.bounded(lambda: 10.0):
        answered("DetachNetworkInterface", throttled)
        answered("DescribeNetworkInterfaces", None)  # the wait's read between two tries
    said = refusal_at_deadline()
    assert "RequestLimitExceeded" in said
    assert "DetachNetworkInterface" in said
    with bounds.bounded(lambda: 10.0):
        answered("DetachNetworkInterface", None)  # the refused call itself got through
    assert refusal_at_deadline() == "the move's deadline passed before the call was sent"
