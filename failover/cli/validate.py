"""`failover validate`: the config, then AWS: resources, rules and permissions (DryRun)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from failover.cli.app import cli, config_option, load_settings
from failover.config import Settings
from failover.core.errors import ConfigError
from failover.ops.clock import SystemClock
from failover.service.validation import validate_groups
from failover.wiring import READ_BUDGET_S, create_state_table, make_cloud, read_budget


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
    with read_budget(cloud, clock):
        found = validate_groups(cloud, settings.groups)
    for line in found.notes:
        click.echo(line)
    if found.problems:
        for line in found.problems:
            click.echo(line, err=True)
        raise SystemExit(2)
    click.echo(f"{settings.source}: valid; AWS checks passed for {len(settings.groups)} groups")


def _state_line(settings: Settings) -> str:
    """Where the state lives, as an absolute path: relative ones follow the config file."""
    state = settings.state
    if state.backend == "dynamodb":
        return f"state: DynamoDB table {state.table}"
    return f"state: {os.path.abspath(state.path)} (SQLite)"
