"""Which of a move's EC2 calls IAM permits, asked with DryRun against real ids.

AWS evaluates the policy for DryRun as for the call, conditions included (a tag-scoped
policy refuses an untagged instance, ENI or EIP), and answers `DryRunOperation` when the call
would be permitted. Any other answer (an unknown id, throttling, an action without DryRun)
is no verdict: "not checked", never "permitted".

A move may ask before its read, with the target's eth0 as an earlier read showed it
(`to_take_unread`, sent alongside the read); each verdict is kept under its call's `key`, so
it stands only for the identical call the read leads to.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from failover.aws.errors import PERMISSION_CODES, error_code
from failover.core.model import GroupView, Mode, Permission

if TYPE_CHECKING:
    from failover.config import Group


@dataclass(frozen=True)
class DryRun:
    """One call to ask IAM about: the action and its real parameters."""

    action: str
    params: dict[str, Any]


def _dry_run(action: str, **params: Any) -> DryRun:
    return DryRun(action, params)


def to_take(group: Group, view: GroupView, target: str) -> list[DryRun]:
    """The calls that put the group's resource on `target` (its side of a move)."""
    member = view.member(target)
    eth0 = member.primary_eni_id if member else None
    private_ip = (
        group.ip if group.mode is Mode.SECONDARY_IP else (member.private_ip if member else None)
    )
    return _to_take(group, target, eth0, private_ip)


def to_take_unread(group: Group, target: str, eth0: str | None) -> list[DryRun]:
    """`to_take` before any read of this move, with `target`'s eth0 as an earlier read showed it
    (an instance keeps its eth0 for life; None: not known). An `eip` group's call names the
    target's private IP, known only from a read: none is asked."""
    if group.mode is Mode.EIP:
        return []
    return _to_take(group, target, eth0, group.ip if group.mode is Mode.SECONDARY_IP else None)


def key(call: DryRun) -> str:
    """The call as one string, its action and every parameter: a verdict asked before a read
    stands only for the very call the read leads to."""
    return json.dumps([call.action, call.params], sort_keys=True, default=str)


def _to_take(group: Group, target: str, eth0: str | None, private_ip: str | None) -> list[DryRun]:
    if group.mode is Mode.ENI:
        return [
            _dry_run(
                "AttachNetworkInterface",
                NetworkInterfaceId=group.eni,
                InstanceId=target,
                DeviceIndex=group.device_index,
            )
        ]
    if group.mode is Mode.ROUTE:
        # One per table: a tag-scoped policy may allow one table and not another.
        return [
            _dry_run(
                "ReplaceRoute",
                RouteTableId=table_id,
                DestinationCidrBlock=group.cidr,
                NetworkInterfaceId=eth0,
            )
            for table_id in group.route_tables
            if eth0
        ]
    calls: list[DryRun] = []
    if group.eip and eth0 and private_ip:
        # In secondary-ip mode this also asks about the target's eth0, the ENI that
        # AssignPrivateIpAddresses (which takes no DryRun) is authorized against.
        calls.append(
            _dry_run(
                "AssociateAddress",
                AllocationId=group.eip,
                NetworkInterfaceId=eth0,
                PrivateIpAddress=private_ip,
                AllowReassociation=True,
            )
        )
    return calls


def to_leave(group: Group, view: GroupView) -> list[DryRun]:
    """The calls on the member the resource is on now, and the status read of every member."""
    calls = [_dry_run("DescribeInstanceStatus", InstanceIds=list(group.instance_ids))]
    att = view.eni.attachment if group.mode is Mode.ENI and view.eni else None
    if att is not None:
        calls += [
            _dry_run("DetachNetworkInterface", AttachmentId=att.attachment_id, Force=False),
            _dry_run(
                "ModifyNetworkInterfaceAttribute",
                NetworkInterfaceId=group.eni,
                Attachment={"AttachmentId": att.attachment_id, "DeleteOnTermination": False},
            ),
        ]
    return calls


def unchecked(group: Group, view: GroupView) -> list[Permission]:
    """What no DryRun can ask here, said as such."""
    notes = []
    if group.mode is Mode.SECONDARY_IP:
        notes.append(
            Permission(
                "AssignPrivateIpAddresses",
                False,
                "not checked: AssignPrivateIpAddresses takes no DryRun; make sure the role "
                "allows ec2:AssignPrivateIpAddresses on every member's tagged eth0 (see policies/)",
                checked=False,
            )
        )
    if group.mode is Mode.ENI and (view.eni is None or view.eni.attachment is None):
        notes.append(
            Permission(
                "DetachNetworkInterface",
                False,
                f"not checked: {group.eni} is attached to no instance",
                checked=False,
            )
        )
    return notes


def ask(client: Any, call: DryRun) -> Permission:
    """Send `call` with DryRun=True and read IAM's verdict from the answer."""
    fn: Callable[..., Any] = getattr(client, _snake(call.action))
    try:
        fn(DryRun=True, **call.params)
    except ClientError as exc:
        code = error_code(exc)
        if code == "DryRunOperation":
            return Permission(call.action, True, "permitted")
        message = str(exc.response.get("Error", {}).get("Message", ""))
        if code in PERMISSION_CODES:
            return Permission(
                call.action,
                False,
                f"missing IAM permission ec2:{call.action} ({code}: {message})",
                code=code,
            )
        return Permission(call.action, False, f"not checked: AWS answered {code}", checked=False)
    except BotoCoreError as exc:
        return Permission(call.action, False, f"not checked: {exc}", checked=False)
    return Permission(call.action, False, "not checked: no DryRun answer", checked=False)


def _snake(action: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in action).lstrip("_")
