"""The `failover` command group, its shared options, and the one place errors become a line and an exit code.

Every error leaves as one line on stderr and the exit code DESIGN.md promises:
0 ok, 1 failed, 2 bad usage or config (nothing touched), 3 refused by a safety rule,
130 / 143 stopped by SIGINT / SIGTERM. Nothing here claims what AWS holds: the commands
that change AWS say it themselves (see failover/cli/interrupt.py).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from failover import config as config_module
from failover.cli.interrupt import Terminated, terminate_at_once
from failover.config import Settings
from failover.core.errors import (
    FailoverError,
)
from failover.ops import logs

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


def load_settings(config_path: Path | None) -> Settings:
    return config_module.load(config_path or config_module.default_path())


_QUIET_LOGGERS = {
    "botocore": logging.WARNING,
    "boto3": logging.WARNING,
    "urllib3": logging.WARNING,
    "werkzeug": logging.WARNING,
    "apscheduler": logging.ERROR,
}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="failover", prog_name="failover", message="%(prog)s %(version)s")
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
def demo() -> None:
    """Fail over a sandboxed primary with the real daemon, and show the timings (no AWS account)."""
    from failover.demo import run_demo  # the sandbox needs moto: import only here

    raise SystemExit(run_demo())


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the command, turn every error into one line and an exit code."""
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, terminate_at_once) if in_main else None
    try:
        return _run(argv)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _run(argv: list[str] | None) -> int:
    try:
        cli.main(args=argv, prog_name="failover", standalone_mode=False)
    except click.exceptions.Abort as exc:
        # click turns Ctrl-C into Abort; either way only the command knows what AWS holds.
        if isinstance(exc.__context__, KeyboardInterrupt):
            click.echo("failover: interrupted", err=True)
            return 130
        click.echo("failover: aborted", err=True)
        return 1
    except Terminated:
        click.echo("failover: terminated", err=True)
        return 143
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
