"""Measure 7: AWS at 0, 50 and 100 ms a call; calls before ownership and time to ownership of
`failover move --yes` and of the daemon, each against its floor.

The strict layer answers every EC2 and STS call L after it was sent (AWS acts then). Same
transition delays as measure 1, except that a secondary IP's Elastic IP follows it at once:
ownership is the IP on the target. `failover move --yes` runs as a real process (the venv's
console script) against moto's server in this process, moving the group back and forth; its
time runs from just before the process starts to AWS applying the owning call (+ the attach
transition for eni), on the call log's clock. The daemon's figures are measure 1's monitored
failovers at the same latency (interval 0.5 s, fall 2), from the primary's death; their calls
are counted from the end of the probes that found it dead. Calls before ownership and round
trips are read off the call log (bench/ownership.py). Floors: move = start-up (`python -c
'import boto3'`, measured) + round trips x L + transitions; daemon = detection (the primary's
death to those probes' end, measured per run) + round trips x L + transitions.
"""

from __future__ import annotations

import math
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import yaml

from bench import failover_time
from bench.failover_time import HOSTS, MODES, bench_config, bench_world
from bench.harness import (
    REGION,
    Listener,
    fake_aws_env,
    free_port,
    import_boto3_s,
    median,
    process_env,
)
from bench.ownership import aws_calls, calls_before, owned_at, owning_call, path_calls

LATENCIES_S = (0.0, 0.05, 0.1)
DELAYS: dict[str, dict[str, float]] = {**failover_time.DELAYS, "secondary-ip": {}}
# The goal at L = 50 ms for secondary-ip and eip: the move's start-up + 3 x L + 0.1 s.
GOAL_LATENCY_S, GOAL_ROUND_TRIPS, GOAL_SLACK_S = 0.05, 3, 0.1
GOAL_MODES = ("secondary-ip", "eip")


@dataclass
class MoveRun:
    """One `failover move --yes` process: its exit, the calls it sent and when AWS made the
    target the owner (seconds from the process's start)."""

    exit_code: int
    to_owned_s: float = math.nan
    first_call_s: float = math.nan
    calls_before: int = 0
    path_calls: int = 0
    actions_before: list[str] = field(default_factory=list)
    error: str = ""


def _move(script: str, config: Path, target: str, layer: Any, mode: str) -> MoveRun:
    layer.reset_log()
    start = time.monotonic()
    proc = subprocess.run(
        [script, "move", "g", "--to", target, "--yes", "--config", str(config)],
        env=process_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    calls = aws_calls(layer)
    owning = owning_call(mode, calls)
    run = MoveRun(proc.returncode, error=proc.stderr.strip()[-300:] if proc.returncode else "")
    if calls:
        run.first_call_s = calls[0].sent_at - start
    if owning is not None:
        before = calls_before(calls, owning)
        run.to_owned_s = owned_at(mode, calls, DELAYS[mode]) - start
        run.calls_before = len(before)
        run.path_calls = path_calls(calls, owning, DELAYS[mode])
        run.actions_before = [c.action + (" (DryRun)" if c.dry_run else "") for c in before]
    return run


def move_runs(mode: str, runs: int) -> dict[float, list[MoveRun]]:
    """`runs` moves per latency, back and forth between the group's two members."""
    fake_aws_env()
    import boto3

    from failover.sandbox.server import SandboxServer
    from failover.sandbox.strict import StrictLayer

    script = str(Path(sys.executable).parent / "failover")
    out: dict[float, list[MoveRun]] = {}
    with (
        TemporaryDirectory(prefix="failover-latency-") as tmp,
        StrictLayer(**DELAYS[mode]) as layer,
        SandboxServer() as server,
    ):
        server.reset()
        ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=server.url)
        world = bench_world(ec2, mode)
        port = free_port(HOSTS[0])
        services = [Listener(host, port).start() for host in HOSTS]
        doc = bench_config(Path(tmp), mode, world, port)
        doc["aws"]["endpoint_url"] = server.url
        config = Path(tmp) / "config.yaml"
        config.write_text(yaml.safe_dump(doc))
        members = [world.primary, world.standbys[0]]
        try:
            # Unmeasured: creates the state file and warms the page cache, as cron's first run.
            active = 1 if _move(script, config, members[1], layer, mode).exit_code == 0 else 0
            for latency in LATENCIES_S:
                out[latency] = []
                for _ in range(runs):
                    layer.set_latency(latency)
                    try:
                        run = _move(script, config, members[1 - active], layer, mode)
                    finally:
                        layer.set_latency(0.0)
                    out[latency].append(run)
                    if run.exit_code == 0:
                        active = 1 - active
        finally:
            for service in services:
                service.stop()
            server.reset()
    return out


