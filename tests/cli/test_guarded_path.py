"""Every move on one guarded path (SQLite state): claims keep two movers of a group apart, a
watching daemon hands its group to `failover move`, every manual move alerts and runs its
hook, and a held group is still moved by `move` (tests/multi/test_hold_release.py: the
automatic side of `hold`, both backends).

Real `failover` processes against moto's server behind the strict layer; each test reads
the AWS state, the strict layer's call log and the state file back from outside.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from failover.sandbox.strict import Call

from ..conftest import cli_env, failover_cmd, history, run_cli
from ..health.conftest import DaemonProcess, Loopback, read_store, wait_until
from ..health.conftest import daemon as daemon
from ..health.conftest import loopback as loopback
from .conftest import Sandbox

SandboxFactory = Callable[..., Sandbox]
DETACH, ATTACH = "DetachNetworkInterface", "AttachNetworkInterface"


def sent(sb: Sandbox, action: str) -> list[Call]:
    """The calls of `action` that were meant to change AWS (not DryRun)."""
    return [c for c in sb.layer.calls_to(action) if not c.dry_run]


def refused_by_aws(sb: Sandbox) -> list[Call]:
    return [c for c in sb.layer.mutating_calls() if c.error is not None]


@pytest.mark.process
def test_two_moves_of_one_group_at_once_move_it_once(sandbox: SandboxFactory) -> None:
    """Rule: two drivers never move one group at once: of two `move --to B` started together
    (a 2 s detach), one moves (one detach, one attach, none refused by AWS); the other exits 3
    naming the holder, or 0 when it finds the ENI on B already."""
    sb = sandbox(detach_delay_s=2.0)
    world = sb.world("eni", standbys=2)
    eni, target = world.eni_id or "", world.standbys[0]
    config = sb.config(sb.group(world, "eni"))
    args = failover_cmd("move", "g", "--to", target, "--yes", "--config", str(config))
    procs = [
        subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(),
        )
        for _ in range(2)
    ]
    done = [p.communicate(timeout=120) for p in procs]
    codes = sorted(p.returncode for p in procs)

    assert codes in ([0, 0], [0, 3]), done
    assert sb.eni_owner(eni) == target
    assert len(sent(sb, DETACH)) == 1
    assert len(sent(sb, ATTACH)) == 1
    assert refused_by_aws(sb) == []
    for proc, (stdout, stderr) in zip(procs, done, strict=True):
        assert "Traceback" not in stdout + stderr
        if proc.returncode == 3:
            (line,) = stderr.splitlines()
            assert "group g is held by " in line
            assert "(another failover move, check or Lambda run)" in line
    (record,) = history(config)
    assert (record["from"], record["to"], record["outcome"]) == (world.primary, target, "succeeded")


def _watched(
    sb: Sandbox,
    loopback: Callable[..., Loopback],
    daemon: Callable[[Path], DaemonProcess],
    **extra: Any,
) -> tuple[Any, Loopback, Path, DaemonProcess]:
    """A group whose members answer probes, watched by `failover run` once both are healthy."""
    world = sb.world("eni")
    lo = loopback([world.primary, world.standbys[0]])
    group = sb.group(world, "eni", members=lo.members(), checks=[lo.check()], **extra)
    config = sb.config(
        group, defaults={"interval": "500ms", "timeout": "300ms", "fall": 2, "rise": 1}
    )
    d = daemon(config)
    d.wait_log("holding the leases of 1 groups", 30)
    wait_until(
        lambda: read_store(sb.tmp_path / "state.db", lambda s: s.load_health("g")).get(
            world.standbys[0]
        ),
        30,
        "the standby probed",
    )
    return world, lo, config, d


@pytest.mark.process
def test_move_while_the_daemon_watches_is_handed_the_group_and_nothing_moves_it_back(
    sandbox: SandboxFactory,
    loopback: Callable[..., Loopback],
    daemon: Callable[[Path], DaemonProcess],
) -> None:
    """Rule: `move` works while `failover run` holds the group: the daemon hands it over, the
    move is made once, and passes after it leave the ENI on the target (failback manual)."""
    sb = sandbox()
    world, _lo, config, d = _watched(sb, loopback, daemon)
    sb.layer.reset_log()
    target = world.standbys[0]

    done = run_cli("move", "g", "--to", target, "--yes", "--config", str(config))

    assert done.returncode == 0, done.stdout + done.stderr
    assert f"moved from {world.primary} to {target}" in done.stdout
    assert "asking it to hand the group over" in done.stdout
    d.wait_log("handed group g over to ")
    # The daemon takes the group back, and several of its passes later nothing has moved.
    wait_until(
        lambda: "holding the leases of 1 groups" in d.log().split("handed group g over to ")[1],
        30,
        "the group back",
    )
    time.sleep(3.0)  # six passes of 500 ms
    assert sb.eni_owner(world.eni_id or "") == target
    assert len(sent(sb, DETACH)) == 1
    assert len(sent(sb, ATTACH)) == 1
    assert refused_by_aws(sb) == []
    assert d.running
    (record,) = history(config)
    assert (record["to"], record["driver"]) == (target, "move")
    assert record["os_user"]


@pytest.mark.process
def test_a_manual_move_runs_the_after_move_hook_and_posts_to_the_webhook(
    sandbox: SandboxFactory, webhook: tuple[str, list[dict[str, str]]]
) -> None:
    """Rule: every move alerts and runs its hooks, whatever started it: `move` too, with
    {group} and {instance} filled in."""
    url, received = webhook
    sb = sandbox()
    world = sb.world("eni")
    marker = sb.tmp_path / "after-move.txt"
    hook = [sys.executable, "-c", f"open({str(marker)!r}, 'w').write('{{group}} {{instance}}')"]
    config = sb.config(
        sb.group(world, "eni", after_move={"command": hook}),
        notify={"webhook_url": url, "timeout": "2s"},
    )
    done = run_cli("move", "g", "--yes", "--config", str(config))
    assert done.returncode == 0, done.stdout + done.stderr
    target = world.standbys[0]
    assert sb.eni_owner(world.eni_id or "") == target
    # The command waits for its hook and its alerts before it exits.
    assert marker.read_text() == f"g {target}"
    events = [r["event"] for r in received]
    assert events == ["move-started", "move-finished"], received
    assert all(r["group"] == "g" for r in received)
    assert target in received[1]["text"]
    assert done.stderr == ""


@pytest.mark.process
def test_move_moves_a_held_group_and_the_hold_stays(sandbox: SandboxFactory) -> None:
    """Rule: `move` still works on a group an operator holds (the operator's explicit act),
    says the hold stays, and the hold is still there afterwards."""
    sb = sandbox()
    world = sb.world("eni")
    config = sb.config(sb.group(world, "eni"))
    assert run_cli("hold", "g", "--config", str(config)).returncode == 0
    done = run_cli("move", "g", "--yes", "--config", str(config))
    assert done.returncode == 0, done.stdout + done.stderr
    assert sb.eni_owner(world.eni_id or "") == world.standbys[0]
    assert "still held (held by " in done.stdout
    assert "no automatic move until `failover release g`" in done.stdout
    state = read_store(sb.tmp_path / "state.db", lambda s: s.load_group_state("g"))
    assert (state.held, state.held_by) == (True, "operator")
    # The audit trail names the driver and the person next to the AWS identity.
    text = run_cli("history", "--config", str(config)).stdout
    assert "(move, user " in text
    (record,) = history(config)
    assert record["driver"] == "move"
    assert record["caller"].startswith("arn:aws:")
