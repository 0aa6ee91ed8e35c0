"""`failover status` and `failover history`: what AWS and the store say now."""

from __future__ import annotations

import json
from pathlib import Path

import click

from failover.cli import report
from failover.cli.app import cli, config_option, load_settings
from failover.ops.clock import SystemClock
from failover.wiring import READ_BUDGET_S, make_cloud, open_store, read_budget


@cli.command()
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="one JSON object (schema in the README, `status --json`)",
)
@config_option
def status(as_json: bool, config_path: Path | None) -> None:
    """Each group: its resource, the active member as AWS reports it now, members' health
    and when each was last probed; exit 1 when a group is unowned, failed, down or degraded."""
    settings = load_settings(config_path)
    clock = SystemClock()
    cloud = make_cloud(settings, clock, budget_s=READ_BUDGET_S)
    store = open_store(settings.state, settings.aws, read_only=True)
    try:
        groups = []
        with read_budget(cloud, clock):
            views = cloud.observe_many(settings.groups, with_status=True)
        now = clock.now()
        for group in settings.groups:
            last = store.history(group.name, limit=1)
            groups.append(
                report.status_json(
                    views[group.name],
                    group,
                    store.load_group_state(group.name),
                    store.load_health(group.name),
                    last[0] if last else None,
                    now,
                )
            )
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps({"groups": groups}, indent=2))
    else:
        click.echo(report.status_text(groups))
    if report.troubled(groups):
        raise SystemExit(1)


@cli.command()
@click.option("--group", "group_name", default=None, help="only this group")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100000))
@click.option("--json", "as_json", is_flag=True, help="a JSON list of moves (schema in the README)")
@config_option
def history(group_name: str | None, limit: int, as_json: bool, config_path: Path | None) -> None:
    """The audit trail of moves: when, who, from, to, steps, outcome."""
    settings = load_settings(config_path)
    if group_name is not None:
        settings.group(group_name)
    store = open_store(settings.state, settings.aws, read_only=True)
    try:
        records = store.history(group_name, limit)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps([report.move_json(r) for r in records], indent=2))
    else:
        click.echo(report.history_text(records))
