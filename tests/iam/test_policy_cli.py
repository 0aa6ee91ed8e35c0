"""The real `failover` CLI, as a process, with keys holding only the policy's actions.

moto's server (in this process, behind the strict layer) enforces IAM from `POST
/moto-api/reset-auth` on: actions only, resources "*", conditions ignored (see
conftest.py). The subprocess knows nothing but the restricted keys and the endpoint.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from ..conftest import failover_cmd
from .conftest import EC2_ACTIONS, USER, ServerRig, create_policy, make_client, reset_auth

pytestmark = pytest.mark.process

ServerRigFactory = Callable[..., ServerRig]


def failover(rig: ServerRig, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `failover ARGS --config <rig's config>` as the restricted user; stdin is not a TTY."""
    path: Path = rig.write_config()
    return subprocess.run(
        [*failover_cmd(*args), "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env=rig.env(),
        check=False,
    )


def test_validate_and_move_pass_with_the_policy(server_rig: ServerRigFactory) -> None:
    """`validate` exits 0 and `move` moves the ENI, with nothing but the policy's actions."""
    rig = server_rig("eni", EC2_ACTIONS)
    standby = rig.world.standbys[0]
    validate = failover(rig, "validate")
    assert validate.returncode == 0, validate.stderr
    assert "AWS checks passed" in validate.stdout
    move = failover(rig, "move", "g", "--to", standby, "--yes")
    assert move.returncode == 0, move.stderr
    rig.stop_enforcing()
    assert rig.eni_owner() == standby


def test_a_missing_permission_is_named_and_a_rerun_after_granting_it_finishes(
    server_rig: ServerRigFactory,
) -> None:
    """Without ec2:AttachNetworkInterface: validate exits 2 naming it; a move is refused by its
    DryRun before the detach (exit 1, one line naming it, the ENI never leaves the primary);
    granted, the rerun moves it."""
    rig = server_rig("eni", [a for a in EC2_ACTIONS if a != "ec2:AttachNetworkInterface"])
    standby = rig.world.standbys[0]

    validate = failover(rig, "validate")
    assert validate.returncode == 2
    [line] = validate.stderr.splitlines()
    assert line.startswith(
        f"group g: AttachNetworkInterface to {standby}: "
        "missing IAM permission ec2:AttachNetworkInterface (AccessDenied: "
    )

    move = failover(rig, "move", "g", "--to", standby, "--yes")
    assert move.returncode == 1
    *_, line = move.stderr.splitlines()
    assert line.startswith("failover: missing IAM permission ec2:AttachNetworkInterface on ")
    assert "(see policies/)" in line
    assert "Traceback" not in move.stderr
    rig.stop_enforcing()
    assert rig.eni_owner() == rig.world.primary

    create_policy(make_client("iam", rig.server.url), EC2_ACTIONS, name="granted")
    reset_auth(rig.server, 0)
    rerun = failover(rig, "move", "g", "--to", standby, "--yes")
    assert rerun.returncode == 0, rerun.stderr
    # The refused move was never begun: nothing was journaled, the rerun is a move of its own.
    assert "is open in the journal" not in rerun.stdout
    rig.stop_enforcing()
    assert rig.eni_owner() == standby
    assert USER in failover_history_caller(rig)


def failover_history_caller(rig: ServerRig) -> str:
    """Who the audit trail says made the last move (sts:GetCallerIdentity needs no grant)."""
    done = failover(rig, "history", "--json")
    assert done.returncode == 0, done.stderr
    return done.stdout
