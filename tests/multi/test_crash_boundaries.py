"""Under leases (dynamodb backend): a `failover move` SIGKILLed right after each mutating call
is finished by the next run, which first waits out the dead process's lease.

The strict layer's `on_call` hook runs after AWS applied a call and before the caller reads
the answer: killing the process there is a crash at that step boundary. The rerun must
take the lease over (the dead holder stops renewing: about one TTL), finish the journaled
move under a newer token, and leave one member owning the resource and one move.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

import pytest

from ..conftest import run_cli
from .conftest import (
    TTL_S,
    Sandbox,
    create_table,
    history,
    lease_items,
    moves,
    multi_config,
    new_table,
    owners,
)

SandboxFactory = Callable[..., Sandbox]

# Every mutating call a move makes, by mode (the worlds keep DeleteOnTermination off, so
# an ENI move makes no ModifyNetworkInterfaceAttribute; an EIP that follows its IP needs
# no AssociateAddress).
BOUNDARIES = [
    ("eni", "DetachNetworkInterface"),
    ("eni", "AttachNetworkInterface"),
    ("secondary-ip", "AssignPrivateIpAddresses"),
    ("eip", "AssociateAddress"),
]


@pytest.mark.process
@pytest.mark.parametrize(("mode", "action"), BOUNDARIES, ids=[f"{m}-{a}" for m, a in BOUNDARIES])
def test_move_killed_at_a_step_boundary_is_finished_by_the_next_holder(
    sandbox: SandboxFactory, mode: str, action: str
) -> None:
    """Rule: a crash mid-move never leaves the resource unowned or moved twice, under leases too."""
    sb = sandbox()
    world = sb.world(mode)
    table = new_table()
    config = multi_config(sb, sb.group(world, mode), table=table)
    create_table(config)

    code = sb.signalled_after(["move", "g", "--yes", "--config", str(config)], action).returncode
    assert code == -signal.SIGKILL
    (crashed,) = history(config)
    assert crashed["outcome"] == "in-progress"
    dead = lease_items(sb, table)["g"]
    assert dead.holder, "the killed process still holds the lease"
    (journaled,) = moves(sb, table)
    assert journaled.token == dead.token  # begun under the lease the killed process held

    sb.layer.reset_log()
    started = time.monotonic()
    done = run_cli("move", "g", "--yes", "--config", str(config))
    took = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    assert crashed["move_id"] in done.stdout
    # The rerun waited the dead holder out (its heartbeat a TTL unchanged), and not much longer.
    assert TTL_S <= took < TTL_S + 5, took

    (record,) = history(config)
    assert record["move_id"] == crashed["move_id"]
    assert record["outcome"] == "succeeded"
    assert owners(sb, world, mode) == {world.standbys[0]}
    after = lease_items(sb, table)["g"]
    assert after.holder == ""  # released on the way out
    assert after.token == dead.token + 1
    # Nothing already done in AWS was done again.
    assert action not in [c.action for c in sb.layer.mutating_calls()]
