"""The EC2 adapter: the only module that calls EC2. Observe a group; run one primitive call.

Each method is one API call (botocore's retry mode absorbs throttling inside it) whose
errors are translated once. Waiting for a state to converge is the engine's loop: it
re-observes with `observe` and asks the planner whether the step is done.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from failover.aws.errors import PERMISSION_CODES, error_code, translate
from failover.aws.pacing import Pacer
from failover.core.model import Address, Attachment, Eni, GroupView, Instance, Interface, Mode

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_sts import STSClient

    from failover.config import Group

T = TypeVar("T")

# DescribeInstanceStatus takes at most 100 instance ids a call.
STATUS_BATCH = 100
# Values per filter in one describe call (EC2 accepts up to 200).
FILTER_BATCH = 200
# Codes meaning "the thing asked for does not exist" for the describes we make.
_NOT_FOUND = frozenset(
    {
        "InvalidInstanceID.NotFound",
        "InvalidNetworkInterfaceID.NotFound",
        "InvalidAllocationID.NotFound",
        "InvalidAddress.NotFound",
    }
)


@dataclass(frozen=True)
class Permission:
    """One EC2 action tried with DryRun: permitted or not, and AWS's words."""

    action: str
    permitted: bool
    detail: str
    checked: bool = True  # False: the action takes no DryRun, so IAM could not be asked


