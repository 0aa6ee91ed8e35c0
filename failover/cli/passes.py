"""`failover run` (the daemon) and `failover check` (one pass, for cron)."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from failover import config as config_module
from failover.cli.app import cli, config_option, load_settings
from failover.cli.interrupt import Interrupt
from failover.config import Settings
from failover.core.errors import ConfigError
from failover.wiring import READ_BUDGET_S, leased, make_monitor, read_budget, runtime, wired

if TYPE_CHECKING:
    from filelock import FileLock

    from failover.ops.metrics import Metrics, MetricsServer

log = logging.getLogger("failover")


@cli.command()
@config_option
def run(config_path: Path | None) -> None:
    """The daemon: check every group on its interval and fail over by policy (foreground)."""
    # The daemon's own modules (APScheduler, prometheus_client, filelock, the probes'
    # instrumenting) load here only: `check` and `move` start without them.
    from failover.daemon import Daemon
    from failover.ops import sdnotify
    from failover.ops.metrics import Heartbeat, Metrics, healthz_max_age
    from failover.probes.runner import run_probes
    from failover.service.blindness import Sight

    # A SIGTERM or SIGINT before the daemon serves (systemd stopping a unit that is still
    # starting) is a request to stop, kept for `serve`: a clean exit 0, never a death by signal.
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _signum, _frame: stopping.set())
    path = config_path or config_module.default_path()
    settings = config_module.load(path)
    if logging.getLogger().level > logging.INFO:
        logging.getLogger().setLevel(logging.INFO)
    metrics = Metrics()
    heartbeat = Heartbeat(lambda: healthz_max_age(settings.groups))
    server: MetricsServer | None = None
    sight = Sight()

    watchdog = sdnotify.Watchdog.from_environment(os.environ, os.getpid())

    def alive() -> None:
        """Progress (a pass ended, a move step began or ended): /healthz and systemd hear of it."""
        heartbeat.beat()
        watchdog.alive()

    # One daemon per SQLite state file: its lock first (a second daemon exits 3 before it
    # binds anything), then the metrics port (a taken one is a config error, exit 2),
    # then AWS.
    lock = _daemon_lock(settings)
    try:
        if settings.metrics.enabled:
            # Liveness (the loop ticks) and sight (AWS answers) both decide /healthz.
            server = _serve_metrics(metrics, settings.metrics.listen, heartbeat, sight.problem)
        with (
            wired(settings, lambda _step, _event: alive(), daemon=True, driver="daemon") as w,
            runtime(settings, metrics=metrics) as rt,
        ):
            daemon = Daemon(
                settings,
                path,
                make_monitor(w, rt, prober=metrics.instrument(run_probes)),
                on_tick=alive,
                on_first_pass=sdnotify.ready,
                on_pass=lambda: metrics.pass_finished(time.time()),
                on_leases=lambda held: metrics.set_leases(
                    (g.name for g in daemon.settings.groups), held
                ),
                fence=w.fence,
                sight=sight,
                alert=rt.alert,
                stop=stopping,
            )
            code = daemon.serve()
            sdnotify.stopping()
    finally:
        if server is not None:
            server.close()
        if lock is not None:
            lock.release()
    raise SystemExit(code)


def _daemon_lock(settings: Settings) -> FileLock | None:
    """The SQLite state file's lock, taken now (exit 3 when another daemon has it)."""
    if settings.state.backend != "sqlite":
        return None
    from failover.coord.statelock import claim, state_lock

    lock = state_lock(settings.state.path)
    claim(lock, settings.state.path, "another failover daemon")
    return lock


def _serve_metrics(
    metrics: Metrics,
    listen: str,
    healthy: Callable[[], bool],
    problem: Callable[[], str | None],
) -> MetricsServer:
    """/metrics and /healthz on `listen`; an address that cannot be bound is a config error."""
    try:
        server = metrics.serve(listen, healthy, problem)
    except OSError as exc:
        raise ConfigError(
            f"metrics.listen {listen}: cannot listen there: {exc.strerror or exc} "
            "(another failover daemon on this host? give each its own metrics.listen, "
            "or set metrics.enabled: false)"
        ) from None
    return server


@cli.command()
@click.option("--dry-run", is_flag=True, help="probe and decide, move nothing, remember nothing")
@config_option
def check(dry_run: bool, config_path: Path | None) -> None:
    """One pass over every group (for cron): probe, decide, fail over; exit 0, 1 or 3."""
    settings = load_settings(config_path)
    names = [] if dry_run else [g.name for g in settings.groups]
    interrupt = Interrupt()
    with (
        wired(settings, driver="check", stop=interrupt.requested, budget_s=READ_BUDGET_S) as w,
        leased(w, names) as refused,
        runtime(settings) as rt,
    ):
        mine = [g for g in settings.groups if g.name not in refused]
        with interrupt.catching(), read_budget(w.cloud, w.engine.clock):
            outcomes = make_monitor(w, rt).run_pass(mine, dry_run=dry_run) if mine else []
    for outcome in outcomes:
        click.echo(outcome.summary())
    for name, holder in refused.items():
        click.echo(f"{name}: refused: group {name} is held by {holder}")
    if (signum := interrupt.requested()) is not None:
        # Each move the signal stopped said so above (which step, how to finish it).
        raise SystemExit(128 + signum)
    codes = {o.exit_code for o in outcomes} | ({3} if refused else set())
    raise SystemExit(1 if 1 in codes else 3 if 3 in codes else 0)
