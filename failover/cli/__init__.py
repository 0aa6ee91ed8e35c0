"""The `failover` command: parse, wire, drive. Each command lives in a module of its own."""

from failover.cli import hold, move, passes, show, validate  # noqa: F401  (registers the commands)
from failover.cli.app import cli, main

__all__ = ["cli", "main"]
