"""Measure 4 (and the large sizes of measure 3): one daemon watching 1,000 and 10,000 members.

Three processes: the AWS side (`bench._scale_server`: moto's server behind a logging
StrictLayer, the world, 8 shared loopback listeners), the daemon (`bench._scale_daemon`:
`failover run`'s objects and APScheduler, timed per pass), and this one, which writes
the configs and reads both logs. CLOCK_MONOTONIC is system-wide on Linux, so the
daemon's pass windows line up with the server's call log.

Every group is a pair in eip mode with an `ec2` check and a TCP check (timeout 1 s)
against the shared listeners; interval 5 s. The first pass reads the members' topology
(DescribeInstances); the figures are of the passes after it, which read state and
ownership only (failover/aws/topology.py); the first pass is reported on its own. One more
pass runs under cProfile, untimed, for where a pass's time goes (bench/_scale_daemon.py).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import yaml

from bench.harness import BENCH_DIR, REGION, config_doc, group_doc, median

INTERVAL_S, TIMEOUT_S = 5.0, 1.0
REPO = BENCH_DIR.parent


def _config(world: dict[str, Any], members: int, state: Path) -> dict[str, Any]:
    hosts, port = world["hosts"], world["port"]
    groups = []
    # One list for every group: YAML writes it once and aliases it, which keeps 10,000
    # members' config under the loader's 1 MiB limit (failover/config/load.py).
    checks = [{"type": "ec2"}, {"type": "tcp", "port": port}]
    for k, (primary, standby, alloc) in enumerate(world["pairs"][: members // 2]):
        groups.append(
            group_doc(
                f"g{k}",
                "eip",
                [
                    (primary, hosts[(2 * k) % len(hosts)]),
                    (standby, hosts[(2 * k + 1) % len(hosts)]),
                ],
                checks,
                eip=alloc,
            )
        )
    doc = config_doc(
        groups,
        state,
        endpoint_url=world["url"],
        interval=f"{int(INTERVAL_S)}s",
        timeout=f"{int(TIMEOUT_S)}s",
    )
    doc["aws"]["region"] = REGION
    return doc


class _Server:
    def __init__(self, members: int, tmp: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench._scale_server", str(members), str(tmp)],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.tmp = tmp

    def ask(self, command: str) -> str:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def ready(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(f"scale server failed to start: {line!r}")
        world: dict[str, Any] = json.loads((self.tmp / "world.json").read_text())
        return world

    def calls(self) -> list[dict[str, Any]]:
        path = self.tmp / "calls.jsonl"
        self.ask(f"dump {path}")
        return [json.loads(line) for line in path.read_text().splitlines()]

    def close(self) -> None:
        try:
            self.ask("quit")
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


def _run_daemon(config: Path, passes: int, out: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "bench._scale_daemon", str(config), str(passes), str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(f"scale daemon failed ({proc.returncode}): {proc.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def _reads_per_pass(
    calls: list[dict[str, Any]], passes: list[dict[str, Any]]
) -> list[dict[str, int]]:
    out = []
    for p in passes:
        window = [c for c in calls if p["start"] <= c["at"] <= p["end"]]
        per: dict[str, int] = {}
        for c in window:
            per[c["action"]] = per.get(c["action"], 0) + 1
        out.append(per)
    return out


def run(sizes: tuple[int, ...] = (1_000, 10_000), passes: int = 4) -> dict[str, Any]:
    """Each size: a warm-up read, then the daemon for `passes` passes; figures per size."""
    results: dict[str, Any] = {}
    with TemporaryDirectory(prefix="failover-scale-") as tmp_name:
        tmp = Path(tmp_name)
        t0 = time.monotonic()
        server = _Server(max(sizes), tmp)
        try:
            world = server.ready()
            results["build_s"] = world["build_s"]
            results["server_start_s"] = time.monotonic() - t0
            for members in sizes:
                config = tmp / f"config-{members}.yaml"
                config.write_text(
                    yaml.safe_dump(_config(world, members, tmp / f"state-{members}.db"))
                )
                warm = server.ask(f"warm {config}")
                if not warm.startswith("warmed"):
                    raise RuntimeError(f"scale server could not read the config: {warm}")
                out = tmp / f"passes-{members}.json"
                started = time.monotonic()
                daemon = _run_daemon(config, passes, out)
                elapsed = time.monotonic() - started
                calls = server.calls()
                recs = daemon["passes"]
                per_pass = _reads_per_pass(calls, recs)
                window = [c for c in calls if recs[0]["start"] <= c["at"] <= recs[-1]["end"]]
                span = recs[-1]["start"] - recs[0]["start"]
                steady = recs[1:] if len(recs) > 1 else recs
                cpu_span = recs[-1]["cpu_total_s"] - recs[0]["cpu_total_s"]
                results[str(members)] = {
                    "members": members,
                    "groups": members // 2,
                    "warm": warm,
                    "daemon_run_s": elapsed,
                    "passes": recs,
                    "reads_per_pass": per_pass,
                    "pass_wall_median_s": median([p["wall_s"] for p in steady]),
                    "pass_wall_max_s": max(p["wall_s"] for p in steady),
                    "pass_cpu_median_s": median([p["cpu_s"] for p in steady]),
                    "pass_aws_median_s": median([p["aws_s"] for p in steady]),
                    "pass_probe_median_s": median([p["probe_s"] for p in steady]),
                    "cpu_share_of_core": cpu_span / span if span > 0 else math.nan,
                    "rss_mb": max(p["rss_mb"] for p in recs),
                    "peak_rss_mb": daemon["maxrss_mb"],
                    "describe_rate_per_s": (
                        sum(1 for c in window if c["action"].startswith("Describe")) / span
                        if span > 0
                        else math.nan
                    ),
                    "first_pass_s": recs[0]["wall_s"],
                    "first_pass_reads": sum(per_pass[0].values()),
                    "first_pass_by_action": per_pass[0],
                    "steady_pass_reads": max(
                        (sum(r.values()) for r in per_pass[1:]), default=sum(per_pass[0].values())
                    ),
                    "steady_pass_by_action": per_pass[-1],
                    "profile": daemon.get("profile", {}),
                }
                r = results[str(members)]
                print(
                    f"[scale] {members} members: pass median {r['pass_wall_median_s']:.2f}s "
                    f"(aws {r['pass_aws_median_s']:.2f}s, probes {r['pass_probe_median_s']:.2f}s), "
                    f"cpu/pass {r['pass_cpu_median_s']:.2f}s, {100 * r['cpu_share_of_core']:.0f}% of a core, "
                    f"rss {r['rss_mb']:.0f}MB; reads {r['steady_pass_reads']} a pass "
                    f"({r['first_pass_reads']} the first, {r['first_pass_s']:.2f}s); {warm}",
                    flush=True,
                )
        finally:
            server.close()
    return results


if __name__ == "__main__":
    sizes = tuple(int(a) for a in sys.argv[1:]) or (1_000,)
    print(json.dumps(run(sizes, passes=3), indent=1, default=str)[:3000])
