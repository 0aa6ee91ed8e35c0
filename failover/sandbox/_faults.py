"""Failures AWS documents and moto never has: replies lost after the call was applied, and
Availability Zones whose instance reads fail.

A lost reply: AWS applied the call, but the answer never reached the caller, who sees a 500
`InternalError`. botocore retries it, and the retry is a second call judged against the new
state (AttachNetworkInterface takes no idempotency token: the retry meets
`InvalidNetworkInterface.InUse`; AssignPrivateIpAddresses and AssociateAddress with their
Allow* flags succeed again).

An AZ disruption (DescribeInstances API reference): "if you ... specify instance IDs that
are in the affected zone, or do not specify any instance IDs at all, the call fails. If you
... specify only instance IDs that are in an unaffected zone, the call works normally."
AWS does not document the code; the layer answers `Unavailable` (503, "The server is
overloaded and can't handle the request."), one of EC2's documented server errors, which
botocore retries like any 5xx. DescribeInstanceStatus is failed the same way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from moto.ec2.exceptions import EC2ClientError, InvalidInstanceIdError

from ._eips import error

LOST_REPLY_CODE = "InternalError"
LOST_REPLY_MESSAGE = "An internal error has occurred."
DISRUPTION_CODE = "Unavailable"
DISRUPTION_MESSAGE = "The server is overloaded and can't handle the request."
# The reads AWS documents (or that share their instance store) as failing in a disrupted AZ.
_AZ_SCOPED_READS = frozenset({"DescribeInstances", "DescribeInstanceStatus"})


class Faults:
    """Armed lost replies (per action, counted) and the set of disrupted AZs."""

    def __init__(self) -> None:
        """No reply is lost and every AZ answers until told otherwise."""
        self._lost: Counter[str] = Counter()
        self.disrupted: set[str] = set()

    def lose_replies(self, action: str, count: int = 1) -> None:
        """The next `count` applied calls of `action` (DryRun never) answer InternalError."""
        if count < 0:
            raise ValueError("count must not be negative")
        self._lost[action] += count

    def take_lost_reply(self, action: str, params: dict[str, Any]) -> bool:
        """True, and one armed loss spent, when this applied call's reply is to be lost."""
        if params.get("DryRun") is True or self._lost[action] <= 0:
            return False
        self._lost[action] -= 1
        return True

    def disrupt(self, zones: Iterable[str]) -> None:
        """From now on, instance reads naming an instance in these AZs (or naming none) fail."""
        self.disrupted.update(zones)

    def restore(self, zones: Iterable[str] | None = None) -> None:
        """End the disruption of these AZs (of every AZ when None)."""
        if zones is None:
            self.disrupted.clear()
        else:
            self.disrupted.difference_update(zones)

    def check_read(self, backend: Any, action: str, params: dict[str, Any]) -> None:
        """Raise AWS's server error for an instance read that a disrupted AZ fails."""
        if not self.disrupted or action not in _AZ_SCOPED_READS:
            return
        ids = params.get("InstanceIds") or []
        if not ids or any(self._zone_of(backend, i) in self.disrupted for i in ids):
            raise disruption_error()

    @staticmethod
    def _zone_of(backend: Any, instance_id: str) -> str | None:
        try:
            return str(backend.get_instance(instance_id).availability_zone)
        except InvalidInstanceIdError:
            # An unknown id is in no zone: moto answers it with NotFound, as AWS would.
            return None


def lost_reply_error() -> EC2ClientError:
    """The 500 a caller sees when the reply to an applied call was lost."""
    return error(LOST_REPLY_CODE, LOST_REPLY_MESSAGE)


def disruption_error() -> EC2ClientError:
    """The 503 a read touching a disrupted AZ is answered with."""
    return error(DISRUPTION_CODE, DISRUPTION_MESSAGE)
