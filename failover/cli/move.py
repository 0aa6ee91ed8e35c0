"""`failover move`: the on-call manual failover."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import click

from failover.cli import report
from failover.cli.app import cli, config_option, load_settings
from failover.cli.interrupt import Interrupt
from failover.cli.progress import LiveSteps
from failover.config import Group
from failover.core.decide import Facts, absent_text, manual_refusal, manual_target
from failover.core.durations import when
from failover.core.errors import (
    ConfigError,
    RefusedError,
)
from failover.core.planner import absence, candidates
from failover.core.ports import Store
from failover.probes import run_probes
from failover.service.freshness import fresh_health
from failover.wiring import READ_BUDGET_S, lease_refusal, leased, wired


@cli.command()
@click.argument("group_name", metavar="GROUP")
@click.option(
    "--to", "target", metavar="INSTANCE", help="the member to move to (default: the best candidate)"
)
@click.option("--dry-run", is_flag=True, help="show the plan, change nothing")
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
@click.option(
    "--force",
    is_flag=True,
    help="allow a Force detach from a running member; never breaks an AWS rule",
)
@config_option
def move(
    group_name: str,
    target: str | None,
    dry_run: bool,
    yes: bool,
    force: bool,
    config_path: Path | None,
) -> None:
    """Move GROUP's resource to a standby now (the on-call manual failover)."""
    settings = load_settings(config_path)
    group = settings.group(group_name)
    if target is not None and group.member(target) is None:
        raise click.UsageError(
            f"--to {target} is not a member of group {group.name} ({', '.join(group.instance_ids)})"
        )
    interactive = sys.stdin.isatty()
    if not dry_run and not yes and not interactive:
        raise click.UsageError(
            "refusing to move without confirmation: stdin is not a TTY; pass --yes"
        )
    live = LiveSteps() if sys.stdout.isatty() else None
    interrupt = Interrupt()
    with (
        wired(
            settings,
            on_step=live.on_step if live else None,
            on_wait=live.on_wait if live else None,
            stop=interrupt.requested,
            budget_s=READ_BUDGET_S,  # no one call may eat the move's deadline
        ) as w,
        leased(w, [] if dry_run else [group.name]) as refused,
    ):
        if refused:
            raise lease_refusal(group)
        pending = w.store.open_moves(group.name)
        if pending:
            for record in pending:
                click.echo(
                    f"group {group.name}: move {record.move_id} ({record.source} -> {record.target}) "
                    f"was left unfinished at {when(record.started_at)}"
                )
            # Rerunning `move GROUP` after a crash means "finish that move", not "move again":
            # picking a fresh target would bounce the resource off where it just landed.
            if dry_run:
                click.echo("  it will be finished first (the journal replays it against AWS)")
                target = target or pending[-1].target
            else:
                with interrupt.catching():
                    results = w.engine.resume(group, force=force)
                for result in results:
                    click.echo(f"  finished: {group.resource} is on {result.target}")
                if target is None or target in {r.target for r in results}:
                    return
        view = w.cloud.observe(group, with_status=True)
        if (absent := absence(view, group)) is not None:
            raise ConfigError(f"group {group.name}: {absent_text(absent, w.cloud.region)}")
        # A verdict older than one interval is probed again before the move trusts it.
        health = fresh_health(
            group,
            view,
            w.store.load_health(group.name),
            [target] if target else candidates(view, group),
            now=w.engine.clock.now(),
            prober=run_probes,
        )
        chosen = target or manual_target(view, group, health)
        if chosen is None:
            sick = [
                f"{i}: {h.reason}"
                for i in candidates(view, group)
                if (h := health.get(i)) is not None and not h.healthy
            ]
            raise RefusedError(
                group.name,
                group.resource,
                "no other member is healthy, running and in the AZ"
                + (f" ({'; '.join(sick)})" if sick else ""),
            )
        _, plan = w.engine.preview(group, chosen)
        if not plan.steps:
            click.echo(
                f"group {group.name}: {group.resource} is already on {plan.target}: nothing to do"
            )
            return
        facts = _facts(w.store, group, w.engine.clock.now())
        refusal = manual_refusal(group, health, facts, plan.target)
        finishing = any(r.target == plan.target for r in pending)  # not a new move: no cooldown
        if refusal is not None and not force and not finishing:
            raise RefusedError(group.name, group.resource, refusal)
        click.echo(report.plan_text(view, plan, group.resource))
        if dry_run:
            return
        if not yes and not click.confirm("proceed?"):
            click.echo(f"group {group.name}: not moved")
            raise SystemExit(1)
        with interrupt.catching():
            result = w.engine.move(
                group, target=plan.target, force=force, reason=f"manual move to {plan.target}"
            )
        if force and facts.held:
            state = w.store.load_group_state(group.name)
            w.store.save_group_state(replace(state, held=False, held_reason="", status="ok"))
            click.echo(f"group {group.name}: hold cleared")
        if result.outcome == "nothing-to-do":
            click.echo(
                f"group {group.name}: {group.resource} is on {result.target}: nothing left to do"
            )
        else:
            click.echo(
                f"group {group.name}: {group.resource} moved from {result.source or 'nobody'} to {result.target} "
                f"in {result.elapsed_s:.2f}s (move {result.move_id})"
            )


def _facts(store: Store, group: Group, now: float) -> Facts:
    state = store.load_group_state(group.name)
    recent = store.moves_since(group.name, now - 3600.0)
    return Facts(
        now=now,
        move_times=tuple(m.started_at for m in recent),
        held=state.held,
        held_reason=state.held_reason,
    )
