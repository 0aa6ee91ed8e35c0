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

from failover.aws.pacing import BUCKET_SIZES, Pacer, bucket_for

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
    burst, rate = BUCKET_SIZES["describe"]

    for _ in range(int(burst) + 10):
        client.describe_instances(InstanceIds=["i-0123456789abcdef0"])

    assert len(clock.slept) == 10  # the burst went at once, the next ten waited
    assert clock.monotonic() - 100.0 == pytest.approx(10 / rate)


def test_every_retry_of_a_throttled_call_draws_a_token() -> None:
    clock, ec2 = FakeClock(mono=100.0), FakeEc2()
    client = paced_client(clock, ec2, attempts=3)
    burst, rate = BUCKET_SIZES["describe"]
    for _ in range(int(burst) - 1):  # all but one token of the burst
        client.describe_instances(InstanceIds=["i-0123456789abcdef0"])
    assert clock.slept == []
    ec2.attempts, ec2.throttle = 0, 2

    client.describe_instances(InstanceIds=["i-0123456789abcdef0"])  # throttled twice

    assert ec2.attempts == 3
    # The first attempt took the last token; each retry waited for a refilled one.
    assert clock.slept == [pytest.approx(1 / rate), pytest.approx(1 / rate)]


def test_the_bucket_follows_the_call_and_its_parameters() -> None:
    assert bucket_for("AttachNetworkInterface", {}) == "mutating"
    assert bucket_for("AssignPrivateIpAddresses", {}) == "private-ip"
    assert bucket_for("ReplaceRoute", {}) == "replace-route"  # EC2 meters it on its own
    assert bucket_for("DescribeInstances", {"InstanceIds": ["i-1"]}) == "describe"
    assert bucket_for("DescribeInstances", {}) == "unfiltered-describe"
    assert bucket_for("GetCallerIdentity", {}) is None
