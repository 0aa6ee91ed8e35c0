"""5,000 groups over three `failover run` processes: a third each; a killed one's share is taken
over within lease_ttl + a lease round.

The daemons share one config and one DynamoDB table on a sandbox AWS of their own, in a
process of its own (tests/multi/scale_world.py: moto's server, the strict layer, DynamoDB
serialized as the real one is). The groups are in mode secondary-ip, 49 to a pair of members
(an m5.24xlarge's eth0 holds 50 addresses; the config lets an instance serve several groups,
each with its own floating IP), so 5,000 groups are 103 pairs: a pass describes ~206
instances, not 10,000 (moto serializes an instance in ~5 ms and scans every resource of its
kind per filtered describe). Health is EC2's status checks only (no listeners); every
member stays healthy, so no group may move.

Take-over: a daemon heartbeats every lease_ttl / 3 (a keeper thread) and runs a lease round
every lease_ttl / 6 (half the health interval would be sooner; it is 5 minutes here). Its last beat
landed at most a round before the kill; a survivor first reads it at its next
round, counts a TTL from when that read returned, and takes the dead one's groups in the
round that sees the TTL over: lease_ttl + one round after the kill, plus SLACK_S (which
holds one more round, see there).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from failover.aws.dynamodb_create import create_table

from ..conftest import REGION, cli_env, write_config
from .conftest import LeaseItem, new_table, start_daemon
from .scale_world import ScaleWorld

GROUPS = 5000
DAEMONS = 3
FAIR = range(1600, 1701)  # about a third: each holds ceil(5,000 / 3) = 1,667 at most
TTL_S = 5.0
ROUND_S = TTL_S / 6  # the lease round (daemon.lease_round_s: half the renew interval)
# Health passes are not what this test measures: every 5 minutes, so the only passes in
# the test are those a daemon starts with (a few batched store requests per 100 groups and
# ~2 DescribeInstances over the ~206 instances).
HEALTH_INTERVAL = "5m"
POLL_S = 0.2
# Over lease_ttl + one round:
# - one more round: the TTL is counted from when a read of the beat *returned*, and the round
#   that ends it starts a TTL after the round of that read, so half the time it ends just
#   after that round's read and the next round (ROUND_S later) sees it;
# - the take itself: ~9 BatchGetItem and ~9 TransactWriteItems for ~830 groups per survivor;
#   measured 1.5-2.5 s on 2 cores, where this test's own polls (every lease item, 5 times a
#   second) run in the sandbox server's process and share its CPU: 3 s allowed;
# - this test's poll period.
SLACK_S = ROUND_S + 3.0 + POLL_S
SPREAD_TIMEOUT_S = 60.0  # start-up (~5 s: a 5,000-group config loads in ~2.5 s) and rounds
TAKEOVER_TIMEOUT_S = 30.0


def _config(world: ScaleWorld, table: str, path: Path) -> Path:
    document = {
        "aws": {"region": REGION, "endpoint_url": world.url, "max_attempts": 3},
        "state": {"backend": "dynamodb", "table": table, "lease_ttl": f"{TTL_S:g}s"},
        "metrics": {"listen": "127.0.0.1:0"},
        "defaults": {"interval": HEALTH_INTERVAL, "timeout": "1s", "fall": 2, "rise": 1},
        "groups": [
            {
                "name": g.name,
                "mode": "secondary-ip",
                "ip": g.ip,
                "members": [g.primary, g.standby],
                "checks": [{"type": "ec2"}],
            }
            for g in world.groups
        ],
    }
    return write_config(path, document)


def _leases(world: ScaleWorld, table: str) -> dict[str, LeaseItem]:
    return {g: LeaseItem(g, holder, token) for g, (holder, token) in world.leases(table).items()}


def _counts(items: dict[str, LeaseItem]) -> Counter[int | None]:
    return Counter(i.pid for i in items.values())


def _poll(predicate: Callable[[], Any], timeout_s: float) -> Any:
    """`predicate`'s first truthy value, polled every POLL_S; None after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(POLL_S)
    return None


