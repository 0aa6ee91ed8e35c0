"""EC2's pagination rules for the describes failover makes, and the big account's refusal.

API reference, DescribeInstances / DescribeInstanceStatus / DescribeNetworkInterfaces:
`MaxResults` (5 to 1000) pages the answer, with `NextToken` to continue; "You cannot
specify this parameter and the instance IDs parameter in the same request"
(`InvalidParameterCombination`). moto pages DescribeInstances by reservation, ignores
MaxResults elsewhere and checks neither rule. DescribeAddresses takes no MaxResults.

DescribeNetworkInterfaces: "If you have a large number of network interfaces, the
operation fails unless you use pagination or one of the following filters:
attachment.instance-id, group-id, mac-address, private-dns-name, private-ip-address,
subnet-id, or vpc-id." AWS documents the failure, not its code: the layer answers
`InvalidRequest` (400, not retried), once the account holds more ENIs than the threshold
set with `big_account`. Ids named directly are a keyed lookup, never refused.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
from typing import Any

from moto.core.responses import ActionResult

from ._eips import error

MIN_RESULTS, MAX_RESULTS = 5, 1000
# Describes that page, and the parameter naming ids that MaxResults may not join.
IDS_PARAM = {
    "DescribeInstances": ("InstanceIds", "instancesSet"),
    "DescribeInstanceStatus": ("InstanceIds", "instancesSet"),
    "DescribeNetworkInterfaces": ("NetworkInterfaceIds", "networkInterfaceIdSet"),
}
NARROWING_ENI_FILTERS = frozenset(
    {
        "attachment.instance-id",
        "group-id",
        "mac-address",
        "private-dns-name",
        "private-ip-address",
        "subnet-id",
        "vpc-id",
    }
)


def _filters(params: dict[str, Any]) -> dict[str, list[str]]:
    return {f["Name"]: list(f.get("Values") or []) for f in params.get("Filters") or []}


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _offset(token: Any) -> int:
    try:
        offset = json.loads(base64.urlsafe_b64decode(str(token).encode()))["offset"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        offset = None
    if not isinstance(offset, int) or offset < 0:
        raise error("InvalidPaginationToken", f"Invalid pagination token: {token}")
    return offset


class Pages:
    """MaxResults and NextToken as EC2 answers them; the big-account switch (off by default)."""

    def __init__(self) -> None:
        """No ENI count makes an unpaginated DescribeNetworkInterfaces fail until told."""
        self.big_account_enis: int | None = None

    def before(self, backend: Any, action: str, params: dict[str, Any]) -> ActionResult | None:
        """Refuse what EC2 refuses; answer a paginated request here (an ActionResult)."""
        if action not in IDS_PARAM:
            return None
        ids_key, ids_name = IDS_PARAM[action]
        limit = params.get("MaxResults")
        if limit is not None:
            if params.get(ids_key):
                raise error(
                    "InvalidParameterCombination",
                    f"The parameter {ids_name} cannot be used with the parameter maxResults",
                )
            if not MIN_RESULTS <= int(limit) <= MAX_RESULTS:
                raise error(
                    "InvalidParameterValue",
                    f"Value ( {limit} ) for parameter maxResults is invalid. "
                    f"Expecting a value between {MIN_RESULTS} and {MAX_RESULTS}.",
                )
        paged = limit is not None or params.get("NextToken") is not None
        if action == "DescribeNetworkInterfaces" and not paged:
            self._check_unpaginated_enis(backend, params)
        if not paged:
            return None
        size = int(limit) if limit is not None else MAX_RESULTS
        start = _offset(params["NextToken"]) if params.get("NextToken") is not None else 0
        if action == "DescribeInstances":
            return self._instances(backend, params, start, size)
        if action == "DescribeInstanceStatus":
            items: list[Any] = backend.describe_instance_status(
                [],
                params.get("IncludeAllInstances") is True,
                [{"name": k, "values": v} for k, v in _filters(params).items()],
            )
            key = "InstanceStatuses"
        else:
            items = backend.get_all_network_interfaces([], _filters(params))
            key = "NetworkInterfaces"
        return ActionResult({key: items[start : start + size], **_next(start, size, len(items))})

    def _check_unpaginated_enis(self, backend: Any, params: dict[str, Any]) -> None:
        if self.big_account_enis is None or params.get("NetworkInterfaceIds"):
            return
        if NARROWING_ENI_FILTERS & set(_filters(params)):
            return
        if len(backend.enis) > self.big_account_enis:
            raise error(
                "InvalidRequest",
                "This account has too many network interfaces to describe them all in one "
                "request: use pagination (MaxResults) or one of the filters "
                "attachment.instance-id, group-id, mac-address, private-dns-name, "
                "private-ip-address, subnet-id or vpc-id.",
            )

    @staticmethod
    def _instances(backend: Any, params: dict[str, Any], start: int, size: int) -> ActionResult:
        """A page of instances (a reservation may be split across pages), in reservations."""
        reservations = backend.describe_instances(filters=_filters(params))
        pairs = [(r, i) for r in reservations for i in r.instances]
        page: list[Any] = []
        for reservation, instance in pairs[start : start + size]:
            if not page or page[-1].id != reservation.id:
                part = copy.copy(reservation)
                part.instances = []
                page.append(part)
            page[-1].instances.append(instance)
        return ActionResult({"Reservations": page, **_next(start, size, len(pairs))})


def _next(start: int, size: int, total: int) -> dict[str, str]:
    return {"NextToken": _token(start + size)} if start + size < total else {}
