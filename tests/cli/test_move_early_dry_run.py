"""A `failover move` whose target's eth0 an earlier read showed sends the target's DryRun on
the read's own round trip: an instance keeps its primary ENI for life, so the store remembers
it and the move names it before it reads; the read still decides whether the verdict stands.

Real `failover` processes against moto's server behind the strict layer, with a per-call
latency so that "the same round trip" shows in the call log: the DryRun is sent before the
reads are answered. AWS state, the call log and the state file are read back from outside.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from failover.sandbox.strict import Call
from failover.sandbox.world import World
from failover.store.sqlite import SqliteStore

from ..conftest import history, members_of, run_cli
from .conftest import Sandbox
from .test_bad_day_moves import untag
from .test_move_calls import STS, first_mutation, label

SandboxFactory = Callable[..., Sandbox]
# Long enough that a call sent after another was answered is told apart from one sent with it.
LATENCY_S = 0.2
READS = ("DescribeInstances", "DescribeAddresses")


def secondary_ip_config(sb: Sandbox, world: World) -> Path:
    """The group with an `ec2` check, verdicts fresh for a minute (no re-probe before the move)."""
    return sb.config(
        sb.group(world, "secondary-ip", checks=[{"type": "ec2"}]),
        defaults={"interval": "1m", "rise": 1},
    )


def checked(config: Path) -> None:
    """One `failover check` pass: it reads every member, and so shows each one's eth0."""
    done = run_cli("check", "--config", str(config))
    assert done.returncode == 0, done.stdout + done.stderr


def before_ownership(sb: Sandbox) -> list[Call]:
    calls = sb.layer.calls
    return calls[: first_mutation(calls)]


def remembered_eth0s(config: Path, world: World) -> dict[str, str]:
    store = SqliteStore(config.parent / "state.db")
    try:
        return dict(store.load_groups({"g": list(members_of(world))}, 0.0)["g"].eth0s)
    finally:
        store.close()


def dry_runs(sb: Sandbox, action: str) -> list[Call]:
    return sb.layer.calls_to(action, dry_run=True)


@pytest.mark.process
def test_a_remembered_eth0_sends_the_dry_run_with_the_reads_then_the_ip_and_eip_move(
    sandbox: SandboxFactory,
) -> None:
    """Rule: after a pass has shown the target's eth0, `move --to B --yes` of a secondary-ip
    group with an EIP sends the AssociateAddress DryRun on the read's round trip (before either
    read is answered), then AssignPrivateIpAddresses: two calls and the DryRun in one round
    trip before ownership, STS never; the IP and its EIP end on B."""
    sb = sandbox()
    world = sb.world("secondary-ip")
    target = world.standbys[0]
    config = secondary_ip_config(sb, world)
    checked(config)
    sb.layer.set_latency(LATENCY_S)
    sb.layer.reset_log()

    done = run_cli("move", "g", "--to", target, "--yes", "--config", str(config))

    assert done.returncode == 0, done.stdout + done.stderr
    assert sb.ip_holders(world) == {target}
    assert sb.eip_owner(world.allocation_id or "") == target
    before = before_ownership(sb)
    assert sorted(map(label, before)) == [
        "AssociateAddress (DryRun)",
        "DescribeAddresses",
        "DescribeInstances",
    ]
    (dry_run,) = [c for c in before if c.dry_run]
    reads = [c for c in before if c.action in READS]
    assert dry_run.params["NetworkInterfaceId"] == sb.eth0(target)
    assert all(dry_run.sent_at < read.at for read in reads)  # sent with them, not after
    mutation = sb.layer.calls[first_mutation(sb.layer.calls)]
    assert mutation.action == "AssignPrivateIpAddresses"
    assert mutation.params["NetworkInterfaceId"] == sb.eth0(target)
    assert all(mutation.sent_at >= c.at for c in before)
    assert STS not in [c.action for c in before]
    assert len(dry_runs(sb, "AssociateAddress")) == 1  # not asked again after the read
    (move,) = history(config)
    assert (move["from"], move["to"], move["outcome"]) == (world.primary, target, "succeeded")


@pytest.mark.process
def test_with_no_eth0_remembered_the_dry_run_follows_the_read_and_the_eth0s_are_remembered(
    sandbox: SandboxFactory,
) -> None:
    """Rule: a fresh state file knows no eth0: the move works as before, its DryRun sent after
    the reads are answered; the move then remembers every member's eth0, so the next move (back
    to the primary) sends its DryRun with its read."""
    sb = sandbox(latency_s=LATENCY_S)
    world = sb.world("secondary-ip")
    target = world.standbys[0]
    config = sb.config(sb.group(world, "secondary-ip"))

    done = run_cli("move", "g", "--to", target, "--yes", "--config", str(config))

    assert done.returncode == 0, done.stdout + done.stderr
    assert sb.ip_holders(world) == {target}
    assert sb.eip_owner(world.allocation_id or "") == target
    before = before_ownership(sb)
    (dry_run,) = [c for c in before if c.dry_run]
    reads = [c for c in before if c.action in READS]
    assert sorted(c.action for c in reads) == sorted(READS)
    assert all(dry_run.sent_at >= read.at for read in reads)  # its own round trip, as before
    assert remembered_eth0s(config, world) == {i: sb.eth0(i) for i in members_of(world)}

    sb.layer.reset_log()
    back = run_cli(  # --force: within the cooldown of the first move
        "move", "g", "--to", world.primary, "--yes", "--force", "--config", str(config)
    )

    assert back.returncode == 0, back.stdout + back.stderr
    assert sb.ip_holders(world) == {world.primary}
    assert sb.eip_owner(world.allocation_id or "") == world.primary
    before = before_ownership(sb)
    (dry_run,) = [c for c in before if c.dry_run]
    assert dry_run.params["NetworkInterfaceId"] == sb.eth0(world.primary)
    assert all(dry_run.sent_at < c.at for c in before if c.action in READS)


