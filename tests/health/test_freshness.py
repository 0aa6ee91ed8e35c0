"""Stored health is a hint with an age: a manual move probes again what is older than one interval.

The prober is a plain function (the Prober port); no network, no clock: `now` is given.
"""

from __future__ import annotations

from collections.abc import Sequence

from failover.config import parse
from failover.core.model import GroupView, Instance
from failover.core.ports import MemberHealth
from failover.probes import ProbeResult, ProbeTarget, check_name
from failover.service.freshness import fresh_health, stale

A, B, C = "i-0aaaaaaaaaaaaaaaa", "i-0bbbbbbbbbbbbbbbb", "i-0cccccccccccccccc"
NOW = 10_000.0
GROUP = parse(
    {
        "groups": [
            {
                "name": "g",
                "mode": "eip",
                "eip": "eipalloc-0123456789abcdef0",
                "members": [A, B, C],
                "checks": [{"type": "tcp", "port": 5432}],
                "interval": "2s",
            }
        ]
    }
).groups[0]
VIEW = GroupView(
    "g",
    "eip",
    tuple(Instance(i, "running", "us-east-1a", private_ip="127.0.0.1") for i in (A, B, C)),
)


class FakeProber:
    """Answers each probe from `down` (instances that fail); records who was probed."""

    def __init__(self, down: set[str]) -> None:
        self.down = down
        self.probed: list[str] = []

    def __call__(self, targets: Sequence[ProbeTarget]) -> list[ProbeResult]:
        self.probed += [t.instance_id for t in targets]
        return [
            ProbeResult(
                t.group,
                t.instance_id,
                check_name(t.check),
                t.instance_id not in self.down,
                "refused" if t.instance_id in self.down else "connected",
                0.001,
            )
            for t in targets
        ]


def healthy(instance_id: str, probed_at: float) -> MemberHealth:
    return MemberHealth(instance_id, healthy=True, successes=5, probed_at=probed_at)


def test_a_stale_healthy_verdict_that_fails_now_is_not_healthy() -> None:
    """Rule: a verdict older than one interval is re-judged by a probe now; a failure wins."""
    prober = FakeProber(down={B})
    health = {A: healthy(A, NOW), B: healthy(B, NOW - 6.0)}
    out = fresh_health(GROUP, VIEW, health, [B], now=NOW, prober=prober)
    assert prober.probed == [B]
    assert out[B].healthy is False
    assert out[B].probed_at == NOW
    assert out[B].reason == "probed again now (stored verdict 6s old): tcp:5432 refused"
    assert out[A] == health[A]


def test_a_verdict_within_one_interval_is_trusted_without_a_probe() -> None:
    """Rule: a fresh verdict (the daemon's last pass) is used as is: no probe, no delay."""
    prober = FakeProber(down={B})
    health = {B: healthy(B, NOW - 1.5)}
    assert fresh_health(GROUP, VIEW, health, [B], now=NOW, prober=prober) == health
    assert prober.probed == []


def test_a_passing_probe_never_makes_a_member_healthy_that_had_not_reached_rise() -> None:
    """Rule: one probe now confirms a healthy member; it does not stand in for `rise` passes."""
    prober = FakeProber(down=set())
    rising = MemberHealth(C, healthy=False, successes=1, probed_at=NOW - 60)
    out = fresh_health(
        GROUP, VIEW, {B: healthy(B, NOW - 60), C: rising}, [B, C], now=NOW, prober=prober
    )
    assert sorted(prober.probed) == [B, C]
    assert out[B].healthy is True
    assert out[C].healthy is False


def test_members_never_probed_keep_no_verdict_and_a_verdict_of_unknown_age_is_stale() -> None:
    """Rule: unknown stays unknown (the move's rules judge it); a verdict without a time is stale."""
    prober = FakeProber(down={B})
    legacy = healthy(B, 0.0)  # written before the store kept probe times
    assert stale(legacy, NOW, 2.0)
    out = fresh_health(GROUP, VIEW, {B: legacy}, [B, C], now=NOW, prober=prober)
    assert prober.probed == [B]
    assert C not in out
    assert out[B].healthy is False
    assert "of unknown age" in out[B].reason


EC2_GROUP = parse(
    {
        "groups": [
            {
                "name": "g",
                "mode": "eip",
                "eip": "eipalloc-0123456789abcdef0",
                "members": [A, B, C],
                "checks": [{"type": "ec2"}],
                "interval": "2s",
            }
        ]
    }
).groups[0]


class FakeStatuses:
    """EC2's status checks by instance (DescribeInstanceStatus); records who was asked."""

    def __init__(self, checks: dict[str, tuple[bool | None, bool]]) -> None:
        self.checks = checks
        self.asked: list[list[str]] = []

    def __call__(self, instance_ids: Sequence[str]) -> dict[str, tuple[bool | None, bool]]:
        self.asked.append(list(instance_ids))
        return {i: self.checks[i] for i in instance_ids if i in self.checks}


def test_an_ec2_check_probed_again_reads_the_status_checks_of_the_stale_members_only() -> None:
    """Rule: a move's read carries no status checks, so a stale `ec2` verdict is re-judged on
    the status checks EC2 reports now (asked for the stale members alone), never on their
    absence: impaired now is not healthy, ok now stays healthy."""
    statuses = FakeStatuses({B: (True, False), C: (False, False)})
    health = {A: healthy(A, NOW), B: healthy(B, NOW - 6.0), C: healthy(C, NOW - 6.0)}
    out = fresh_health(
        EC2_GROUP, VIEW, health, [B, C], now=NOW, prober=FakeProber(set()), statuses=statuses
    )
    assert statuses.asked == [[B, C]]
    assert out[B].healthy is True
    assert out[C].healthy is False
    assert out[C].reason == "probed again now (stored verdict 6s old): ec2: status checks impaired"


def test_a_recent_ec2_verdict_costs_no_status_read() -> None:
    """Rule: while the last pass is recent (within one interval), its verdict is used: no
    DescribeInstanceStatus on the move's path."""
    statuses = FakeStatuses({B: (False, False)})
    health = {B: healthy(B, NOW - 1.0)}
    out = fresh_health(
        EC2_GROUP, VIEW, health, [B], now=NOW, prober=FakeProber(set()), statuses=statuses
    )
    assert out == health
    assert statuses.asked == []
