"""`failover validate`: the config, then AWS: resources, rules and permissions (DryRun)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from failover.aws.ec2 import Ec2Cloud, Permission
from failover.cli.app import cli, config_option, load_settings
from failover.config import Group, Settings
from failover.core.errors import (
    ConfigError,
    PermissionDeniedError,
)
from failover.core.model import Mode
from failover.core.planner import validation_problems
from failover.ops.clock import SystemClock
from failover.wiring import READ_BUDGET_S, create_state_table, make_cloud


@cli.command()
@click.option("--offline", is_flag=True, help="check the config only, make no AWS call")
@click.option(
    "--create-table", is_flag=True, help="create the DynamoDB table (state.backend dynamodb)"
)
@config_option
def validate(offline: bool, create_table: bool, config_path: Path | None) -> None:
    """Check the config and, online, that AWS is set up so every failover can succeed."""
    settings = load_settings(config_path)
    if create_table:
        if settings.state.backend != "dynamodb" or settings.state.table is None:
            raise ConfigError(
                f"--create-table needs state.backend dynamodb (this config's is {settings.state.backend})"
            )
        made = create_state_table(settings)
        click.echo(
            f"DynamoDB table {settings.state.table}: "
            + ("created" if made else "already exists, key schema ok")
        )
    click.echo(_state_line(settings))
    if offline:
        click.echo(f"{settings.source}: valid ({len(settings.groups)} groups)")
        return
    clock = SystemClock()
    cloud = make_cloud(settings, clock, budget_s=READ_BUDGET_S)
    problems: list[str] = []
    notes: list[str] = []
    for group in settings.groups:
        try:
            view = cloud.observe(group, with_status=False)
        except PermissionDeniedError as exc:
            problems.append(f"group {group.name}: {exc}")
            continue
        problems += [
            f"group {group.name}: {group.resource}: {p}" for p in validation_problems(view, group)
        ]
        permissions = _permissions(cloud, group, view)
        problems += [
            f"group {group.name}: {p.action}: {p.detail}" for p in permissions if not p.permitted
        ]
        notes += [
            f"group {group.name}: {p.action}: {p.detail}" for p in permissions if not p.checked
        ]
    for line in notes:
        click.echo(line)
    if problems:
        for line in problems:
            click.echo(line, err=True)
        raise SystemExit(2)
    click.echo(f"{settings.source}: valid; AWS checks passed for {len(settings.groups)} groups")


def _state_line(settings: Settings) -> str:
    """Where the state lives, as an absolute path: relative ones follow the config file."""
    state = settings.state
    if state.backend == "dynamodb":
        return f"state: DynamoDB table {state.table}"
    return f"state: {os.path.abspath(state.path)} (SQLite)"


def _permissions(cloud: Ec2Cloud, group: Group, view: Any) -> list[Permission]:
    """DryRun every mutating action a failover of `group` would make, against real ids."""
    standby = next((m for m in view.members if m.instance_id != view.active and m.exists), None)
    standby_id = standby.instance_id if standby else group.instance_ids[-1]
    standby_eni = (standby.primary_eni_id if standby else None) or "eni-00000000"
    checks = [
        cloud.check_permission("DescribeInstanceStatus", InstanceIds=list(group.instance_ids))
    ]
    if group.mode is Mode.ENI:
        att = view.eni.attachment if view.eni else None
        attachment_id = att.attachment_id if att else "eni-attach-00000000"
        checks += [
            cloud.check_permission(
                "DetachNetworkInterface", AttachmentId=attachment_id, Force=False
            ),
            cloud.check_permission(
                "AttachNetworkInterface",
                NetworkInterfaceId=group.eni,
                InstanceId=standby_id,
                DeviceIndex=group.device_index,
            ),
            cloud.check_permission(
                "ModifyNetworkInterfaceAttribute",
                NetworkInterfaceId=group.eni,
                Attachment={"AttachmentId": attachment_id, "DeleteOnTermination": False},
            ),
        ]
    if group.mode is Mode.SECONDARY_IP:
        checks.append(
            cloud.check_permission(
                "AssignPrivateIpAddresses",
                NetworkInterfaceId=standby_eni,
                PrivateIpAddresses=[group.ip],
                AllowReassignment=True,
            )
        )
    if group.eip:
        private_ip = group.ip or (standby.private_ip if standby else None) or "10.0.0.1"
        checks.append(
            cloud.check_permission(
                "AssociateAddress",
                AllocationId=group.eip,
                NetworkInterfaceId=standby_eni,
                PrivateIpAddress=private_ip,
                AllowReassociation=True,
            )
        )
    return checks
