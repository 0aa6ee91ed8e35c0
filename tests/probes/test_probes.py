"""run_probes over loopback: TCP, HTTP and command probes, timeouts, order and concurrency."""

from __future__ import annotations

import asyncio
import json
import select
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from failover.config import CommandCheck, Ec2Check, Group, HttpCheck, Member, Policy, TcpCheck
from failover.core.model import Mode
from failover.probes import ProbeResult, ProbeTarget, check_name, deadline, probe_targets, runner
from failover.probes.deadline import LoopLag
from failover.probes.runner import concurrency_limit, run_probes

LOOPBACK = "127.0.0.1"  # the only address these tests ever touch
PY = sys.executable


class SilentServer:
    """Accepts every connection and holds it open without ever sending a byte."""

    def __init__(self) -> None:
        self.sock = socket.create_server((LOOPBACK, 0), backlog=1024)
        self.sock.settimeout(0.05)
        self.port: int = self.sock.getsockname()[1]
        self.connections: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="silent-server")
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.connections.append(conn)

    def close(self) -> None:
        """Stop accepting, then close every held connection and the listener."""
        self._stop.set()
        self._thread.join()
        for conn in self.connections:
            conn.close()
        self.sock.close()


class _Handler(BaseHTTPRequestHandler):
    """Routes: /health 200 with a body, /down 503, /redirect 302, /chunked, /unsized."""

    def do_GET(self) -> None:
        if self.path == "/health":
            self._reply(200, b"status: all good")
        elif self.path == "/down":
            self._reply(503, b"status: draining")
        elif self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/health")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            # The substring "all good" straddles two chunks.
            for chunk in (b"status: all", b" good"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
        elif self.path == "/unsized":
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"no length, status: all good, then close")
        else:
            self._reply(404, b"not found")

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""


class _RawHandler(socketserver.StreamRequestHandler):
    """Reads the request head, then sends the server's fixed bytes and closes."""

    server: _RawServer

    def handle(self) -> None:
        while self.rfile.readline() not in {b"\r\n", b"\n", b""}:
            pass
        self.wfile.write(self.server.payload)


class _RawServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    payload = b""


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    """A listener that accepts but never answers (an HTTP server that hangs)."""
    server = SilentServer()
    yield server
    server.close()


@pytest.fixture
def closed_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
    return port


def _serve(server: socketserver.BaseServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    return thread


@pytest.fixture
def http_port() -> Iterator[int]:
    """An http.server on 127.0.0.1 with the routes of _Handler."""
    server = ThreadingHTTPServer((LOOPBACK, 0), _Handler)
    server.daemon_threads = True
    thread = _serve(server)
    yield server.server_address[1]
    server.shutdown()
    thread.join()
    server.server_close()


@pytest.fixture
def raw_server() -> Iterator[Callable[[bytes], int]]:
    """Start a server that answers any request with the given bytes; returns its port."""
    running: list[tuple[_RawServer, threading.Thread]] = []

    def start(payload: bytes) -> int:
        server = _RawServer((LOOPBACK, 0), _RawHandler)
        server.payload = payload
        running.append((server, _serve(server)))
        return server.server_address[1]

    yield start
    for server, thread in running:
        server.shutdown()
        thread.join()
        server.server_close()


@pytest.fixture
def instant_ports() -> Iterator[list[int]]:
    """32 loopback listeners that never accept: the kernel completes every handshake at
    once, so a TCP probe of them passes as fast as the probing loop can look."""
    socks = [socket.create_server((LOOPBACK, 0), backlog=1024) for _ in range(32)]
    yield [sock.getsockname()[1] for sock in socks]
    for sock in socks:
        sock.close()


@pytest.fixture
def syn_dropping_port() -> Iterator[int]:
    """A loopback port that drops SYNs: a listener whose accept queue is full (Linux drops
    a SYN rather than refuse it then), so a connect hangs as to a dead host."""
    listener = socket.create_server((LOOPBACK, 0), backlog=0)
    port: int = listener.getsockname()[1]
    held: list[socket.socket] = []
    for _ in range(8):
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex((LOOPBACK, port))
        if not select.select([], [sock], [], 0.5)[1]:
            sock.close()  # this SYN went unanswered: the queue is full
            break
        held.append(sock)
    else:
        pytest.fail("could not fill the listener's accept queue")
    yield port
    for sock in held:
        sock.close()
    listener.close()


@pytest.fixture
def loop_hog(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], ProbeTarget]:
    """`loop_hog(block_s)` is a target whose probe blocks the pass's event loop for block_s,
    as a CPU-bound callback or a burst of other probes' work would. Put it last: probes are
    started in target order, so every other probe's deadline is already running."""
    blocks: dict[str, float] = {}
    real_probe = runner._probe

    async def probe_or_block(target: ProbeTarget, *args: LoopLag) -> tuple[bool, str]:
        if target.instance_id in blocks:
            time.sleep(blocks[target.instance_id])  # blocks the loop: the point
            return True, "blocked the loop"
        return await real_probe(target, *args)

    monkeypatch.setattr(runner, "_probe", probe_or_block)

    def make(block_s: float) -> ProbeTarget:
        name = f"hog-{len(blocks)}"
        blocks[name] = block_s
        return ProbeTarget("g", name, LOOPBACK, CommandCheck(type="command", argv=("hog",)), 1.0)

    return make


