"""When a health pass reads its members' topology (DescribeInstances) again.

Rules: at the first pass, after a reload (SIGHUP), for the groups a move touched, and every
TOPOLOGY_REFRESH_S (the monitor's injected clock); every other pass reads state and
ownership only. Ownership is never taken from the held topology: a move made behind the
tool's back shows on the next pass (tests/engine/test_pass_reads.py).
"""

from __future__ import annotations

from collections.abc import Callable

from failover.daemon import Daemon
from failover.service.monitor import TOPOLOGY_REFRESH_S

from .conftest import HealthRig


def _instance_reads(rig: HealthRig) -> list[set[str]]:
    return [set(c.params["InstanceIds"]) for c in rig.layer.calls_to("DescribeInstances")]


def _all_members(rig: HealthRig) -> set[str]:
    return {i for g in rig.settings.groups for i in g.instance_ids}


def test_a_steady_pass_sends_no_describe_instances(
    health_rig: Callable[..., HealthRig],
) -> None:
    """Rule: the first pass reads the topology once; later passes read every member's state
    (DescribeInstanceStatus, IncludeAllInstances) and the ENIs by id, and no DescribeInstances."""
    rig = health_rig(groups=2, ec2=True)
    rig.run_pass()
    assert _instance_reads(rig) == [_all_members(rig)]
    for _ in range(3):
        rig.clock.advance(1.0)
        rig.layer.reset_log()
        outcomes = rig.run_pass()
        assert {o.outcome for o in outcomes.values()} == {"stay"}
        assert _instance_reads(rig) == []
        [status] = rig.layer.calls_to("DescribeInstanceStatus")
        assert status.params["IncludeAllInstances"] is True
        assert set(status.params["InstanceIds"]) == _all_members(rig)
        assert [
            set(c.params["NetworkInterfaceIds"])
            for c in rig.layer.calls_to("DescribeNetworkInterfaces")
        ] == [{rig.worlds["g0"].eni_id, rig.worlds["g1"].eni_id}]


def test_a_reload_reads_the_topology_once(health_rig: Callable[..., HealthRig]) -> None:
    """Rule: SIGHUP (Daemon.reload) makes the next pass read every member's topology once;
    the pass after it reads none."""
    rig = health_rig(groups=2)
    rig.run_pass()
    daemon = Daemon(rig.settings, rig.config_path, rig.monitor)
    assert daemon.reload()
    rig.layer.reset_log()
    rig.run_pass()
    assert _instance_reads(rig) == [_all_members(rig)]
    rig.layer.reset_log()
    rig.run_pass()
    assert _instance_reads(rig) == []


def test_the_topology_is_read_again_every_refresh_period(
    health_rig: Callable[..., HealthRig],
) -> None:
    """Rule: whatever else happens, the topology is read again every TOPOLOGY_REFRESH_S of
    the monitor's clock, once."""
    rig = health_rig(groups=2)
    rig.run_pass()
    rig.clock.advance(TOPOLOGY_REFRESH_S - 1.0)
    rig.layer.reset_log()
    rig.run_pass()
    assert _instance_reads(rig) == []
    rig.clock.advance(1.0)
    rig.layer.reset_log()
    rig.run_pass()
    assert _instance_reads(rig) == [_all_members(rig)]
    rig.clock.advance(1.0)
    rig.layer.reset_log()
    rig.run_pass()
    assert _instance_reads(rig) == []


def test_a_move_reads_the_moved_groups_topology_on_the_next_pass(
    health_rig: Callable[..., HealthRig],
) -> None:
    """Rule: a move changes its members' interfaces: the pass after it reads the topology of
    that group's members, and only theirs; the view shows the new holder."""
    rig = health_rig(groups=2, fall=1, rise=1)
    rig.run_pass()
    primary, standby = rig.members("g0")
    rig.stop(primary)
    assert rig.run_pass()["g0"].outcome == "moved"
    assert rig.eni_owner("g0") == standby
    rig.clock.advance(1.0)
    rig.layer.reset_log()

    outcome = rig.run_pass()["g0"]

    assert outcome.active == standby
    assert _instance_reads(rig) == [set(rig.members("g0"))]
    rig.layer.reset_log()
    rig.run_pass()
    assert _instance_reads(rig) == []
