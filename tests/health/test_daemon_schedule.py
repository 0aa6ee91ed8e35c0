"""The daemon's schedule in this process: which passes ask EC2 for fresh status checks."""

from __future__ import annotations

import itertools
import signal
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from failover.clock import SystemClock
from failover.config import Group, parse
from failover.daemon import Daemon
from failover.monitor import GroupOutcome, Monitor


class RecordingMonitor:
    """Stands in for the Monitor: records each pass (its groups, whether status was due)."""

    def __init__(self) -> None:
        self.clock = SystemClock()
        self.passes: list[tuple[tuple[str, ...], bool, float]] = []
        self._lock = threading.Lock()

    def run_pass(
        self, groups: Sequence[Group], *, dry_run: bool = False, ec2_due: bool = True
    ) -> list[GroupOutcome]:
        with self._lock:
            self.passes.append((tuple(g.name for g in groups), ec2_due, time.monotonic()))
        return []


def _group(name: str, eni: str, interval: str) -> dict[str, Any]:
    return {
        "name": name,
        "mode": "eni",
        "eni": eni,
        "device_index": 1,
        "members": ["i-0aaaaaaaaaaaaaaaa", "i-0bbbbbbbbbbbbbbbb"],
        "interval": interval,
        "timeout": "50ms",
        "checks": [{"type": "ec2", "interval": "500ms"}],
    }


def test_every_job_refreshes_its_groups_status_on_the_status_interval(tmp_path: Path) -> None:
    """Rule: the ec2 check's verdicts are refreshed every status interval for *every* group,
    whatever its own interval (bug fixed: the fastest job took every refresh)."""
    settings = parse(
        {
            "aws": {"region": "us-east-1"},
            "state": {"path": str(tmp_path / "state.db")},
            "groups": [
                _group("fast", "eni-0123456789abcdef0", "100ms"),
                _group("slow", "eni-0123456789abcdef1", "1s"),
            ],
        },
        "test",
    )
    monitor = RecordingMonitor()
    daemon = Daemon(settings, tmp_path / "config.yaml", cast(Monitor, monitor))
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    stopper = threading.Timer(2.4, daemon.stop)
    stopper.start()
    try:
        assert daemon.serve() == 0
    finally:
        stopper.cancel()
        for sig, handler in saved.items():
            signal.signal(sig, handler)

    slow = [(due, at) for names, due, at in monitor.passes if names == ("slow",)]
    fast = [(due, at) for names, due, at in monitor.passes if names == ("fast",)]
    assert len(slow) >= 2, monitor.passes
    # The slow job runs every 1 s, twice the 500 ms status interval: every pass is due.
    assert [due for due, _ in slow] == [True] * len(slow), monitor.passes
    assert fast[0][0] is True
    refreshes = [at for due, at in fast if due]
    assert all(b - a >= 0.45 for a, b in itertools.pairwise(refreshes)), refreshes
