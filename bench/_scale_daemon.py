"""The scale bench's daemon, in its own process: `failover run`'s objects, timed pass by pass.

`python -m bench._scale_daemon CONFIG PASSES OUT` builds what `failover run` builds
(clients, adapter, store, engine, Monitor, Daemon with APScheduler) with recording
hooks, serves until PASSES passes have run, and writes one JSON object per pass to
OUT: wall time, process CPU seconds (every thread), resident memory, time in AWS
calls and in probes. Then it runs one more pass under cProfile (not among the timed
ones: the profiler slows it) and writes where that pass's time went, by part of the
stack (`PARTS`): the pass runs on one thread, probes included (their own event loop
on it), so the profile of that thread is the whole pass.
"""

from __future__ import annotations

import cProfile
import json
import pstats
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


# Parts of the stack a pass's time is charged to: the first whose path fragment is in the
# function's file (a function's own time, callees excluded).
PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("botocore: parse answers (XML)", ("botocore/parsers.py", "xml/etree", "expat")),
    ("botocore: build, sign, send requests", ("botocore/", "boto3/")),
    ("HTTP to AWS (urllib3, http.client)", ("urllib3/", "http/client.py", "ssl.py")),
    ("probes: event loop", ("asyncio/", "selectors.py", "uvloop")),
    ("probes: failover/probes", ("failover/probes/",)),
    ("store (sqlite)", ("failover/store/", "sqlite3")),
    ("EC2 adapter (failover/aws)", ("failover/aws/",)),
    ("decide, fold, views (failover/core, service)", ("failover/core/", "failover/service/")),
    ("config and logging", ("failover/config/", "logging/", "pydantic")),
)


def _own_part(func: tuple[str, int, str]) -> str | None:
    path, _line, name = func
    where = f"{path}:{name}"
    return next((p for p, frags in PARTS if any(f in where for f in frags)), None)


def _shares(func: tuple[str, int, str], raw: dict[Any, Any], depth: int = 0) -> dict[str, float]:
    """Which parts a function's own time belongs to: its own file's, else its callers' (as
    much of it as each caller caused), up to a few callers up; the rest `other`."""
    part = _own_part(func)
    if part is not None:
        return {part: 1.0}
    callers: dict[Any, Any] = raw[func][4] if func in raw else {}
    caused = {c: v[2] for c, v in callers.items()}
    total = sum(caused.values())
    if depth >= 4 or not callers or total <= 0:
        return {"other": 1.0}
    shares: dict[str, float] = {}
    for caller, secs in caused.items():
        for p, f in _shares(caller, raw, depth + 1).items():
            shares[p] = shares.get(p, 0.0) + f * secs / total
    return shares


def profile_parts(stats: pstats.Stats) -> dict[str, float]:
    """Seconds of the profiled pass per part of the stack (see PARTS): each function's own
    time, charged to its file's part, or to the parts of the callers that caused it (the
    standard library and C functions: sockets, dicts, dataclasses, epoll)."""
    parts: dict[str, float] = {}
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for func, (_cc, _nc, tottime, _ct, _callers) in raw.items():
        for part, share in _shares(func, raw).items():
            parts[part] = parts.get(part, 0.0) + tottime * share
    return dict(sorted(parts.items(), key=lambda kv: -kv[1]))


def top_functions(stats: pstats.Stats, n: int = 15) -> list[dict[str, Any]]:
    """The `n` functions with the most own time in the profiled pass."""
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    rows = sorted(raw.items(), key=lambda kv: -kv[1][2])[:n]
    return [
        {"function": f"{Path(path).name}:{line}:{name}", "own_s": tt, "cum_s": ct, "calls": nc}
        for (path, line, name), (_cc, nc, tt, ct, _callers) in rows
    ]


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

    profile: dict[str, Any] = {}

    def timed_pass(groups: Any, **kwargs: Any) -> Any:
        if len(records) >= passes:
            return profiled_pass(groups, **kwargs)
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
                    # Every pass reads the status checks with the state.
                    "ec2_due": True,
                    "outcomes": _tally(outcomes),
                    "cpu_total_s": cpu_end,
                }
            )
        return outcomes

    def profiled_pass(groups: Any, **kwargs: Any) -> Any:
        profiler = cProfile.Profile()
        start = time.monotonic()
        profiler.enable()
        try:
            return original(groups, **kwargs)
        finally:
            profiler.disable()
            stats = pstats.Stats(profiler)
            profile.update(
                wall_s=time.monotonic() - start,
                parts=profile_parts(stats),
                top=top_functions(stats),
            )
            if daemon is not None:
                daemon.stop()

    rig.monitor.run_pass = timed_pass  # type: ignore[method-assign]
    daemon = Daemon(rig.settings, config, rig.monitor)
    code = daemon.serve()
    rig.close()
    maxrss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out.write_text(
        json.dumps({"code": code, "passes": records, "maxrss_mb": maxrss_mb, "profile": profile})
    )


def _tally(outcomes: Any) -> dict[str, int]:
    tally: dict[str, int] = {}
    for o in outcomes:
        tally[o.outcome] = tally.get(o.outcome, 0) + 1
    return tally


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]))