# ---------------------------------------------------------------- helpers


def tcp(port: int, instance: str = "i-1", timeout_s: float = 1.0) -> ProbeTarget:
    """A TCP target on loopback."""
    return ProbeTarget("g", instance, LOOPBACK, TcpCheck(type="tcp", port=port), timeout_s)


def http(
    port: int,
    path: str = "/health",
    *,
    expect: int = 200,
    body: str | None = None,
    timeout_s: float = 1.0,
    instance: str = "i-1",
) -> ProbeTarget:
    """An HTTP target on loopback."""
    check = HttpCheck(type="http", port=port, path=path, expect=expect, body=body)
    return ProbeTarget("g", instance, LOOPBACK, check, timeout_s)


def command(*argv: str, timeout_s: float = 5.0, instance: str = "i-1") -> ProbeTarget:
    """A command target whose {address} is loopback."""
    return ProbeTarget("g", instance, LOOPBACK, CommandCheck(type="command", argv=argv), timeout_s)


def probe(target: ProbeTarget) -> ProbeResult:
    """Run one target alone."""
    [result] = run_probes([target])
    return result


def _gone(pid: int) -> bool:
    """True once `pid` no longer exists or is a zombie (killed, awaiting a non-reaping init)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return stat.rsplit(")", 1)[1].split()[0] in {"Z", "X"}


# ---------------------------------------------------------------- tcp


def test_tcp_connects_to_a_listener(silent_server: SilentServer) -> None:
    result = probe(tcp(silent_server.port))
    assert result == ProbeResult(
        "g", "i-1", f"tcp:{silent_server.port}", True, "connected", result.latency_s
    )
    assert 0 <= result.latency_s < 1.0


def test_tcp_probe_closes_with_a_fin_not_a_reset(silent_server: SilentServer) -> None:
    """Rule: a probe leaves the member's service a clean close (FIN: its read sees the end of
    the stream), never a reset that a service would log as an error."""
    assert probe(tcp(silent_server.port)).ok
    deadline = time.monotonic() + 5.0
    while not silent_server.connections and time.monotonic() < deadline:
        time.sleep(0.01)
    [conn] = silent_server.connections
    conn.settimeout(5.0)
    assert conn.recv(1) == b""  # a reset would raise ConnectionResetError


def test_tcp_probe_of_a_name_tries_its_addresses_in_turn(silent_server: SilentServer) -> None:
    """Rule: a member's `address` may be a name: it is resolved, and each address it resolves
    to is tried until one connects (`localhost` may give ::1 first, where nothing listens)."""
    target = ProbeTarget(
        "g", "i-1", "localhost", TcpCheck(type="tcp", port=silent_server.port), 1.0
    )
    result = probe(target)
    assert (result.ok, result.reason) == (True, "connected")


def test_tcp_closed_port_is_refused(closed_port: int) -> None:
    result = probe(tcp(closed_port))
    assert (result.ok, result.reason) == (False, "connection refused")


def test_empty_address_is_a_failure_not_a_skip() -> None:
    target = ProbeTarget("g", "i-1", "", TcpCheck(type="tcp", port=1), 1.0)
    assert probe(target).reason == "no address to probe"
    assert not probe(target).ok


# ---------------------------------------------------------------- http


@pytest.mark.parametrize(
    ("path", "expect", "body", "ok", "reason"),
    [
        ("/health", 200, None, True, "HTTP 200"),
        ("/health", 200, "all good", True, "HTTP 200, body has 'all good'"),
        ("/health", 200, "draining", False, "HTTP 200 but the body lacks 'draining'"),
        ("/down", 200, None, False, "HTTP 503 (expected 200)"),
        ("/down", 503, "draining", True, "HTTP 503, body has 'draining'"),
        ("/redirect", 200, None, False, "HTTP 302 (expected 200)"),
        ("/chunked", 200, "all good", True, "HTTP 200, body has 'all good'"),
        ("/unsized", 200, "all good", True, "HTTP 200, body has 'all good'"),
        ("/missing", 200, None, False, "HTTP 404 (expected 200)"),
    ],
)
def test_http_status_and_body(
    http_port: int, path: str, expect: int, body: str | None, ok: bool, reason: str
) -> None:
    result = probe(http(http_port, path, expect=expect, body=body))
    assert (result.ok, result.reason) == (ok, reason)
    assert result.check == f"http:{http_port}{path}"


def test_http_closed_port_is_refused(closed_port: int) -> None:
    assert probe(http(closed_port)).reason == "connection refused"


def test_http_server_that_never_answers_fails_at_the_timeout(silent_server: SilentServer) -> None:
    started = time.monotonic()
    result = probe(http(silent_server.port, timeout_s=0.5))
    elapsed = time.monotonic() - started
    assert (result.ok, result.reason) == (False, "timed out after 0.5s")
    assert result.latency_s >= 0.4
    assert elapsed < 0.5 * 3


@pytest.mark.parametrize(
    ("payload", "body", "reason"),
    [
        (b"", None, "malformed response: connection closed before a response"),
        (b"SSH-2.0-OpenSSH_9.6\r\n", None, "malformed response: bad status line"),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", None, "malformed response: bad header"),
        (b"HTTP/1.1 200 OK\r\nContent-", None, "malformed response: connection closed inside"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort",
            "short",
            "malformed response: connection closed inside the body",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "x",
            "malformed response: bad chunk size",
        ),
        (b"HTTP/1.1 200\r\n\r\n", None, "HTTP 200"),  # no reason phrase is still valid
    ],
)
def test_http_malformed_responses_fail_with_a_reason(
    raw_server: Callable[[bytes], int], payload: bytes, body: str | None, reason: str
) -> None:
    result = probe(http(raw_server(payload), body=body))
    assert result.reason.startswith(reason)
    assert result.ok is (reason == "HTTP 200")


# ---------------------------------------------------------------- command


def test_command_exit_0_is_healthy_and_nonzero_is_not() -> None:
    ok, bad = run_probes([command("true"), command("false")])
    assert (ok.ok, ok.reason, ok.check) == (True, "exit 0", "command:true")
    assert (bad.ok, bad.reason) == (False, "exit 1")


def test_command_reason_is_the_first_line_of_stderr() -> None:
    script = "import sys; sys.stderr.write('\\ndisk full\\nmore\\n'); print('out'); sys.exit(2)"
    assert probe(command(PY, "-c", script)).reason == "exit 2: disk full"
    script = "import sys; print('CRITICAL - replica lag 93s'); sys.exit(2)"
    assert probe(command(PY, "-c", script)).reason == "exit 2: CRITICAL - replica lag 93s"


def test_command_killed_by_a_signal() -> None:
    script = "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"
    assert probe(command(PY, "-c", script)).reason == "killed by SIGTERM"


def test_command_missing_executable_is_a_failure() -> None:
    result = probe(command("/nonexistent/failover-no-such-check", "x"))
    assert (result.ok, result.reason) == (
        False,
        "command not found: /nonexistent/failover-no-such-check",
    )
    assert probe(command("failover-no-such-check-on-path")).reason.startswith("command not found")


def test_command_not_executable_is_a_failure(tmp_path: Path) -> None:
    script = tmp_path / "check.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    result = probe(command(str(script)))
    assert (result.ok, result.reason) == (False, f"not executable: {script}")


def test_command_substitutes_address_and_instance(tmp_path: Path) -> None:
    out = tmp_path / "argv.json"
    script = "import json, sys; open(sys.argv[1], 'w').write(json.dumps(sys.argv[2:]))"
    target = command(PY, "-c", script, str(out), "{address}", "id={instance}!", "{other}")
    target = ProbeTarget("g", "i-0bbbbbbbbbbbbbbbb", "127.0.0.3", target.check, 5.0)
    assert probe(target).ok
    assert json.loads(out.read_text()) == ["127.0.0.3", "id=i-0bbbbbbbbbbbbbbbb!", "{other}"]


def test_command_past_the_timeout_is_killed_with_its_process_group(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    script = (
        "import os, subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "open(sys.argv[1] + '.tmp', 'w').write(f'{os.getpid()} {child.pid}')\n"
        "os.rename(sys.argv[1] + '.tmp', sys.argv[1])\n"
        "time.sleep(60)\n"
    )
    started = time.monotonic()
    result = probe(command(PY, "-c", script, str(pids), timeout_s=1.5))
    elapsed = time.monotonic() - started
    assert (result.ok, result.reason) == (False, "timed out after 1.5s (killed)")
    assert elapsed < 1.5 * 3
    leader, grandchild = map(int, pids.read_text().split())
    assert _gone(leader)
    deadline = time.monotonic() + 5
    while not _gone(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(grandchild)


# ---------------------------------------------------------------- the runner


def test_an_exception_inside_a_probe_becomes_a_failed_result(
    monkeypatch: pytest.MonkeyPatch, closed_port: int
) -> None:
    async def explode(target: ProbeTarget, check: TcpCheck, lag: LoopLag) -> tuple[bool, str]:
        raise RuntimeError("kaboom")

    monkeypatch.setattr(runner, "probe_tcp", explode)
    bad, fine = run_probes([tcp(closed_port), http(closed_port)])
    assert (bad.ok, bad.reason) == (False, "probe error: RuntimeError: kaboom")
    assert fine.reason == "connection refused"


def test_an_unsupported_check_is_a_failure() -> None:
    target = ProbeTarget("g", "i-1", LOOPBACK, Ec2Check(type="ec2"), 1.0)  # type: ignore[arg-type]
    result = probe(target)
    assert (result.ok, result.reason, result.check) == (
        False,
        "unsupported check type Ec2Check",
        "ec2",
    )


def test_no_targets_no_results() -> None:
    assert run_probes([]) == []


def test_max_concurrency_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        run_probes([], max_concurrency=0)


def test_concurrency_stays_inside_the_fd_limit() -> None:
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = concurrency_limit(10**9)
    assert limit >= 1
    assert limit * runner.FDS_PER_PROBE + runner.RESERVED_FDS <= soft
    assert concurrency_limit(7) == 7


def test_a_pass_runs_concurrently_and_keeps_target_order(
    silent_server: SilentServer, closed_port: int
) -> None:
    """500 probes, a third of them hanging to a 1 s timeout: about one timeout, not 167."""
    targets: list[ProbeTarget] = []
    for i in range(500):
        if i % 3 == 0:
            targets.append(tcp(silent_server.port, instance=f"m{i}"))
        elif i % 3 == 1:
            targets.append(tcp(closed_port, instance=f"m{i}"))
        else:
            targets.append(http(silent_server.port, instance=f"m{i}", timeout_s=1.0))
    started = time.monotonic()
    results = run_probes(targets)
    elapsed = time.monotonic() - started
    assert elapsed < 10
    assert [r.instance_id for r in results] == [f"m{i}" for i in range(500)]
    assert [r.reason for r in results] == [
        ("connected", "connection refused", "timed out after 1.0s")[i % 3] for i in range(500)
    ]


def test_a_small_semaphore_still_finishes_every_probe(closed_port: int) -> None:
    results = run_probes([tcp(closed_port, instance=f"m{i}") for i in range(50)], max_concurrency=3)
    assert [r.instance_id for r in results] == [f"m{i}" for i in range(50)]
    assert {r.reason for r in results} == {"connection refused"}


def test_works_from_worker_threads_concurrently(
    silent_server: SilentServer, closed_port: int
) -> None:
    """Two threads (APScheduler workers, say) each run a pass, commands included."""
    outcomes: dict[str, list[ProbeResult]] = {}

    def work(name: str) -> None:
        outcomes[name] = run_probes(
            [
                tcp(silent_server.port),
                tcp(closed_port),
                command("true"),
                http(silent_server.port, timeout_s=0.3),
            ]
        )

    threads = [threading.Thread(target=work, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    for name in ("a", "b"):
        assert [r.ok for r in outcomes[name]] == [True, False, True, False]


def test_works_when_called_inside_a_running_loop(silent_server: SilentServer) -> None:
    async def caller() -> list[ProbeResult]:
        return run_probes([tcp(silent_server.port), command("true")])

    assert [r.ok for r in asyncio.run(caller())] == [True, True]


# ---------------------------------------------------------------- local overload
# A probe's timeout measures the member, not this host's event loop: lag is left out.


def test_a_blocked_loop_is_not_blamed_on_healthy_members(
    instant_ports: list[int], http_port: int, loop_hog: Callable[[float], ProbeTarget]
) -> None:
    """Every member answers at once, but the loop is blocked for 3x the probe timeout
    right after the probes start. Timing the loop's backlog failed the TCP and HTTP ones."""
    timeout_s = 0.5
    targets = [tcp(port, f"t{n}", timeout_s) for n, port in enumerate(instant_ports * 4)]
    targets += [http(http_port, instance=f"h{n}", timeout_s=timeout_s) for n in range(8)]
    targets += [command("true", timeout_s=timeout_s, instance=f"c{n}") for n in range(4)]
    results = run_probes([*targets, loop_hog(3 * timeout_s)])[:-1]
    failed = [(r.instance_id, r.reason) for r in results if not r.ok]
    assert failed == []
    assert {r.reason for r in results} == {"connected", "HTTP 200", "exit 0"}
    # Latency is the member's: the second the loop stood still is not in it.
    assert max(r.latency_s for r in results) < 3 * timeout_s


