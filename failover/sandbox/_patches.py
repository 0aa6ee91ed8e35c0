"""The process-wide patches to moto 5.2's classes that route every request through the layer.

Both `moto.mock_aws` and `ThreadedMotoServer` dispatch through `BaseResponse.call_action` and
serialize the same model objects, so patching them once covers in-process and server modes.
"""

from __future__ import annotations

from typing import Any, Protocol

from moto.core.responses import BaseResponse
from moto.ec2.models.elastic_ip_addresses import ElasticAddress
from moto.ec2.models.elastic_network_interfaces import Attachment, NetworkInterface
from moto.ec2.models.instances import Instance
from moto.ec2.models.route_tables import Route

from ._eips import eip_private_ip
from ._routes import route_eni_id, route_state
from ._rules import Ec2Rules


class Hooks(Protocol):
    """What the patched moto code asks of the installed layer."""

    rules: Ec2Rules

    def dispatch(self, response: Any, original: Any) -> Any:
        """Answer one request, calling `original(response)` to let moto act."""


_hooks: Hooks | None = None
_originals: dict[tuple[type, str], Any] = {}


def _call_action(self: Any) -> Any:
    hooks = _hooks
    original = _originals[(BaseResponse, "call_action")]
    if hooks is None:
        return original(self)
    return hooks.dispatch(self, original)


def _attachment(self: Any) -> Any:
    if not self.attachment_id:
        return None
    attachment = Attachment(self)
    if _hooks is not None:
        attachment.status = _hooks.rules.attachment_status(self)
    return attachment


def _instance_ip_list(self: Any) -> list[dict[str, Any]]:
    # moto's DescribeInstances view keeps only the primary IP's association.
    ip_list = []
    for item in self.private_ip_addresses:
        entry = {
            "PrivateIpAddress": item["PrivateIpAddress"],
            "Primary": item["PrivateIpAddress"] == self.private_ip_address,
        }
        if "Association" in item:
            entry["Association"] = item["Association"]
        elif entry["Primary"] and self.public_ip:
            entry["Association"] = self.association
        ip_list.append(entry)
    return ip_list


def _eni_filter_value(self: Any, filter_name: str, method_name: str | None = None) -> Any:
    if filter_name in ("private-ip-address", "addresses.private-ip-address"):
        return [item["PrivateIpAddress"] for item in self.private_ip_addresses]
    if filter_name in ("association.public-ip", "association.allocation-id"):
        key = "PublicIp" if filter_name.endswith("public-ip") else "AllocationId"
        return [i["Association"][key] for i in self.private_ip_addresses if "Association" in i]
    attachment = self.attachment
    if filter_name == "attachment.status":
        return attachment.status if attachment else None
    if filter_name == "attachment.device-index":
        return attachment.device_index if attachment else None
    if filter_name == "attachment.delete-on-termination":
        return attachment.delete_on_termination if attachment else None
    if filter_name == "status":
        return self.status
    return _originals[(NetworkInterface, "get_filter_value")](self, filter_name, method_name)


def _eip_private_ip(self: Any) -> str | None:
    return eip_private_ip(self)


def _eip_instance_id(self: Any) -> str | None:
    # AWS reports the instance the ENI is attached to now, not the one at association time,
    # and leaves the field out (moto: "") when there is none.
    if self.eni is not None:
        return self.eni.instance.id if self.eni.instance is not None else None
    return self.instance.id if self.instance is not None else None


def _eip_eni_id(self: Any) -> str | None:
    return self.eni.id if self.eni is not None else None


def _eip_filter_value(self: Any, filter_name: str, method_name: str | None = None) -> Any:
    if filter_name == "instance-id":
        return _eip_instance_id(self)
    if filter_name == "private-ip-address":
        return eip_private_ip(self)
    return _originals[(ElasticAddress, "get_filter_value")](self, filter_name, method_name)


def _status_block(self: Any, which: int) -> dict[str, Any]:
    if self.state_code != 16:
        return {"Status": "not-applicable"}
    status = "ok"
    if _hooks is not None:
        status = _hooks.rules.statuses.get(self.id, ("ok", "ok"))[which]
    detail = {"ok": "passed", "impaired": "failed"}.get(status, status)
    return {"Details": [{"Name": "reachability", "Status": detail}], "Status": status}


def _system_status(self: Any) -> dict[str, Any]:
    return _status_block(self, 0)


def _instance_status(self: Any) -> dict[str, Any]:
    return _status_block(self, 1)


def _eni_from_cloudformation(
    cls: Any, resource_name: str, cloudformation_json: Any, *args: Any, **kwargs: Any
) -> Any:
    # CloudFormation applies an AWS::EC2::NetworkInterface's Tags; moto drops them.
    original = _originals[(NetworkInterface, "create_from_cloudformation_json")]
    eni = original.__func__(cls, resource_name, cloudformation_json, *args, **kwargs)
    tags = cloudformation_json.get("Properties", {}).get("Tags") or []
    if tags:
        eni.add_tags({str(t["Key"]): str(t["Value"]) for t in tags})
    return eni


_PATCHES: dict[tuple[type, str], Any] = {
    (BaseResponse, "call_action"): _call_action,
    (NetworkInterface, "attachment"): property(_attachment),
    (NetworkInterface, "instance_private_ip_address_list"): property(_instance_ip_list),
    (NetworkInterface, "get_filter_value"): _eni_filter_value,
    (NetworkInterface, "create_from_cloudformation_json"): classmethod(_eni_from_cloudformation),
    (ElasticAddress, "private_ip_address"): property(_eip_private_ip),
    (ElasticAddress, "instance_id"): property(_eip_instance_id),
    (ElasticAddress, "network_interface_id"): property(_eip_eni_id),
    (ElasticAddress, "get_filter_value"): _eip_filter_value,
    (Instance, "system_status"): property(_system_status),
    (Instance, "instance_status"): property(_instance_status),
    (Route, "state"): property(route_state),
    (Route, "network_interface_id"): property(route_eni_id),
}


def apply(hooks: Hooks) -> None:
    """Route moto through `hooks` (idempotent: the originals are saved once)."""
    global _hooks
    for (cls, name), replacement in _PATCHES.items():
        if (cls, name) not in _originals:
            _originals[(cls, name)] = cls.__dict__[name]
        setattr(cls, name, replacement)
    _hooks = hooks


def remove() -> None:
    """Give moto its own classes back."""
    global _hooks
    _hooks = None
    # The saved originals stay: a request already inside a patched method still needs them.
    for (cls, name), original in _originals.items():
        setattr(cls, name, original)
