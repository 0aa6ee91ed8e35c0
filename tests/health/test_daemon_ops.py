"""`failover run` tells the outside what it did: /metrics, /healthz and alerts to a webhook.

The daemon is a real process against moto's server; the test scrapes its metrics endpoint
and receives its webhook alerts on loopback, and reads AWS state back from outside.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from ..conftest import free_port, run_cli
from .conftest import DaemonProcess, Loopback, Sandbox, wait_until


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""  # not listening yet


def test_daemon_counts_the_move_in_metrics_and_alerts_the_webhook(
    sandbox: Callable[..., Sandbox],
    loopback: Callable[..., Loopback],
    daemon: Callable[[Path], DaemonProcess],
    webhook: tuple[str, list[dict[str, str]]],
) -> None:
    """Rule: a move is counted by outcome on /metrics (loopback), alerted, and its hook run."""
    url, received = webhook
    sb = sandbox()
    world = sb.world("eni")
    assert world.eni_id is not None
    lo = loopback([world.primary, world.standbys[0]])
    marker = sb.tmp_path / "after-move.txt"
    hook = [sys.executable, "-c", f"open({str(marker)!r}, 'w').write('{{instance}} {{resource}}')"]
    group = sb.group(
        world, "eni", members=lo.members(), checks=[lo.check()], after_move={"command": hook}
    )
    port = free_port()
    config = sb.config(
        group,
        defaults={"interval": "500ms", "timeout": "300ms", "fall": 2, "rise": 1},
        metrics={"listen": f"127.0.0.1:{port}"},
        notify={"webhook_url": url, "timeout": "2s"},
    )
    d = daemon(config)
    metrics = f"http://127.0.0.1:{port}"
    wait_until(lambda: get(f"{metrics}/healthz")[0] == 200, 30, "/healthz answering 200")
    wait_until(
        lambda: (
            'failover_member_healthy{group="g",instance="' + world.standbys[0] + '"} 1.0'
            in get(f"{metrics}/metrics")[1]
        ),
        30,
        "the standby healthy in /metrics",
    )

    lo.stop(world.primary)
    wait_until(lambda: sb.eni_owner(world.eni_id) == world.standbys[0], 30, "the ENI moved")
    wait_until(
        lambda: (
            'failover_moves_total{group="g",outcome="succeeded"} 1.0'
            in get(f"{metrics}/metrics")[1]
        ),
        15,
        "the move counted as succeeded",
    )
    text = get(f"{metrics}/metrics")[1]
    assert 'failover_member_healthy{group="g",instance="' + world.primary + '"} 0.0' in text
    assert "failover_last_successful_pass_timestamp_seconds" in text
    wait_until(
        lambda: {"move-started", "move-finished"} <= {r["event"] for r in received}, 15, "alerts"
    )
    finished = next(r for r in received if r["event"] == "move-finished")
    assert finished["group"] == "g"
    assert world.standbys[0] in finished["text"]
    wait_until(marker.exists, 15, "the after_move hook to run")
    assert marker.read_text() == f"{world.standbys[0]} {world.eni_id}"
    assert d.running


def test_check_refuses_while_a_daemon_acts_on_the_same_state(
    sandbox: Callable[..., Sandbox],
    loopback: Callable[..., Loopback],
    daemon: Callable[[Path], DaemonProcess],
) -> None:
    """Rule: a group is moved by one holder at a time: a cron check next to a daemon that holds
    the group's claim (SQLite state) exits 3, naming the daemon, and touches nothing."""
    sb = sandbox()
    world = sb.world("eni")
    lo = loopback([world.primary, world.standbys[0]])
    group = sb.group(world, "eni", members=lo.members(), checks=[lo.check()])
    config = sb.config(group, defaults={"interval": "500ms", "timeout": "300ms"})
    d = daemon(config)
    d.wait_log("holding the leases of 1 groups", 30)
    sb.layer.reset_log()
    done = run_cli("check", "--config", str(config))
    assert done.returncode == 3, done.stdout + done.stderr
    assert done.stdout.startswith("g: refused: group g is held by "), done.stdout
    assert f":{d.proc.pid}:" in done.stdout
    assert "(a failover daemon)" in done.stdout
    assert sb.layer.mutating_calls() == []
    assert d.running
