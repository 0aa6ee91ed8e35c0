"""sd_notify: the datagrams systemd would get, from the module and from a real `failover run`."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from failover.ops import sdnotify

from ..clocks import FakeClock
from ..conftest import NotifySocket, cli_env, failover_cmd
from .conftest import Sandbox


def receive(sock: socket.socket, until: Callable[[list[str]], bool], timeout_s: float) -> list[str]:
    """Datagrams received on `sock` until `until(messages)` holds or `timeout_s` passes."""
    messages: list[str] = []
    deadline = time.monotonic() + timeout_s
    while not until(messages) and (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            messages.append(sock.recv(4096).decode())
        except TimeoutError:
            break
    return messages


def test_notify_without_notify_socket_sends_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rule: outside systemd (no $NOTIFY_SOCKET) every call is a no-op."""
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sdnotify.notify("READY=1") is False
    sdnotify.ready()
    sdnotify.watchdog()
    sdnotify.stopping()


def test_each_call_sends_one_datagram_to_the_socket(
    notify_socket: NotifySocket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rule: ready/watchdog/stopping each send one KEY=VALUE datagram to $NOTIFY_SOCKET."""
    monkeypatch.setenv("NOTIFY_SOCKET", notify_socket.path)
    sdnotify.ready()
    sdnotify.watchdog()
    sdnotify.stopping()
    got = notify_socket.wait(lambda lines: "STOPPING=1" in lines, 5.0)
    assert [line for line in got if "=1" in line] == ["READY=1", "WATCHDOG=1", "STOPPING=1"]


def test_an_at_sign_names_an_abstract_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rule: '@name' is Linux's abstract namespace ('\\0name'), as systemd hands it out."""
    name = f"failover-test-{os.getpid()}-{time.monotonic_ns()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name.encode())
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        sdnotify.watchdog()
        assert receive(sock, bool, 5.0) == ["WATCHDOG=1"]


def test_an_unreachable_socket_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Rule: a supervisor that went away must not take the daemon down with it."""
    with caplog.at_level(logging.WARNING, logger="failover.ops.sdnotify"):
        assert sdnotify.notify("WATCHDOG=1", socket_path=str(tmp_path / "gone")) is False
    assert "sd_notify 'WATCHDOG=1'" in caplog.text


def test_watchdog_pings_on_progress_at_most_once_per_half_period() -> None:
    """Rule: WATCHDOG=1 follows the loop's progress, paced to half of WatchdogSec; no progress, no ping."""
    clock = FakeClock()
    sent: list[float] = []
    dog = sdnotify.Watchdog(4.0, send=lambda: sent.append(clock.monotonic()), monotonic=clock)
    start = clock.monotonic()
    dog.alive()  # the first progress pings at once
    for _ in range(19):  # progress every 0.5 s for 9.5 s
        clock.advance(0.5)
        dog.alive()
    assert [t - start for t in sent] == [0.0, 2.0, 4.0, 6.0, 8.0]
    clock.advance(60.0)  # a stuck loop reports no progress: nothing pings for it
    assert len(sent) == 5
    dog.alive()
    assert len(sent) == 6


@pytest.mark.parametrize(
    ("environ", "enabled"),
    [
        ({"WATCHDOG_USEC": "90000000"}, True),
        ({"WATCHDOG_USEC": "90000000", "WATCHDOG_PID": "4242"}, True),
        ({"WATCHDOG_USEC": "90000000", "WATCHDOG_PID": "1"}, False),  # another process's
        ({}, False),  # no WatchdogSec: systemd is not watching
        ({"WATCHDOG_USEC": "0"}, False),
        ({"WATCHDOG_USEC": "soon"}, False),
    ],
)
def test_watchdog_follows_sd_watchdog_enabled(environ: dict[str, str], enabled: bool) -> None:
    """Rule: ping only when systemd set $WATCHDOG_USEC for this process (sd_watchdog_enabled(3))."""
    sent: list[str] = []
    dog = sdnotify.Watchdog.from_environment(environ, 4242, send=lambda: sent.append("WATCHDOG=1"))
    assert dog.enabled is enabled
    dog.alive()
    assert sent == (["WATCHDOG=1"] if enabled else [])


def test_failover_run_notifies_ready_watchdog_and_stops_on_sigterm(
    sandbox: Callable[..., Sandbox], notify_socket: NotifySocket
) -> None:
    """Rule: the daemon sends READY=1 after its first pass and, under a watchdog, WATCHDOG=1 as
    its passes end (at most every half period); SIGTERM exits 0."""
    sb = sandbox()
    world = sb.world("eni")
    config = sb.config(sb.group(world, "eni"), defaults={"interval": "1s", "timeout": "500ms"})
    daemon = subprocess.Popen(
        [*failover_cmd("run", "--config", str(config))],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # WatchdogSec=2s: a ping at most every second, and passes end every second.
        env=cli_env({"NOTIFY_SOCKET": notify_socket.path, "WATCHDOG_USEC": "2000000"}),
    )
    try:
        got = notify_socket.wait(lambda lines: lines.count("WATCHDOG=1") >= 3, 30.0)
        assert "READY=1" in got, got
        assert got.count("WATCHDOG=1") >= 3, got
        # READY=1 comes once, after the first pass (whose WATCHDOG=1 precedes it).
        assert got.count("READY=1") == 1
        assert got.index("WATCHDOG=1") < got.index("READY=1")
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=30)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.communicate()
    assert daemon.returncode == 0, stderr
    assert "STOPPING=1" in notify_socket.wait(lambda lines: "STOPPING=1" in lines, 5.0)
    assert world.eni_id is not None
    assert sb.eni_owner(world.eni_id) == world.primary  # a healthy primary keeps the ENI