def _pass_progress(log: Path) -> str:
    """The daemon's first health pass from its log: groups decided so far, and over how long."""
    started = decided = last = None
    count = 0
    for line in log.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        msg = str(entry.get("msg", ""))
        at = datetime.fromisoformat(str(entry["ts"]).replace("Z", "+00:00")).timestamp()
        if started is None and msg.startswith("failover daemon started"):
            started = at  # the first pass starts now (next_run_time=now)
        elif msg.startswith("group g"):
            count += 1
            decided = decided or at
            last = at
    if started is None or last is None:
        return "no group decided yet"
    assert decided is not None
    return f"{count} groups decided {decided - started:.0f}-{last - started:.0f}s after start"


def _cpu_s(pid: int) -> float:
    """A process's CPU seconds (user + system), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.process
def test_5000_groups_spread_over_three_daemons_and_a_killed_ones_share_is_taken_over_in_ttl_and_a_round(
    tmp_path: Path, aws_env: None
) -> None:
    """Rule: N live daemons hold ceil(groups / N) each at most; a dead one's are taken in TTL + a round."""
    started = time.monotonic()
    with ScaleWorld(GROUPS, tmp_path, cli_env()) as world:
        world_s = time.monotonic() - started
        table = new_table()
        create_table(boto3.client("dynamodb", region_name=REGION, endpoint_url=world.url), table)
        config = _config(world, table, tmp_path / "config.yaml")
        logs = [tmp_path / f"daemon-{n}.log" for n in range(DAEMONS)]
        procs: list[subprocess.Popen[bytes]] = []
        try:
            cpu = world.cpu_s()
            t0 = time.monotonic()
            procs = [start_daemon(config, log) for log in logs]
            pids = {p.pid for p in procs}

            def spread() -> dict[str, LeaseItem] | None:
                items = _leases(world, table)
                per = _counts(items)
                fair = set(per) == pids and all(n in FAIR for n in per.values())
                return items if len(items) == GROUPS and fair else None

            assert _poll(spread, SPREAD_TIMEOUT_S), (
                f"no spread after {SPREAD_TIMEOUT_S:g}s: {_counts(_leases(world, table))} (pid: groups)"
            )
            spread_s = time.monotonic() - t0
            spread_cpu = world.cpu_s() - cpu

            victim = procs[0]
            survivors = pids - {victim.pid}
            before = spread()  # the tokens the kill leaves behind
            assert before is not None, _counts(_leases(world, table))
            cpu, daemon_cpu = world.cpu_s(), {pid: _cpu_s(pid) for pid in survivors}
            os.kill(victim.pid, signal.SIGKILL)
            killed_at = time.monotonic()

            def taken_over() -> dict[str, LeaseItem] | None:
                items = _leases(world, table)
                return items if all(i.pid in survivors for i in items.values()) else None

            after = _poll(taken_over, TAKEOVER_TIMEOUT_S)
            took = time.monotonic() - killed_at
            takeover_cpu = world.cpu_s() - cpu
            print(
                f"\n[spread-scale] world: {GROUPS} groups, "
                f"{2 * len({g.primary for g in world.groups})} instances, built in "
                f"{world.build_s:.1f}s ({world_s:.1f}s with the server)"
                f"\n[spread-scale] spread: {spread_s:.1f}s from the daemons' start "
                f"(server CPU {spread_cpu:.1f}s): {sorted(_counts(before).values())}"
                f"\n[spread-scale] take-over: {took:.2f}s = {took / TTL_S:.2f} x TTL "
                f"(TTL {TTL_S:g}s, round {ROUND_S:.2f}s, bound {TTL_S + ROUND_S + SLACK_S:.2f}s); "
                f"server CPU {takeover_cpu:.1f}s, survivors' CPU "
                f"{[round(_cpu_s(pid) - c, 1) for pid, c in daemon_cpu.items()]}s"
                f"\n[spread-scale] first passes: {[_pass_progress(log) for log in logs]}",
                flush=True,
            )
            assert after is not None, (
                f"not taken over after {TAKEOVER_TIMEOUT_S:g}s: "
                f"{_counts(_leases(world, table))} (pid: groups)"
            )
            assert took <= TTL_S + ROUND_S + SLACK_S, took

            # Each of the dead one's groups was taken over once: its token went up by one.
            dead = [g for g, i in before.items() if i.pid == victim.pid]
            assert len(dead) in FAIR
            bumped = Counter(after[g].token - before[g].token for g in dead)
            assert bumped == {1: len(dead)}, bumped
            # Every member was healthy all along: nothing moved.
            mutating = [c for c in world.calls() if c["mutating"]]
            assert mutating == [], mutating[:10]
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                p.wait(timeout=10)
