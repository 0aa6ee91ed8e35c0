"""When AWS made the target the owner, and how many round trips it took, from the call log.

One definition for every bench: the owning call is the mutating call that hands the target
the resource (the attach, the assign or the EIP's re-association, the associate, the last
ReplaceRoute); ownership is when AWS applied it (`Call.at`) plus the transition the sandbox
runs after it (attach delay; EIP follow delay). Round trips on the way are the calls sent
before the owning one, except those sent while an earlier AWS transition ran (a wait's
polls: the transition's own time already pays for them), calls in flight at the same time
counting once, plus the owning call itself.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

AWS_SERVICES = ("ec2", "sts")


def _applied(calls: Sequence[Any], action: str) -> Any:
    found = [c for c in calls if c.action == action and c.error is None and not c.dry_run]
    return found[-1] if found else None


def owning_call(mode: str, calls: Sequence[Any]) -> Any:
    """The applied call that made the target the owner in `mode` (None: none was made)."""
    if mode == "eni":
        return _applied(calls, "AttachNetworkInterface")
    if mode == "secondary-ip":  # an EIP that did not follow: our re-association serves it
        return _applied(calls, "AssociateAddress") or _applied(calls, "AssignPrivateIpAddresses")
    if mode == "route":  # every table points at the target once the last one is replaced
        return _applied(calls, "ReplaceRoute")
    return _applied(calls, "AssociateAddress")


def owned_at(mode: str, calls: Sequence[Any], delays: dict[str, float]) -> float:
    """When AWS showed the target as the owner (nan: never), on the call log's clock."""
    call = owning_call(mode, calls)
    if call is None:
        return math.nan
    if call.action == "AttachNetworkInterface":
        return float(call.at) + delays.get("attach_delay_s", 0.0)
    if call.action == "AssignPrivateIpAddresses":
        return float(call.at) + delays.get("eip_follow_delay_s", 0.0)
    return float(call.at)


def aws_calls(layer: Any, since: float = -math.inf, until: float = math.inf) -> list[Any]:
    """The EC2 and STS calls the layer logged as sent in [since, until]."""
    return [
        c for c in list(layer.calls) if c.service in AWS_SERVICES and since <= c.sent_at <= until
    ]


def calls_before(calls: Sequence[Any], owning: Any) -> list[Any]:
    """The calls sent before the owning call was."""
    return [c for c in calls if c.sent_at < owning.sent_at]


def path_calls(calls: Sequence[Any], owning: Any, delays: dict[str, float]) -> int:
    """Round trips to ownership: the calls before the owning one not sent during a detach's
    transition, those in flight together counted once, plus the owning call."""
    detach = delays.get("detach_delay_s", 0.0)
    windows = [
        (c.at, c.at + detach)
        for c in calls
        if c.action == "DetachNetworkInterface" and c.error is None and not c.dry_run
    ]
    before = [
        c for c in calls_before(calls, owning) if not any(a <= c.sent_at < b for a, b in windows)
    ]
    trips, answered_at = 0, -math.inf
    for c in sorted(before, key=lambda c: c.sent_at):
        if c.sent_at >= answered_at:  # sent once the previous round trip was answered
            trips += 1
            answered_at = c.at
        else:
            answered_at = max(answered_at, c.at)
    return trips + 1
