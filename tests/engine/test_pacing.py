"""The pacer keeps this process inside EC2's token buckets, retries included.

Rule (DESIGN, AWS rules): EC2 throttles per account and Region by token bucket; an AZ
failure that moves hundreds of groups must queue its calls here, not storm AWS. A retry
after RequestLimitExceeded spends a token at AWS like any call, so it is paced too.
The requests go through botocore's real send loop (retries included) to an answer made
in its `before-send` event, so nothing leaves the process.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config

from failover.aws import bounds
from failover.aws.pacing import NON_MUTATING, Pacer, bucket_for, bucket_size

from ..clocks import FakeClock
from ..conftest import REGION

OK = b'<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><reservationSet/></DescribeInstancesResponse>'
THROTTLED = b"<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors></Response>"


class Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


class FakeEc2:
    """Answers every request; the first `throttle` attempts with RequestLimitExceeded."""

    def __init__(self, throttle: int = 0) -> None:
        self.throttle, self.attempts = throttle, 0

    def __call__(self, request: Any, **_: Any) -> AWSResponse:
        self.attempts += 1
        if self.attempts <= self.throttle:
            return AWSResponse(request.url, 503, {}, Raw(THROTTLED))
        return AWSResponse(request.url, 200, {}, Raw(OK))


def paced_client(clock: FakeClock, ec2: FakeEc2, attempts: int = 3) -> Any:
    config = Config(retries={"mode": "standard", "max_attempts": attempts})
    client = boto3.client(
        "ec2",
        region_name=REGION,
        config=config,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    Pacer(clock.monotonic, clock.sleep).attach(client)
    client.meta.events.register("before-send.ec2", ec2)
    return client


def test_calls_past_the_burst_wait_for_the_refill() -> None:
    clock, ec2 = FakeClock(mono=100.0), FakeEc2()
    client = paced_client(clock, ec2)
    burst, rate = NON_MUTATING

    for _ in range(int(burst) + 10):
        client.describe_instances(InstanceIds=["i-0123456789abcdef0"])

    assert len(clock.slept) == 10  # the burst went at once, the next ten waited
    assert clock.monotonic() - 100.0 == pytest.approx(10 / rate)


def test_every_retry_of_a_throttled_call_draws_a_token() -> None:
    clock, ec2 = FakeClock(mono=100.0), FakeEc2()
    client = paced_client(clock, ec2, attempts=3)
    burst, rate = NON_MUTATING
    for _ in range(int(burst) - 1):  # all but one token of the burst
        client.describe_instances(InstanceIds=["i-0123456789abcdef0"])
    assert clock.slept == []
    ec2.attempts, ec2.throttle = 0, 2

    client.describe_instances(InstanceIds=["i-0123456789abcdef0"])  # throttled twice

    assert ec2.attempts == 3
    # The first attempt took the last token; each retry waited for a refilled one.
    assert clock.slept == [pytest.approx(1 / rate), pytest.approx(1 / rate)]


def test_each_api_action_has_its_own_bucket_sized_by_ec2s_throttling_table() -> None:
    """Rule (EC2 API throttling docs): every action is throttled in its own bucket; the
    category (or the uncategorized table) gives its size; unfiltered describes get a smaller one."""
    assert bucket_for("AttachNetworkInterface", {}) == "AttachNetworkInterface"
    assert bucket_for("DetachNetworkInterface", {}) == "DetachNetworkInterface"
    assert bucket_size("AttachNetworkInterface") == (50.0, 5.0)
    assert bucket_size("AssignPrivateIpAddresses") == (100.0, 5.0)
    assert bucket_size("ModifyNetworkInterfaceAttribute") == (100.0, 5.0)
    assert bucket_for("ReplaceRoute", {}) == "ReplaceRoute"
    assert bucket_size("ReplaceRoute") == (50.0, 5.0)
    assert bucket_for("DescribeInstances", {"InstanceIds": ["i-1"]}) == "DescribeInstances"
    assert bucket_size("DescribeInstances") == (100.0, 20.0)
    unfiltered = bucket_for("DescribeInstances", {})
    assert unfiltered is not None
    assert unfiltered != "DescribeInstances"
    assert bucket_size(unfiltered) == (50.0, 10.0)
    assert bucket_for("GetCallerIdentity", {}) is None


def test_attaches_do_not_wait_for_detach_tokens() -> None:
    """Rule: a burst of detaches leaves the attach bucket full (one shared bucket made an AZ
    failure's attaches queue behind its detaches)."""
    clock = FakeClock(mono=100.0)
    pacer = Pacer(clock.monotonic, clock.sleep)
    burst, _ = bucket_size("DetachNetworkInterface")
    for _ in range(int(burst)):
        pacer._wait_for("DetachNetworkInterface")
    assert pacer._wait_for("AttachNetworkInterface") == 0.0
    assert pacer._wait_for("DetachNetworkInterface") > 0.0


def test_no_token_wait_past_a_moves_deadline() -> None:
    """Rule (bounded calls): a call whose token comes only after its move's deadline is not
    waited for: DeadlineReached at once, and the token is left for others."""
    clock = FakeClock(mono=100.0)
    pacer = Pacer(clock.monotonic, clock.sleep)
    burst, rate = bucket_size("AttachNetworkInterface")
    for _ in range(int(burst)):
        pacer._wait_for("AttachNetworkInterface")
    deadline = clock.monotonic() + 0.5 / rate
    with (
        bounds.bounded(lambda: deadline - clock.monotonic()),
        pytest.raises(bounds.DeadlineReached),
    ):
        pacer._wait_for("AttachNetworkInterface")
    assert clock.slept == []
    assert pacer._wait_for("AttachNetworkInterface") == pytest.approx(1 / rate)