def test_thousands_of_probes_with_a_short_timeout_all_pass(instant_ports: list[int]) -> None:
    """2,000 probes of members that answer at once, with a 100 ms timeout: the loop takes
    longer than that to start a thousand connects, so wall-clock timing failed most."""
    targets = [tcp(instant_ports[n % 32], f"m{n}", timeout_s=0.1) for n in range(2000)]
    results = run_probes(targets)
    assert [r.instance_id for r in results] == [f"m{n}" for n in range(2000)]
    failed = [r.reason for r in results if not r.ok]
    assert failed == [], f"{len(failed)} false failures, e.g. {failed[:3]}"


def test_a_member_that_drops_syns_fails_at_its_timeout(syn_dropping_port: int) -> None:
    started = time.monotonic()
    result = probe(tcp(syn_dropping_port, timeout_s=0.5))
    elapsed = time.monotonic() - started
    assert (result.ok, result.reason) == (False, "timed out after 0.5s")
    assert result.latency_s >= 0.5
    assert elapsed < 0.5 + deadline.OVERLOAD_GRACE_S  # a hang guard, not a timing claim


def test_slow_members_still_fail_when_the_loop_was_blocked(
    syn_dropping_port: int,
    silent_server: SilentServer,
    instant_ports: list[int],
    loop_hog: Callable[[float], ProbeTarget],
) -> None:
    """The lag is forgiven, not the member: after the loop recovers, a member that does
    not answer gets its own timeout and fails as timed out; its healthy peers pass."""
    targets = [
        tcp(syn_dropping_port, "dead-tcp", timeout_s=0.5),
        http(silent_server.port, instance="dead-http", timeout_s=0.5),
        command(PY, "-c", "import time; time.sleep(60)", timeout_s=0.5, instance="dead-cmd"),
        tcp(instant_ports[0], "alive", timeout_s=0.5),
    ]
    started = time.monotonic()
    results = run_probes([*targets, loop_hog(1.0)])[:-1]
    elapsed = time.monotonic() - started
    assert [(r.instance_id, r.ok, r.reason) for r in results] == [
        ("dead-tcp", False, "timed out after 0.5s"),
        ("dead-http", False, "timed out after 0.5s"),
        ("dead-cmd", False, "timed out after 0.5s (killed)"),
        ("alive", True, "connected"),
    ]
    assert elapsed < 1.0 + 0.5 + deadline.OVERLOAD_GRACE_S  # a hang guard


