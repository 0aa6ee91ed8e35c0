"""The `failover` command: argument parsing and wiring, the only place objects are built.

Every error leaves as one line on stderr and the exit code DESIGN.md promises:
0 ok, 1 failed, 2 bad usage or config (nothing touched), 3 refused by a safety rule.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import click

from failover import config as config_module
from failover import logs, report, sdnotify
from failover.aws.clients import make_client
from failover.aws.ec2 import Ec2Cloud, Permission
from failover.aws.pacing import Pacer
from failover.clock import SystemClock
from failover.config import Group, Settings
from failover.decide import Facts, manual_refusal, manual_target
from failover.engine import Engine
from failover.errors import (
    ConfigError,
    FailoverError,
    LeaseLostError,
    PermissionDeniedError,
    RefusedError,
)
from failover.fence import Fence, holding
from failover.lease import TableLease
from failover.lease_tables import DynamoLeaseTable
from failover.model import Mode, Step
from failover.monitor import Monitor
from failover.planner import validation_problems
from failover.ports import StepRecord, Store
from failover.probes import run_probes
from failover.runtime import runtime
from failover.statelock import claim, state_lock
from failover.store import open_store

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("failover")


def config_option(fn: F) -> F:
    """--config PATH on every command (default ./config.yaml, or $FAILOVER_CONFIG)."""
    return click.option(
        "--config",
        "config_path",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help="config file (default: $FAILOVER_CONFIG or ./config.yaml)",
    )(fn)


@dataclass
class Wiring:
    """The objects a command needs, built once from the settings."""

    settings: Settings
    cloud: Ec2Cloud
    store: Store
    engine: Engine
    fence: Fence | None = None  # the groups' leases (dynamodb backend); None: the file lock rules


def make_cloud(settings: Settings, clock: SystemClock) -> Ec2Cloud:
    """The EC2 adapter, its calls paced to EC2's token buckets on the real clock."""
    return Ec2Cloud(
        make_client(settings.aws, "ec2"),
        make_client(settings.aws, "sts"),
        clock.now,
        Pacer(clock.monotonic, clock.sleep),
    )


def load_settings(config_path: Path | None) -> Settings:
    return config_module.load(config_path or config_module.default_path())


@contextmanager
def wired(
    settings: Settings,
    on_step: Callable[[Step | None, StepRecord], None] | None = None,
    *,
    daemon: bool = False,
) -> Iterator[Wiring]:
    """Build clients, the store and the engine; close the store afterwards.

    `daemon`: this process takes a share of the groups (`run`); one-shot commands hold
    only the leases they take.
    """
    clock = SystemClock()
    cloud = make_cloud(settings, clock)
    store = open_store(settings.state, settings.aws)
    try:
        fence = make_fence(settings, clock, daemon=daemon)
        engine = Engine(
            cloud,
            store,
            clock,
            on_step=on_step,
            guard=fence.guard if fence else None,
            token_of=fence.token if fence else None,
        )
        yield Wiring(settings, cloud, store, engine, fence)
    finally:
        store.close()


def make_fence(settings: Settings, clock: SystemClock, *, daemon: bool = False) -> Fence | None:
    """The groups' leases in the state table (dynamodb backend): several orchestrators share it."""
    if settings.state.backend != "dynamodb" or settings.state.table is None:
        return None
    from failover.aws.dynamodb import DynamoTable

    table = DynamoTable(make_client(settings.aws, "dynamodb"), settings.state.table)
    lease = TableLease(
        DynamoLeaseTable(table), clock, ttl_s=settings.state.lease_ttl_s, spreads=daemon
    )
    return Fence(lease, {g.name: g.resource for g in settings.groups})


@contextmanager
def leased(w: Wiring, groups: Sequence[str]) -> Iterator[list[str]]:
    """Hold `groups`' leases for the block (dynamodb backend); yields those another holds."""
    if w.fence is None or not groups:
        yield []
        return
    with holding(w.fence, groups, w.engine.clock.sleep) as refused:
        yield refused


