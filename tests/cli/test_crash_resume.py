"""A `failover move` killed (SIGKILL, a real process) mid-move is finished by the next run, and only that.

The strict layer's `on_call` hook runs after AWS applied a call and before the caller reads
the answer, so killing the CLI there is a crash right after a step took effect: the journal
says the move is open, AWS says the step is done. The rerun must finish the move from AWS's
state, make no call for what was already done, and leave one move record that succeeded.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from failover.sandbox.world import World

from ..conftest import history, run_cli
from .conftest import Sandbox

SandboxFactory = Callable[..., Sandbox]


def open_move(config: Path, world: World) -> dict[str, Any]:
    """The journal shows exactly one move, still in progress, from the primary to the standby."""
    (record,) = history(config)
    assert record["outcome"] == "in-progress"
    assert (record["from"], record["to"]) == (world.primary, world.standbys[0])
    return record


def resumed(sb: Sandbox, config: Path, crashed: dict[str, Any]) -> dict[str, Any]:
    """Run `move g --yes` again: exit 0, and the one move record is the crashed one, now succeeded."""
    sb.layer.reset_log()
    done = run_cli("move", "g", "--yes", "--config", str(config))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert crashed["move_id"] in done.stdout
    # The operator reads when the unfinished move began, as a time, not an epoch number.
    assert re.search(r"left unfinished at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", done.stderr), (
        done.stderr
    )
    (record,) = history(config)
    assert record["move_id"] == crashed["move_id"]
    assert record["outcome"] == "succeeded"
    assert record["to"] == crashed["to"]
    return record


@pytest.mark.process
def test_move_killed_after_detach_is_finished_by_the_next_run(sandbox: SandboxFactory) -> None:
    """Rule: never leave a floating ENI detached because the orchestrator crashed; the rerun attaches it.

    Killed right after DetachNetworkInterface: the ENI is on nobody, the journal is open. The
    rerun attaches it to the journaled target without detaching again, and moves nothing else.
    """
    sb = sandbox()
    world = sb.world("eni")
    eni = world.eni_id or ""
    config = sb.config(sb.group(world, "eni"))

    crash = sb.signalled_after(
        ["move", "g", "--yes", "--config", str(config)], "DetachNetworkInterface"
    )
    assert crash.returncode == -signal.SIGKILL
    assert sb.eni_attachment(eni) is None
    assert not sb.layer.calls_to("AttachNetworkInterface", dry_run=False)
    crashed = open_move(config, world)
    sb.layer.reset_log()

    # A dry run shows the journaled move's remaining steps, towards its own target.
    preview = run_cli("move", "g", "--dry-run", "--config", str(config))
    assert preview.returncode == 0, preview.stderr
    assert f"move {crashed['move_id']}" in preview.stdout
    assert f"1. attach {eni} to {world.standbys[0]}" in preview.stdout
    assert f"detach {eni} from its instance (already true)" in preview.stdout
    assert sb.layer.mutating_calls() == []

    resumed(sb, config, crashed)
    assert sb.eni_owner(eni) == world.standbys[0]
    assert [c.action for c in sb.layer.mutating_calls()] == ["AttachNetworkInterface"]


@pytest.mark.process
def test_move_killed_after_attach_is_closed_by_the_next_run_without_a_call(
    sandbox: SandboxFactory,
) -> None:
    """Rule: every step is checked against AWS first: a rerun after the attach only closes the journal."""
    sb = sandbox()
    world = sb.world("eni")
    eni = world.eni_id or ""
    config = sb.config(sb.group(world, "eni"))

    crash = sb.signalled_after(
        ["move", "g", "--yes", "--config", str(config)], "AttachNetworkInterface"
    )
    assert crash.returncode == -signal.SIGKILL
    assert sb.eni_owner(eni) == world.standbys[0]
    crashed = open_move(config, world)

    record = resumed(sb, config, crashed)
    assert sb.eni_owner(eni) == world.standbys[0]
    assert sb.layer.mutating_calls() == []
    attaches = [s for s in record["steps"] if s["step"] == "attach" and s["phase"] == "done"]
    assert len(attaches) <= 1


@pytest.mark.process
def test_secondary_ip_move_killed_after_assign_is_finished_without_reassigning(
    sandbox: SandboxFactory,
) -> None:
    """Rule: AllowReassignment makes the step idempotent, and the rerun does not even repeat it.

    Killed right after AssignPrivateIpAddresses: the IP is already on the standby only. The
    rerun confirms it (and that the Elastic IP followed) and closes the move with no mutating call.
    """
    sb = sandbox()
    world = sb.world("secondary-ip")
    assert world.allocation_id is not None
    config = sb.config(sb.group(world, "secondary-ip"))

    crash = sb.signalled_after(
        ["move", "g", "--yes", "--config", str(config)], "AssignPrivateIpAddresses"
    )
    assert crash.returncode == -signal.SIGKILL
    assert sb.ip_holders(world) == {world.standbys[0]}
    crashed = open_move(config, world)

    resumed(sb, config, crashed)
    assert sb.ip_holders(world) == {world.standbys[0]}
    assert sb.eip_owner(world.allocation_id) == world.standbys[0]
    assert sb.layer.mutating_calls() == []
