"""Every read is bounded: a black-holed endpoint fails status, check, validate and move in budget.

The endpoint is a loopback TCP server that accepts and never answers (what a dead proxy
or a stuck load balancer does). Before, botocore waited 10 s x 8 attempts plus backoff.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from failover.aws.clients import (
    BUDGET_CONNECT_TIMEOUT_S,
    BUDGET_READ_TIMEOUT_S,
    READ_BUDGET_S,
    READ_START_BY_S,
    attempts_within,
    client_config,
    worst_case_s,
)
from failover.config import AwsSettings

from ..conftest import REGION, run_cli, write_config


class BlackHole:
    """Accepts TCP connections on 127.0.0.1 and never answers; counts them."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.1)
        self.port = self._sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            self.accepted.append(conn)  # held open, never read from or written to

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for conn in self.accepted:
            conn.close()
        self._sock.close()


@pytest.fixture
def black_hole() -> Iterator[BlackHole]:
    hole = BlackHole()
    yield hole
    hole.close()


def test_the_budgeted_client_fits_the_budget_in_the_worst_case() -> None:
    """Rule: for status, check and validate, attempts x (connect + read timeout) plus botocore's
    longest backoffs fit READ_BUDGET_S, whatever `max_attempts` the config asks for."""
    for most in (1, 2, 8, 20):
        config = client_config(AwsSettings(max_attempts=most), READ_BUDGET_S)
        attempts = config.retries["total_max_attempts"]
        assert 1 <= attempts <= most + 1
        assert config.connect_timeout == BUDGET_CONNECT_TIMEOUT_S
        assert config.read_timeout == BUDGET_READ_TIMEOUT_S
        assert worst_case_s(attempts, config.connect_timeout, config.read_timeout) <= (
            READ_BUDGET_S
        )
    # A command's reads as a whole: the last attempt may start at READ_START_BY_S and still fit.
    assert READ_START_BY_S + BUDGET_CONNECT_TIMEOUT_S + BUDGET_READ_TIMEOUT_S <= READ_BUDGET_S
    # The daemon keeps the config's attempts (its passes retry, and blindness is alerted).
    assert client_config(AwsSettings(max_attempts=8)).retries["max_attempts"] == 8


@pytest.mark.process
@pytest.mark.parametrize(
    "command", [("status",), ("check",), ("validate",), ("move", "g", "--yes")], ids=str
)
def test_a_black_holed_endpoint_fails_the_command_within_its_budget_in_one_line(
    black_hole: BlackHole, tmp_path: Path, command: tuple[str, ...]
) -> None:
    """Rule: reads that get no answer give up within READ_BUDGET_S, however many calls the
    command makes: one line naming the endpoint; the endpoint saw only the attempts the
    budget allows (no attempt starts after READ_START_BY_S)."""
    config = write_config(
        tmp_path / "config.yaml",
        {
            "aws": {"region": REGION, "endpoint_url": black_hole.url, "max_attempts": 8},
            "state": {"path": str(tmp_path / "state.db")},
            "groups": [
                {
                    "name": "g",
                    "mode": "eni",
                    "eni": "eni-0123456789abcdef0",
                    "members": ["i-0aaaaaaaaaaaaaaaa", "i-0bbbbbbbbbbbbbbbb"],
                }
            ],
        },
    )
    # The process timeout is a hang guard only; the bound is what the endpoint saw.
    done = run_cli(*command, "--config", str(config), timeout=READ_BUDGET_S + 30)
    # An AWS that cannot be read fails the operation (exit 1), validate's too: not a config problem.
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    (line,) = done.stderr.splitlines()
    assert black_hole.url in line
    assert "timeout" in line.lower()
    expected = attempts_within(READ_BUDGET_S, BUDGET_CONNECT_TIMEOUT_S, BUDGET_READ_TIMEOUT_S, 9)
    # One group's read (validate, move) sends its members' and its ENI's Describe at once,
    # each bounded alike; a pass's batched read (status, check) sends one call first.
    at_once = 2 if command[0] in ("validate", "move") else 1
    assert len(black_hole.accepted) == expected * at_once
