"""Metrics: scraped over loopback from a private registry; /healthz follows healthy()."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from prometheus_client.parser import text_string_to_metric_families

from failover.config import parse
from failover.core.ports import MemberHealth
from failover.ops.metrics import (
    DEFAULT_LISTEN,
    Heartbeat,
    Metrics,
    MetricsServer,
    healthz_max_age,
    parse_listen,
)
from failover.probes import ProbeResult


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.fixture
def served() -> Iterator[tuple[Metrics, MetricsServer, list[bool]]]:
    metrics, flag = Metrics(), [True]
    server = metrics.serve("127.0.0.1:0", healthy=lambda: flag[0])
    yield metrics, server, flag
    server.close()


def test_scrape_shows_every_metric(served: tuple[Metrics, MetricsServer, list[bool]]) -> None:
    metrics, server, _ = served
    metrics.observe_probe(ProbeResult("db", "i-0aa", "tcp:5432", True, "ok", 0.003))
    metrics.observe_probe(ProbeResult("db", "i-0bb", "tcp:5432", False, "refused", 0.2))
    metrics.set_member_health("db", "i-0aa", True)
    metrics.observe_health("db", {"i-0bb": MemberHealth("i-0bb", healthy=False)})
    metrics.move_finished("db", "succeeded", 4.2)
    metrics.move_finished("db", "refused")
    metrics.set_leases(["db", "web"], {"db"})
    metrics.pass_finished(1_700_000_000.0)

    status, text = get(f"{server.url}/metrics")

    assert status == 200
    got = samples(text)
    assert (
        got[("failover_probes_total", (("check", "tcp:5432"), ("group", "db"), ("result", "ok")))]
        == 1
    )
    assert (
        got[("failover_probes_total", (("check", "tcp:5432"), ("group", "db"), ("result", "fail")))]
        == 1
    )
    assert got[("failover_probe_latency_seconds_count", (("check", "tcp:5432"),))] == 2
    assert (
        got[("failover_probe_latency_seconds_bucket", (("check", "tcp:5432"), ("le", "0.005")))]
        == 1
    )
    assert got[("failover_member_healthy", (("group", "db"), ("instance", "i-0aa")))] == 1
    assert got[("failover_member_healthy", (("group", "db"), ("instance", "i-0bb")))] == 0
    assert got[("failover_moves_total", (("group", "db"), ("outcome", "succeeded")))] == 1
    assert got[("failover_moves_total", (("group", "db"), ("outcome", "refused")))] == 1
    assert got[
        ("failover_move_duration_seconds_sum", (("outcome", "succeeded"),))
    ] == pytest.approx(4.2)
    assert got[("failover_move_duration_seconds_count", (("outcome", "failed"),))] == 0
    assert got[("failover_lease_held", (("group", "db"),))] == 1
    assert got[("failover_lease_held", (("group", "web"),))] == 0
    assert got[("failover_last_successful_pass_timestamp_seconds", ())] == 1_700_000_000.0


def test_healthz_flips_to_503_when_unhealthy(
    served: tuple[Metrics, MetricsServer, list[bool]],
) -> None:
    _, server, flag = served
    assert get(f"{server.url}/healthz")[0] == 200
    flag[0] = False
    status, body = get(f"{server.url}/healthz")
    assert status == 503
    assert "unhealthy" in body
    flag[0] = True
    assert get(f"{server.url}/healthz")[0] == 200
    assert get(f"{server.url}/nothing")[0] == 404


def test_healthz_names_a_problem_while_the_loop_is_alive() -> None:
    """Rule: a live loop that cannot do its job (blind to AWS) is 503 with the reason in the body."""
    problem: list[str | None] = ["blind: 3 passes in a row could not read AWS"]
    server = Metrics().serve("127.0.0.1:0", healthy=lambda: True, problem=lambda: problem[0])
    try:
        assert get(f"{server.url}/healthz") == (
            503,
            "unhealthy: blind: 3 passes in a row could not read AWS\n",
        )
        problem[0] = None
        assert get(f"{server.url}/healthz") == (200, "ok\n")
    finally:
        server.close()


def test_healthz_that_raises_is_unhealthy() -> None:
    def broken() -> bool:
        raise RuntimeError("scheduler gone")

    server = Metrics().serve("127.0.0.1:0", healthy=broken)
    try:
        assert get(f"{server.url}/healthz")[0] == 503
    finally:
        server.close()


def test_registries_are_private_and_close_frees_the_port() -> None:
    first, second = Metrics(), Metrics()  # same names, no "Duplicated timeseries" error
    first.move_finished("db", "failed", 60.0)
    server = second.serve("127.0.0.1:0")
    port = server.port
    try:
        assert "failover_moves_total{" not in get(f"{server.url}/metrics")[1]
    finally:
        server.close()
    again = second.serve(f"127.0.0.1:{port}")
    again.close()


def test_instrumented_prober_observes_every_result() -> None:
    metrics = Metrics()
    results = [ProbeResult("web", "i-0aa", "http:8080/health", False, "500", 0.01)]
    probe = metrics.instrument(lambda targets: list(results))
    assert probe([]) == results
    value = metrics.registry.get_sample_value(
        "failover_probes_total", {"group": "web", "check": "http:8080/health", "result": "fail"}
    )
    assert value == 1


def test_outcomes_of_a_pass_count_moves() -> None:
    metrics = Metrics()
    outcomes = [
        SimpleNamespace(group="a", outcome="moved", result=SimpleNamespace(elapsed_s=3.0)),
        SimpleNamespace(group="b", outcome="failed", result=None),
        SimpleNamespace(group="c", outcome="stay", result=None),
    ]
    metrics.observe_outcomes(outcomes)  # type: ignore[arg-type]
    value = metrics.registry.get_sample_value
    assert value("failover_moves_total", {"group": "a", "outcome": "succeeded"}) == 1
    assert value("failover_moves_total", {"group": "b", "outcome": "failed"}) == 1
    assert value("failover_moves_total", {"group": "c", "outcome": "succeeded"}) is None
    assert value("failover_move_duration_seconds_count", {"outcome": "succeeded"}) == 1


def test_unknown_move_outcome_is_a_bug() -> None:
    with pytest.raises(ValueError, match="not one of"):
        Metrics().move_finished("db", "moved", 1.0)


@pytest.mark.parametrize(
    ("listen", "expected"),
    [
        (DEFAULT_LISTEN, ("127.0.0.1", 9105)),
        (":9105", ("127.0.0.1", 9105)),
        ("0.0.0.0:9200", ("0.0.0.0", 9200)),
        ("[::1]:9105", ("::1", 9105)),
        ("localhost:1", ("localhost", 1)),
    ],
)
def test_listen_parses(listen: str, expected: tuple[str, int]) -> None:
    assert parse_listen(listen) == expected


@pytest.mark.parametrize(
    "listen", ["9105", "host", "127.0.0.1:", "127.0.0.1:70000", "example.com:80"]
)
def test_bad_listen_is_refused(listen: str) -> None:
    with pytest.raises(ValueError, match=r"\S"):
        parse_listen(listen)


def test_heartbeat_goes_stale_after_max_age() -> None:
    now = [100.0]
    beat = Heartbeat(6.0, monotonic=lambda: now[0])
    assert beat()  # healthy while the first pass runs
    now[0] = 106.5
    assert not beat()
    beat.beat()
    assert beat()
    limit = [0.1]
    beat.max_age_s = lambda: limit[0]  # read at every check: a reload changes the intervals
    now[0] = 106.7
    assert not beat()
    limit[0] = 1.0
    assert beat()


def test_healthz_allows_a_pass_that_moves() -> None:
    groups = parse(
        {
            "defaults": {"interval": "2s", "move_timeout": "60s"},
            "groups": [
                {
                    "name": name,
                    "mode": "eip",
                    "eip": f"eipalloc-{index:08x}",
                    "members": ["i-0aaaaaaaaaaaaaaaa", "i-0bbbbbbbbbbbbbbbb"],
                    **extra,
                }
                for index, (name, extra) in enumerate(
                    [("a", {}), ("b", {"interval": "5s", "move_timeout": "30s"})]
                )
            ],
        }
    ).groups
    assert healthz_max_age(groups) == 3 * 5.0 + 60.0
    assert healthz_max_age(()) == 6.0