class Ec2Cloud:
    """EC2 behind the `Cloud` port. Clients are built by the CLI and injected."""

    def __init__(
        self,
        ec2: EC2Client,
        sts: STSClient | None = None,
        clock: Callable[[], float] | None = None,
        pacer: Pacer | None = None,
    ) -> None:
        self._ec2 = ec2
        self._sts = sts
        self._clock = clock
        if pacer is not None:
            # Shared by every move and pass of the process: together they stay inside EC2's
            # buckets. It paces each request the client sends, botocore's retries included.
            pacer.attach(ec2)

    @property
    def region(self) -> str:
        """The Region the EC2 client talks to (named when the group's ids are not found there)."""
        return str(self._ec2.meta.region_name or "")

    def _call(self, action: str, resource: str, fn: Callable[..., T], **params: Any) -> T:
        try:
            return fn(**params)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, action, resource) from None

    def _describe(
        self, action: str, resource: str, fn: Callable[..., T], **params: Any
    ) -> T | None:
        """A describe call whose not-found answer is None rather than an error."""
        try:
            return fn(**params)
        except ClientError as exc:
            if error_code(exc) in _NOT_FOUND:
                return None
            raise translate(exc, action, resource) from None
        except BotoCoreError as exc:
            raise translate(exc, action, resource) from None

    # -- observe -----------------------------------------------------------------------------

    def _filtered(
        self, action: str, fn: Callable[..., Any], key: str, name: str, ids: Sequence[str]
    ) -> list[Any]:
        """Every item `fn` lists for `ids`, asked by filter in chunks of FILTER_BATCH, following NextToken.

        A filter rather than an id list, so one unknown id does not fail the whole call.
        """
        items: list[Any] = []
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), FILTER_BATCH):
            chunk = unique[start : start + FILTER_BATCH]
            params: dict[str, Any] = {"Filters": [{"Name": name, "Values": chunk}]}
            while True:
                reply = self._call(action, ",".join(chunk), fn, **params)
                items.extend(reply.get(key, []))
                token = reply.get("NextToken")
                if not token:
                    break
                params["NextToken"] = token
        return items

    def describe_members(self, instance_ids: Sequence[str]) -> dict[str, Instance]:
        """State, AZ and interfaces of each instance; ids EC2 does not know are 'missing'."""
        reservations = self._filtered(
            "DescribeInstances",
            self._ec2.describe_instances,
            "Reservations",
            "instance-id",
            instance_ids,
        )
        found = {
            i.instance_id: i for r in reservations for i in map(_instance, r.get("Instances", []))
        }
        return {
            i: found.get(i, Instance(instance_id=i, state="missing", az="")) for i in instance_ids
        }

    def instance_status(self, instance_ids: Sequence[str]) -> dict[str, tuple[str, bool | None]]:
        """(state, checks ok) for each instance, in as few calls as the 100-id cap allows.

        ok is True when the system and instance checks are both `ok`, False when one is
        `impaired` or `insufficient-data`, None when EC2 reports no verdict (not running,
        or still initializing). Ids EC2 does not know come back as ("missing", None).
        """
        ids = list(dict.fromkeys(instance_ids))
        out: dict[str, tuple[str, bool | None]] = {}
        for start in range(0, len(ids), STATUS_BATCH):
            chunk = ids[start : start + STATUS_BATCH]
            reply = self._describe(
                "DescribeInstanceStatus",
                ",".join(chunk),
                self._ec2.describe_instance_status,
                InstanceIds=chunk,
                IncludeAllInstances=True,
            )
            if reply is None and len(chunk) > 1:
                # One unknown id fails the whole batch; ask for the others one by one.
                for instance_id in chunk:
                    out.update(self.instance_status([instance_id]))
                continue
            for status in reply["InstanceStatuses"] if reply else []:
                out[status["InstanceId"]] = _status(status)
        return {i: out.get(i, ("missing", None)) for i in ids}

    def describe_enis(self, eni_ids: Sequence[str]) -> dict[str, Eni]:
        """The ENIs EC2 knows of among `eni_ids`, as it reports them now."""
        raw = self._filtered(
            "DescribeNetworkInterfaces",
            self._ec2.describe_network_interfaces,
            "NetworkInterfaces",
            "network-interface-id",
            eni_ids,
        )
        return {e.eni_id: e for e in map(_eni, raw)}

    def describe_addresses(self, allocation_ids: Sequence[str]) -> dict[str, Address]:
        """The Elastic IPs EC2 knows of among `allocation_ids`, with their associations."""
        raw = self._filtered(
            "DescribeAddresses",
            self._ec2.describe_addresses,
            "Addresses",
            "allocation-id",
            allocation_ids,
        )
        return {a.allocation_id: a for a in map(_address, raw)}

    def observe_many(
        self, groups: Sequence[Group], *, with_status: bool = False
    ) -> dict[str, GroupView]:
        """Fresh views of many groups in as few calls as EC2 allows (batched, filtered describes).

        A pass over 2,000 members costs ~10 DescribeInstances, 20 DescribeInstanceStatus (when
        asked) and a few ENI/address calls, instead of several calls per group.
        """
        ids = [i for g in groups for i in g.instance_ids]
        members = self.describe_members(ids)
        if with_status:
            status = self.instance_status(ids)
            members = {i: replace(m, status_ok=status[i][1]) for i, m in members.items()}
        enis = self.describe_enis([g.eni for g in groups if g.mode is Mode.ENI and g.eni])
        addresses = self.describe_addresses([g.eip for g in groups if g.eip])
        at = self._clock() if self._clock else 0.0
        return {
            g.name: GroupView(
                g.name,
                g.mode,
                tuple(members[i] for i in g.instance_ids),
                eni=enis.get(g.eni) if g.eni else None,
                ip=g.ip,
                address=addresses.get(g.eip) if g.eip else None,
                observed_at=at,
            )
            for g in groups
        }

    def refresh(self, group: Group, view: GroupView) -> GroupView:
        """`view` with its floating resource (ENI, EIP) read again; members as they were."""
        if group.mode is Mode.ENI and group.eni:
            return replace(view, eni=self.describe_enis([group.eni]).get(group.eni))
        if group.eip:
            return replace(view, address=self.describe_addresses([group.eip]).get(group.eip))
        return self.observe(group)

    def observe(self, group: Group, *, with_status: bool = False) -> GroupView:
        """Everything the planner needs about `group`, read fresh from EC2."""
        return self.observe_many([group], with_status=with_status)[group.name]

    # -- mutate ------------------------------------------------------------------------------

    def detach(self, attachment_id: str, *, force: bool) -> None:
        """DetachNetworkInterface; an attachment that is already gone counts as detached."""
        try:
            self._ec2.detach_network_interface(AttachmentId=attachment_id, Force=force)
        except ClientError as exc:
            if error_code(exc) == "InvalidAttachmentID.NotFound":
                return  # a re-run after the detach finished: nothing left to do
            raise translate(exc, "DetachNetworkInterface", attachment_id) from None
        except BotoCoreError as exc:
            raise translate(exc, "DetachNetworkInterface", attachment_id) from None

    def attach(self, eni_id: str, instance_id: str, device_index: int) -> str:
        """AttachNetworkInterface; returns the new attachment id."""
        reply = self._call(
            "AttachNetworkInterface",
            f"{eni_id} -> {instance_id}",
            self._ec2.attach_network_interface,
            NetworkInterfaceId=eni_id,
            InstanceId=instance_id,
            DeviceIndex=device_index,
        )
        return str(reply.get("AttachmentId", ""))

    def keep_on_termination(self, eni_id: str, attachment_id: str) -> None:
        """Turn DeleteOnTermination off, so the floating ENI outlives the instance it is on."""
        self._call(
            "ModifyNetworkInterfaceAttribute",
            eni_id,
            self._ec2.modify_network_interface_attribute,
            NetworkInterfaceId=eni_id,
            Attachment={"AttachmentId": attachment_id, "DeleteOnTermination": False},
        )

    def assign_ip(self, eni_id: str, ip: str) -> None:
        """AssignPrivateIpAddresses with AllowReassignment sent explicitly (defaults have differed)."""
        self._call(
            "AssignPrivateIpAddresses",
            f"{ip} -> {eni_id}",
            self._ec2.assign_private_ip_addresses,
            NetworkInterfaceId=eni_id,
            PrivateIpAddresses=[ip],
            AllowReassignment=True,
        )

    def associate_address(self, allocation_id: str, eni_id: str, private_ip: str) -> None:
        """AssociateAddress with AllowReassociation sent explicitly: the EIP moves in one call."""
        self._call(
            "AssociateAddress",
            f"{allocation_id} -> {eni_id}/{private_ip}",
            self._ec2.associate_address,
            AllocationId=allocation_id,
            NetworkInterfaceId=eni_id,
            PrivateIpAddress=private_ip,
            AllowReassociation=True,
        )

    # -- identity and permissions -------------------------------------------------------------

    def caller_identity(self) -> str:
        """The caller's ARN for the audit trail; a failure is recorded, never fatal to a move."""
        if self._sts is None:
            return "unknown (no STS client)"
        try:
            return str(self._sts.get_caller_identity().get("Arn", "unknown"))
        except (ClientError, BotoCoreError) as exc:
            return f"unknown ({translate(exc, 'GetCallerIdentity')})"

    def check_permission(self, action: str, **params: Any) -> Permission:
        """Call `action` with DryRun=True: DryRunOperation means permitted.

        Any other error than a permission one also means IAM let the request through
        (AWS evaluates IAM first), so it counts as permitted, with AWS's words kept.
        """
        fn = getattr(self._ec2, _snake(action))
        shape = self._ec2.meta.service_model.operation_model(action).input_shape
        if shape is None or "DryRun" not in shape.members:
            # AssignPrivateIpAddresses takes no DryRun: asking IAM would mean acting.
            return Permission(
                action,
                True,
                f"not checked: {action} takes no DryRun; make sure the role allows ec2:{action} "
                "(see policies/)",
                checked=False,
            )
        try:
            fn(DryRun=True, **params)
        except ClientError as exc:
            code = error_code(exc)
            if code == "DryRunOperation":
                return Permission(action, True, "permitted")
            if code in PERMISSION_CODES:
                return Permission(action, False, f"{code}: missing IAM permission ec2:{action}")
            return Permission(action, True, f"permitted (AWS answered {code})")
        except BotoCoreError as exc:
            return Permission(action, False, f"could not check: {exc}")
        return Permission(action, True, "permitted (no DryRun answer)")


