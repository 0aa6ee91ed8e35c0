"""`failover move`: the on-call manual failover, on the same guarded path as every other move.

It shows the plan (and asks, unless --yes), then takes the group's lease or claim: a
daemon that holds it hands it over at its next lease round (failover/coord/handover.py);
then the switchover service decides again on a fresh read of AWS under the claim, with
the operator's request and the same rules, moves, alerts and runs the `after_move` hook.
"""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import click

from failover.cli import report
from failover.cli.app import cli, config_option, load_settings
from failover.cli.interrupt import Interrupt
from failover.cli.progress import LiveSteps
from failover.config import Group
from failover.core.decide import HELD_BY_OPERATOR, MoveRequest, absent_text
from failover.core.durations import when
from failover.core.errors import ConfigError, LeaseLostError, RefusedError
from failover.core.model import GroupView
from failover.core.planner import absence, candidates
from failover.core.ports import Clock, MemberHealth
from failover.service.switchover import GroupOutcome, Preview, Switchover
from failover.wiring import (
    READ_BUDGET_S,
    Wiring,
    leased,
    make_switchover,
    read_budget,
    runtime,
    wired,
)


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
    help="override cooldown, flap limit and target health; allow a Force detach from a running "
    "member; never breaks an AWS rule",
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
    if not dry_run and not yes and not sys.stdin.isatty():
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
            driver="move",
            os_user=os_user(),
            stop=interrupt.requested,
            budget_s=READ_BUDGET_S,  # no one call may eat the move's deadline
        ) as w,
        runtime(settings, log_alerts=False) as rt,
    ):
        switchover = make_switchover(w, rt, fresh_health=_probing_again(w))
        request = MoveRequest(target, force)
        if yes and not dry_run:
            # Nobody confirms: take the group first, so the one read of AWS the plan shows is
            # made under the claim and is the read the move starts from.
            with interrupt.catching():
                outcome = _guarded(w, switchover, group, request)
        else:
            with read_budget(w.cloud, w.engine.clock):
                preview = _show_plan(switchover, group, request, w.cloud.region)
            if preview is None or dry_run:
                return
            if not yes and not click.confirm("proceed?"):
                click.echo(f"group {group.name}: not moved")
                raise SystemExit(1)
            with interrupt.catching():
                outcome = _guarded(w, switchover, group, request, preview=preview)
        if (signum := interrupt.requested()) is not None and outcome.outcome != "moved":
            # The engine stopped at a step boundary and said where (the move's own line).
            click.echo(f"failover: {outcome.error or outcome.decision.reason}", err=True)
            raise SystemExit(128 + signum)
        _report(w, group, outcome)


def _probing_again(
    w: Wiring,
) -> Callable[[Group, GroupView, Mapping[str, MemberHealth]], Mapping[str, MemberHealth]]:
    """The switchover's seam: a stored verdict older than one interval is probed again now
    (an `ec2` check with the status checks EC2 reports now)."""
    clock: Clock = w.engine.clock

    def statuses(instance_ids: Sequence[str]) -> dict[str, tuple[bool | None, bool]]:
        read, _unread = w.cloud.instance_status(instance_ids)  # unread: no verdict, a failure
        return {i: (ok, insufficient) for i, (_state, ok, insufficient) in read.items()}

    def fresh(
        group: Group, view: GroupView, health: Mapping[str, MemberHealth]
    ) -> Mapping[str, MemberHealth]:
        # The probes (asyncio) load only when a stored verdict is stale, not at start-up.
        from failover.probes.runner import run_probes
        from failover.service.freshness import fresh_health

        return fresh_health(
            group,
            view,
            health,
            candidates(view, group),
            now=clock.now(),
            prober=run_probes,
            statuses=statuses,
        )

    return fresh


def os_user() -> str | None:
    """The person behind this command, for the history: the login (and who sudo'ed to it)."""
    try:
        user = getpass.getuser()
    except Exception:  # no login name anywhere (a bare container): unknown, never a failure
        return None
    sudo = os.environ.get("SUDO_USER")
    return f"{sudo} (sudo to {user})" if sudo and sudo != user else user


