"""The health rules over a real Monitor, Engine and SqliteStore, moto in-process, a fake clock.

Members are probed on their own loopback addresses; a dead member is a stopped service.
Time passes only by `rig.clock.advance` (cooldown), never by sleeping.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from failover.service.monitor import GroupOutcome

from .conftest import HealthRig


def _actions(outcomes: list[dict[str, GroupOutcome]], group: str = "g0") -> list[str]:
    return [o[group].outcome for o in outcomes]


def test_a_flapping_primary_never_reaching_fall_is_not_moved(
    health_rig: Callable[..., HealthRig],
) -> None:
    """Rule: down means `fall` *consecutive* failures; a flapping primary below that stays active."""
    rig = health_rig(fall=3, rise=2)
    primary, standby = rig.members()
    rig.passes(2)
    assert rig.store.load_health("g0")[standby].healthy

    for probe in "FPFFPFPFFPFF":  # never three failures in a row
        if probe == "F":
            rig.stop(primary)
        else:
            rig.start(primary)
        outcome = rig.run_pass()["g0"]
        assert outcome.outcome == "stay", outcome.summary()
        assert rig.store.load_health("g0")[primary].failures < 3
    assert rig.eni_owner() == primary
    assert rig.layer.mutating_calls() == []
    assert rig.moves() == []

    # The third failure in a row is `fall`: now it moves (the rule above was what held it).
    assert rig.run_pass()["g0"].outcome == "moved"
    assert rig.eni_owner() == standby


def test_a_primary_dying_repeatedly_is_held_after_max_moves_per_hour(
    health_rig: Callable[..., HealthRig], capsys: pytest.CaptureFixture[str]
) -> None:
    """Rule: more than `max_moves_per_hour` holds the group for an operator (held, check exit 3)."""
    rig = health_rig(fall=2, rise=2, cooldown="1m", max_moves_per_hour=2, failback="auto")
    primary, standby = rig.members()
    rig.passes(2)

    rig.stop(primary)  # dies: move 1
    assert _actions(rig.passes(2)) == ["stay", "moved"]
    assert rig.eni_owner() == standby

    rig.start(primary)  # comes back: failback after rise and the cooldown, move 2
    rig.clock.advance(61)
    assert _actions(rig.passes(2)) == ["stay", "moved"]
    assert rig.eni_owner() == primary

    rig.stop(primary)  # dies again: the flap limit is reached, hold
    rig.clock.advance(61)
    outcomes = rig.passes(2)
    assert _actions(outcomes) == ["stay", "hold"]
    assert "2 moves in the last hour" in outcomes[-1]["g0"].decision.reason
    assert outcomes[-1]["g0"].exit_code == 3
    assert rig.eni_owner() == primary  # held: left where it is, for an operator
    state = rig.store.load_group_state("g0")
    assert state.held
    assert state.status == "held"
    assert [e for e, g, _ in rig.alerts if g == "g0" and e == "held"] == ["held"]

    rig.clock.advance(3600)  # the hour is over, but a hold waits for an operator
    assert rig.run_pass()["g0"].outcome == "held"
    assert len(rig.moves()) == 2
    assert len(rig.layer.calls_to("AttachNetworkInterface", dry_run=False)) == 2

    code, out = rig.cli_check(capsys)
    assert code == 3, out
    assert out.startswith("g0: held:"), out
    assert rig.eni_owner() == primary


def test_no_move_to_an_unhealthy_standby_even_the_preferred_one(
    health_rig: Callable[..., HealthRig],
) -> None:
    """Rule: the target is the highest-preference *healthy* member; a sick standby is skipped."""
    rig = health_rig(standbys=2, fall=2, rise=2)
    primary, sick, healthy = rig.members()
    rig.stop(sick)  # running in EC2, but its service is dead
    rig.passes(2)
    rig.stop(primary)
    outcomes = rig.passes(2)
    assert _actions(outcomes) == ["stay", "moved"]
    assert rig.eni_owner() == healthy
    [move] = rig.moves()
    assert (move.source, move.target) == (primary, healthy)
    assert sick not in [c.params.get("InstanceId") for c in rig.layer.mutating_calls()]


def test_every_member_of_every_group_failing_at_once_is_suspected_not_moved(
    health_rig: Callable[..., HealthRig],
) -> None:
    """Rule: if every member of every group fails at once, suspect our own network: move nothing."""
    rig = health_rig(groups=2, fall=2, rise=2)
    rig.passes(2)
    for name in ("g0", "g1"):
        for instance in rig.members(name):
            rig.stop(instance)
    outcomes = rig.passes(3)  # pass 1: nobody is down yet; passes 2 and 3: `fall` reached
    for name in ("g0", "g1"):
        assert _actions(outcomes, name) == ["stay", "suspect", "suspect"]
        assert outcomes[-1][name].exit_code == 3
    assert rig.layer.mutating_calls() == []
    assert rig.moves("g0") == []
    assert rig.moves("g1") == []
    assert ("suspect", "*") in [(e, g) for e, g, _ in rig.alerts]

    # One member answering again ends the suspicion: g0 moves once its standby has risen.
    g0_standby = rig.members("g0")[1]
    rig.start(g0_standby)
    first, second = rig.passes(2)
    assert (first["g0"].outcome, first["g1"].outcome) == ("degraded", "degraded")
    assert (second["g0"].outcome, second["g1"].outcome) == ("moved", "degraded")
    assert rig.eni_owner("g0") == g0_standby
    assert rig.eni_owner("g1") == rig.members("g1")[0]


def test_failback_auto_returns_to_the_primary_after_rise_passes(
    health_rig: Callable[..., HealthRig],
) -> None:
    """Rule: `failback: auto` moves back once the primary has passed `rise` probes (cooldown over)."""
    rig = health_rig(fall=2, rise=3, cooldown="1m", failback="auto")
    primary, standby = rig.members()
    rig.passes(3)
    rig.stop(primary)
    assert _actions(rig.passes(2))[-1] == "moved"
    assert rig.eni_owner() == standby

    rig.clock.advance(120)  # the cooldown is over: only `rise` holds the failback back
    rig.start(primary)
    outcomes = rig.passes(3)
    assert _actions(outcomes) == ["stay", "stay", "moved"]
    assert rig.eni_owner() == primary
    reason = outcomes[-1]["g0"].decision.reason
    assert reason.startswith(f"failback: {primary} (preferred over {standby}) passed 3 probes")
    assert [(m.source, m.target) for m in rig.moves()] == [(primary, standby), (standby, primary)]


def test_failback_auto_waits_for_the_cooldown(health_rig: Callable[..., HealthRig]) -> None:
    """Rule: `failback: auto` never moves back within `cooldown` of the last move."""
    rig = health_rig(fall=2, rise=2, cooldown="5m", failback="auto")
    primary, standby = rig.members()
    rig.passes(2)
    rig.stop(primary)
    rig.passes(2)
    assert rig.eni_owner() == standby

    rig.start(primary)
    assert _actions(rig.passes(4)) == ["stay"] * 4  # risen after 2, but within the cooldown
    assert rig.store.load_health("g0")[primary].healthy
    rig.clock.advance(300 - 10)
    assert rig.run_pass()["g0"].outcome == "stay"
    assert rig.eni_owner() == standby
    rig.clock.advance(11)
    assert rig.run_pass()["g0"].outcome == "moved"
    assert rig.eni_owner() == primary


def test_failback_manual_never_returns_to_the_primary(health_rig: Callable[..., HealthRig]) -> None:
    """Rule: `failback: manual` leaves the resource on the standby however healthy the primary is."""
    rig = health_rig(fall=2, rise=2, cooldown="1m", failback="manual")
    primary, standby = rig.members()
    rig.passes(2)
    rig.stop(primary)
    rig.passes(2)
    assert rig.eni_owner() == standby

    rig.start(primary)
    rig.clock.advance(2 * 3600)
    assert _actions(rig.passes(5)) == ["stay"] * 5
    assert rig.store.load_health("g0")[primary].healthy
    assert rig.eni_owner() == standby
    assert len(rig.moves()) == 1
