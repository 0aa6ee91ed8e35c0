"""EC2's request token buckets, and a client-side pacer that waits for a token instead of storming.

EC2 throttles per account and Region with a token bucket per API action (DESIGN.md).
When an Availability Zone fails, hundreds of groups move at once; retrying on
RequestLimitExceeded only spends more tokens. The pacer keeps this process's calls
inside the buckets' rates, so calls queue here (on the injected clock) rather than at
AWS. The same bucket table drives the sandbox's throttling, so the tests throttle
exactly what the pacer paces.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from failover.aws import bounds

# Request token buckets, from AWS's "Request throttling for the Amazon EC2 API"
# (docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html): every API action is
# throttled in its own bucket; the category gives the bucket's (burst, refill per second).
NON_MUTATING = (100.0, 20.0)  # Describe*, List*, Search*, Get*
UNFILTERED_NON_MUTATING = (50.0, 10.0)  # the actions below, with neither pagination nor a filter
MUTATING = (50.0, 5.0)
# "Uncategorized actions": mutating calls with buckets of their own size.
UNCATEGORIZED: dict[str, tuple[float, float]] = {
    "AssignPrivateIpAddresses": (100.0, 5.0),
    "UnassignPrivateIpAddresses": (100.0, 5.0),
    "ModifyNetworkInterfaceAttribute": (100.0, 5.0),
    "DeleteNetworkInterface": (100.0, 5.0),
    "CreateNetworkInterface": (100.0, 5.0),
}
# The mutating calls failover makes (and the sandbox meters); the category's size unless
# uncategorized. Calls only tests make (RunInstances, CreateTags, ...) are not paced.
MUTATING_ACTIONS = frozenset(
    {
        "AttachNetworkInterface",
        "DetachNetworkInterface",
        "AssociateAddress",
        "DisassociateAddress",
        "ModifyInstanceAttribute",
        # Not in the throttling page's tables: a Mutating action's size, in its own bucket.
        "ReplaceRoute",
        *UNCATEGORIZED,
    }
)

# AWS throttles these harder when they are neither filtered nor paginated nor given ids.
_UNFILTERED_CAPABLE = {
    "DescribeInstanceStatus": "InstanceIds",
    "DescribeNetworkInterfaces": "NetworkInterfaceIds",
    "DescribeInstances": "InstanceIds",
    "DescribeSecurityGroups": "GroupIds",
    "DescribeSnapshots": "SnapshotIds",
    "DescribeSpotInstanceRequests": "SpotInstanceRequestIds",
    "DescribeVolumes": "VolumeIds",
}
_UNFILTERED = " (unfiltered)"


def bucket_for(action: str, params: Mapping[str, Any]) -> str | None:
    """The bucket `action` draws from (its own), or None when failover does not meter it."""
    if action in MUTATING_ACTIONS:
        return action
    if (
        not action.startswith(("Describe", "List", "Search", "Get"))
        or action == "GetCallerIdentity"
    ):
        return None
    ids_key = _UNFILTERED_CAPABLE.get(action)
    if ids_key is not None and not (
        params.get(ids_key) or params.get("Filters") or params.get("MaxResults")
    ):
        return action + _UNFILTERED
    return action


def bucket_size(bucket: str) -> tuple[float, float]:
    """(burst, refill per second) of a bucket `bucket_for` named."""
    if bucket.endswith(_UNFILTERED):
        return UNFILTERED_NON_MUTATING
    if bucket in MUTATING_ACTIONS:
        return UNCATEGORIZED.get(bucket, MUTATING)
    return NON_MUTATING


@dataclass
class TokenBucket:
    """`burst` tokens refilled continuously at `refill_per_s`; tokens may go negative (reserved)."""

    burst: float
    refill_per_s: float
    tokens: float
    updated_at: float

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.updated_at)
        self.tokens = min(self.burst, self.tokens + elapsed * self.refill_per_s)
        self.updated_at = now

    def take(self, now: float) -> bool:
        """Spend one token if there is one; False means the call would be throttled."""
        self._refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def reserve(self, now: float) -> float:
        """Reserve the next token; the seconds to wait before using it (0 when one is there)."""
        self._refill(now)
        self.tokens -= 1.0
        return 0.0 if self.tokens >= 0.0 else -self.tokens / self.refill_per_s


class Buckets:
    """One full bucket per API action, made when the action is first called."""

    def __init__(self) -> None:
        self._buckets: dict[str, TokenBucket] = {}

    def get(self, name: str, now: float) -> TokenBucket:
        """The bucket named `name`, made full as of `now` if it is new."""
        bucket = self._buckets.get(name)
        if bucket is None:
            burst, rate = bucket_size(name)
            bucket = self._buckets[name] = TokenBucket(burst, rate, burst, now)
        return bucket


class Pacer:
    """Waits, before each EC2 request, until this process's share of its bucket has a token.

    Thread-safe: the moves of an AZ failure and the health passes share one pacer, so
    together they stay inside the account's buckets instead of meeting RequestLimitExceeded.
    Reservations make waiters queue in arrival order. `attach` paces every attempt a client
    sends, botocore's retries included: a retry spends a token at AWS like any call, and
    an unpaced retry after a throttle only prolongs the throttling.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._buckets = Buckets()
        self.waited_s = 0.0

    def attach(self, client: Any) -> None:
        """Pace every request `client` (an EC2 client) sends, each retry too."""
        events = client.meta.events
        events.register("before-parameter-build.ec2", self._classify)
        events.register("request-created.ec2", self._pace_attempt)

    def _classify(
        self, params: Mapping[str, Any], model: Any, context: dict[str, Any], **_: Any
    ) -> None:
        # The bucket depends on the call's parameters, which later events no longer carry.
        context[_BUCKET] = bucket_for(model.name, params)

    def _pace_attempt(self, request: Any, **_: Any) -> None:
        bucket = getattr(request, "context", {}).get(_BUCKET)
        if bucket is not None:
            self._wait_for(bucket)

    def _wait_for(self, bucket: str) -> float:
        with self._lock:
            now = self._clock()
            tokens = self._buckets.get(bucket, now)
            delay = tokens.reserve(now)
            if bounds.exhausted(after=delay):
                # The call could only start after its deadline: give the token back.
                tokens.tokens += 1.0
                raise bounds.DeadlineReached(
                    f"{bounds.deadline_name()} comes before a {bucket} token: the call was not sent"
                )
            self.waited_s += delay
        if delay > 0:
            self._sleep(delay)
        return delay


_BUCKET = "failover_bucket"
"""Where `Pacer` keeps a call's bucket in botocore's request context."""
