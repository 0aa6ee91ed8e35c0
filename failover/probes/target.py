"""What one probe is asked (ProbeTarget) and what it answers (ProbeResult), as frozen values."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from failover.config import CommandCheck, HttpCheck, TcpCheck

if TYPE_CHECKING:
    from failover.config import Group

SocketOrCommandCheck = TcpCheck | HttpCheck | CommandCheck


@dataclass(frozen=True)
class ProbeTarget:
    """One check of one member: where to probe and how long it may take (already resolved)."""

    group: str
    instance_id: str
    address: str
    check: SocketOrCommandCheck
    timeout_s: float


@dataclass(frozen=True)
class ProbeResult:
    """The verdict of one probe; `ok` is True only when the probe positively saw health."""

    group: str
    instance_id: str
    check: str
    ok: bool
    reason: str
    latency_s: float


def check_name(check: SocketOrCommandCheck) -> str:
    """A short label for a check: "tcp:5432", "http:8080/health", "command:my-check"."""
    if isinstance(check, TcpCheck):
        return f"tcp:{check.port}"
    if isinstance(check, HttpCheck):
        return f"http:{check.port}{check.path}"
    if isinstance(check, CommandCheck):
        return f"command:{os.path.basename(check.argv[0]) or check.argv[0]}"
    # Only reachable when a caller breaks the type (an ec2 check here): still a label.
    return str(getattr(check, "type", type(check).__name__))


def probe_targets(group: Group, addresses: Mapping[str, str]) -> list[ProbeTarget]:
    """Every socket and command check of every member of `group`, in member then check order.

    A member's address is its `address` override, else `addresses[instance_id]` (its
    primary private IP as AWS reports it). A member with neither still gets its targets,
    with an empty address, so its probes fail ("no address to probe") instead of being
    skipped: unknown is never read as healthy. A check's own timeout overrides the policy's.
    """
    targets: list[ProbeTarget] = []
    for member in group.members:
        address = member.address or addresses.get(member.instance_id, "")
        for check in group.checks:
            if isinstance(check, TcpCheck | HttpCheck | CommandCheck):
                timeout_s = (
                    check.timeout_s if check.timeout_s is not None else group.policy.timeout_s
                )
                targets.append(
                    ProbeTarget(group.name, member.instance_id, address, check, timeout_s)
                )
    return targets


def seconds(value: float) -> str:
    """A duration for a reason string: 1.0 -> "1.0s", 0.25 -> "0.25s"."""
    return f"{round(value, 3)}s"
