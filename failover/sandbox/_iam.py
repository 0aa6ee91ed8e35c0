"""A tag-scoped IAM policy, as AWS evaluates it: every resource a call names must carry the tag.

policies/failover-ec2.json grants the mutating calls only on resources tagged
`failover:group` (`aws:ResourceTag/failover:group` with StringLike "*"). AWS evaluates the
condition for each resource of the call, DryRun included, and answers
`UnauthorizedOperation` (403) when one of them lacks the tag; moto ignores conditions.
The resources each action is authorized against are the ones the policy grants
(tests/iam/test_policy_lint.py holds them against IAM's reference). A resource that does
not exist is left to moto, which answers its NotFound code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from moto.ec2.exceptions import EC2ClientError

from ._eips import error

TAG_KEY = "failover:group"

# (kind for the ARN, resource id) of each resource a call names.
_Resource = tuple[str, str]
_Resolver = Callable[[Any, dict[str, Any]], Iterator[_Resource]]


def _eni(backend: Any, eni_id: Any) -> Iterator[_Resource]:
    eni = backend.enis.get(eni_id) if eni_id else None
    if eni is None:
        return
    yield "network-interface", eni.id


def _attach(backend: Any, params: dict[str, Any]) -> Iterator[_Resource]:
    yield from _eni(backend, params.get("NetworkInterfaceId"))
    if params.get("InstanceId"):
        yield "instance", str(params["InstanceId"])


def _detach(backend: Any, params: dict[str, Any]) -> Iterator[_Resource]:
    attachment_id = params.get("AttachmentId")
    eni = next((e for e in backend.enis.values() if e.attachment_id == attachment_id), None)
    if eni is None:
        return
    yield "network-interface", eni.id
    if eni.instance is not None:
        yield "instance", eni.instance.id


def _modify(backend: Any, params: dict[str, Any]) -> Iterator[_Resource]:
    eni = backend.enis.get(params.get("NetworkInterfaceId"))
    if eni is None:
        return
    yield "network-interface", eni.id
    if params.get("Attachment") and eni.instance is not None:
        yield "instance", eni.instance.id


def _assign(backend: Any, params: dict[str, Any]) -> Iterator[_Resource]:
    yield from _eni(backend, params.get("NetworkInterfaceId"))


def _associate(backend: Any, params: dict[str, Any]) -> Iterator[_Resource]:
    allocation_id, public_ip = params.get("AllocationId"), params.get("PublicIp")
    eip = next(
        (
            a
            for a in backend.addresses
            if (allocation_id and a.allocation_id == allocation_id)
            or (public_ip and a.public_ip == public_ip)
        ),
        None,
    )
    if eip is not None:
        yield "elastic-ip", eip.allocation_id
    yield from _eni(backend, params.get("NetworkInterfaceId"))
    if params.get("InstanceId"):
        yield "instance", str(params["InstanceId"])


# The mutating calls policies/failover-ec2.json grants under the tag condition.
RESOLVERS: dict[str, _Resolver] = {
    "AttachNetworkInterface": _attach,
    "DetachNetworkInterface": _detach,
    "ModifyNetworkInterfaceAttribute": _modify,
    "AssignPrivateIpAddresses": _assign,
    "AssociateAddress": _associate,
}


def _exists(backend: Any, kind: str, resource_id: str) -> bool:
    if kind == "instance":
        return any(i.id == resource_id for r in backend.reservations.values() for i in r.instances)
    return True  # ENIs and EIPs were found by the resolver itself


class TagScope:
    """When enabled, the tag-conditioned calls are refused on any untagged resource they name."""

    def __init__(self, *, enabled: bool = False) -> None:
        """Off by default: moto's plain action-level IAM."""
        self.enabled = enabled

    def check(self, backend: Any, action: str, params: dict[str, Any]) -> None:
        """Raise UnauthorizedOperation (DryRun or not) if a resource of the call lacks the tag."""
        resolver = RESOLVERS.get(action)
        if not self.enabled or resolver is None:
            return
        for kind, resource_id in resolver(backend, params):
            if not _exists(backend, kind, resource_id):
                continue
            if TAG_KEY not in backend.tags.get(resource_id, {}):
                arn = f"arn:aws:ec2:{backend.region_name}:{backend.account_id}:{kind}/{resource_id}"
                raise unauthorized(action, arn)


def unauthorized(action: str, resource_arn: str | None = None) -> EC2ClientError:
    """EC2's UnauthorizedOperation for `action`, naming the resource when one is refused."""
    on = f" on resource: {resource_arn}" if resource_arn else ""
    return error(
        "UnauthorizedOperation",
        "You are not authorized to perform this operation. "
        f"User is not authorized to perform: ec2:{action}{on}",
    )