def _snake(action: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in action).lstrip("_")


def _status(raw: Mapping[str, Any]) -> tuple[str, bool | None]:
    state = str(raw.get("InstanceState", {}).get("Name", "unknown"))
    checks = (
        raw.get("SystemStatus", {}).get("Status"),
        raw.get("InstanceStatus", {}).get("Status"),
    )
    if all(c == "ok" for c in checks):
        return state, True
    if any(c in ("impaired", "insufficient-data") for c in checks):
        return state, False
    return state, None


def _instance(raw: Mapping[str, Any]) -> Instance:
    interfaces = tuple(
        Interface(
            eni_id=str(nic["NetworkInterfaceId"]),
            device_index=int(nic.get("Attachment", {}).get("DeviceIndex", -1)),
            private_ips=tuple(
                str(p["PrivateIpAddress"]) for p in nic.get("PrivateIpAddresses", [])
            ),
        )
        for nic in raw.get("NetworkInterfaces", [])
    )
    return Instance(
        instance_id=str(raw["InstanceId"]),
        state=str(raw.get("State", {}).get("Name", "unknown")),
        az=str(raw.get("Placement", {}).get("AvailabilityZone", "")),
        private_ip=raw.get("PrivateIpAddress"),
        interfaces=interfaces,
    )


def _address(raw: Mapping[str, Any]) -> Address:
    return Address(
        allocation_id=str(raw.get("AllocationId", "")),
        public_ip=str(raw.get("PublicIp", "")),
        association_id=raw.get("AssociationId"),
        eni_id=raw.get("NetworkInterfaceId"),
        private_ip=raw.get("PrivateIpAddress"),
        instance_id=raw.get("InstanceId") or None,
    )


def _eni(raw: Mapping[str, Any]) -> Eni:
    att = raw.get("Attachment")
    attachment = (
        Attachment(
            attachment_id=str(att.get("AttachmentId", "")),
            instance_id=str(att.get("InstanceId", "")),
            device_index=int(att.get("DeviceIndex", -1)),
            status=str(att.get("Status", "attached")),
            delete_on_termination=bool(att.get("DeleteOnTermination", False)),
        )
        if att and att.get("InstanceId")
        else None
    )
    return Eni(
        eni_id=str(raw["NetworkInterfaceId"]),
        az=str(raw.get("AvailabilityZone", "")),
        status=str(raw.get("Status", "")),
        attachment=attachment,
        private_ips=tuple(str(p["PrivateIpAddress"]) for p in raw.get("PrivateIpAddresses", [])),
        mac=str(raw.get("MacAddress", "")),
        security_groups=tuple(sorted(str(g["GroupId"]) for g in raw.get("Groups", []))),
        source_dest_check=raw.get("SourceDestCheck"),
        description=str(raw.get("Description", "")),
        tags=tuple(sorted((str(t["Key"]), str(t["Value"])) for t in raw.get("TagSet", []))),
    )
