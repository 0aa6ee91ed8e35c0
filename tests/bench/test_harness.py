"""The bench harness counts calls exactly and times steps within polling slack.

Small sizes only: one monitored eni failover with known delays, a few quick moves,
one check pass over 10 members. Each checks a figure the benches report against
what the StrictLayer was configured to do.
"""

from __future__ import annotations

import math

import pytest

from bench import api_cost, failover_time
from bench.harness import AwsTimer, Recorder, inprocess, percentile

DETACH_S, ATTACH_S = 0.6, 0.3
MAX_POLL_S = (
    0.5  # failover.service.converge.MAX_POLL_S: the most a wait can lag the state it waits for
)


@pytest.fixture(autouse=True)
def _aws(aws_env: None) -> None:
    """Fake credentials only (tests/conftest.py)."""


def test_a_monitored_eni_failover_is_timed_step_by_step_and_its_calls_counted() -> None:
    (run,) = failover_time.run_mode(
        "eni", 1, delays={"detach_delay_s": DETACH_S, "attach_delay_s": ATTACH_S}
    )
    assert run.ok, run.error
    assert run.calls["mutating"] == 2
    assert run.calls["mutating_ok"] == 2
    wait = run.breakdown["wait-detached: AWS transition"]
    slack = run.breakdown.get("wait-detached: polling slack", 0.0)
    # The wait starts just after the detach call the delay runs from.
    assert DETACH_S - 0.1 <= wait <= DETACH_S
    assert 0.0 <= slack <= MAX_POLL_S + 0.05
    assert run.breakdown["wait-attached: AWS transition"] == pytest.approx(ATTACH_S, abs=0.1)
    # The parts add up to the measured time to ownership, and detection fits its window.
    assert sum(run.breakdown.values()) == pytest.approx(run.to_owned_s, abs=1e-6)
    window = failover_time.INTERVAL_S * failover_time.FALL
    assert run.detection_s >= failover_time.INTERVAL_S * (failover_time.FALL - 1) - 0.05
    assert run.detection_s <= window + 0.2
    assert run.to_owned_s >= run.detection_s + DETACH_S + ATTACH_S
    assert run.move_aws_s + run.move_sleep_s <= run.move_wall_s


@pytest.mark.parametrize(("mode", "mutating"), [("eip", 1), ("eni", 2), ("route", 2)])
def test_quick_moves_count_mutating_calls_exactly(mode: str, mutating: int) -> None:
    moves = failover_time.quick_moves(mode, 2)
    assert [m.calls["mutating"] for m in moves] == [mutating, mutating]
    for m in moves:
        assert m.calls["read"] >= 2  # at least one observe: instances and the resource
        assert 0.0 < m.aws_s + m.sleep_s <= m.wall_s


def test_a_monitored_route_failover_is_timed_against_detection_plus_its_calls() -> None:
    """route: owned when the last of its two ReplaceRoutes is applied; the limit adds their time."""
    (run,) = failover_time.run_mode("route", 1)
    assert run.ok, run.error
    assert (run.calls["mutating"], run.calls["mutating_ok"]) == (2, 2)
    assert 0.0 < run.route_calls_s < run.to_owned_s - run.detection_s
    summary = failover_time.summarize("route", [run], [])
    window = failover_time.INTERVAL_S * failover_time.FALL
    assert summary["limit_s"] == pytest.approx(window + run.route_calls_s)
    assert summary["ratio_median"] == pytest.approx(run.to_owned_s / summary["limit_s"])


def test_one_check_pass_over_ten_members_costs_one_read_per_describe() -> None:
    row = api_cost.check_pass_reads(10)
    assert row["by_action"] == {
        "DescribeInstances": 1,
        "DescribeInstanceStatus": 1,
        "DescribeAddresses": 1,
    }
    assert row["floor"] == 1


def test_the_aws_timer_records_one_span_per_call() -> None:
    rec = Recorder()
    with inprocess() as box:
        AwsTimer(rec).attach(box.ec2)
        box.ec2.describe_vpcs()
        box.ec2.describe_subnets()
    spans = rec.of("aws")
    assert [e.data["action"] for e in spans] == ["DescribeVpcs", "DescribeSubnets"]
    assert all(e.data["end"] >= e.t for e in spans)


def test_percentile_interpolates_between_ranks() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([5.0], 0.99) == 5.0
    assert math.isnan(percentile([], 0.5))
