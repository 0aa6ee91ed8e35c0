"""`failover run` (the daemon) and `failover check` (one pass, for cron)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import click

from failover import config as config_module
from failover.cli.app import cli, config_option, load_settings
from failover.cli.interrupt import Interrupt
from failover.coord.statelock import claim, state_lock
from failover.ops import sdnotify
from failover.probes import run_probes
from failover.service.blindness import Sight
from failover.service.monitor import Monitor
from failover.wiring import READ_BUDGET_S, leased, runtime, wired

log = logging.getLogger("failover")


@cli.command()
@config_option
def run(config_path: Path | None) -> None:
    """The daemon: check every group on its interval and fail over by policy (foreground)."""
    from failover.daemon import Daemon  # APScheduler is only the daemon's: keep cron start-up fast
    from failover.ops.metrics import Heartbeat, Metrics, healthz_max_age

    path = config_path or config_module.default_path()
    settings = config_module.load(path)
    if logging.getLogger().level > logging.INFO:
        logging.getLogger().setLevel(logging.INFO)
    metrics = Metrics()
    heartbeat = Heartbeat(lambda: healthz_max_age(settings.groups))
    sight = Sight()
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
                region=w.cloud.region,
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
                sight=sight,
                alert=rt.alert,
            )
            daemon.claim()  # before the metrics port: a second daemon is refused, exit 3
            if settings.metrics.enabled:
                # Liveness (the loop ticks) and sight (AWS answers) both decide /healthz.
                server = metrics.serve(settings.metrics.listen, heartbeat, sight.problem)
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
    interrupt = Interrupt()
    try:
        with (
            wired(settings, stop=interrupt.requested, budget_s=READ_BUDGET_S) as w,
            leased(w, names) as refused,
            runtime(settings) as rt,
        ):
            monitor = Monitor(
                w.cloud,
                w.store,
                w.engine,
                w.engine.clock,
                alert=rt.alert,
                after_move=rt.after_move,
                region=w.cloud.region,
            )
            mine = [g for g in settings.groups if g.name not in refused]
            with interrupt.catching():
                outcomes = monitor.run_pass(mine, dry_run=dry_run) if mine else []
    finally:
        if lock is not None:
            lock.release()
    for outcome in outcomes:
        click.echo(outcome.summary())
    for name in refused:
        click.echo(f"{name}: refused: another orchestrator holds the lease of group {name}")
    if (signum := interrupt.requested()) is not None:
        # Each move the signal stopped said so above (which step, how to finish it).
        raise SystemExit(128 + signum)
    codes = {o.exit_code for o in outcomes} | ({3} if refused else set())
    raise SystemExit(1 if 1 in codes else 3 if 3 in codes else 0)
