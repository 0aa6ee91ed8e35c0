"""`failover hold` / `release` on both state backends: a held group is never moved
automatically (its primary dead), the other groups are; `status` shows the hold (text and
JSON); `release` lets the next pass move it.

Real `failover check` processes against moto's server behind the strict layer, the members
probed on loopback; the AWS state and the strict layer's call log are read back after.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from ..conftest import run_cli
from ..health.conftest import Loopback
from ..health.conftest import loopback as loopback
from .conftest import Sandbox, create_table, multi_config, new_table

SandboxFactory = Callable[..., Sandbox]
ATTACH = "AttachNetworkInterface"


def _checks(config: Path, runs: int) -> list[subprocess.CompletedProcess[str]]:
    return [run_cli("check", "--config", str(config), timeout=60) for _ in range(runs)]


@pytest.mark.process
@pytest.mark.parametrize("backend", ["sqlite", "dynamodb"])
def test_hold_stops_automatic_moves_of_that_group_only_and_release_resumes_them(
    sandbox: SandboxFactory, loopback: Callable[..., Loopback], backend: str
) -> None:
    """Rule: `hold` keeps `check` from moving that group (its primary dead), others still move;
    `status` shows the hold (text and JSON); after `release` the next check moves it."""
    sb = sandbox()
    worlds = {name: sb.world("eni") for name in ("held", "free")}
    nets = {n: loopback([w.primary, w.standbys[0]]) for n, w in worlds.items()}
    groups = [
        sb.group(w, "eni", name=n, members=nets[n].members(), checks=[nets[n].check()])
        for n, w in worlds.items()
    ]
    policy = {"interval": "2s", "timeout": "300ms", "fall": 2, "rise": 1}
    if backend == "dynamodb":
        config = multi_config(sb, *groups, table=new_table(), defaults=policy)
        create_table(config)
    else:
        config = sb.config(*groups, defaults=policy)
    _checks(config, 1)  # rise 1: the standbys are healthy

    done = run_cli("hold", "held", "--reason", "kernel patching", "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert "held (kernel patching)" in done.stdout
    status = run_cli("status", "--json", "--config", str(config))
    shown = {g["name"]: g for g in json.loads(status.stdout)["groups"]}
    assert shown["held"]["held"] == {"by": "operator", "reason": "kernel patching"}
    assert shown["held"]["state"] == "held"
    assert shown["free"]["held"] is None
    text = run_cli("status", "--config", str(config)).stdout
    assert "held by an operator: kernel patching" in text

    for name, world in worlds.items():
        nets[name].stop(world.primary)
    held_runs = _checks(config, 3)
    assert sb.eni_owner(worlds["free"].eni_id or "") == worlds["free"].standbys[0]
    assert sb.eni_owner(worlds["held"].eni_id or "") == worlds["held"].primary
    assert held_runs[-1].returncode == 3, held_runs[-1].stdout
    assert "held: held by an operator (kernel patching)" in held_runs[-1].stdout
    attaches = [c.params["InstanceId"] for c in sb.layer.calls_to(ATTACH) if not c.dry_run]
    assert attaches == [worlds["free"].standbys[0]]

    done = run_cli("release", "held", "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert "released (was held by an operator: kernel patching)" in done.stdout
    moved = _checks(config, 1)[0]
    assert moved.returncode == 0, moved.stdout + moved.stderr
    assert sb.eni_owner(worlds["held"].eni_id or "") == worlds["held"].standbys[0]
    status = run_cli("status", "--json", "--config", str(config))
    assert all(g["held"] is None for g in json.loads(status.stdout)["groups"])
