"""`failover hold` and `failover release`: an operator's maintenance hold on a group.

A held group is never moved automatically (daemon, `check`, Lambda); `failover move` still
moves it (the operator's explicit act) and leaves the hold in place. `release` ends any
hold, the flap limit's too.
"""

from __future__ import annotations

from pathlib import Path

import click

from failover.cli.app import cli, config_option, load_settings
from failover.cli.move import os_user
from failover.core.decide import HELD_BY_OPERATOR
from failover.ops.clock import SystemClock
from failover.wiring import open_store


@cli.command()
@click.argument("group_name", metavar="GROUP")
@click.option("--reason", default="", help="why, for `status` and the people after you")
@config_option
def hold(group_name: str, reason: str, config_path: Path | None) -> None:
    """Stop automatic moves of GROUP until `failover release GROUP` (maintenance)."""
    settings = load_settings(config_path)
    group = settings.group(group_name)
    who = os_user()
    text = reason.strip() or f"held by {who or 'an operator'}"
    store = open_store(settings.state, settings.aws)
    try:
        before = store.load_group_state(group.name)
        store.save_hold(group.name, HELD_BY_OPERATOR, text, SystemClock().now())
    finally:
        store.close()
    if before.held and before.held_by != HELD_BY_OPERATOR:
        click.echo(f"group {group.name}: was held by the flap limit ({before.held_reason})")
    click.echo(
        f"group {group.name}: held ({text}): no automatic move until "
        f"`failover release {group.name}`; `failover move {group.name}` still moves it"
    )


@cli.command()
@click.argument("group_name", metavar="GROUP")
@config_option
def release(group_name: str, config_path: Path | None) -> None:
    """End GROUP's hold (an operator's or the flap limit's): automatic moves resume."""
    settings = load_settings(config_path)
    group = settings.group(group_name)
    store = open_store(settings.state, settings.aws)
    try:
        before = store.load_group_state(group.name)
        if before.held:
            store.save_hold(group.name, "", "", SystemClock().now())
    finally:
        store.close()
    if not before.held:
        click.echo(f"group {group.name}: not held: nothing to do")
        return
    by = "an operator" if before.held_by == HELD_BY_OPERATOR else "the flap limit"
    click.echo(
        f"group {group.name}: released (was held by {by}: {before.held_reason}); "
        "automatic moves resume at the next pass"
    )
