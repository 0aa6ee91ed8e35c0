"""What `failover move --yes` sends AWS before it owns the resource: one read of the members
and the resource, the target's DryRun (with the read when its ids are known before it), then
the mutating call; STS only after it.

Real `failover` processes against moto's server behind the strict layer; each test reads the
strict layer's call log, AWS's state and the history back from outside.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from failover.sandbox.strict import Call
from failover.sandbox.world import World

from ..conftest import history, run_cli
from ..health.conftest import Loopback
from ..health.conftest import loopback as loopback
from .conftest import Sandbox

SandboxFactory = Callable[..., Sandbox]
STS = "GetCallerIdentity"

# Per mode, the calls `failover move --to B --yes` sends before its first mutating call
# (sorted: the reads may be answered in either order). README, "Calls before ownership".
# A move of one call (eip; route with one table) is its own permission check: no DryRun.
BEFORE_OWNERSHIP = {
    "secondary-ip": ["AssociateAddress (DryRun)", "DescribeAddresses", "DescribeInstances"],
    "eip": ["DescribeAddresses", "DescribeInstances"],
    "eni": ["AttachNetworkInterface (DryRun)", "DescribeInstances", "DescribeNetworkInterfaces"],
    "route": [
        "DescribeInstances",
        "DescribeRouteTables",
        "ReplaceRoute (DryRun)",
        "ReplaceRoute (DryRun)",
    ],
}


def label(call: Call) -> str:
    return call.action + (" (DryRun)" if call.dry_run else "")


def first_mutation(calls: list[Call]) -> int:
    return next(k for k, c in enumerate(calls) if c.mutating)


def owner(sb: Sandbox, world: World, mode: str) -> Any:
    """Who holds the group's resource in AWS now."""
    if mode == "eni":
        return sb.eni_owner(world.eni_id or "")
    if mode == "secondary-ip":
        return sb.ip_holders(world)
    if mode == "route":
        return {eni for eni, _state in sb.routes(world).values()}
    return sb.eip_owner(world.allocation_id or "")


def owned_by(sb: Sandbox, mode: str, instance_id: str) -> Any:
    if mode == "secondary-ip":
        return {instance_id}
    if mode == "route":
        return {sb.eth0(instance_id)}
    return instance_id


@pytest.mark.process
@pytest.mark.parametrize("mode", ["secondary-ip", "eip", "eni", "route"])
def test_a_move_sends_one_read_and_no_more_than_its_dry_run_before_its_mutating_call(
    sandbox: SandboxFactory, mode: str
) -> None:
    """Rule: before the call that moves the resource, `move --yes` reads AWS once under the
    claim (secondary-ip and eip: at most 2 calls, the target's DryRun aside, which a one-call
    eip move does without) and never asks STS; STS is asked once, after it, and the history
    still names the caller."""
    sb = sandbox()
    world = sb.world(mode)
    target = world.standbys[0]
    config = sb.config(sb.group(world, mode))
    done = run_cli("move", "g", "--to", target, "--yes", "--config", str(config))
    assert done.returncode == 0, done.stdout + done.stderr
    assert owner(sb, world, mode) == owned_by(sb, mode, target)

    calls = sb.layer.calls
    first = first_mutation(calls)
    before = calls[:first]
    assert sorted(map(label, before)) == BEFORE_OWNERSHIP[mode]
    assert len([c for c in before if not c.dry_run]) <= 2
    assert STS not in [c.action for c in before]
    assert [c.action for c in calls].count(STS) == 1

    (move,) = history(config)
    assert move["outcome"] == "succeeded"
    assert str(move["caller"]).startswith("arn:aws:")


@pytest.mark.process
@pytest.mark.parametrize("mode", ["secondary-ip", "eip"])
def test_an_sts_endpoint_that_never_answers_neither_stops_nor_delays_the_move(
    sandbox: SandboxFactory, mode: str
) -> None:
    """Rule: STS's failure or silence (a private subnet without an STS endpoint) never delays
    or fails a move: the resource moves, the question reaches STS only after the mutating
    call, and the history records the move with its caller unknown (null)."""
    sb = sandbox()
    world = sb.world(mode)
    target = world.standbys[0]
    config = sb.config(sb.group(world, mode))
    sb.layer.hold("sts")
    try:
        done = run_cli("move", "g", "--to", target, "--yes", "--config", str(config))
    finally:
        sb.layer.release()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert owner(sb, world, mode) == owned_by(sb, mode, target)
    mutation = sb.layer.calls[first_mutation(sb.layer.calls)]
    asked = [c for c in sb.layer.held if c.action == STS]
    assert len(asked) == 1
    assert asked[0].at > mutation.at

    (move,) = history(config)
    assert (move["from"], move["to"], move["outcome"]) == (world.primary, target, "succeeded")
    assert move["caller"] is None
    assert move["driver"] == "move"
    assert [s["phase"] for s in move["steps"]][:2] == ["started", "done"]


