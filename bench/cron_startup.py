"""Measure 6: start-up of `failover check` and `failover move`, to their first AWS call, against
`import boto3` as the floor.

moto's server (behind a StrictLayer) runs in this process; each command is a fresh process
of the venv's console script, as cron or an operator would start it. Its start-up is the
time from just before the process is spawned to the first request the sandbox receives
from it (the layer's call log and this process share the monotonic clock). The floor is
`python -c 'import boto3'`, spawn to exit: no Python CLI that calls AWS through boto3 can
start faster. `-X importtime` of one run of each command names where its imports go.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import yaml

from bench.harness import (
    FAKE_AWS_ENV,
    REGION,
    Listener,
    config_doc,
    fake_aws_env,
    free_port,
    group_doc,
    median,
)

GOAL_RATIO = 1.5


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(FAKE_AWS_ENV)
    env.update({"AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"})
    env.pop("FAILOVER_CONFIG", None)
    # As installed: compiled bytecode for failover's own modules too (the first, warm-up run
    # writes it), not every module compiled from source on every start.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _wall(argv: list[str], env: dict[str, str]) -> float:
    """Spawn to exit of one process."""
    start = time.monotonic()
    subprocess.run(argv, env=env, capture_output=True, check=False)
    return time.monotonic() - start


def _to_first_call(
    argv: list[str], env: dict[str, str], layer: Any
) -> tuple[float | None, str, int, float]:
    """(spawn to the sandbox's first request from the process, that request, exit code, wall)."""
    layer.reset_log()
    start = time.monotonic()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    wall = time.monotonic() - start
    calls = sorted((c for c in layer.calls if c.at >= start), key=lambda c: c.at)
    if not calls:
        return None, "", proc.returncode, wall
    first = calls[0]
    return first.at - start, f"{first.service}:{first.action}", proc.returncode, wall


# Runs `failover ARGV` in this interpreter and prints, as JSON, when (the monotonic clock,
# which the parent shares) its imports ended, each client's build began and ended, and the
# first request left.
_FIRST_REQUEST = "-- first request --"
_PHASES = f"""
import gc, json, sys, time
gc.disable()  # as failover/cli/__init__.py does before it imports botocore
FIRST_REQUEST = {_FIRST_REQUEST!r}
import botocore.endpoint, botocore.session
marks = {{"botocore": time.monotonic()}}
send, create = botocore.endpoint.Endpoint._send, botocore.session.Session.create_client

def first_send(self, request):
    if "first_request" not in marks:
        marks["first_request"] = time.monotonic()
        print(FIRST_REQUEST, file=sys.stderr, flush=True)  # splits -X importtime's lines
    return send(self, request)

def creating(self, service_name, *args, **kwargs):
    marks.setdefault(service_name + "_client_start", time.monotonic())
    try:
        return create(self, service_name, *args, **kwargs)
    finally:
        marks.setdefault(service_name + "_client_end", time.monotonic())

botocore.endpoint.Endpoint._send, botocore.session.Session.create_client = first_send, creating
from failover.cli import main
marks["failover_imported"] = time.monotonic()
try:
    main(sys.argv[1:])
finally:
    print(json.dumps(marks), file=sys.stderr)
"""


def _phases(argv: list[str], env: dict[str, str]) -> dict[str, float]:
    """Where one run's start-up goes (ms, each phase from the end of the one before): spawn
    to botocore imported, failover's imports, the command until it builds the EC2 client,
    that build, then to the first request."""
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", _PHASES, *argv], env=env, capture_output=True, text=True, check=False
    )
    marks = json.loads(proc.stderr.strip().splitlines()[-1])
    order = [
        ("interpreter and botocore", "botocore"),
        ("failover's imports", "failover_imported"),
        ("config and wiring", "ec2_client_start"),
        ("EC2 client", "ec2_client_end"),
        ("to the first request", "first_request"),
    ]
    out, last = {}, start
    for label, key in order:
        out[label] = (marks[key] - last) * 1000
        last = marks[key]
    return out


def _own_import_ms(
    argv: list[str], env: dict[str, str], top: int = 10
) -> tuple[list[tuple[str, float]], float]:
    """Import time by package before the first request, from -X importtime: each module's
    own (self) time, summed; the largest `top` and the total of all.

    Self times add up to the whole import cost without counting a module twice; failover's
    modules are grouped by subpackage (failover.config, failover.cli, ...), others by package.
    Imports after the first request (a pass's probes) are left out: they are not start-up.
    """
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", _PHASES, *argv],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    totals: dict[str, float] = {}
    for line in proc.stderr.splitlines():
        if line == _FIRST_REQUEST:
            break
        if not line.startswith("import time:") or "|" not in line:
            continue
        parts = line.removeprefix("import time:").split("|")
        try:
            own_us = int(parts[0])
        except ValueError:
            continue  # the header line
        names = parts[2].strip().split(".")
        key = ".".join(names[:2]) if names[0] == "failover" else names[0]
        totals[key] = totals.get(key, 0.0) + own_us / 1000
    return sorted(totals.items(), key=lambda kv: -kv[1])[:top], sum(totals.values())


