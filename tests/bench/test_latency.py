"""The latency bench reads ownership and round trips off the call log, and reports them computed.

Ownership and round trips on a hand-written call log (one eni move with a detach transition);
one monitored eip failover at 50 ms a call, checked against the layer's log; the RESULTS.md
section and verdict the figures produce.
"""

from __future__ import annotations

from typing import Any

import pytest

from bench import failover_time
from bench.ownership import calls_before, owned_at, owning_call, path_calls
from bench.report import markdown
from failover.sandbox.strict import Call

DELAYS = {"detach_delay_s": 2.0, "attach_delay_s": 1.0}


def call(action: str, sent_at: float, at: float, *, dry_run: bool = False) -> Call:
    return Call("ec2", action, {}, at=at, sent_at=sent_at, error=None, dry_run=dry_run)


def eni_move_log() -> list[Call]:
    """Two reads, a DryRun, the detach, three polls during its 2 s transition, one after, the attach."""
    return [
        call("DescribeInstances", 0.0, 0.1),
        call("DescribeNetworkInterfaces", 0.1, 0.2),
        call("AttachNetworkInterface", 0.2, 0.3, dry_run=True),
        call("DetachNetworkInterface", 0.3, 0.4),
        call("DescribeNetworkInterfaces", 0.5, 0.6),
        call("DescribeNetworkInterfaces", 1.0, 1.1),
        call("DescribeNetworkInterfaces", 2.0, 2.1),
        call("DescribeNetworkInterfaces", 2.5, 2.6),
        call("AttachNetworkInterface", 2.6, 2.7),
    ]


def test_eni_ownership_is_the_applied_attach_plus_its_transition_and_polls_ride_the_detach() -> (
    None
):
    """Owning call: the applied (not DryRun) attach; owned when its transition ends; round trips
    leave out the polls sent while the detach's transition ran."""
    log = eni_move_log()
    owning = owning_call("eni", log)
    assert owning is log[-1]
    assert owned_at("eni", log, DELAYS) == pytest.approx(2.7 + 1.0)
    assert len(calls_before(log, owning)) == 8
    # reads, DryRun, detach, the poll after the transition (sent at 2.5 > 0.4 + 2.0), the attach
    assert path_calls(log, owning, DELAYS) == 6


def test_calls_in_flight_together_are_one_round_trip() -> None:
    """A DryRun and the caller identity sent while a read is in flight cost one round trip."""
    log = [
        call("DescribeInstances", 0.0, 0.05),
        call("AssociateAddress", 0.06, 0.11, dry_run=True),
        call("GetCallerIdentity", 0.07, 0.12),
        call("AssociateAddress", 0.12, 0.17),
    ]
    assert path_calls(log, owning_call("eip", log), {}) == 3


def test_secondary_ip_ownership_is_the_assign_unless_the_eip_was_reassociated() -> None:
    """secondary-ip: the IP on the target is owned at the assign; a re-association (the EIP did
    not follow) is the call that serves it."""
    log = [call("AssignPrivateIpAddresses", 0.0, 0.05)]
    assert owned_at("secondary-ip", log, {}) == pytest.approx(0.05)
    log.append(call("AssociateAddress", 1.0, 1.05))
    assert owning_call("secondary-ip", log) is log[-1]
    assert owning_call("eip", [call("AssociateAddress", 0.0, 0.1, dry_run=True)]) is None


def test_a_monitored_failover_at_50_ms_a_call_pays_it_on_every_call(aws_env: None) -> None:
    """At L = 50 ms, every call of the daemon's failover is answered L after it was sent, and the
    time to ownership holds at least detection plus the owning call's round trip."""
    latency = 0.05
    (run,) = failover_time.run_mode("eip", 1, delays={}, latency_s=latency)
    assert run.ok, run.error
    assert run.path_calls >= 1
    # No transition before an associate: every round trip before it is a call (the reads sent
    # together are one round trip).
    assert run.calls_before_owner >= run.path_calls - 1
    assert run.to_owned_s >= run.detection_s + latency


def results_with(latency_rows: list[dict[str, Any]]) -> dict[str, Any]:
    machine = dict.fromkeys(("cores", "python", "moto", "boto3", "platform"), "x")
    return {
        "machine": machine,
        "wall_s": 1.0,
        "latency": {
            "latencies_ms": [50],
            "startup_floor_s": 0.2,
            "goal": {"latency_ms": 50, "round_trips": 3, "slack_s": 0.1, "modes": ["eip"]},
            "rows": latency_rows,
        },
    }


def test_the_latency_section_shows_each_ratio_and_the_goals_verdict_computed() -> None:
    """RESULTS.md's latency section: figures and a verdict computed from them, no prose."""
    move = {
        "runs": 1,
        "ok": 1,
        "errors": [],
        "to_owned_median_s": 0.5,
        "first_call_median_s": 0.3,
        "calls_before_median": 6.0,
        "path_calls_median": 7.0,
        "actions_before": ["DescribeInstances", "GetCallerIdentity"],
        "floor_median_s": 0.55,
        "ratio_median": 0.5 / 0.55,
        "goal_s": 0.45,
        "goal_ratio": 0.5 / 0.45,
    }
    daemon = {
        "to_owned_median_s": 1.0,
        "detection_median_s": 0.8,
        "calls_before_median": 4.0,
        "floor_median_s": 1.0,
        "ratio_median": 1.0,
    }
    text = markdown(
        results_with([{"mode": "eip", "latency_ms": 50, "move": move, "daemon": daemon}]), []
    )
    assert (
        "| eip | 50 | 6 | 7 | 0.300 | 0.500 | 0.550 | 0.91 | 4 | 0.800 | 1.000 | 1.000 | 1.00 |"
        in text
    )
    assert "| eip | 1/1 | 0.500 | 0.450 | 1.11 | missed by 11 % |" in text
    assert "- **eip**: DescribeInstances, GetCallerIdentity" in text
    for prose in ("What is left", "Findings", "Reading these figures", "report to the lead"):
        assert prose not in text
