"""The strict layer's per-call latency: every EC2 and STS call answered L after it was sent.

moto answers in milliseconds, EC2 and STS in tens of them; a bench that counts round trips
needs the sandbox to charge each one. The latency is spent in the layer's `sleep` before AWS
acts, so the tests inject a fake clock and read the sleeps and the call log's timestamps.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from failover.sandbox.server import SandboxServer
from failover.sandbox.strict import StrictLayer

from ..clocks import FakeClock
from .conftest import NO_RETRY, client

Make = Callable[..., StrictLayer]
LATENCY_S = 0.05


def some_calls(ec2: Any, sts: Any) -> None:
    """Two EC2 reads, one EC2 mutation and one STS call."""
    ec2.describe_vpcs()
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    ec2.describe_vpcs(VpcIds=[vpc])
    sts.get_caller_identity()


@pytest.mark.parametrize("plain", [False, True], ids=["strict", "plain-moto"])
def test_every_ec2_and_sts_call_waits_the_latency_before_aws_acts_and_plain_moto_none(
    strict: Make, ec2: Any, plain: bool
) -> None:
    """Each EC2 and STS call sleeps L once before AWS acts on it: the log shows `at` L after
    `sent_at`; plain moto answers without sleeping."""
    clock = FakeClock()
    layer = None if plain else strict(latency_s=LATENCY_S, clock=clock, sleep=clock.sleep)
    sts = client("sts", config=NO_RETRY)
    some_calls(ec2, sts)
    if layer is None:
        assert clock.slept == []
        return
    assert clock.slept == [LATENCY_S] * 4
    assert [(c.service, c.action) for c in layer.calls] == [
        ("ec2", "DescribeVpcs"),
        ("ec2", "CreateVpc"),
        ("ec2", "DescribeVpcs"),
        ("sts", "GetCallerIdentity"),
    ]
    assert all(c.at - c.sent_at == pytest.approx(LATENCY_S) for c in layer.calls)
    # Sent one after the other: each call was sent once the previous one was answered.
    assert all(b.sent_at >= a.at for a, b in zip(layer.calls, layer.calls[1:], strict=False))


def test_no_latency_unless_asked_and_set_latency_changes_it(strict: Make, ec2: Any) -> None:
    """The default layer answers at once (never sleeps, `at` == `sent_at`); `set_latency` applies
    to the calls after it."""
    clock = FakeClock()
    layer = strict(clock=clock, sleep=clock.sleep)
    ec2.describe_vpcs()
    assert clock.slept == []
    assert layer.calls[-1].at == layer.calls[-1].sent_at
    layer.set_latency(0.1)
    ec2.describe_vpcs()
    assert clock.slept == [0.1]
    assert layer.calls[-1].at - layer.calls[-1].sent_at == pytest.approx(0.1)
    with pytest.raises(ValueError, match="latency"):
        layer.set_latency(-1.0)


def test_the_server_form_charges_the_latency_to_each_call(aws_env: None) -> None:
    """Through moto's server (what the CLI's processes talk to) a call through the layer takes at
    least L from the caller's side, and the log shows AWS acted L after the request arrived."""
    with SandboxServer() as server, StrictLayer(latency_s=LATENCY_S) as layer:
        server.reset()
        ec2 = client("ec2", endpoint_url=server.url, config=NO_RETRY)
        sts = client("sts", endpoint_url=server.url, config=NO_RETRY)
        ec2.describe_vpcs()  # the client's first call loads its model: not the one timed
        layer.reset_log()
        taken = []
        for call in (ec2.describe_vpcs, sts.get_caller_identity):
            start = time.monotonic()
            call()
            taken.append(time.monotonic() - start)
        calls = list(layer.calls)
        server.reset()
    # A lower bound only: the sleep guarantees it, however loaded the machine is.
    assert all(t >= LATENCY_S for t in taken)
    assert [(c.service, c.action) for c in calls] == [
        ("ec2", "DescribeVpcs"),
        ("sts", "GetCallerIdentity"),
    ]
    assert all(c.at - c.sent_at >= LATENCY_S for c in calls)
