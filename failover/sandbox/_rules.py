"""EC2's rules and timed state transitions, enforced over moto's lenient EC2 backend.

Every method runs under the strict layer's lock, so moto's objects are never seen half-changed.
Attachment life cycle as this module models it (AWS's, minus the `detached` instant):

    attach ──> attaching ──(attach_delay_s)──> attached ──detach──> detaching
                                                                      │ (detach_delay_s;
                                                                      │  never if stuck,
                                                                      v  until Force)
                                                           ENI available, no attachment
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from moto.core.responses import ActionResult, EmptyResult
from moto.core.utils import utcnow
from moto.ec2.exceptions import (
    InvalidNetworkAttachmentIdError,
    InvalidParameterCombination,
)
from moto.ec2.models.instance_types import INSTANCE_TYPES

from ._eips import DEAD_STATES, ElasticIpRules, error, ips_of
from ._routes import RouteRules

# Used only when moto's instance type data has no MaximumNetworkInterfaces for the type.
_FALLBACK_MAX_ENIS = {"t3.nano": 2, "t3.micro": 2, "t2.nano": 2, "t2.micro": 2}
_DEFAULT_MAX_ENIS = 3

MAX_STATUS_IDS = 100

_Handler = Callable[[Any, dict[str, Any], float], ActionResult | None]


def max_enis(instance_type: str) -> int:
    """How many network interfaces an instance of this type may have attached."""
    info = INSTANCE_TYPES.get(instance_type, {}).get("NetworkInfo", {})
    limit = info.get("MaximumNetworkInterfaces")
    if isinstance(limit, int) and limit > 0:
        return limit
    return _FALLBACK_MAX_ENIS.get(instance_type, _DEFAULT_MAX_ENIS)


@dataclass
class _PendingDetach:
    eni: Any
    attachment_id: str
    deadline: float | None  # None: stuck, completes only after a Force detach


@dataclass
class _PendingAttach:
    attachment_id: str
    deadline: float


@dataclass
class _PendingFollow:
    eip: Any
    eni: Any
    private_ip: str
    deadline: float


class Ec2Rules(ElasticIpRules, RouteRules):
    """EC2's rules, checked before moto acts, and the state moto does not model, fixed after."""

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        detach_delay_s: float,
        attach_delay_s: float,
        eip_follow_delay_s: float,
        eip_follows: bool,
    ) -> None:
        """Configure the delays; pending transitions start empty."""
        self.clock = clock
        self.detach_delay_s = detach_delay_s
        self.attach_delay_s = attach_delay_s
        self.eip_follow_delay_s = eip_follow_delay_s
        self.eip_follows = eip_follows
        self.stuck: set[str] = set()
        self.statuses: dict[str, tuple[str, str]] = {}
        self.detaching: dict[str, _PendingDetach] = {}
        self.attaching: dict[str, _PendingAttach] = {}
        self.follows: list[_PendingFollow] = []
        self._before: dict[str, _Handler] = {
            "AttachNetworkInterface": self._attach,
            "DetachNetworkInterface": self._detach,
            "ModifyNetworkInterfaceAttribute": self._modify_check,
            "AssignPrivateIpAddresses": self._assign,
            "UnassignPrivateIpAddresses": self._unassign,
            "AssociateAddress": self._associate_address,
            "DisassociateAddress": self._disassociate_address,
            "ReleaseAddress": self._release,
            "DeleteNetworkInterface": self._delete_eni,
            "DescribeInstanceStatus": self._status_ids,
            "RunInstances": self._launching,
            "ReplaceRoute": self._replace_route,
            "StartInstances": self._starting,
        }
        self._after: dict[str, _Handler] = {
            "AttachNetworkInterface": self._attached,
            "ModifyNetworkInterfaceAttribute": self._modify_apply,
            "RunInstances": self._launched,
            "StartInstances": self._started,
            "TerminateInstances": self._terminated,
            "ModifyInstanceAttribute": self._instance_source_dest_check,
        }
        # RunInstances: the instances that existed before the call.
        self._known_instances: set[str] = set()
        # StartInstances: the instances that were stopped before the call.
        self._stopped: set[str] = set()

    def reset(self) -> None:
        """Forget pending transitions (stuck ENIs and set statuses are configuration: kept)."""
        self.detaching.clear()
        self.attaching.clear()
        self.follows.clear()

    # ---- time --------------------------------------------------------------------------

    def advance(self, now: float) -> None:
        """Complete every transition whose deadline has passed (lazily, at each call)."""
        for eni_id, detach in list(self.detaching.items()):
            if detach.deadline is not None and detach.deadline <= now:
                del self.detaching[eni_id]
                eni = detach.eni
                if eni.attachment_id == detach.attachment_id and eni.instance is not None:
                    eni.instance.detach_eni(eni)
        for eni_id, attach in list(self.attaching.items()):
            if attach.deadline <= now:
                del self.attaching[eni_id]
        due = [f for f in self.follows if f.deadline <= now]
        self.follows = [f for f in self.follows if f.deadline > now]
        for follow in due:
            self._complete_follow(follow)

    def attachment_status(self, eni: Any) -> str:
        """What Attachment.Status shows for this attached ENI now."""
        if eni.id in self.detaching:
            return "detaching"
        attach = self.attaching.get(eni.id)
        if (
            attach is not None
            and attach.attachment_id == eni.attachment_id
            and self.clock() < attach.deadline
        ):
            return "attaching"
        return "attached"

    def stick(self, eni_id: str) -> None:
        """Make graceful detaches of this ENI hang, including one already under way."""
        self.stuck.add(eni_id)
        if eni_id in self.detaching:
            self.detaching[eni_id].deadline = None

    # ---- dispatch ----------------------------------------------------------------------

    def before(self, backend: Any, action: str, params: dict[str, Any], now: float) -> Any:
        """Refuse what EC2 refuses (raises EC2ClientError); an ActionResult means handled here."""
        handler = self._before.get(action)
        return handler(backend, params, now) if handler is not None else None

    def after(self, backend: Any, action: str, params: dict[str, Any], now: float) -> None:
        """Fix what moto got wrong after it acted successfully."""
        handler = self._after.get(action)
        if handler is not None:
            handler(backend, params, now)

    # ---- attach / detach ---------------------------------------------------------------

    def _attach(self, backend: Any, params: dict[str, Any], now: float) -> None:
        eni = backend.get_network_interface(params.get("NetworkInterfaceId"))
        instance = backend.get_instance(params.get("InstanceId"))
        device_index = int(params.get("DeviceIndex", -1))
        if instance.state in DEAD_STATES:
            raise error(
                "IncorrectInstanceState",
                f"The instance '{instance.id}' is not in a valid state for this operation.",
            )
        if eni.availability_zone != instance.availability_zone or eni.vpc_id != instance.vpc_id:
            raise InvalidParameterCombination(
                "You may not attach a network interface to an instance if they are not in "
                "the same availability zone"
            )
        if eni.instance is not None:
            raise error("InvalidNetworkInterface.InUse", f"Interface: [{eni.id}] in use.")
        if device_index in instance.nics:
            raise error(
                "InvalidParameterValue",
                f"Instance '{instance.id}' already has an interface attached at device index "
                f"'{device_index}'.",
            )
        limit = max_enis(instance.instance_type)
        if len(instance.nics) >= limit:
            raise error(
                "AttachmentLimitExceeded",
                f"Interface count {len(instance.nics) + 1} exceeds the limit for "
                f"{instance.instance_type}",
            )

    def _attached(self, backend: Any, params: dict[str, Any], now: float) -> None:
        eni = backend.get_network_interface(params.get("NetworkInterfaceId"))
        # AWS's default for an attachment made by AttachNetworkInterface.
        eni.delete_on_termination = False
        if self.attach_delay_s > 0:
            self.attaching[eni.id] = _PendingAttach(eni.attachment_id, now + self.attach_delay_s)

    def _detach(self, backend: Any, params: dict[str, Any], now: float) -> ActionResult:
        attachment_id = str(params.get("AttachmentId"))
        force = params.get("Force") is True
        eni = next((e for e in backend.enis.values() if e.attachment_id == attachment_id), None)
        if eni is None:
            raise InvalidNetworkAttachmentIdError(attachment_id)
        if eni.device_index == 0:
            raise error(
                "OperationNotPermitted",
                "The network interface at device index 0 cannot be detached.",
            )
        self.attaching.pop(eni.id, None)
        pending = self.detaching.get(eni.id)
        deadline: float | None
        if eni.id in self.stuck and not force:
            deadline = pending.deadline if pending is not None else None
        else:
            deadline = now + self.detach_delay_s
            if pending is not None and pending.deadline is not None:
                # A repeated detach does not restart the clock.
                deadline = min(deadline, pending.deadline)
        self.detaching[eni.id] = _PendingDetach(eni, attachment_id, deadline)
        self.advance(now)
        return EmptyResult()

    def _modify_check(self, backend: Any, params: dict[str, Any], now: float) -> None:
        attachment = params.get("Attachment")
        if not attachment:
            return
        eni = backend.get_network_interface(params.get("NetworkInterfaceId"))
        attachment_id = str(attachment.get("AttachmentId"))
        if eni.attachment_id is None or attachment_id != eni.attachment_id:
            raise InvalidNetworkAttachmentIdError(attachment_id)

    def _modify_apply(self, backend: Any, params: dict[str, Any], now: float) -> None:
        self.sync_source_dest_check(backend, params)
        attachment = params.get("Attachment")
        if attachment and "DeleteOnTermination" in attachment:
            eni = backend.get_network_interface(params.get("NetworkInterfaceId"))
            eni.delete_on_termination = attachment["DeleteOnTermination"] is True

    def _delete_eni(self, backend: Any, params: dict[str, Any], now: float) -> None:
        eni = backend.get_network_interface(params.get("NetworkInterfaceId"))
        if eni.instance is not None:
            raise error(
                "InvalidNetworkInterface.InUse",
                f"The network interface '{eni.id}' is currently in use.",
            )
        for eip in self._eips_on(backend, eni):
            self._disassociate(eip)

    # ---- instances ---------------------------------------------------------------------

    def _launching(self, backend: Any, params: dict[str, Any], now: float) -> None:
        self._known_instances = {i.id for r in backend.reservations.values() for i in r.instances}

    def _launched(self, backend: Any, params: dict[str, Any], now: float) -> None:
        specs = params.get("NetworkInterfaces") or []
        primary_spec: dict[str, Any] = next(
            (s for s in specs if int(s.get("DeviceIndex", -1)) == 0), {}
        )
        if "NetworkInterfaceId" in primary_spec or "DeleteOnTermination" in primary_spec:
            return
        for reservation in backend.reservations.values():
            for instance in reservation.instances:
                if instance.id not in self._known_instances and 0 in instance.nics:
                    # AWS's default for the primary ENI made at launch (moto: false).
                    instance.nics[0].delete_on_termination = True
        self._known_instances = set()

    def _starting(self, backend: Any, params: dict[str, Any], now: float) -> None:
        ids = params.get("InstanceIds") or []
        self._stopped = {i for i in ids if backend.get_instance(i).state == "stopped"}

    def _started(self, backend: Any, params: dict[str, Any], now: float) -> None:
        # AWS's LaunchTime is the last start from stopped; moto keeps the first launch's.
        for instance_id in self._stopped:
            backend.get_instance(instance_id).launch_time = utcnow()
        self._stopped = set()

    def _terminated(self, backend: Any, params: dict[str, Any], now: float) -> None:
        for instance_id in params.get("InstanceIds") or []:
            instance = backend.get_instance(instance_id)
            if instance.state != "terminated":
                continue
            for device_index, eni in sorted(instance.nics.items()):
                self.detaching.pop(eni.id, None)
                self.attaching.pop(eni.id, None)
                deleted = eni.id not in backend.enis
                if deleted:
                    for eip in self._eips_on(backend, eni):
                        self._disassociate(eip)
                if device_index == 0:
                    continue
                if deleted:
                    instance.nics.pop(device_index, None)
                else:
                    # AWS detaches what it does not delete; moto leaves it in-use on the corpse.
                    instance.detach_eni(eni)

    def _status_ids(self, backend: Any, params: dict[str, Any], now: float) -> None:
        ids = params.get("InstanceIds") or []
        if len(ids) > MAX_STATUS_IDS:
            raise error(
                "InvalidParameterValue",
                f"The maximum number of instance IDs per call is {MAX_STATUS_IDS}; "
                f"{len(ids)} were given.",
            )

    # ---- private IPs -------------------------------------------------------------------

    def _owner_of(self, backend: Any, vpc_id: str, ip: str) -> Any:
        # VPCs may overlap: the same address in another VPC is another address.
        return next(
            (e for e in backend.enis.values() if e.vpc_id == vpc_id and ip in ips_of(e)), None
        )

    def _assign(self, backend: Any, params: dict[str, Any], now: float) -> None:
        eni = backend.get_network_interface(params.get("NetworkInterfaceId"))
        allow = params.get("AllowReassignment") is True
        moves: list[tuple[Any, str]] = []
        for ip in params.get("PrivateIpAddresses") or []:
            if ipaddress.ip_address(ip) not in ipaddress.ip_network(eni.subnet.cidr_block):
                raise error(
                    "InvalidParameterValue",
                    f"Address {ip} does not fall within the subnet's address range",
                )
            owner = self._owner_of(backend, eni.vpc_id, ip)
            if owner is None or owner is eni:
                continue
            if owner.private_ip_address == ip:
                raise error(
                    "InvalidParameterValue",
                    f"Address {ip} is the primary private IP address of {owner.id} "
                    "and cannot be moved.",
                )
            if not allow:
                raise error(
                    "InvalidParameterValue", f"Address {ip} is assigned, but move is not allowed."
                )
            moves.append((owner, ip))
        for owner, ip in moves:
            owner.private_ip_addresses[:] = [
                item for item in owner.private_ip_addresses if item["PrivateIpAddress"] != ip
            ]
            for eip in self._eips_on(backend, owner, ip):
                # AWS moves the EIP with the IP, but asynchronously: until then it is nowhere.
                self._disassociate(eip)
                if self.eip_follows:
                    self.follows.append(_PendingFollow(eip, eni, ip, now + self.eip_follow_delay_s))

    def _complete_follow(self, follow: _PendingFollow) -> None:
        eni = follow.eni
        if follow.eip.association_id is not None or follow.eip not in eni.ec2_backend.addresses:
            return  # re-associated (or released) by someone else meanwhile
        if eni.id not in eni.ec2_backend.enis or follow.private_ip not in ips_of(eni):
            return
        self._associate(follow.eip, eni, follow.private_ip)

    def _unassign(self, backend: Any, params: dict[str, Any], now: float) -> None:
        eni = backend.get_network_interface(params.get("NetworkInterfaceId"))
        ips = params.get("PrivateIpAddresses") or []
        for ip in ips:
            if ip == eni.private_ip_address:
                raise error(
                    "InvalidParameterValue",
                    f"The primary private IP address {ip} of {eni.id} cannot be unassigned.",
                )
            if ip not in ips_of(eni):
                raise error(
                    "InvalidParameterValue",
                    f"Some of the specified addresses are not assigned to interface {eni.id}",
                )
        for ip in ips:
            for eip in self._eips_on(backend, eni, ip):
                self._disassociate(eip)
