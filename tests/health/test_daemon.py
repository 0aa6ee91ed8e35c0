"""`failover run` as a real process against moto's server: detection, signals, the state lock.

What only a process shows: the schedule, SIGTERM and SIGHUP handling, the exit codes, the
lock on the state file. AWS state and the store are read back from outside.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from failover.sandbox.strict import Call
from failover.sandbox.world import World

from ..conftest import free_port, run_cli
from .conftest import DaemonProcess, Loopback, Sandbox, read_store, wait_until


def _setup(
    sb: Sandbox, loopback: Callable[..., Loopback], *, listen: str = "127.0.0.1:0", **defaults: Any
) -> tuple[World, Loopback, Path]:
    world = sb.world("eni")
    lo = loopback([world.primary, world.standbys[0]])
    group = sb.group(world, "eni", members=lo.members(), checks=[lo.check()])
    config = sb.config(
        group,
        defaults={"interval": "500ms", "timeout": "300ms", **defaults},
        metrics={"listen": listen},
    )
    return world, lo, config


def _wait_healthy(sb: Sandbox, instance: str, d: DaemonProcess) -> None:
    state = sb.tmp_path / "state.db"

    def healthy() -> bool:
        if not d.running:
            raise AssertionError(f"daemon exited {d.proc.returncode}:\n{d.log()}")
        if not state.exists():
            return False
        health = read_store(state, lambda s: s.load_health("g"))
        return instance in health and bool(health[instance].healthy)

    wait_until(healthy, 30, f"{instance} healthy in the store")


def _finished_moves(sb: Sandbox) -> list[Any]:
    moves = read_store(sb.tmp_path / "state.db", lambda s: s.history("g"))
    return [m for m in moves if m.outcome != "in-progress"]


def test_daemon_fails_over_when_the_primary_service_dies(
    sandbox: Callable[..., Sandbox],
    loopback: Callable[..., Loopback],
    daemon: Callable[[Path], DaemonProcess],
) -> None:
    """Rule: the daemon probes every `interval`; `fall` failures of the active member move the ENI."""
    sb = sandbox()
    world, lo, config = _setup(sb, loopback, fall=3, rise=2)
    assert world.eni_id is not None
    primary, standby = world.primary, world.standbys[0]
    d = daemon(config)
    _wait_healthy(sb, standby, d)
    assert sb.eni_owner(world.eni_id) == primary

    lo.stop(primary)
    killed = time.monotonic()
    wait_until(lambda: sb.eni_owner(world.eni_id) == standby, 30, "the ENI on the standby")
    detected = time.monotonic() - killed
    [move] = wait_until(lambda: _finished_moves(sb), 10, "the move in the history")
    assert (move.source, move.target, move.outcome) == (primary, standby, "succeeded")
    assert f"active {primary} failed 3 probes" in move.reason
    assert "connection refused" in move.reason
    print(f"\nservice killed -> ENI on the standby: {detected:.2f}s (interval 0.5s, fall 3)")

    d.send(signal.SIGTERM)
    assert d.wait() == 0, d.log()
    assert sb.eni_owner(world.eni_id) == standby


def test_sigterm_mid_move_lets_the_move_finish_then_exits_0(
    sandbox: Callable[..., Sandbox],
    loopback: Callable[..., Loopback],
    daemon: Callable[[Path], DaemonProcess],
) -> None:
    """Rule: SIGTERM finishes the in-flight pass and its move, then exits 0; nothing left detached."""
    sb = sandbox(detach_delay_s=2.0)
    world, lo, config = _setup(sb, loopback, fall=2, rise=1)
    assert world.eni_id is not None
    primary, standby = world.primary, world.standbys[0]
    d = daemon(config)
    _wait_healthy(sb, standby, d)

    detached = threading.Event()
    sent_at: list[float] = []

    def on_call(call: Call) -> None:
        ok = call.error is None and not call.dry_run
        if call.action == "DetachNetworkInterface" and ok and not detached.is_set():
            detached.set()
            sent_at.append(time.monotonic())
            os.kill(d.proc.pid, signal.SIGTERM)  # the ENI is `detaching` for 2 s from now

    sb.layer.on_call = on_call
    lo.stop(primary)
    wait_until(detached.is_set, 30, "the daemon's DetachNetworkInterface")
    assert d.wait() == 0, d.log()

    assert sb.eni_owner(world.eni_id) == standby
    [attach] = sb.layer.calls_to("AttachNetworkInterface", dry_run=False)
    assert attach.error is None
    assert attach.at > sent_at[0] + 1.5  # attached after the signal, once the detach finished
    [move] = _finished_moves(sb)
    assert (move.target, move.outcome) == (standby, "succeeded")
    assert read_store(sb.tmp_path / "state.db", lambda s: s.open_moves("g")) == []
    assert "letting the in-flight pass and its moves finish" in d.log()


def test_sighup_with_a_broken_config_keeps_the_running_one(
    sandbox: Callable[..., Sandbox],
    loopback: Callable[..., Loopback],
    daemon: Callable[[Path], DaemonProcess],
) -> None:
    """Rule: SIGHUP reloads the config; an invalid one is rejected and the daemon runs on the old one."""
    sb = sandbox()
    world, lo, config = _setup(sb, loopback, fall=2, rise=1)
    assert world.eni_id is not None
    primary, standby = world.primary, world.standbys[0]
    d = daemon(config)
    _wait_healthy(sb, standby, d)

    config.write_text("groups: [\n  {name: g, mode: eni\n")  # not even YAML
    d.send(signal.SIGHUP)
    d.wait_log("config reload rejected, keeping the running config")
    assert d.running

    lo.stop(primary)  # it still acts, on the old config
    wait_until(lambda: sb.eni_owner(world.eni_id) == standby, 30, "the ENI on the standby")
    assert d.running
    d.send(signal.SIGTERM)
    assert d.wait() == 0, d.log()


def test_a_second_daemon_on_the_same_state_file_refuses_to_start(
    sandbox: Callable[..., Sandbox],
    loopback: Callable[..., Loopback],
    daemon: Callable[[Path], DaemonProcess],
) -> None:
    """Rule: one daemon per state file: a second one exits 3 with one line, the first runs on.
    Its metrics port is taken too (the same config): the state lock is what it reports."""
    sb = sandbox()
    world, _lo, config = _setup(sb, loopback, listen=f"127.0.0.1:{free_port()}", fall=2, rise=1)
    d = daemon(config)
    _wait_healthy(sb, world.standbys[0], d)

    second = run_cli("run", "--config", str(config), timeout=60)
    assert second.returncode == 3, second.stderr
    assert second.stdout == ""
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1, second.stderr
    assert "another failover daemon holds" in lines[0]
    assert "state.db.lock" in lines[0]

    assert d.running
    d.send(signal.SIGTERM)
    assert d.wait() == 0, d.log()


def test_a_taken_metrics_port_is_one_line_naming_metrics_listen_exit_2_before_any_aws_call(
    sandbox: Callable[..., Sandbox], loopback: Callable[..., Loopback]
) -> None:
    """Rule: bad config is one line and exit 2 with nothing touched: a second daemon on one
    host with its own state but the default-like shared metrics address binds before AWS."""
    sb = sandbox()
    port = free_port()
    _world, _lo, config = _setup(sb, loopback, listen=f"127.0.0.1:{port}")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen(1)
        sb.layer.reset_log()
        done = run_cli("run", "--config", str(config), timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    (line,) = done.stderr.strip().splitlines()
    assert f"metrics.listen 127.0.0.1:{port}: cannot listen there" in line
    assert "Traceback" not in line
    assert sb.layer.calls == []
