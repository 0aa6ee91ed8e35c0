"""`failover status` and `failover history`: what AWS and the store say now."""

from __future__ import annotations

import json
from pathlib import Path

import click

from failover.cli import report
from failover.cli.app import cli, config_option, load_settings
from failover.wiring import open_store, wired


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="one JSON object (see DESIGN.md)")
@config_option
def status(as_json: bool, config_path: Path | None) -> None:
    """Each group: its resource, the active member as AWS reports it now, members' health."""
    settings = load_settings(config_path)
    with wired(settings) as w:
        groups = []
        for group in settings.groups:
            view = w.cloud.observe(group, with_status=True)
            last = w.store.history(group.name, limit=1)
            groups.append(
                report.status_json(
                    view,
                    group.resource,
                    w.store.load_group_state(group.name),
                    w.store.load_health(group.name),
                    last[0] if last else None,
                )
            )
    if as_json:
        click.echo(json.dumps({"groups": groups}, indent=2))
    else:
        click.echo(report.status_text(groups))
    if any(g["state"] in ("unowned", "failed") for g in groups):
        raise SystemExit(1)


@cli.command()
@click.option("--group", "group_name", default=None, help="only this group")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100000))
@click.option("--json", "as_json", is_flag=True, help="a JSON list of moves")
@config_option
def history(group_name: str | None, limit: int, as_json: bool, config_path: Path | None) -> None:
    """The audit trail of moves: when, who, from, to, steps, outcome."""
    settings = load_settings(config_path)
    if group_name is not None:
        settings.group(group_name)
    store = open_store(settings.state, settings.aws)
    try:
        records = store.history(group_name, limit)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps([report.move_json(r) for r in records], indent=2))
    else:
        click.echo(report.history_text(records))