def test_an_overload_past_the_grace_is_a_failure_that_names_the_host(
    monkeypatch: pytest.MonkeyPatch,
    syn_dropping_port: int,
    loop_hog: Callable[[float], ProbeTarget],
) -> None:
    """Lag postpones a deadline only so far: a probe the loop could not serve within its
    timeout plus the grace ends, still a failure (unknown is never healthy), but its
    reason says the host was overloaded rather than that the member timed out."""
    monkeypatch.setattr(deadline, "OVERLOAD_GRACE_S", 0.5)
    started = time.monotonic()
    result, _ = run_probes([tcp(syn_dropping_port, timeout_s=0.5), loop_hog(1.5)])
    elapsed = time.monotonic() - started
    assert not result.ok
    assert result.reason.startswith("no verdict, local overload: this host's event loop lagged ")
    assert elapsed < 1.5 + 0.5 + 5.0  # a hang guard


def test_the_lag_meter_counts_the_time_the_loop_stood_still() -> None:
    async def measure() -> tuple[float, float]:
        lag = LoopLag()
        meter = asyncio.create_task(lag.meter())
        await asyncio.sleep(0.05)
        start = lag.mark()
        time.sleep(0.5)  # the loop stands still
        # Read before the meter has woken: its overdue spell already counts.
        blocked, charged = lag.lagged(start), lag.charged(start)
        meter.cancel()
        return blocked, charged

    blocked, charged = asyncio.run(measure())
    assert blocked >= 0.45
    assert charged < 0.05
    assert LoopLag().total(123.0) == 0.0  # a meter that never ran reports no lag


