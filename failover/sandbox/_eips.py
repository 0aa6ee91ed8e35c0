"""EC2's Elastic IP rules over moto: associations to a chosen private IP, moved cleanly."""

from __future__ import annotations

from typing import Any

from moto.core.responses import ActionResult, EmptyResult
from moto.ec2.exceptions import EC2ClientError, InvalidParameterCombination
from moto.ec2.utils import generate_dns_from_ip, random_eip_association_id

DEAD_STATES = ("shutting-down", "terminated")


def error(code: str, message: str) -> EC2ClientError:
    """An EC2 error that moto serializes as real EC2 error XML with this code."""
    return EC2ClientError(code, message)


def eip_private_ip(eip: Any) -> str | None:
    """The private IP an Elastic IP maps to: the one asked for, else the ENI's primary IP."""
    if eip.eni is None:
        return None
    chosen: str | None = getattr(eip, "strict_private_ip", None)
    return chosen or eip.eni.private_ip_address


def ips_of(eni: Any) -> list[str]:
    """Every private IP on an ENI."""
    return [item["PrivateIpAddress"] for item in eni.private_ip_addresses]


class ElasticIpRules:
    """Associate, disassociate and release Elastic IPs as EC2 does; keeps ENI views in step."""

    def _eips_on(self, backend: Any, eni: Any, ip: str | None = None) -> list[Any]:
        return [
            eip
            for eip in backend.addresses
            if eip.eni is eni and (ip is None or eip_private_ip(eip) == ip)
        ]

    def _find_eip(self, backend: Any, params: dict[str, Any]) -> Any:
        if params.get("AllocationId"):
            return backend.address_by_allocation([params["AllocationId"]])[0]
        if params.get("PublicIp"):
            return backend.address_by_ip([params["PublicIp"]])[0]
        if params.get("AssociationId"):
            return backend.address_by_association([params["AssociationId"]])[0]
        raise error("MissingParameter", "Either AllocationId or PublicIp must be specified")

    def _associate_address(self, backend: Any, params: dict[str, Any], now: float) -> Any:
        eip = self._find_eip(backend, params)
        eni_id = params.get("NetworkInterfaceId")
        instance_id = params.get("InstanceId")
        if eni_id:
            eni = backend.get_network_interface(eni_id)
            if instance_id and (eni.instance is None or eni.instance.id != instance_id):
                raise InvalidParameterCombination(
                    f"Network interface {eni.id} is not attached to instance {instance_id}"
                )
        elif instance_id:
            instance = backend.get_instance(instance_id)
            if instance.state in DEAD_STATES or 0 not in instance.nics:
                raise error(
                    "IncorrectInstanceState",
                    f"The instance '{instance.id}' is not in a valid state for this operation.",
                )
            eni = instance.nics[0]
        else:
            raise error("MissingParameter", "Either an instance or a network interface is required")
        ip = params.get("PrivateIpAddress") or eni.private_ip_address
        if ip not in ips_of(eni):
            raise error(
                "InvalidParameterValue",
                f"The private IP address {ip} is not assigned to network interface {eni.id}",
            )
        if eip.association_id is not None and eip.eni is eni and eip_private_ip(eip) == ip:
            return ActionResult({"AssociationId": eip.association_id})
        if eip.association_id is not None and params.get("AllowReassociation") is not True:
            raise error(
                "Resource.AlreadyAssociated",
                f"The address with allocation id [{eip.allocation_id}] is already associated",
            )
        return ActionResult({"AssociationId": self._associate(eip, eni, ip)})

    def _associate(self, eip: Any, eni: Any, ip: str) -> str | None:
        self._disassociate(eip)
        for other in self._eips_on(eni.ec2_backend, eni, ip):
            self._disassociate(other)
        eip.eni = eni
        eip.instance = eni.instance
        eip.strict_private_ip = ip
        eip.association_id = random_eip_association_id() if eip.domain == "vpc" else None
        self.sync(eni)
        return eip.association_id  # type: ignore[no-any-return]

    def _disassociate(self, eip: Any) -> None:
        old = eip.eni
        eip.eni = None
        eip.instance = None
        eip.association_id = None
        eip.strict_private_ip = None
        if old is not None:
            self.sync(old)

    def _disassociate_address(self, backend: Any, params: dict[str, Any], now: float) -> Any:
        self._disassociate(self._find_eip(backend, params))
        return EmptyResult()

    def _release(self, backend: Any, params: dict[str, Any], now: float) -> None:
        eip = self._find_eip(backend, params)
        if eip.association_id is not None:
            raise error("InvalidIPAddress.InUse", f"Address {eip.public_ip} is in use.")

    def sync(self, eni: Any) -> None:
        """Make the ENI's per-IP association blocks and public IP match the Elastic IPs on it."""
        backend = eni.ec2_backend
        by_ip = {eip_private_ip(eip): eip for eip in self._eips_on(backend, eni)}
        for item in eni.private_ip_addresses:
            eip = by_ip.get(item["PrivateIpAddress"])
            if eip is None:
                item.pop("Association", None)
                continue
            item["Association"] = {
                "AllocationId": eip.allocation_id,
                "AssociationId": eip.association_id,
                "IpOwnerId": backend.account_id,
                "PublicDnsName": generate_dns_from_ip(eip.public_ip, dns_type="external"),
                "PublicIp": eip.public_ip,
            }
        primary = by_ip.get(eni.private_ip_address)
        if primary is not None:
            eni.public_ip = primary.public_ip
        elif eni.public_ip and any(a.public_ip == eni.public_ip for a in backend.addresses):
            # A stale EIP left on the ENI by moto's reassociation.
            eni.public_ip = None
            if eni.instance is not None and eni.instance.is_running():
                eni.check_auto_public_ip()
