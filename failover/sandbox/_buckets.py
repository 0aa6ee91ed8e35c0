"""EC2's per-account, per-Region request token buckets, by API action category."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The categories DESIGN.md quotes from AWS's EC2 throttling page: (burst, refill per second).
BUCKET_SIZES: dict[str, tuple[float, float]] = {
    "mutating": (50.0, 5.0),
    "private-ip": (100.0, 5.0),
    "describe": (100.0, 20.0),
    "unfiltered-describe": (50.0, 10.0),
}

# Actions that share the mutating bucket. Resource-creating calls (CreateVpc, RunInstances, ...)
# have their own, much larger buckets on AWS and are not throttled here, so a test world of
# hundreds of groups can be built with the layer installed.
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


def bucket_for(action: str, params: dict[str, Any]) -> str | None:
    """The bucket `action` draws from, or None when the layer does not throttle it."""
    if action in MUTATING_THROTTLED:
        return "mutating"
    if action in PRIVATE_IP_ACTIONS:
        return "private-ip"
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
    """A bucket of `burst` tokens refilled continuously at `refill_per_s` on the monotonic clock."""

    burst: float
    refill_per_s: float
    tokens: float
    updated_at: float

    def take(self, now: float) -> bool:
        """Spend one token if there is one; False means the call is throttled."""
        elapsed = max(0.0, now - self.updated_at)
        self.tokens = min(self.burst, self.tokens + elapsed * self.refill_per_s)
        self.updated_at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


def new_buckets(now: float) -> dict[str, TokenBucket]:
    """A full set of buckets, one per category, as of `now`."""
    return {
        name: TokenBucket(burst, rate, burst, now) for name, (burst, rate) in BUCKET_SIZES.items()
    }