# ---------------------------------------------------------------- targets from config


def test_probe_targets_resolve_address_and_timeout() -> None:
    tcp_check = TcpCheck(type="tcp", port=5432)
    http_check = HttpCheck.model_validate({"type": "http", "port": 80, "timeout": "250ms"})
    group = Group(
        name="db",
        mode=Mode.ENI,
        members=(
            Member.model_validate({"instance": "i-0aaaaaaaaaaaaaaaa"}),
            Member.model_validate({"instance": "i-0bbbbbbbbbbbbbbbb", "address": "127.0.0.3"}),
            Member.model_validate({"instance": "i-0cccccccccccccccc"}),
        ),
        checks=(Ec2Check(type="ec2"), tcp_check, http_check),
        policy=Policy.model_validate({"timeout": "2s", "interval": "5s"}),
        eni="eni-0123456789abcdef0",
    )
    targets = probe_targets(group, {"i-0aaaaaaaaaaaaaaaa": "127.0.0.2", "i-0bbbbbbbbbbbbbbbb": "x"})
    assert [(t.instance_id, t.address, check_name(t.check), t.timeout_s) for t in targets] == [
        ("i-0aaaaaaaaaaaaaaaa", "127.0.0.2", "tcp:5432", 2.0),
        ("i-0aaaaaaaaaaaaaaaa", "127.0.0.2", "http:80/", 0.25),
        ("i-0bbbbbbbbbbbbbbbb", "127.0.0.3", "tcp:5432", 2.0),
        ("i-0bbbbbbbbbbbbbbbb", "127.0.0.3", "http:80/", 0.25),
        ("i-0cccccccccccccccc", "", "tcp:5432", 2.0),
        ("i-0cccccccccccccccc", "", "http:80/", 0.25),
    ]