def _show_plan(
    switchover: Switchover, group: Group, request: MoveRequest, region: str
) -> Preview | None:
    """Print what the move would do; the preview it showed, or None when nothing is to do.

    Raises RefusedError (exit 3) when a rule refuses the move (before any claim is taken,
    unless the plan is shown under it: `--yes`); ConfigError (exit 2) when AWS does not know
    the group at all (a wrong region or ids).
    """
    preview = switchover.preview(group, request)
    if (absent := absence(preview.view, group)) is not None:
        raise ConfigError(f"group {group.name}: {absent_text(absent, region)}")
    decision, plan = preview.decision, preview.plan
    if not decision.moves or decision.target is None:
        raise RefusedError(group.name, group.resource, decision.reason)
    for record in preview.unfinished:
        click.echo(
            f"group {group.name}: move {record.move_id} ({record.source} -> {record.target}), "
            f"begun at {when(record.started_at)}, is open in the journal: it is finished first"
        )
    if plan is None or not plan.steps:
        if not preview.unfinished:
            click.echo(
                f"group {group.name}: {group.resource} is already on {decision.target}: "
                "nothing to do"
            )
            return None
    else:
        click.echo(report.plan_text(preview.view, plan, group.resource))
    return preview


def _guarded(
    w: Wiring,
    switchover: Switchover,
    group: Group,
    request: MoveRequest,
    *,
    preview: Preview | None = None,
) -> GroupOutcome:
    """Take the group (asking its daemon to hand it over), then the guarded path.

    `preview`: the plan the operator confirmed (its target is what is asked for, not a new
    choice); None: no plan was shown yet, so it is shown under the claim, from the read the
    move then starts from.
    """
    wait_s = 2 * w.fence.lease.ttl_s + w.fence.lease.margin_s + group.policy.move_timeout_s

    def asking(name: str, holder: str) -> None:
        click.echo(f"group {name} is held by daemon {holder}: asking it to hand the group over")

    with leased(w, [group.name], handover=True, wait_s=wait_s, on_ask=asking) as refused:
        if group.name in refused:
            # Lost the group to another mover: nothing left to do if it put the resource
            # where we were going to; else say who has it.
            wanted = preview.decision.target if preview is not None else request.target
            view = w.cloud.observe(group)
            if wanted is not None and view.active == wanted:
                click.echo(
                    f"group {group.name}: {group.resource} is on {wanted}: "
                    f"nothing left to do (the group is held by {refused[group.name]})"
                )
                raise SystemExit(0)
            raise LeaseLostError(
                group.name, group.resource, f"group {group.name} is held by {refused[group.name]}"
            )
        if preview is None:
            with read_budget(w.cloud, w.engine.clock):
                preview = _show_plan(switchover, group, request, w.cloud.region)
            if preview is None:
                raise SystemExit(0)
        # What the operator saw is what is asked for: the target shown, not a new choice.
        request = MoveRequest(preview.decision.target, request.force)
        return switchover.run(group, request=request, preview=preview)


def _report(w: Wiring, group: Group, outcome: GroupOutcome) -> None:
    """The outcome in lines an operator can act on; the exit code DESIGN.md promises."""
    for done in outcome.finished:
        if done.outcome == "succeeded":
            click.echo(f"  finished move {done.move_id}: {group.resource} is on {done.target}")
    result = outcome.result
    if outcome.outcome == "moved" and result is not None and result not in outcome.finished:
        click.echo(
            f"group {group.name}: {group.resource} moved from {result.source or 'nobody'} to "
            f"{result.target} in {result.elapsed_s:.2f}s (move {result.move_id})"
        )
    elif outcome.outcome == "nothing-to-do" and result is not None:
        click.echo(
            f"group {group.name}: {group.resource} is on {result.target}: nothing left to do"
        )
    elif outcome.outcome in ("refused", "failed") or outcome.exit_code:
        click.echo(f"failover: {outcome.error or outcome.decision.reason}", err=True)
        raise SystemExit(outcome.exit_code or 1)
    if outcome.hold_cleared:
        click.echo(f"group {group.name}: the flap-limit hold is cleared")
    state = w.store.load_group_state(group.name)
    if state.held and state.held_by == HELD_BY_OPERATOR:
        # A move is the operator's act; the maintenance hold it was made in stays.
        click.echo(
            f"group {group.name}: still held ({state.held_reason or 'no reason given'}): "
            f"no automatic move until `failover release {group.name}`"
        )