def lease_refusal(group: Group) -> LeaseLostError:
    return LeaseLostError(
        group.name, group.resource, f"another orchestrator holds the lease of group {group.name}"
    )


_QUIET_LOGGERS = {
    "botocore": logging.WARNING,
    "boto3": logging.WARNING,
    "urllib3": logging.WARNING,
    "werkzeug": logging.WARNING,
    "apscheduler": logging.ERROR,
}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--log-level", default="warning", type=click.Choice(["debug", "info", "warning", "error"])
)
@click.option(
    "--log-format",
    default="auto",
    envvar="FAILOVER_LOG_FORMAT",
    type=click.Choice(["auto", "json", "text"]),
    help="auto: JSON lines when stderr is not a terminal, text otherwise",
)
def cli(log_level: str, log_format: str) -> None:
    """Move an ENI, a secondary private IP or an Elastic IP to a hot standby on EC2."""
    logs.configure(None if log_format == "auto" else log_format, log_level.upper())  # type: ignore[arg-type]
    if log_level != "debug":
        # Their INFO lines (credentials found, every job run, every sandbox request) bury ours;
        # APScheduler's "skipped: maximum number of running instances" is coalescing at work.
        for name, level in _QUIET_LOGGERS.items():
            logging.getLogger(name).setLevel(level)


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
    live = _live_printer() if sys.stdout.isatty() else None
    with (
        wired(settings, on_step=live) as w,
        leased(w, [] if dry_run else [group.name]) as refused,
    ):
        if refused:
            raise lease_refusal(group)
        pending = w.store.open_moves(group.name)
        if pending:
            for record in pending:
                click.echo(
                    f"group {group.name}: move {record.move_id} ({record.source} -> {record.target}) "
                    f"was left unfinished at {report.when(record.started_at)}"
                )
            # Rerunning `move GROUP` after a crash means "finish that move", not "move again":
            # picking a fresh target would bounce the resource off where it just landed.
            if dry_run:
                click.echo("  it will be finished first (the journal replays it against AWS)")
                target = target or pending[-1].target
            else:
                results = w.engine.resume(group, force=force)
                for result in results:
                    click.echo(f"  finished: {group.resource} is on {result.target}")
                if target is None or target in {r.target for r in results}:
                    return
        health = w.store.load_health(group.name)
        view = w.cloud.observe(group, with_status=True)
        chosen = target or manual_target(view, group, health)
        if chosen is None:
            raise RefusedError(
                group.name, group.resource, "no other member is healthy, running and in the AZ"
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
        if not yes:
            click.confirm("proceed?", abort=True)
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


@cli.command()
@config_option
def run(config_path: Path | None) -> None:
    """The daemon: check every group on its interval and fail over by policy (foreground)."""
    from failover.daemon import Daemon  # APScheduler is only the daemon's: keep cron start-up fast
    from failover.metrics import Heartbeat, Metrics, healthz_max_age

    path = config_path or config_module.default_path()
    settings = config_module.load(path)
    if logging.getLogger().level > logging.INFO:
        logging.getLogger().setLevel(logging.INFO)
    metrics = Metrics()
    heartbeat = Heartbeat(lambda: healthz_max_age(settings.groups))
    server = None

    def on_tick() -> None:
        heartbeat.beat()
        sdnotify.watchdog()

    try:
        with wired(settings, daemon=True) as w, runtime(settings, metrics=metrics) as rt:
            monitor = Monitor(
                w.cloud,
                w.store,
                w.engine,
                w.engine.clock,
                prober=metrics.instrument(run_probes),
                alert=rt.alert,
                on_health=rt.on_health,
                on_move=rt.on_move,
                after_move=rt.after_move,
            )
            daemon = Daemon(
                settings,
                path,
                monitor,
                on_tick=on_tick,
                on_first_pass=sdnotify.ready,
                on_pass=lambda: metrics.pass_finished(time.time()),
                on_leases=lambda held: metrics.set_leases(
                    (g.name for g in daemon.settings.groups), held
                ),
                fence=w.fence,
            )
            daemon.claim()  # before the metrics port: a second daemon is refused, exit 3
            if settings.metrics.enabled:
                server = metrics.serve(settings.metrics.listen, heartbeat)
                log.info("metrics on %s/metrics, health on %s/healthz", server.url, server.url)
            code = daemon.serve()
            sdnotify.stopping()
    finally:
        if server is not None:
            server.close()
    raise SystemExit(code)


@cli.command()
@click.option("--dry-run", is_flag=True, help="probe and decide, move nothing, remember nothing")
@config_option
def check(dry_run: bool, config_path: Path | None) -> None:
    """One pass over every group (for cron): probe, decide, fail over; exit 0, 1 or 3."""
    settings = load_settings(config_path)
    names = [] if dry_run else [g.name for g in settings.groups]
    lock = None
    if settings.state.backend == "sqlite" and not dry_run:
        lock = state_lock(settings.state.path)
        claim(lock, settings.state.path, "a failover daemon or another check")
    try:
        with wired(settings) as w, leased(w, names) as refused, runtime(settings) as rt:
            monitor = Monitor(
                w.cloud,
                w.store,
                w.engine,
                w.engine.clock,
                alert=rt.alert,
                after_move=rt.after_move,
            )
            mine = [g for g in settings.groups if g.name not in refused]
            outcomes = monitor.run_pass(mine, dry_run=dry_run) if mine else []
    finally:
        if lock is not None:
            lock.release()
    for outcome in outcomes:
        click.echo(outcome.summary())
    for name in refused:
        click.echo(f"{name}: refused: another orchestrator holds the lease of group {name}")
    codes = {o.exit_code for o in outcomes} | ({3} if refused else set())
    raise SystemExit(1 if 1 in codes else 3 if 3 in codes else 0)


def _live_printer() -> Callable[[Step | None, StepRecord], None]:
    """Each step as it runs, with its elapsed time (TTY only)."""

    def show(step: Step | None, event: StepRecord) -> None:
        if event.phase == "started":
            click.echo(f"  ... {event.description}", nl=True)
        elif event.phase == "done":
            extra = f" ({event.detail})" if event.detail else ""
            click.echo(f"  ok  {event.description} [{event.elapsed_s:.2f}s]{extra}")
        elif event.phase == "failed":
            click.echo(f"  FAIL {event.description} [{event.elapsed_s:.2f}s]: {event.detail}")
        elif event.phase == "skipped":
            click.echo(f"  --  {event.description} (already true)")

    return show


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
        from failover.aws.dynamodb import create_table as make_table

        made = make_table(make_client(settings.aws, "dynamodb"), settings.state.table)
        click.echo(
            f"DynamoDB table {settings.state.table}: "
            + ("created" if made else "already exists, key schema ok")
        )
    if offline:
        click.echo(f"{settings.source}: valid ({len(settings.groups)} groups)")
        return
    clock = SystemClock()
    cloud = make_cloud(settings, clock)
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


@cli.command()
def demo() -> None:
    """Fail over a sandboxed primary with the real daemon, and show the timings (no AWS account)."""
    from failover.demo import run_demo  # the sandbox needs moto: import only here

    raise SystemExit(run_demo())


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the command, turn every error into one line and an exit code."""
    try:
        cli.main(args=argv, prog_name="failover", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("failover: aborted, nothing changed", err=True)
        return 1
    except click.UsageError as exc:
        click.echo(f"failover: {exc.format_message()}", err=True)
        return 2
    except click.ClickException as exc:
        click.echo(f"failover: {exc.format_message()}", err=True)
        return exc.exit_code
    except FailoverError as exc:
        click.echo(f"failover: {exc}", err=True)
        return exc.exit_code
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    except KeyboardInterrupt:
        click.echo("failover: interrupted", err=True)
        return 130
    except Exception as exc:  # the one guard that keeps a traceback from the operator
        if os.environ.get("FAILOVER_DEBUG"):
            raise
        click.echo(
            f"failover: internal error: {type(exc).__name__}: {exc} (set FAILOVER_DEBUG=1 for a traceback)",
            err=True,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
