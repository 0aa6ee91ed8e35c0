"""Ctrl-C or SIGTERM in the middle of a real `failover move` tells the truth, and the rerun finishes.

The strict layer's `on_call` hook runs after AWS applied a call and before the caller
reads the answer: sending the signal there is an operator pressing Ctrl-C (or systemd
stopping a job) right as the detach lands. The detach takes seconds in the sandbox, so
the move is in its wait when the signal arrives.
"""

from __future__ import annotations

import signal
from collections.abc import Callable

import pytest

from ..conftest import Service, history, run_cli
from .conftest import Sandbox

SandboxFactory = Callable[..., Sandbox]


@pytest.mark.process
@pytest.mark.parametrize(
    ("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"]
)
def test_a_signal_after_the_detach_says_the_move_is_unfinished_and_the_rerun_finishes_it(
    sandbox: SandboxFactory, sig: signal.Signals, code: int
) -> None:
    """Rule: an interrupted move says which step finished, that it is unfinished and how to finish it.

    Exit 130 for SIGINT, 143 for SIGTERM; never "nothing changed" once the detach was sent.
    AWS shows the ENI on nobody and no attach was made; the journal keeps the move open,
    and rerunning `failover move g` attaches the ENI to the move's target.
    """
    sb = sandbox(detach_delay_s=3.0)
    world = sb.world("eni")
    eni = world.eni_id or ""
    config = sb.config(sb.group(world, "eni"))

    done = sb.signalled_after(
        ["move", "g", "--yes", "--config", str(config)], "DetachNetworkInterface", sig
    )
    output = done.stdout + done.stderr
    assert done.returncode == code, output
    assert "Traceback" not in output
    assert "nothing changed" not in output
    (record,) = history(config)
    assert record["outcome"] == "in-progress"
    lines = [line for line in done.stderr.splitlines() if record["move_id"] in line]
    assert len(lines) == 1, done.stderr
    (line,) = lines
    assert f"interrupted by {sig.name} after step 'detach {eni}" in line
    assert "the move is unfinished" in line
    assert "`failover move g` finishes it" in line
    # What it says of AWS is what AWS says: the detach is under way (or done), the attach not.
    attachment = sb.eni_attachment(eni)
    if attachment is None:
        assert f"AWS shows {eni} available, attached to nobody" in line
    else:
        assert attachment["Status"] == "detaching"
        assert f"AWS shows {eni} detaching from {world.primary}" in line
    assert sb.eni_owner(eni) is None
    assert [c.action for c in sb.layer.mutating_calls()] == ["DetachNetworkInterface"]
    assert record["steps"][-1]["step"] == "interrupted"

    sb.layer.reset_log()
    rerun = run_cli("move", "g", "--yes", "--config", str(config))
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert f"finished move {record['move_id']}: {eni} is on {world.standbys[0]}" in rerun.stdout
    assert sb.eni_owner(eni) == world.standbys[0]
    assert [c.action for c in sb.layer.mutating_calls()] == ["AttachNetworkInterface"]
    (record,) = history(config)
    assert record["outcome"] == "succeeded"


@pytest.mark.process
def test_a_sigterm_during_a_checks_move_says_it_is_unfinished_and_the_next_check_finishes_it(
    sandbox: SandboxFactory, services: list[Service]
) -> None:
    """Rule: `failover check` stopped mid-move exits 143 and names the unfinished move; the next
    check resumes the journaled move before judging the group."""
    sb = sandbox(detach_delay_s=3.0)
    world = sb.world("eni")
    eni = world.eni_id or ""
    standby = Service("127.0.93.3", 0).start()
    services.append(standby)
    members = [
        {"instance": world.primary, "address": "127.0.93.2"},  # nothing listens: down
        {"instance": world.standbys[0], "address": "127.0.93.3"},
    ]
    config = sb.config(
        sb.group(world, "eni", members=members, checks=[{"type": "tcp", "port": standby.port}]),
        defaults={"fall": 1, "rise": 1, "timeout": "500ms"},
    )
    done = sb.signalled_after(
        ["check", "--config", str(config)], "DetachNetworkInterface", signal.SIGTERM
    )
    stdout, stderr = done.stdout, done.stderr
    assert done.returncode == 143, stdout + stderr
    assert "Traceback" not in stdout + stderr
    (record,) = history(config)
    assert record["outcome"] == "in-progress"
    (line,) = [x for x in stdout.splitlines() if x.startswith("g: ")]
    assert line.startswith("g: INTERRUPTED: ")
    assert record["move_id"] in line
    assert "the move is unfinished" in line
    assert "`failover move g` finishes it" in line
    assert sb.eni_owner(eni) is None

    again = run_cli("check", "--config", str(config))
    assert again.returncode == 0, again.stdout + again.stderr
    assert sb.eni_owner(eni) == world.standbys[0]
    (record,) = history(config)
    assert record["outcome"] == "succeeded"
