"""Fixtures shared by every test directory: fake AWS credentials, moto's server, the CLI.

Nothing here can reach real AWS (fake credentials, an endpoint on 127.0.0.1) or any
address outside loopback.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from failover.service.identity import THREAD_NAME as IDENTITY_THREAD

# The trimmed botocore data every client reads (failover/aws/models.py) go to this run's own
# cache, written by its first client, not to the home directory; subprocesses inherit it.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="failover-tests-cache-")

REGION = "us-east-1"
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
}


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials only, so nothing can reach real AWS."""
    for name, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(name, value)
    for name in (
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
    ):
        monkeypatch.delenv(name, raising=False)


def cli_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a `failover` subprocess gets: fake AWS credentials, no real config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(FAKE_AWS_ENV)
    env.update({"AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"})
    env.pop("FAILOVER_CONFIG", None)
    env.update(extra or {})
    return env


def failover_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "failover", *args]


def run_cli(
    *args: str,
    timeout: float = 120,
    input_text: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the real `failover` CLI as a process (in `cwd` when given); stdin is not a TTY."""
    return subprocess.run(
        failover_cmd(*args),
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input_text,
        stdin=None if input_text is not None else subprocess.DEVNULL,
        env=cli_env(env),
        check=False,
        cwd=cwd,
    )


def history(config: Path) -> list[dict[str, Any]]:
    """The moves `failover history --json` lists for `config`'s state (the command must succeed)."""
    done = run_cli("history", "--json", "--config", str(config))
    assert done.returncode == 0, done.stderr
    moves: list[dict[str, Any]] = json.loads(done.stdout)
    return moves


def join_sts_questions(timeout_s: float = 10.0) -> None:
    """Wait for the engines' STS questions in flight (failover/service/identity.py) to end, so
    none is sent after the test's mock of AWS stopped (it would go to the real endpoint)."""
    for thread in threading.enumerate():
        if thread.name == IDENTITY_THREAD:
            thread.join(timeout_s)


def write_config(path: Path, document: Mapping[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(dict(document), sort_keys=False))
    return path


@dataclass
class Service:
    """A tiny TCP service on a loopback address: accepts and closes; `stop` makes it refuse."""

    host: str
    port: int
    _sock: socket.socket | None = None
    _thread: threading.Thread | None = None
    _stopped: threading.Event = field(default_factory=threading.Event)
    accepted: int = 0  # connections accepted so far (probes that reached the service)

    def start(self) -> Service:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(128)
        sock.settimeout(0.1)
        self.port = sock.getsockname()[1]
        self._sock, self._stopped = sock, threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        return self

    def _serve(self) -> None:
        assert self._sock is not None
        while not self._stopped.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted += 1
            conn.close()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join()
        if self._sock is not None:
            self._sock.close()
            self._sock = None


@pytest.fixture
def services() -> Iterator[list[Service]]:
    """Start loopback services with `services.append(Service(host, 0).start())`; all stopped after."""
    started: list[Service] = []
    yield started
    for service in started:
        service.stop()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def members_of(world: Any) -> Sequence[str]:
    return [world.primary, *world.standbys] + ([world.other_az] if world.other_az else [])


class NotifySocket:
    """A bound AF_UNIX datagram socket standing in for systemd's: every line received, timed.

    A reader thread drains it as datagrams come (a sender blocks once a few are queued),
    recording `(time.monotonic(), line)` for each line of each datagram.
    """

    def __init__(self, directory: str) -> None:
        # sun_path holds 108 bytes; pytest's tmp_path can be longer.
        self.path = str(Path(directory) / "notify")
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(self.path)
        self._sock.settimeout(0.1)
        self._received: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while not self._closed.is_set():
            try:
                message = self._sock.recv(4096).decode()
            except TimeoutError:
                continue
            at = time.monotonic()
            with self._lock:
                self._received += [(at, line) for line in message.splitlines()]

    def received(self) -> list[tuple[float, str]]:
        """Every line so far with the moment it arrived."""
        with self._lock:
            return list(self._received)

    def lines(self) -> list[str]:
        return [line for _, line in self.received()]

    def wait(self, until: Callable[[list[str]], bool], timeout_s: float) -> list[str]:
        """The lines once `until(lines)` holds, or all of them after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while not until(self.lines()) and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.lines()

    def close(self) -> None:
        self._closed.set()
        self._reader.join()
        self._sock.close()


@pytest.fixture
def notify_socket() -> Iterator[NotifySocket]:
    """systemd's notify socket, on a short path; `path` goes into $NOTIFY_SOCKET."""
    with tempfile.TemporaryDirectory(prefix="sdn") as directory:
        sock = NotifySocket(directory)
        try:
            yield sock
        finally:
            sock.close()


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A Slack-style webhook receiver on 127.0.0.1; yields its URL and what it received."""
    received: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            received.append(json.loads(body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()
    server.server_close()
    thread.join()
