"""Prometheus metrics for the daemon, on a private registry, served with /healthz on loopback.

`Metrics` owns its own CollectorRegistry (never prometheus_client's global one), so
two daemons in one test process, or a reload, never collide over metric names.
`serve` exposes `/metrics` and `/healthz` from a daemon thread; it listens on
127.0.0.1 unless the operator names another address. Label sets stay bounded by
the config: groups, their members and their check names, never move ids or reasons.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder

from failover.config.ops import DEFAULT_LISTEN, parse_listen

if TYPE_CHECKING:
    from failover.config import Group
    from failover.core.ports import MemberHealth
    from failover.probes import ProbeResult, ProbeTarget
    from failover.service.monitor import GroupOutcome

log = logging.getLogger(__name__)

MOVE_OUTCOMES = ("succeeded", "failed", "refused")

# Probes answer within their timeout (1 s by default); moves take seconds to a minute.
_PROBE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_MOVE_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 300.0)
# What a pass's outcomes count as, for the moves counter (see monitor.GroupOutcome).
_OUTCOME_OF = {"moved": "succeeded", "failed": "failed", "refused": "refused"}


class Metrics:
    """The orchestrator's metrics; every method is thread-safe and cheap enough for a pass."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.probes = Counter(
            "failover_probes",
            "Probes run, by group, check and result (ok or fail).",
            ("group", "check", "result"),
            registry=r,
        )
        # Latency by check only: group x check x buckets would grow with the fleet.
        self.probe_latency = Histogram(
            "failover_probe_latency_seconds",
            "Probe latency by check (tcp:5432, http:8080/health, command:name).",
            ("check",),
            buckets=_PROBE_BUCKETS,
            registry=r,
        )
        self.member_healthy = Gauge(
            "failover_member_healthy",
            "1 when the member counts as healthy (rise met), 0 otherwise.",
            ("group", "instance"),
            registry=r,
        )
        self.moves = Counter(
            "failover_moves",
            "Moves by group and outcome (succeeded, failed, refused).",
            ("group", "outcome"),
            registry=r,
        )
        self.move_duration = Histogram(
            "failover_move_duration_seconds",
            "Wall time of a move, by outcome.",
            ("outcome",),
            buckets=_MOVE_BUCKETS,
            registry=r,
        )
        self.lease_held = Gauge(
            "failover_lease_held",
            "1 when this orchestrator holds the group's lease, 0 otherwise.",
            ("group",),
            registry=r,
        )
        self.last_pass = Gauge(
            "failover_last_successful_pass_timestamp_seconds",
            "Unix time at which the last health pass finished without an error.",
            registry=r,
        )
        for outcome in MOVE_OUTCOMES:
            # Present from the start, so rate() and absent() work before the first move.
            self.move_duration.labels(outcome)

    def observe_probe(self, result: ProbeResult) -> None:
        """Count one probe and record its latency."""
        self.probes.labels(result.group, result.check, "ok" if result.ok else "fail").inc()
        self.probe_latency.labels(result.check).observe(result.latency_s)

    def instrument(
        self, prober: Callable[[Sequence[ProbeTarget]], list[ProbeResult]]
    ) -> Callable[[Sequence[ProbeTarget]], list[ProbeResult]]:
        """Wrap a Monitor prober (`run_probes`) so that every result it returns is observed."""

        def probe(targets: Sequence[ProbeTarget]) -> list[ProbeResult]:
            results = prober(targets)
            for result in results:
                self.observe_probe(result)
            return results

        return probe

    def set_member_health(self, group: str, instance: str, healthy: bool) -> None:
        self.member_healthy.labels(group, instance).set(1 if healthy else 0)

    def observe_health(self, group: str, health: Mapping[str, MemberHealth]) -> None:
        """Set every member's gauge from a pass's folded health (instance id -> MemberHealth)."""
        for instance, member in health.items():
            self.set_member_health(group, instance, member.healthy)

    def move_finished(self, group: str, outcome: str, seconds: float | None = None) -> None:
        """Count a move that ended `outcome` (succeeded, failed, refused); time it when known."""
        if outcome not in MOVE_OUTCOMES:
            raise ValueError(f"move outcome {outcome!r} is not one of {', '.join(MOVE_OUTCOMES)}")
        self.moves.labels(group, outcome).inc()
        if seconds is not None:
            self.move_duration.labels(outcome).observe(seconds)

    def observe_outcomes(self, outcomes: Sequence[GroupOutcome]) -> None:
        """Count the moves of one pass from its outcomes (moved, failed, refused)."""
        for outcome in outcomes:
            if (counted := _OUTCOME_OF.get(outcome.outcome)) is not None:
                seconds = outcome.result.elapsed_s if outcome.result is not None else None
                self.move_finished(outcome.group, counted, seconds)

    def set_leases(self, groups: Iterable[str], held: Collection[str]) -> None:
        """Which of `groups` this orchestrator holds the lease of (1) and which not (0)."""
        for group in groups:
            self.lease_held.labels(group).set(1 if group in held else 0)

    def pass_finished(self, now: float) -> None:
        """A health pass finished without an error at unix time `now`."""
        self.last_pass.set(now)

    def serve(
        self,
        listen: str = DEFAULT_LISTEN,
        healthy: Callable[[], bool] = lambda: True,
        problem: Callable[[], str | None] = lambda: None,
    ) -> MetricsServer:
        """Serve these metrics and /healthz on `listen`; see `serve`."""
        return serve(self.registry, listen, healthy, problem)


