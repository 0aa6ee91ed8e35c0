"""EC2's answers turned into the core's values (Instance, Eni, Address); pure functions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from failover.core.model import Address, Attachment, Eni, Instance, Interface


def tags_of(raw: Mapping[str, Any], key: str = "Tags") -> tuple[tuple[str, str], ...]:
    """A resource's tags, sorted, from the answer's `Tags` (or `TagSet`) list."""
    return tuple(sorted((str(t["Key"]), str(t["Value"])) for t in raw.get(key) or []))


def status_of(raw: Mapping[str, Any]) -> tuple[str, bool | None, bool]:
    """(state, checks ok, insufficient data) of a DescribeInstanceStatus entry.

    ok is True when both status checks are `ok`, False when one is `impaired`, None otherwise:
    `insufficient-data`, `initializing` and `not-applicable` are no verdict (API reference:
    insufficient-data is not a failure; the third value says it was that).
    """
    state = str(raw.get("InstanceState", {}).get("Name", "unknown"))
    checks = (
        raw.get("SystemStatus", {}).get("Status"),
        raw.get("InstanceStatus", {}).get("Status"),
    )
    insufficient = "insufficient-data" in checks
    if all(c == "ok" for c in checks):
        return state, True, False
    if "impaired" in checks:
        return state, False, insufficient
    return state, None, insufficient


def interface_of(nic: Mapping[str, Any]) -> Interface:
    """An attached ENI as DescribeInstances lists it, or as DescribeNetworkInterfaces does."""
    return Interface(
        eni_id=str(nic["NetworkInterfaceId"]),
        device_index=int(nic.get("Attachment", {}).get("DeviceIndex", -1)),
        private_ips=tuple(str(p["PrivateIpAddress"]) for p in nic.get("PrivateIpAddresses", [])),
        subnet_id=str(nic.get("SubnetId", "")),
        source_dest_check=nic.get("SourceDestCheck"),
    )


def instance_of(raw: Mapping[str, Any]) -> Instance:
    """A DescribeInstances instance: state, AZ, interfaces (with subnets), launch time, tags."""
    interfaces = tuple(interface_of(nic) for nic in raw.get("NetworkInterfaces", []))
    return Instance(
        instance_id=str(raw["InstanceId"]),
        state=str(raw.get("State", {}).get("Name", "unknown")),
        az=str(raw.get("Placement", {}).get("AvailabilityZone", "")),
        private_ip=raw.get("PrivateIpAddress"),
        interfaces=interfaces,
        launched_at=_epoch(raw.get("LaunchTime")),
        tags=tags_of(raw),
        vpc_id=str(raw.get("VpcId", "")),
    )


def _epoch(value: Any) -> float | None:
    if isinstance(value, dt.datetime):
        return value.timestamp()
    return None


def address_of(raw: Mapping[str, Any]) -> Address:
    """A DescribeAddresses address and what it is associated with."""
    return Address(
        allocation_id=str(raw.get("AllocationId", "")),
        public_ip=str(raw.get("PublicIp", "")),
        association_id=raw.get("AssociationId"),
        eni_id=raw.get("NetworkInterfaceId"),
        private_ip=raw.get("PrivateIpAddress"),
        instance_id=raw.get("InstanceId") or None,
        tags=tags_of(raw),
    )


def eni_of(raw: Mapping[str, Any]) -> Eni:
    """A DescribeNetworkInterfaces interface and its attachment."""
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
        tags=tags_of(raw, "TagSet"),
    )
