"""One health pass over 2,000 members in 500 groups: batched describes inside EC2's buckets."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws

from failover.aws.ec2 import Ec2Cloud
from failover.config import parse
from failover.ops.clock import SystemClock
from failover.probes import ProbeResult, ProbeTarget
from failover.probes.runner import run_probes
from failover.sandbox.strict import StrictLayer
from failover.sandbox.world import build_worlds
from failover.service.engine import Engine
from failover.service.monitor import Monitor
from failover.store.sqlite import SqliteStore

from ..conftest import REGION, join_sts_questions
from .conftest import Loopback

GROUPS = 500
STANDBYS = 3
LISTENERS = 32  # loopback listeners the 2,000 members share (a probe pass runs 1,024 at once)


def test_a_pass_over_2000_members_stays_inside_the_describe_buckets(
    aws_env: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    loopback: Callable[..., Loopback],
) -> None:
    """Rule: DescribeInstanceStatus takes 100 ids a call; a pass over 2,000 members makes at most
    20 of them and is never throttled (EC2's Describe bucket: 100 burst, 20/s)."""
    # Moto's 1,300 default AMIs are filtered at every RunInstances: not needed here.
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    lo = loopback([f"listener-{n}" for n in range(LISTENERS)])
    addresses = list(lo.addresses.values())
    with mock_aws():
        config = Config(retries={"mode": "standard", "max_attempts": 8})
        ec2 = boto3.client("ec2", region_name=REGION, config=config)
        sts = boto3.client("sts", region_name=REGION, config=config)
        started = time.monotonic()
        # Built with the rules but without the buckets: its 1,000 Attach/Modify calls would
        # take 200 s at the mutating bucket's 5/s.
        with StrictLayer():
            worlds = build_worlds(ec2, GROUPS, "eni", standbys=STANDBYS)
        build_s = time.monotonic() - started
        members = [[w.primary, *w.standbys] for w in worlds]
        settings = parse(
            {
                "aws": {"region": REGION},
                "state": {"path": str(tmp_path / "state.db")},
                "defaults": {"interval": "5s", "timeout": "3s"},
                "groups": [
                    {
                        "name": f"g{n}",
                        "mode": "eni",
                        "eni": world.eni_id,
                        "device_index": 1,
                        "members": [
                            {"instance": i, "address": addresses[(n * 4 + k) % LISTENERS]}
                            for k, i in enumerate(members[n])
                        ],
                        "checks": [{"type": "ec2"}, lo.check()],
                    }
                    for n, world in enumerate(worlds)
                ],
            },
            "scale",
        )
        store = SqliteStore(settings.state.path)
        layer = StrictLayer(token_buckets=True)
        layer.install()
        try:
            clock = SystemClock()
            cloud = Ec2Cloud(ec2, sts, clock.now)
            probed: list[tuple[float, list[ProbeResult]]] = []

            def prober(targets: Sequence[ProbeTarget]) -> list[ProbeResult]:
                began = time.monotonic()
                results = run_probes(targets)
                probed.append((time.monotonic() - began, results))
                return results

            monitor = Monitor(cloud, store, Engine(cloud, store, clock), clock, prober=prober)
            layer.reset_log()
            started = time.monotonic()
            outcomes = monitor.run_pass(settings.groups)
            pass_s = time.monotonic() - started
            calls = list(layer.calls)
            health = {g.name: store.load_health(g.name) for g in settings.groups}
        finally:
            join_sts_questions()
            layer.uninstall()
            store.close()

    [(probe_s, probe_results)] = probed
    slowest = max(r.latency_s for r in probe_results)
    status_calls = [c for c in calls if c.action == "DescribeInstanceStatus"]
    throttled = [c for c in calls if c.error == "RequestLimitExceeded"]
    by_action: dict[str, int] = {}
    for c in calls:
        by_action[c.action] = by_action.get(c.action, 0) + 1
    print(
        f"\n{GROUPS} groups, {GROUPS * (1 + STANDBYS)} members: built in {build_s:.1f}s; "
        f"one pass {pass_s:.1f}s (probe timeout {settings.groups[0].policy.timeout_s}s); "
        f"{len(calls)} calls {by_action}; {len(throttled)} throttled; "
        f"probes: {len(probe_results)} in {probe_s:.2f}s, slowest {slowest:.2f}s"
    )
    assert len(status_calls) <= 20
    assert throttled == []
    assert all(c.error is None for c in calls)
    assert len(outcomes) == GROUPS
    assert {o.outcome for o in outcomes} == {"stay"}
    # Every one of the 2,000 probes (EC2 and TCP) passed: the counters say so.
    assert sum(len(h) for h in health.values()) == GROUPS * (1 + STANDBYS)
    failed = Counter(m.reason for h in health.values() for m in h.values() if m.failures)
    assert not failed, failed
    assert all(m.successes == 1 for h in health.values() for m in h.values())
    assert pass_s < 240  # no timing claim: a loaded machine is slow; this is a hang guard