@pytest.mark.process
def test_a_stale_standby_is_probed_again_once_per_move(
    sandbox: SandboxFactory, loopback: Callable[..., Loopback]
) -> None:
    """Rule: a manual move probes a candidate whose stored verdict is stale again, once: the
    plan it shows and the move it makes are decided on that one probe."""
    sb = sandbox()
    world = sb.world("secondary-ip")
    standby = world.standbys[0]
    lo = loopback([world.primary, standby])
    config = sb.config(
        sb.group(world, "secondary-ip", members=lo.members(), checks=[lo.check()]),
        defaults={"interval": "1s", "timeout": "300ms", "rise": 1},
    )
    checked = run_cli("check", "--config", str(config))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    time.sleep(2.0)  # two intervals with no pass: the stored verdicts are stale
    probes = lo.services[standby].accepted
    moved = run_cli("move", "g", "--to", standby, "--yes", "--config", str(config))
    assert moved.returncode == 0, moved.stdout + moved.stderr
    assert sb.ip_holders(world) == {standby}
    assert lo.services[standby].accepted - probes == 1


@pytest.mark.process
def test_a_stale_ec2_verdict_is_judged_on_the_status_checks_read_now(
    sandbox: SandboxFactory,
) -> None:
    """Rule: with an `ec2` check and no recent pass, a manual move judges its candidate on the
    status checks EC2 reports now (one DescribeInstanceStatus, for the stale candidates), not
    on the read that carries none: an `ok` standby is moved to."""
    sb = sandbox()
    world = sb.world("eip")
    target = world.standbys[0]
    config = sb.config(
        sb.group(world, "eip", checks=[{"type": "ec2"}]),
        defaults={"interval": "1s", "rise": 1},
    )
    checked = run_cli("check", "--config", str(config))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    time.sleep(2.0)  # two intervals with no pass: the stored verdicts are stale
    sb.layer.reset_log()
    done = run_cli("move", "g", "--to", target, "--yes", "--config", str(config))
    assert done.returncode == 0, done.stdout + done.stderr
    assert sb.eip_owner(world.allocation_id or "") == target
    before = sb.layer.calls[: first_mutation(sb.layer.calls)]
    (status,) = [c for c in before if c.action == "DescribeInstanceStatus"]
    assert status.params["InstanceIds"] == [target]
    assert STS not in [c.action for c in before]


# Round trips before the first mutating call (README, "Calls before ownership"): with B's eth0
# remembered (a pass has read every member), and in a fresh state file (no read has shown it).
ROUND_TRIPS = {"secondary-ip": (1, 2), "eip": (1, 1), "eni": (1, 1), "route": (1, 2)}
LATENCY_S = 0.1


def round_trips(calls: list[Call]) -> int:
    """Round trips of `calls`: a call sent before the ones in flight were answered rides them."""
    trips, answered_at = 0, float("-inf")
    for c in sorted(calls, key=lambda c: c.sent_at):
        if c.sent_at >= answered_at:
            trips, answered_at = trips + 1, c.at
        else:
            answered_at = max(answered_at, c.at)
    return trips


@pytest.mark.process
@pytest.mark.parametrize("mode", ["secondary-ip", "eip", "eni", "route"])
@pytest.mark.parametrize("remembered", [True, False], ids=["eth0-remembered", "fresh-state"])
def test_the_round_trips_before_the_mutating_call_are_the_readmes(
    sandbox: SandboxFactory, mode: str, remembered: bool
) -> None:
    """Rule: at a per-call latency, `move --to B --yes` reaches its mutating call after one
    round trip (the reads, and the target's DryRuns sent with them) once a read (here a `check`
    pass) has shown B's eth0; in a fresh state file a DryRun naming B's eth0 (secondary-ip with
    an EIP, route) follows the read, a second round trip; the resource ends on B."""
    sb = sandbox()
    world = sb.world(mode)
    target = world.standbys[0]
    config = sb.config(
        sb.group(world, mode, checks=[{"type": "ec2"}]), defaults={"interval": "1m", "rise": 1}
    )
    if remembered:
        checked = run_cli("check", "--config", str(config))
        assert checked.returncode == 0, checked.stdout + checked.stderr
    sb.layer.set_latency(LATENCY_S)
    sb.layer.reset_log()

    done = run_cli("move", "g", "--to", target, "--yes", "--config", str(config))

    assert done.returncode == 0, done.stdout + done.stderr
    assert owner(sb, world, mode) == owned_by(sb, mode, target)
    before = sb.layer.calls[: first_mutation(sb.layer.calls)]
    assert sorted(map(label, before)) == BEFORE_OWNERSHIP[mode]
    assert round_trips(before) == ROUND_TRIPS[mode][0 if remembered else 1]