class Heartbeat:
    """`healthy()` for /healthz: true while `beat()` was called within `max_age_s`.

    Starts as if it had just beaten, so a daemon is healthy while its first pass runs.
    `max_age_s` may be a callable, read at every check, so that a config reload that
    changes the intervals changes it too.
    """

    def __init__(
        self,
        max_age_s: float | Callable[[], float],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_age_s = max_age_s
        self._monotonic = monotonic
        self._last = monotonic()

    def beat(self) -> None:
        self._last = self._monotonic()

    def __call__(self) -> bool:
        limit = self.max_age_s() if callable(self.max_age_s) else self.max_age_s
        return self._monotonic() - self._last <= limit


def healthz_max_age(groups: Sequence[Group]) -> float:
    """How stale the last tick may be: 3 of the longest interval plus the longest move.

    A pass that moves a group runs as long as the move (up to move_timeout) before the
    scheduler ticks again; /healthz must not send a liveness probe to restart the
    daemon in the middle of a failover.
    """
    if not groups:
        return 3 * 2.0
    interval_s = max(g.policy.interval_s for g in groups)
    move_s = max(g.policy.move_timeout_s for g in groups)
    return 3 * interval_s + move_s


class _Server(ThreadingHTTPServer):
    daemon_threads = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class MetricsServer:
    """A running /metrics and /healthz endpoint; `close()` stops it and frees the port."""

    def __init__(self, server: _Server, thread: threading.Thread) -> None:
        self._server, self._thread = server, thread
        host, port = server.server_address[:2]
        self.host, self.port = str(host), int(port)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5.0)


def serve(
    registry: CollectorRegistry,
    listen: str = DEFAULT_LISTEN,
    healthy: Callable[[], bool] = lambda: True,
    problem: Callable[[], str | None] = lambda: None,
) -> MetricsServer:
    """Serve `/metrics` and `/healthz` from a daemon thread.

    /healthz is 200 while `healthy()` (the loop is alive) and `problem()` names nothing
    (for example a daemon blind to AWS); else 503 with the reason in the body.
    Raises OSError when the address cannot be bound (in use, not local).
    """
    host, port = parse_listen(listen)

    class Handler(BaseHTTPRequestHandler):
        server_version = "failover"

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
                self._reply(200, encoder(registry), content_type)
            elif path == "/healthz":
                try:
                    reason = "no health pass finished recently" if not healthy() else problem()
                except Exception:
                    # Unknown is never read as healthy.
                    log.exception("healthz check raised")
                    reason = "the health check itself failed"
                body = b"ok\n" if reason is None else f"unhealthy: {reason}\n".encode()
                self._reply(200 if reason is None else 503, body, "text/plain; charset=utf-8")
            else:
                self._reply(404, b"not found: try /metrics or /healthz\n", "text/plain")

        def _reply(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            if log.isEnabledFor(logging.DEBUG):
                log.debug("metrics %s: %s", self.client_address[0], format % args)

    server_class = _Server6 if ":" in host else _Server
    server = server_class((host, port), Handler)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.2},
        name="failover-metrics",
        daemon=True,
    )
    thread.start()
    running = MetricsServer(server, thread)
    log.info("metrics on %s/metrics, health on %s/healthz", running.url, running.url)
    return running
