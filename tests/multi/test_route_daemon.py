"""A `route` group under `failover run` on the DynamoDB backend: lease, failover, metrics, journal.

The daemon is a real process against moto's server; the test stops the primary in EC2 (its
routes turn `blackhole`), then reads DescribeRouteTables, the lease and the journal back from
outside and scrapes the daemon's /metrics.
"""

from __future__ import annotations

import signal
import urllib.error
import urllib.request
from collections.abc import Callable

import pytest

from ..conftest import free_port
from ..health.conftest import wait_until
from .conftest import Sandbox, create_table, history, lease_items, moves, multi_config, new_table
from .conftest import start_daemon as start

SandboxFactory = Callable[..., Sandbox]


def scrape(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return str(reply.read().decode())
    except (urllib.error.URLError, OSError):
        return ""  # not listening yet


@pytest.mark.process
def test_daemon_holds_the_lease_and_moves_the_route_across_azs(sandbox: SandboxFactory) -> None:
    """Rule: one guarded path for every mode: the daemon takes the group's lease, moves both
    tables to the standby in AZ b when EC2 says the primary stopped, journals the move under
    its lease token, counts it on /metrics, and exits 0 on SIGTERM."""
    sb = sandbox()
    world = sb.world("route", cross_az=True)
    primary, standby = world.primary, world.standbys[0]
    table = new_table()
    port = free_port()
    group = sb.group(world, "route", checks=[{"type": "ec2"}])
    config = multi_config(
        sb,
        group,
        table=table,
        defaults={"interval": "500ms", "timeout": "300ms", "fall": 2, "rise": 1},
    )
    text = config.read_text().replace("127.0.0.1:0", f"127.0.0.1:{port}")
    config.write_text(text)
    create_table(config)
    log = sb.tmp_path / "daemon.log"
    daemon = start(config, log)
    try:
        wait_until(lambda: lease_items(sb, table).get("g"), 30, "the daemon holding g's lease")
        held = lease_items(sb, table)["g"]
        assert held.pid == daemon.pid

        sb.ec2.stop_instances(InstanceIds=[primary])
        eth0 = sb.eth0(standby)
        wait_until(
            lambda: set(sb.routes(world).values()) == {(eth0, "active")},
            30,
            "both tables routing the overlay to the standby",
        )
        metrics = f"http://127.0.0.1:{port}/metrics"
        wait_until(
            lambda: 'failover_moves_total{group="g",outcome="succeeded"} 1.0' in scrape(metrics),
            15,
            "the move counted on /metrics",
        )
        (record,) = history(config)
        assert (record["mode"], record["resource"]) == ("route", world.cidr)
        assert (record["from"], record["to"], record["outcome"]) == (primary, standby, "succeeded")
        (journaled,) = moves(sb, table)
        assert journaled.token == held.token
        replaced = [c for c in sb.layer.calls_to("ReplaceRoute", dry_run=False) if c.error is None]
        assert sorted(c.params["RouteTableId"] for c in replaced) == sorted(world.route_tables)
    finally:
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(timeout=30)
    assert code == 0, log.read_text()
