"""Measure 6: `failover check` on one group, process start to exit, against `import boto3` as the floor.

moto's server (behind a StrictLayer) runs in this process; each `failover check` is a
fresh process of the venv's console script, as cron would start it. The floor is
`python -c 'import boto3'`: no AWS-using Python CLI can start faster. `-X importtime`
of one check names where the rest of the start-up goes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
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


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(FAKE_AWS_ENV)
    env.update({"AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"})
    env.pop("FAILOVER_CONFIG", None)
    return env


def _time(argv: list[str], env: dict[str, str]) -> tuple[float, int]:
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    return time.perf_counter() - start, proc.returncode


def _import_costs(argv: list[str], env: dict[str, str], top: int = 8) -> list[tuple[str, float]]:
    """The top-level packages with the largest cumulative import time (ms), from -X importtime."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", *argv],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    totals: dict[str, float] = {}
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        parts = line.split("|")
        try:
            cumulative = int(parts[1])
        except ValueError:
            continue
        # The outermost import of a package carries its whole cost (cumulative).
        pkg = parts[2].strip().split(".")[0]
        totals[pkg] = max(totals.get(pkg, 0.0), cumulative / 1000)
    return sorted(totals.items(), key=lambda kv: -kv[1])[:top]


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
        StrictLayer(),
        SandboxServer() as server,
    ):
        ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=server.url)
        world = build_world(ec2, mode="eip", group="cron")
        port = free_port("127.0.0.2")
        services = [Listener("127.0.0.2", port).start(), Listener("127.0.0.3", port).start()]
        group = group_doc(
            "cron",
            "eip",
            [(world.primary, "127.0.0.2"), (world.standbys[0], "127.0.0.3")],
            [{"type": "ec2"}, {"type": "tcp", "port": port}],
            eip=world.allocation_id,
        )
        config = Path(tmp) / "config.yaml"
        config.write_text(
            yaml.safe_dump(config_doc([group], Path(tmp) / "state.db", endpoint_url=server.url))
        )
        check = [script, "check", "--config", str(config)]
        floor = [sys.executable, "-c", "import boto3"]
        try:
            _time(check, env)  # first run creates the state file; page cache warm for both
            _time(floor, env)
            checks, floors, codes = [], [], set()
            for _ in range(repeats):
                elapsed, code = _time(check, env)
                checks.append(elapsed)
                codes.add(code)
                floors.append(_time(floor, env)[0])
            imports = _import_costs(["-m", "failover", "check", "--config", str(config)], env)
        finally:
            for service in services:
                service.stop()
    result = {
        "repeats": repeats,
        "check_median_s": median(checks),
        "check_min_s": min(checks),
        "floor_median_s": median(floors),
        "ratio": median(checks) / median(floors),
        "exit_codes": sorted(codes),
        "checks_s": checks,
        "floors_s": floors,
        "import_ms": imports,
    }
    print(
        f"[cron] check {result['check_median_s'] * 1000:.0f}ms vs import boto3 "
        f"{result['floor_median_s'] * 1000:.0f}ms: ratio {result['ratio']:.2f}; exit {sorted(codes)}; "
        f"imports {imports[:5]}",
        flush=True,
    )
    return result


if __name__ == "__main__":
    run(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
