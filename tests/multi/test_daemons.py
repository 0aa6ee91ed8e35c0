"""Three `failover run` processes on one config and one DynamoDB table share six groups.

Each group is held by exactly one daemon; the holder of a group is SIGKILLed right after
its DetachNetworkInterface (found through the lease item, whose holder id carries its
pid); another daemon takes the group over and finishes the journaled move.

Take-over time: the others see the dead daemon's heartbeat unchanged for a TTL (by their
own clocks, never comparing clocks across hosts), then the next lease round takes its
groups. Lease rounds run every half interval: a round to first see the last heartbeat, a
TTL, a round to act, so the bound is TTL + one interval after the kill (the last heartbeat
was at or before it).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from failover.sandbox.strict import Call
from failover.sandbox.world import build_world

from ..health.conftest import Loopback, wait_until
from ..health.conftest import loopback as loopback
from .conftest import (
    TTL_S,
    LeaseItem,
    Sandbox,
    create_table,
    lease_items,
    moves,
    multi_config,
    new_table,
    start_daemon,
)

SandboxFactory = Callable[..., Sandbox]
INTERVAL_S = 0.5
GROUPS = 6
SLACK_S = 1.0


@pytest.mark.process
def test_three_daemons_share_groups_and_take_over_a_killed_holders_move(
    sandbox: SandboxFactory, loopback: Callable[..., Loopback], tmp_path: Any
) -> None:
    """Rule: only the lease holder acts on a group; a dead holder's half-done move is finished."""
    sb = sandbox()
    worlds = {f"g{n}": build_world(sb.ec2, mode="eni", group=f"g{n}") for n in range(GROUPS)}
    nets = {name: loopback([w.primary, *w.standbys]) for name, w in worlds.items()}
    groups = [
        {
            "name": name,
            "mode": "eni",
            "eni": w.eni_id,
            "device_index": 1,
            "members": nets[name].members(),
            "checks": [nets[name].check()],
        }
        for name, w in worlds.items()
    ]
    table = new_table()
    config = multi_config(
        sb,
        *groups,
        table=table,
        defaults={
            "interval": f"{int(INTERVAL_S * 1000)}ms",
            "timeout": "200ms",
            "fall": 2,
            "rise": 1,
        },
    )
    create_table(config)
    sb.layer.reset_log()

    procs: list[subprocess.Popen[bytes]] = []
    try:
        for n in range(3):
            procs.append(start_daemon(config, tmp_path / f"daemon-{n}.log"))
        pids = {p.pid for p in procs}

        def spread() -> dict[str, Any] | None:
            # Daemons start one after another: the first takes all, then gives back to the
            # others as it sees them; the spread settles on fair shares (6 / 3).
            items = lease_items(sb, table)
            per_daemon = {pid: sum(1 for i in items.values() if i.pid == pid) for pid in pids}
            if len(items) == GROUPS and set(per_daemon.values()) == {2}:
                return items
            return None

        wait_until(spread, 30, "each of the 6 groups held, two by each daemon")

        # The primary of g0 dies; its holder starts the move and is killed right after the detach.
        killed: dict[str, float] = {}
        lock = threading.Lock()

        def kill_holder(call: Call) -> None:
            if call.action != "DetachNetworkInterface" or call.error or call.dry_run:
                return
            if call.params.get("AttachmentId") is None:
                return
            with lock:
                if killed:
                    return
                holder = lease_items(sb, table)["g0"].pid
                assert holder is not None
                os.kill(holder, signal.SIGKILL)
                killed["pid"], killed["at"] = holder, time.monotonic()

        sb.layer.on_call = kill_holder
        nets["g0"].stop(worlds["g0"].primary)
        wait_until(lambda: killed, 30, "g0's holder to detach its ENI (and be killed)")
        sb.layer.on_call = None
        eni = worlds["g0"].eni_id or ""

        def taken_over() -> LeaseItem | None:
            item = lease_items(sb, table)["g0"]
            return item if item.pid in pids - {killed["pid"]} else None

        new_holder = wait_until(taken_over, 4 * TTL_S + 10, "another daemon to take g0's lease")
        took = time.monotonic() - killed["at"]
        print(
            f"take-over {took:.2f}s after the kill: {took / (TTL_S + INTERVAL_S):.2f} x (TTL + interval)"
        )
        # TTL + one interval, plus SLACK_S for lease reads and writes on moto's server and
        # process scheduling on a loaded 2-core CI machine.
        assert took < TTL_S + INTERVAL_S + SLACK_S, took

        standby = worlds["g0"].standbys[0]
        wait_until(lambda: sb.eni_owner(eni) == standby, 30, "g0's ENI on its standby")
        wait_until(
            lambda: [m.outcome for m in moves(sb, table, "g0")] == ["succeeded"],
            10,
            "the journaled move of g0 closed as succeeded",
        )
        (record,) = moves(sb, table, "g0")
        assert record.target == standby
        assert record.token is not None
        assert record.token < new_holder.token
        for name in worlds:
            if name != "g0":
                assert moves(sb, table, name) == []
                assert sb.eni_owner(worlds[name].eni_id or "") == worlds[name].primary

        # SIGTERM: the survivors exit 0 and give their leases back.
        survivors = [p for p in procs if p.pid != killed["pid"]]
        for p in survivors:
            p.send_signal(signal.SIGTERM)
        assert [p.wait(timeout=30) for p in survivors] == [0, 0]
        assert all(
            i.holder == "" or i.pid == killed["pid"] for i in lease_items(sb, table).values()
        )
        # Every mutating EC2 call was for g0's move, and only one of each.
        actions = [c.action for c in sb.layer.mutating_calls()]
        assert actions == ["DetachNetworkInterface", "AttachNetworkInterface"], actions
    finally:
        sb.layer.on_call = None
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
