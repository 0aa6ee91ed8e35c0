"""Describe calls per move: one read of AWS before each mutating call, waits poll the resource only.

An AZ failure moves hundreds of groups at once, and EC2's Describe bucket (100 burst,
20/s) is shared by all of them: every redundant read of a move is a move that waits
(bench/RESULTS.md, "An AZ fails"). These tests count the calls the strict layer logged,
and check that the reads the engine no longer makes were redundant: each mutating step
is still checked against a read made after the previous step's call.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from failover.core.model import Step
from failover.core.ports import StepRecord
from failover.ops.clock import SystemClock
from failover.sandbox.strict import Call
from failover.service.engine import FRESH_VIEW_S, Engine

from .conftest import Rig

RigFactory = Callable[..., Rig]

# Every mode: one observation (DescribeInstances + the resource's describe) before each
# mutating call, one resource describe per poll, and nothing else.
# route (two tables): the first read, the read before the second ReplaceRoute, one poll.
DESCRIBES_PER_MOVE = {"eni": 6, "secondary-ip": 6, "eip": 3, "route": 5}


def describes(calls: list[Call]) -> list[str]:
    return [c.action for c in calls if c.action.startswith("Describe")]


def before_first_mutation(calls: list[Call]) -> list[Call]:
    first = next(k for k, c in enumerate(calls) if c.mutating)
    return calls[:first]


@pytest.mark.parametrize("mode", ["eni", "secondary-ip", "eip", "route"])
def test_a_move_makes_at_most_n_describe_calls(rig: RigFactory, mode: str) -> None:
    """Rule: a move makes at most DESCRIBES_PER_MOVE Describe calls when AWS answers at once
    (eip: 3, down from 8; eni: 6, from 12; secondary-ip: 6, from 14)."""
    r = rig(mode)
    r.engine.caller()
    r.layer.reset_log()
    result = r.engine.move(r.group, target=r.world.standbys[0])
    assert result.outcome == "succeeded"
    assert len(describes(r.layer.calls)) <= DESCRIBES_PER_MOVE[mode]


@pytest.mark.parametrize("mode", ["eni", "secondary-ip", "eip", "route"])
def test_a_move_reads_aws_once_before_its_first_mutating_call(rig: RigFactory, mode: str) -> None:
    """Rule: one observation serves the choice, the plan, the journal and the first step's checks."""
    r = rig(mode, layer={"detach_delay_s": 0.3, "attach_delay_s": 0.2, "eip_follow_delay_s": 0.3})
    r.engine.caller()
    r.layer.reset_log()
    r.engine.move(r.group, target=r.world.standbys[0])
    first = describes(before_first_mutation(r.layer.calls))
    assert first.count("DescribeInstances") == 1
    assert len(first) == 2


@pytest.mark.parametrize("mode", ["eni", "eip"])
def test_members_are_read_once_per_mutating_step_and_waits_poll_only_the_resource(
    rig: RigFactory, mode: str
) -> None:
    """Rule: every mutating step is checked against a read of the members made after the
    previous step's call (free device index, target state); the waits in between still poll."""
    r = rig(mode, layer={"detach_delay_s": 0.3, "attach_delay_s": 0.2})
    r.engine.caller()
    r.layer.reset_log()
    r.engine.move(r.group, target=r.world.standbys[0])
    actions = [c.action for c in r.layer.calls]
    mutating = [k for k, c in enumerate(r.layer.calls) if c.mutating]
    assert actions.count("DescribeInstances") == len(mutating)
    # The read before each mutating call comes after the previous one (and its wait).
    starts = [0, *(k + 1 for k in mutating[:-1])]
    for start, call in zip(starts, mutating, strict=True):
        assert "DescribeInstances" in actions[start:call]
    if mode == "eni":
        # detach_delay_s keeps the ENI `detaching` for a while: the wait polled it, more than once.
        between = actions[mutating[0] + 1 : mutating[1]]
        assert between.count("DescribeNetworkInterfaces") >= 3


def test_a_device_index_taken_during_the_detach_wait_is_seen_before_the_attach(
    rig: RigFactory,
) -> None:
    """Rule: the device index must be free on the target, checked on a read made after the
    detach, not on the read the move was planned on."""
    r = rig("eni", world={"standbys": 2}, layer={"detach_delay_s": 0.3})
    first, second = r.world.standbys

    def take_index(step: Step | None, event: StepRecord) -> None:
        if event.kind == "wait-detached" and event.phase == "done":
            eni = r.ec2.create_network_interface(SubnetId=r.world.subnet_a)["NetworkInterface"]
            r.ec2.attach_network_interface(
                NetworkInterfaceId=eni["NetworkInterfaceId"], InstanceId=first, DeviceIndex=1
            )

    r.engine._on_step = take_index
    r.layer.reset_log()
    result = r.engine.move(r.group, target=first)
    assert result.target == second
    assert r.eni_owner() == second
    ours = [
        c.params.get("InstanceId")
        for c in r.layer.calls_to("AttachNetworkInterface")
        if c.params.get("NetworkInterfaceId") == r.world.eni_id and not c.dry_run
    ]
    assert ours == [second]  # never sent to the standby whose index was taken


class _SkewClock(SystemClock):
    """The system clock, with a monotonic offset a test can jump forward."""

    def __init__(self) -> None:
        self.offset_s = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.offset_s


def test_a_read_older_than_fresh_view_s_is_read_again_before_the_call(rig: RigFactory) -> None:
    """Rule: the engine's own read stands in for a re-read only while younger than FRESH_VIEW_S
    (here the lease check before the journal stalls past it)."""
    r = rig("eip")
    clock = _SkewClock()
    stalls: list[str] = []

    def slow_guard(group: str) -> None:
        if not stalls:
            stalls.append(group)
            clock.offset_s += FRESH_VIEW_S + 1.0

    engine = Engine(r.cloud, r.store, clock, guard=slow_guard)
    engine.caller()
    r.layer.reset_log()
    engine.move(r.group, target=r.world.standbys[0])
    assert stalls == ["g"]
    first = describes(before_first_mutation(r.layer.calls))
    # Two reads, each of the members and the EIP at once (in either order).
    assert sorted(first[:2]) == sorted(first[2:]) == ["DescribeAddresses", "DescribeInstances"]
    assert r.eip()["InstanceId"] == r.world.standbys[0]