def _summary(values: list[float]) -> float:
    return median(values) if values else math.nan


def run(runs: int = 5, daemon_runs: int = 3, startup_repeats: int = 10) -> dict[str, Any]:
    """Every mode at every latency: the move process's and the daemon's figures and floors."""
    startup = import_boto3_s(startup_repeats)
    startup_s = median(startup)
    rows: list[dict[str, Any]] = []
    for mode in MODES:
        t0 = time.monotonic()
        moves = move_runs(mode, runs)
        transitions_s = sum(DELAYS[mode].values())
        for latency in LATENCIES_S:
            good = [m for m in moves[latency] if m.exit_code == 0 and not math.isnan(m.to_owned_s)]
            floors = [startup_s + m.path_calls * latency + transitions_s for m in good]
            daemon = failover_time.run_mode(
                mode, daemon_runs, delays=DELAYS[mode], latency_s=latency
            )
            served = [r for r in daemon if r.ok and not math.isnan(r.to_owned_s)]
            d_floors = [r.detection_s + r.path_calls * latency + transitions_s for r in served]
            # The goal counts from the move's own start-up (its first call; start-up has its
            # own goal against `import boto3`), so it measures the path from there to ownership.
            goals = [m.first_call_s + GOAL_ROUND_TRIPS * latency + GOAL_SLACK_S for m in good]
            owned = [m.to_owned_s for m in good]
            row = {
                "mode": mode,
                "latency_ms": round(latency * 1000),
                "transitions_s": transitions_s,
                "move": {
                    "runs": len(moves[latency]),
                    "ok": len(good),
                    "exit_codes": sorted({m.exit_code for m in moves[latency]}),
                    "errors": [m.error for m in moves[latency] if m.error],
                    "to_owned_median_s": _summary(owned),
                    "first_call_median_s": _summary([m.first_call_s for m in good]),
                    "calls_before_median": _summary([float(m.calls_before) for m in good]),
                    "path_calls_median": _summary([float(m.path_calls) for m in good]),
                    "actions_before": good[0].actions_before if good else [],
                    "floor_median_s": _summary(floors),
                    "ratio_median": _summary([o / f for o, f in zip(owned, floors, strict=True)]),
                    "goal_s": _summary(goals),
                    "goal_ratio": _summary([o / g for o, g in zip(owned, goals, strict=True)]),
                    "runs_raw": [asdict(m) for m in moves[latency]],
                },
                "daemon": {
                    "runs": len(daemon),
                    "ok": len(served),
                    "errors": [r.error for r in daemon if not r.ok],
                    "to_owned_median_s": _summary([r.to_owned_s for r in served]),
                    "detection_median_s": _summary([r.detection_s for r in served]),
                    "calls_before_median": _summary([float(r.calls_before_owner) for r in served]),
                    "path_calls_median": _summary([float(r.path_calls) for r in served]),
                    "floor_median_s": _summary(d_floors),
                    "ratio_median": _summary(
                        [r.to_owned_s / f for r, f in zip(served, d_floors, strict=True)]
                    ),
                },
            }
            rows.append(row)
            mv, dm = row["move"], row["daemon"]
            print(
                f"[latency] {mode} L={row['latency_ms']}ms: move {mv['to_owned_median_s']:.3f}s "
                f"(floor {mv['floor_median_s']:.3f}s, calls before {mv['calls_before_median']}, "
                f"first call at {mv['first_call_median_s']:.3f}s) {mv['actions_before']}; daemon "
                f"{dm['to_owned_median_s']:.3f}s (floor {dm['floor_median_s']:.3f}s, calls before "
                f"{dm['calls_before_median']})",
                flush=True,
            )
        print(f"[latency] {mode}: {time.monotonic() - t0:.0f}s", flush=True)
    return {
        "latencies_ms": [round(x * 1000) for x in LATENCIES_S],
        "startup_floor_s": startup_s,
        "startup_samples_s": startup,
        "goal": {
            "latency_ms": round(GOAL_LATENCY_S * 1000),
            "round_trips": GOAL_ROUND_TRIPS,
            "slack_s": GOAL_SLACK_S,
            "modes": list(GOAL_MODES),
        },
        "rows": rows,
    }


if __name__ == "__main__":
    import json

    from bench.harness import log_to_file

    log_to_file(Path("/tmp/bench-latency.log"))
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    result = run(runs=n, daemon_runs=n, startup_repeats=3)
    for row in result["rows"]:
        row["move"].pop("runs_raw")
    print(json.dumps(result, indent=1, default=str))