@pytest.mark.process
def test_a_dry_run_refused_on_the_read_round_trip_stops_the_move_like_one_refused_after_it(
    sandbox: SandboxFactory,
) -> None:
    """Tag-scoped IAM: the requested standby's eth0 lost its tag, so the AssociateAddress DryRun
    sent with the read is refused: the move ends with the permission error (exit 1, one line)
    and nothing moved: the IP and the EIP stay on the primary, no AssignPrivateIpAddresses."""
    sb = sandbox(tag_scoped=True)
    world = sb.world("secondary-ip")
    target = world.standbys[0]
    config = secondary_ip_config(sb, world)
    checked(config)
    untag(sb, sb.eth0(target))
    sb.layer.set_latency(LATENCY_S)
    sb.layer.reset_log()

    done = run_cli("move", "g", "--to", target, "--yes", "--config", str(config))

    assert done.returncode == 1, done.stdout + done.stderr
    line = done.stderr.splitlines()[-1]
    assert line.startswith("failover: missing IAM permission ec2:AssociateAddress on ")
    assert target in line
    assert "Traceback" not in done.stderr
    assert sb.ip_holders(world) == {world.primary}
    assert sb.eip_owner(world.allocation_id or "") == world.primary
    assert sb.layer.mutating_calls() == []
    (refused,) = dry_runs(sb, "AssociateAddress")
    assert refused.error == "UnauthorizedOperation"
    assert all(refused.sent_at < c.at for c in sb.layer.calls if c.action in READS)


@pytest.mark.process
def test_without_to_the_likeliest_target_is_asked_with_the_read_and_its_refusal_stops_the_move(
    sandbox: SandboxFactory,
) -> None:
    """Tag-scoped IAM, no --to: the likeliest target (the first standby the stored health calls
    healthy) is the one the move picks; its eth0 is untagged, so its DryRun, sent with the read,
    is refused and the move ends as one refused after its read does: the permission error
    naming it (exit 1), no other standby asked, nothing moved."""
    sb = sandbox(tag_scoped=True)
    world = sb.world("secondary-ip", standbys=2)
    likeliest = world.standbys[0]
    config = secondary_ip_config(sb, world)
    checked(config)
    untag(sb, sb.eth0(likeliest))
    sb.layer.set_latency(LATENCY_S)
    sb.layer.reset_log()

    done = run_cli("move", "g", "--yes", "--config", str(config))

    assert done.returncode == 1, done.stdout + done.stderr
    line = done.stderr.splitlines()[-1]
    assert line.startswith("failover: missing IAM permission ec2:AssociateAddress on ")
    assert likeliest in line
    assert sb.ip_holders(world) == {world.primary}
    assert sb.eip_owner(world.allocation_id or "") == world.primary
    assert sb.layer.mutating_calls() == []
    asked = dry_runs(sb, "AssociateAddress")
    assert [(c.params["NetworkInterfaceId"], c.error) for c in asked] == [
        (sb.eth0(likeliest), "UnauthorizedOperation")
    ]
    assert all(asked[0].sent_at < c.at for c in sb.layer.calls if c.action in READS)


@pytest.mark.process
def test_a_verdict_on_an_eth0_the_read_does_not_confirm_is_never_used(
    sandbox: SandboxFactory,
) -> None:
    """Rule: the early DryRun's verdict stands only for the very call the read leads to. The
    store names a wrong eth0 for the target (another member's, untagged under tag-scoped IAM):
    the DryRun sent with the read is refused, but the read shows the target's real eth0, so the
    target is screened after the read as before: its own DryRun is permitted and the IP and the
    EIP move to it."""
    sb = sandbox(tag_scoped=True)
    world = sb.world("secondary-ip", standbys=2)
    target, other = world.standbys
    config = sb.config(sb.group(world, "secondary-ip"))
    wrong = sb.eth0(other)
    untag(sb, wrong)
    store = SqliteStore(config.parent / "state.db")
    try:
        store.save_eth0s({"g": {target: wrong}})
    finally:
        store.close()
    sb.layer.set_latency(LATENCY_S)
    sb.layer.reset_log()

    done = run_cli("move", "g", "--to", target, "--yes", "--config", str(config))

    assert done.returncode == 0, done.stdout + done.stderr
    assert sb.ip_holders(world) == {target}
    assert sb.eip_owner(world.allocation_id or "") == target
    asked = dry_runs(sb, "AssociateAddress")
    assert [(c.params["NetworkInterfaceId"], c.error) for c in asked] == [
        (wrong, "UnauthorizedOperation"),
        (sb.eth0(target), "DryRunOperation"),
    ]
    reads = [c for c in before_ownership(sb) if c.action in READS]
    assert all(asked[0].sent_at < read.at <= asked[1].sent_at for read in reads)
    assert remembered_eth0s(config, world)[target] == sb.eth0(target)  # corrected by the read
