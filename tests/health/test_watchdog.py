"""systemd's watchdog and /healthz during a mass failover: both hear from one long pass as it moves groups.

When an AZ fails, hundreds of groups move in one pass, paced by EC2's token buckets
(AssociateAddress: 50 burst, then 5/s): 500 moves take well over WatchdogSec=90s. A
daemon that pinged only between passes would be killed by systemd in the middle of that
failover. Here `failover run` runs as systemd would start it ($NOTIFY_SOCKET bound by the
test, $WATCHDOG_USEC shrunk to a few seconds), against moto's server with the strict
layer's buckets on, and fewer groups make the same pass outlive several watchdog periods
(and /healthz's allowance of three intervals plus a move's deadline).
"""

from __future__ import annotations

import re
import signal
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable

from failover.sandbox.world import build_worlds

from ..conftest import NotifySocket
from .conftest import DaemonProcess, Loopback, Sandbox, wait_until

GROUPS = 170  # 120 past the bucket's burst of 50: the moves last at least 24 s, on any machine
WATCHDOG_S = 3.0
MOVE_TIMEOUT_S = 10  # /healthz allows 3 x 1 s interval + 10 s = 13 s without progress


def poll_healthz(url: str, stop: threading.Event, seen: list[tuple[float, int]]) -> None:
    """GET `url` every 0.2 s until `stop`, keeping (when, status)."""
    while not stop.wait(0.2):
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                status = reply.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        seen.append((time.monotonic(), status))


def test_watchdog_and_healthz_hear_from_a_mass_failover_while_it_moves_groups(
    sandbox: Callable[..., Sandbox],
    loopback: Callable[..., Loopback],
    daemon: Callable[..., DaemonProcess],
    notify_socket: NotifySocket,
) -> None:
    """Rule: under WatchdogSec the daemon pings at least once a period while a pass is still
    moving groups (the pass outlives several periods), so systemd lets the failover finish;
    /healthz stays 200 meanwhile, so no liveness probe restarts it either."""
    sb = sandbox()
    worlds = build_worlds(sb.ec2, GROUPS, "eip")
    sb.layer.token_buckets = True  # EC2's throttling from here on, for the daemon's calls
    # All primaries answer on one loopback address and all standbys on another: stopping
    # the primaries' service fails every group in the same pass.
    lo = loopback(["primaries", "standbys"])
    groups = [
        {
            "name": f"g{n}",
            "mode": "eip",
            "eip": world.allocation_id,
            "members": [
                {"instance": world.primary, "address": lo.addresses["primaries"]},
                {"instance": world.standbys[0], "address": lo.addresses["standbys"]},
            ],
            "checks": [lo.check()],
        }
        for n, world in enumerate(worlds)
    ]
    config = sb.config(
        *groups,
        defaults={
            "interval": "1s",
            "timeout": "500ms",
            "fall": 1,
            "rise": 1,
            "move_timeout": f"{MOVE_TIMEOUT_S}s",
        },
    )
    run = daemon(
        config,
        {"NOTIFY_SOCKET": notify_socket.path, "WATCHDOG_USEC": str(int(WATCHDOG_S * 1e6))},
    )
    notify_socket.wait(lambda lines: "READY=1" in lines, 60.0)
    assert "READY=1" in notify_socket.lines(), run.log()
    metrics = re.search(r"health on (http://\S+/healthz)", run.log())
    assert metrics is not None, run.log()
    healthz: list[tuple[float, int]] = []
    stop_polling = threading.Event()
    poller = threading.Thread(target=poll_healthz, args=(metrics[1], stop_polling, healthz))
    poller.start()
    sb.layer.reset_log()

    lo.stop("primaries")

    def associated() -> list[float]:
        return [
            c.at
            for c in sb.layer.calls
            if c.action == "AssociateAddress" and c.error is None and not c.dry_run
        ]

    try:
        wait_until(lambda: len(associated()) >= GROUPS, 180.0, f"{GROUPS} AssociateAddress calls")
    finally:
        stop_polling.set()
        poller.join()
    run.send(signal.SIGTERM)
    assert run.wait() == 0, run.log()

    addresses = sb.ec2.describe_addresses(AllocationIds=[w.allocation_id for w in worlds])
    owners = {a["AllocationId"]: a.get("InstanceId") for a in addresses["Addresses"]}
    assert owners == {w.allocation_id: w.standbys[0] for w in worlds}  # every group failed over
    moves = sorted(associated())
    assert len(moves) == GROUPS  # one pass, one move per group: no group moved twice
    first, last = moves[0], moves[-1]
    assert last - first > 3 * WATCHDOG_S  # the premise: the moves outlive several periods
    pings = [at for at, line in notify_socket.received() if line == "WATCHDOG=1"]
    during = [at for at in pings if first <= at <= last]
    print(f"\n{GROUPS} moves over {last - first:.1f}s; {len(during)} pings meanwhile")
    # systemd kills a daemon silent for WATCHDOG_USEC: at least one ping per period.
    assert len(during) >= (last - first) / WATCHDOG_S, (len(during), last - first)
    assert last - first > 3 + MOVE_TIMEOUT_S  # the premise for /healthz too
    answers = [status for at, status in healthz if first <= at <= last]
    assert answers, healthz
    assert set(answers) == {200}, answers
