"""sd_notify: the datagrams systemd would get, from the module and from a real `failover run`."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from failover.ops import sdnotify

from ..conftest import cli_env, failover_cmd
from .conftest import Sandbox


@pytest.fixture
def notify_socket() -> Iterator[tuple[str, socket.socket]]:
    """A bound AF_UNIX datagram socket standing in for systemd's, on a short path."""
    # sun_path holds 108 bytes; pytest's tmp_path can be longer.
    with tempfile.TemporaryDirectory(prefix="sdn") as directory:
        path = str(Path(directory) / "notify")
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.bind(path)
            yield path, sock


def receive(sock: socket.socket, until: Callable[[list[str]], bool], timeout_s: float) -> list[str]:
    """Datagrams received until `until(messages)` holds or `timeout_s` passes."""
    messages: list[str] = []
    deadline = time.monotonic() + timeout_s
    while not until(messages) and (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            messages.append(sock.recv(4096).decode())
        except TimeoutError:
            break
    return messages


def lines(messages: list[str]) -> list[str]:
    return [line for message in messages for line in message.splitlines()]


def test_notify_without_notify_socket_sends_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rule: outside systemd (no $NOTIFY_SOCKET) every call is a no-op."""
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sdnotify.notify("READY=1") is False
    sdnotify.ready()
    sdnotify.watchdog()
    sdnotify.stopping()


def test_each_call_sends_one_datagram_to_the_socket(
    notify_socket: tuple[str, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rule: ready/watchdog/stopping each send one KEY=VALUE datagram to $NOTIFY_SOCKET."""
    path, sock = notify_socket
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    sdnotify.ready()
    sdnotify.watchdog()
    sdnotify.stopping()
    got = receive(sock, lambda m: len(m) == 3, 5.0)
    assert [m.splitlines()[0] for m in got] == ["READY=1", "WATCHDOG=1", "STOPPING=1"]


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


def test_failover_run_notifies_ready_watchdog_and_stops_on_sigterm(
    sandbox: Callable[..., Sandbox], notify_socket: tuple[str, socket.socket]
) -> None:
    """Rule: the daemon sends READY=1 after its first pass, WATCHDOG=1 every pass; SIGTERM exits 0."""
    path, sock = notify_socket
    sb = sandbox()
    world = sb.world("eni")
    config = sb.config(sb.group(world, "eni"), defaults={"interval": "1s", "timeout": "500ms"})
    daemon = subprocess.Popen(
        [*failover_cmd("run", "--config", str(config))],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env({"NOTIFY_SOCKET": path}),
    )
    try:
        got = lines(receive(sock, lambda m: lines(m).count("WATCHDOG=1") >= 3, 30.0))
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
    assert "STOPPING=1" in lines(receive(sock, lambda m: "STOPPING=1" in lines(m), 5.0))
    assert world.eni_id is not None
    assert sb.eni_owner(world.eni_id) == world.primary  # a healthy primary keeps the ENI