def _measure(
    name: str,
    argv: Callable[[int], list[str]],
    env: dict[str, str],
    layer: Any,
    repeats: int,
    floor: Callable[[], float],
) -> dict[str, Any]:
    """Alternate the command and the floor (the box's load changes both alike)."""
    starts: list[float] = []
    walls: list[float] = []
    floors: list[float] = []
    codes: set[int] = set()
    firsts: set[str] = set()
    for i in range(repeats):
        to_first, first, code, wall = _to_first_call(argv(i), env, layer)
        codes.add(code)
        walls.append(wall)
        if to_first is not None:
            starts.append(to_first)
            firsts.add(first)
        floors.append(floor())
    start_s = median(starts) if starts else float("nan")
    imports, imports_total = _own_import_ms(argv(repeats)[1:], env)
    runs = [_phases(argv(repeats + 1 + i)[1:], env) for i in range(5)]
    phases = {label: median([r[label] for r in runs]) for label in runs[0]}
    return {
        "start_median_s": start_s,
        "start_min_s": min(starts) if starts else float("nan"),
        "wall_median_s": median(walls),
        "floor_median_s": median(floors),
        "ratio": start_s / median(floors),
        "first_calls": sorted(firsts),
        "exit_codes": sorted(codes),
        "starts_s": starts,
        "floors_s": floors,
        "import_ms": imports,
        "import_total_ms": imports_total,
        "phases_ms": phases,
        "command": name,
    }


def run(repeats: int = 10) -> dict[str, Any]:
    fake_aws_env()
    import boto3

    from failover.sandbox.server import SandboxServer
    from failover.sandbox.strict import StrictLayer
    from failover.sandbox.world import build_world

    env = _env()
    script = str(Path(sys.executable).parent / "failover")
    with (
        TemporaryDirectory(prefix="failover-cron-") as tmp,
        StrictLayer() as layer,
        SandboxServer() as server,
    ):
        ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=server.url)
        world = build_world(ec2, mode="eip", group="cron")
        members = [world.primary, world.standbys[0]]
        port = free_port("127.0.0.2")
        services = [Listener("127.0.0.2", port).start(), Listener("127.0.0.3", port).start()]
        group = group_doc(
            "cron",
            "eip",
            [(members[0], "127.0.0.2"), (members[1], "127.0.0.3")],
            [{"type": "ec2"}, {"type": "tcp", "port": port}],
            eip=world.allocation_id,
        )
        config = Path(tmp) / "config.yaml"
        config.write_text(
            yaml.safe_dump(config_doc([group], Path(tmp) / "state.db", endpoint_url=server.url))
        )

        def check(_i: int) -> list[str]:
            return [script, "check", "--config", str(config)]

        def move(i: int) -> list[str]:
            # Back and forth between the two members; --force: the cooldown allows no second move.
            target = members[(i + 1) % 2]
            return [
                script,
                "move",
                "cron",
                "--yes",
                "--force",
                "--to",
                target,
                "--config",
                str(config),
            ]

        floor_argv = [sys.executable, "-c", "import boto3"]
        try:
            # The first runs create the state file and warm the page cache for every command.
            for argv in (check(0), floor_argv, move(0), move(1)):
                _wall(argv, env)
            commands = {
                "check": _measure(
                    "failover check", check, env, layer, repeats, lambda: _wall(floor_argv, env)
                ),
                "move": _measure(
                    "failover move GROUP --yes --force --to STANDBY",
                    move,
                    env,
                    layer,
                    repeats,
                    lambda: _wall(floor_argv, env),
                ),
            }
        finally:
            for service in services:
                service.stop()
    floor_s = median(commands["check"]["floors_s"] + commands["move"]["floors_s"])
    result = {
        "repeats": repeats,
        "goal_ratio": GOAL_RATIO,
        "floor_median_s": floor_s,
        "commands": commands,
        # The figures run_all's findings read.
        "check_median_s": commands["check"]["start_median_s"],
        "ratio": max(c["ratio"] for c in commands.values()),
    }
    for name, c in commands.items():
        print(
            f"[cron] {name}: first AWS call after {c['start_median_s'] * 1000:.0f}ms "
            f"(wall {c['wall_median_s'] * 1000:.0f}ms) vs import boto3 "
            f"{c['floor_median_s'] * 1000:.0f}ms: ratio {c['ratio']:.2f}; first {c['first_calls']}; "
            f"exit {c['exit_codes']}; imports {c['import_ms'][:6]}",
            flush=True,
        )
    return result


if __name__ == "__main__":
    run(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
