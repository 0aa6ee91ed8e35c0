"""EC2's request token buckets, and a client-side pacer that waits for a token instead of storming.

EC2 throttles per account and Region with token buckets by API category (DESIGN.md).
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

# (burst, refill per second) of each category, from AWS's EC2 throttling documentation.
BUCKET_SIZES: dict[str, tuple[float, float]] = {
    "mutating": (50.0, 5.0),
    "private-ip": (100.0, 5.0),
    # EC2 meters each API in its own bucket; ReplaceRoute's is a Mutating action's size.
    "replace-route": (50.0, 5.0),
    "describe": (100.0, 20.0),
    "unfiltered-describe": (50.0, 10.0),
}

# Actions that share the mutating bucket. Resource-creating calls have larger buckets of
# their own on AWS; failover makes none of them.
MUTATING_THROTTLED = frozenset(
    {
        "AttachNetworkInterface",
        "DetachNetworkInterface",
        "AssociateAddress",
        "DisassociateAddress",
        "ModifyNetworkInterfaceAttribute",
        "ResetNetworkInterfaceAttribute",
        "DeleteNetworkInterface",
        "ModifyInstanceAttribute",
    }
)
PRIVATE_IP_ACTIONS = frozenset({"AssignPrivateIpAddresses", "UnassignPrivateIpAddresses"})

# AWS throttles these harder when they are neither filtered nor paginated nor given ids.
_UNFILTERED_CAPABLE = {
    "DescribeInstanceStatus": "InstanceIds",
    "DescribeNetworkInterfaces": "NetworkInterfaceIds",
    "DescribeInstances": "InstanceIds",
}


def bucket_for(action: str, params: Mapping[str, Any]) -> str | None:
    """The bucket `action` draws from, or None when EC2 does not meter it in these buckets."""
    if action in MUTATING_THROTTLED:
        return "mutating"
    if action in PRIVATE_IP_ACTIONS:
        return "private-ip"
    if action == "ReplaceRoute":
        return "replace-route"
    if not action.startswith("Describe"):
        return None
    ids_key = _UNFILTERED_CAPABLE.get(action)
    if ids_key is not None and not (
        params.get(ids_key) or params.get("Filters") or params.get("MaxResults")
    ):
        return "unfiltered-describe"
    return "describe"


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


def new_buckets(now: float) -> dict[str, TokenBucket]:
    """A full set of buckets, one per category, as of `now`."""
    return {
        name: TokenBucket(burst, rate, burst, now) for name, (burst, rate) in BUCKET_SIZES.items()
    }


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
        self._buckets = new_buckets(clock())
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
            delay = self._buckets[bucket].reserve(self._clock())
            self.waited_s += delay
        if delay > 0:
            self._sleep(delay)
        return delay


_BUCKET = "failover_bucket"
"""Where `Pacer` keeps a call's bucket in botocore's request context."""
