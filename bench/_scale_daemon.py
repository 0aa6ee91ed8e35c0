"""The scale bench's daemon, in its own process: `failover run`'s objects, timed pass by pass.

`python -m bench._scale_daemon CONFIG PASSES OUT` builds what `failover run` builds
(clients, adapter, store, engine, Monitor, Daemon with APScheduler) with recording
hooks, serves until PASSES passes have run, and writes one JSON object per pass to
OUT: wall time, process CPU seconds (every thread), resident memory, time in AWS
calls and in probes.
"""

from __future__ import annotations

import json
import resource
import sys
import threading
import time
from pathlib import Path
from typing import Any


def _rss_mb() -> tuple[float, float]:
    """(resident now, peak resident) in MB, from /proc."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def main(config: Path, passes: int, out: Path) -> None:
    from bench.harness import busy_s, fake_aws_env, log_to_file, wire

    fake_aws_env()
    log_to_file(out.with_suffix(".log"))
    import yaml

    from failover.daemon import Daemon

    doc = yaml.safe_load(config.read_text())
    rig = wire(doc)
    rec = rig.recorder
    records: list[dict[str, Any]] = []
    original = rig.monitor.run_pass
    daemon: Daemon | None = None
    lock = threading.Lock()

    def timed_pass(groups: Any, **kwargs: Any) -> Any:
        start, cpu = time.monotonic(), time.process_time()
        outcomes = original(groups, **kwargs)
        end, cpu_end = time.monotonic(), time.process_time()
        rss, peak = _rss_mb()
        probes = rec.of("probe-start", since=start, until=end)
        probe_end = rec.of("probe-end", since=start, until=end)
        with lock:
            records.append(
                {
                    "start": start,
                    "end": end,
                    "wall_s": end - start,
                    "cpu_s": cpu_end - cpu,
                    "rss_mb": rss,
                    "peak_rss_mb": peak,
                    "aws_s": busy_s(rec, "aws", None, start, end),
                    "probe_s": probe_end[-1].t - probes[0].t if probes and probe_end else 0.0,
                    "probes": probes[0].data["n"] if probes else 0,
                    "probe_failed": probe_end[-1].data["failed"] if probe_end else 0,
                    "ec2_due": kwargs.get("ec2_due", True),
                    "outcomes": _tally(outcomes),
                    "cpu_total_s": cpu_end,
                }
            )
            if len(records) >= passes and daemon is not None:
                daemon.stop()
        return outcomes

    rig.monitor.run_pass = timed_pass  # type: ignore[method-assign]
    daemon = Daemon(rig.settings, config, rig.monitor)
    code = daemon.serve()
    rig.close()
    maxrss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out.write_text(json.dumps({"code": code, "passes": records, "maxrss_mb": maxrss_mb}))


def _tally(outcomes: Any) -> dict[str, int]:
    tally: dict[str, int] = {}
    for o in outcomes:
        tally[o.outcome] = tally.get(o.outcome, 0) + 1
    return tally


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]))
