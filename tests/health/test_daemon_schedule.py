"""The daemon's schedule in this process: lease rounds, and which groups a pass covers."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import pytest

from failover.config import Group, parse
from failover.coord.fence import Fence
from failover.coord.lease import Beat
from failover.coord.lease_memory import FakeLease, MemoryLeaseTable
from failover.daemon import Daemon, lease_round_s
from failover.ops.clock import SystemClock
from failover.service.monitor import GroupOutcome, Monitor


class NoOpenMoves:
    """The journal, as far as the daemon asks it: nothing half-done."""

    def open_move_groups(self) -> set[str]:
        return set()


class RecordingMonitor:
    """Stands in for the Monitor: records each pass (its groups, when)."""

    def __init__(self) -> None:
        self.clock = SystemClock()
        self.store = NoOpenMoves()
        self.passes: list[tuple[tuple[str, ...], float]] = []
        self._lock = threading.Lock()

    def run_pass(self, groups: Sequence[Group], *, dry_run: bool = False) -> list[GroupOutcome]:
        with self._lock:
            self.passes.append((tuple(g.name for g in groups), time.monotonic()))
        return []

    def forget_topology(self) -> None:
        """A reload asks for it; nothing is held here."""


def serve_for(daemon: Daemon, seconds: float) -> None:
    """Run the daemon until it is stopped `seconds` from now; its signal handlers undone."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    stopper = threading.Timer(seconds, daemon.stop)
    stopper.start()
    try:
        assert daemon.serve() == 0
    finally:
        stopper.cancel()
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def _group(name: str, eni: str, interval: str) -> dict[str, Any]:
    return {
        "name": name,
        "mode": "eni",
        "eni": eni,
        "device_index": 1,
        "members": ["i-0aaaaaaaaaaaaaaaa", "i-0bbbbbbbbbbbbbbbb"],
        "interval": interval,
        "timeout": "50ms",
        "checks": [{"type": "ec2"}],
    }


def test_lease_rounds_run_every_half_interval_and_report_what_is_held(tmp_path: Path) -> None:
    """Rule: a daemon on leases takes its groups before its first pass, passes only those,
    runs lease rounds every half of the shortest interval (so a dead peer's groups are taken
    within TTL + one interval), reports the groups held (the lease gauge), gives all back on exit."""
    settings = parse(
        {
            "aws": {"region": "us-east-1"},
            "state": {"path": str(tmp_path / "state.db")},
            "groups": [
                _group("mine", "eni-0123456789abcdef0", "400ms"),
                _group("theirs", "eni-0123456789abcdef1", "1s"),
            ],
        },
        "test",
    )
    table = MemoryLeaseTable()
    other = FakeLease(
        table, SystemClock(), holder_id="other", spreads=False
    )  # a `failover move` at work
    other.heartbeat()
    assert other.acquire("theirs") == 1
    me = FakeLease(table, SystemClock(), holder_id="me", ttl_s=1.5)
    assert lease_round_s(settings, me.renew_every_s) == pytest.approx(0.2)

    beats: list[float] = []  # heartbeats written by "me"
    rounds: list[float] = []  # reads of the heartbeats: one per lease round
    original_beat, original_beats = table.beat, table.beats

    def counting_beat(beat: Beat) -> None:
        if beat.holder == "me":
            beats.append(time.monotonic())
        original_beat(beat)

    def counting_beats() -> dict[str, Beat]:
        rounds.append(time.monotonic())
        return original_beats()

    table.beat = counting_beat  # type: ignore[method-assign]
    table.beats = counting_beats  # type: ignore[method-assign]
    other_keeps_beating = threading.Timer(0.7, other.heartbeat)
    other_keeps_beating.start()
    reports: list[set[str]] = []
    monitor = RecordingMonitor()
    daemon = Daemon(
        settings,
        tmp_path / "config.yaml",
        cast(Monitor, monitor),
        on_leases=lambda held: reports.append(set(held)),
        fence=Fence(me),
    )
    serve_for(daemon, 1.5)

    assert reports[0] == {"mine"}  # "theirs" is held by a live one-shot command
    assert {names for names, _ in monitor.passes} == {("mine",)}
    # 1.5 s of rounds every 0.2 s (each reads the heartbeats, twice when it takes); the
    # session is renewed every 0.5 s (TTL / 3) by the keeper thread, whatever the rounds do.
    assert 6 <= len(rounds) <= 20, rounds
    assert 3 <= len(beats) <= 6, beats
    released = table.read_many(["mine", "theirs"])
    assert released["mine"].holder == ""
    assert released["theirs"].holder == "other"
