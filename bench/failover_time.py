"""Measures 1-3 (per move): failover time against the physical limit, orchestrator overhead, calls per move.

The real Monitor and Engine run against moto in-process behind a StrictLayer with
AWS-like delays (detach 2 s, attach 1 s, EIP follow 1 s; a `route` group's two ReplaceRoutes
take effect when answered, its members in two AZs). Passes run on a 0.5 s
schedule (fall 2, rise 1); each run kills the active member's TCP service at a random
phase of the pass interval and waits for the move to finish; the next run kills the
member it moved to. Every figure comes from recorded events: the kill instant, pass
and probe boundaries, the monitor's move alerts, the engine's step events, the
layer's call log and the instrumented clock's sleeps.
"""

from __future__ import annotations

import math
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.harness import (
    Listener,
    Recorder,
    Rig,
    busy_s,
    config_doc,
    count_calls,
    ec2_calls,
    free_port,
    group_doc,
    inprocess,
    is_read,
    median,
    percentile,
    wait_for,
    wire,
)
from bench.ownership import aws_calls, calls_before, owned_at, owning_call, path_calls

MODES = ("eni", "secondary-ip", "eip", "route")
DELAYS: dict[str, dict[str, float]] = {
    "eni": {"detach_delay_s": 2.0, "attach_delay_s": 1.0},
    "secondary-ip": {"eip_follow_delay_s": 1.0},
    "eip": {},
    "route": {},
}
INTERVAL_S, TIMEOUT_S, FALL, RISE = 0.5, 0.25, 2, 1
HOSTS = ("127.0.0.2", "127.0.0.3")
MUTATING_STEP_KINDS = ("detach", "attach", "assign-ip", "associate-eip", "replace-route")


def physical_limit(delays: dict[str, float], calls_s: float = 0.0) -> float:
    """Detection window (interval x fall) plus the sandbox's transition delays on the path.

    `calls_s`: the time AWS took to answer the calls that make the move (a route group has
    no transition to wait for: its limit is detection plus its ReplaceRoutes).
    """
    return INTERVAL_S * FALL + sum(delays.values()) + calls_s


@dataclass
class RunResult:
    """One failover, every instant relative to the kill (seconds)."""

    mode: str
    ok: bool
    to_owned_s: float = math.nan  # kill -> the standby owns the resource in AWS
    to_done_s: float = math.nan  # kill -> the engine finished (last wait confirmed)
    detection_s: float = math.nan
    decision_s: float = math.nan
    segments: list[tuple[str, float, float]] = field(default_factory=list)  # (label, start, end)
    breakdown: dict[str, float] = field(default_factory=dict)  # label -> seconds before ownership
    move_wall_s: float = math.nan
    move_aws_s: float = math.nan
    move_sleep_s: float = math.nan
    calls: dict[str, int] = field(default_factory=dict)
    polls: int = 0
    error: str = ""
    route_calls_s: float = 0.0  # time inside the move's ReplaceRoute calls (route mode)
    calls_before_owner: int = 0  # EC2/STS calls sent after detection, before the owning call
    path_calls: int = 0  # round trips to ownership (bench/ownership.py)

    @property
    def overhead_s(self) -> float:
        return self.move_wall_s - self.move_aws_s - self.move_sleep_s


def bench_world(ec2: Any, mode: str) -> Any:
    """One group "g" in `mode`, a primary and one standby, built with `ec2`."""
    from failover.sandbox.world import build_world

    # A route group's members are in two AZs: the point of the mode.
    return build_world(ec2, mode=mode, group="g", cross_az=mode == "route")


def bench_config(tmp: Path, mode: str, world: Any, port: int) -> dict[str, Any]:
    """The bench's config for one group over `world`: ec2 and tcp checks on `port`, fast passes."""
    members = [(world.primary, HOSTS[0]), (world.standbys[0], HOSTS[1])]
    group = group_doc(
        "g",
        mode,
        members,
        [{"type": "ec2"}, {"type": "tcp", "port": port}],
        eni=world.eni_id,
        ip=world.ip,
        eip=world.allocation_id,
        cidr=world.cidr,
        route_tables=world.route_tables,
    )
    return config_doc(
        [group],
        tmp / "state.db",
        interval=f"{int(INTERVAL_S * 1000)}ms",
        timeout=f"{int(TIMEOUT_S * 1000)}ms",
        fall=FALL,
        rise=RISE,
        cooldown="1ms",
        max_moves_per_hour=1000,
        detach_timeout="10s",
        move_timeout="30s",
    )


def _calls_s(rec: Recorder, action: str, thread: int, since: float, until: float) -> float:
    """Seconds `thread` spent inside `action` calls between `since` and `until`."""
    return sum(
        max(0.0, min(e.data["end"], until) - max(e.t, since))
        for e in rec.of("aws", since - 3600.0, until)
        if e.thread == thread and e.data.get("action") == action
    )


def _transition_end(kind: str, calls: list[Any], delays: dict[str, float]) -> float | None:
    """When the AWS transition a wait step waits for completed (None: no transition, all slack)."""
    ok = [c for c in calls if c.error is None]

    def last(action: str) -> Any:
        found = [c for c in ok if c.action == action]
        return found[-1] if found else None

    if kind == "wait-detached" and (c := last("DetachNetworkInterface")) is not None:
        return float(c.at + delays.get("detach_delay_s", 0.0))
    if kind == "wait-attached" and (c := last("AttachNetworkInterface")) is not None:
        return float(c.at + delays.get("attach_delay_s", 0.0))
    if kind == "wait-eip-follows" and (c := last("AssignPrivateIpAddresses")) is not None:
        return float(c.at + delays.get("eip_follow_delay_s", 0.0))
    return None


def analyse_move(
    rec: Recorder,
    layer: Any,
    mode: str,
    delays: dict[str, float],
    t_kill: float,
    started: Any,
    finished: Any,
) -> RunResult:
    """Everything one monitored failover shows, from the events between the kill and its end."""
    t_ms, t_end = started.t, finished.t
    passes = list(rec.of("pass-start", until=t_ms))
    pass_start = passes[-1].t if passes else t_ms
    probes = rec.of("probe-end", since=pass_start, until=t_ms)
    t_detect = probes[-1].t if probes else pass_start
    calls = ec2_calls(layer, t_ms, t_end)
    owned = owned_at(mode, calls, delays)
    # The round trips after detection: the pass's reads under the claim and the move's.
    on_path = aws_calls(layer, t_detect, t_end)
    owning = owning_call(mode, on_path)
    steps = [e for e in rec.of("step", since=t_ms, until=t_end) if e.thread == started.thread]
    segments: list[tuple[str, float, float]] = [
        ("detection", 0.0, t_detect - t_kill),
    ]
    first_step = next((e.t for e in steps if e.data["phase"] == "started"), t_end)
    segments.append(("decision", t_detect - t_kill, first_step - t_kill))
    open_at: dict[str, float] = {}
    polls = 0
    for e in steps:
        kind, phase = e.data["step"], e.data["phase"]
        if phase == "started":
            open_at[kind] = e.t
            continue
        if phase not in ("done", "failed") or kind not in open_at:
            continue
        begin = open_at.pop(kind)
        if kind.startswith("wait"):
            polls += sum(1 for c in calls if begin <= c.at <= e.t and is_read(c))
            edge = _transition_end(kind, calls, delays)
            if edge is not None and edge > begin:
                segments.append(
                    (f"{kind}: AWS transition", begin - t_kill, min(edge, e.t) - t_kill)
                )
                if e.t > edge:
                    segments.append((f"{kind}: polling slack", edge - t_kill, e.t - t_kill))
            else:
                segments.append((f"{kind}: polling slack", begin - t_kill, e.t - t_kill))
        else:
            segments.append((kind, begin - t_kill, e.t - t_kill))
    to_owned = owned - t_kill
    breakdown: dict[str, float] = {}
    for label, start, end in segments:
        clipped = max(0.0, min(end, to_owned) - start)
        if clipped > 0:
            breakdown[label] = breakdown.get(label, 0.0) + clipped
    breakdown["journal and gaps between steps"] = max(0.0, to_owned - sum(breakdown.values()))
    thread = started.thread
    return RunResult(
        mode=mode,
        ok=finished.data["event"] == "move-finished",
        to_owned_s=to_owned,
        to_done_s=t_end - t_kill,
        detection_s=t_detect - t_kill,
        decision_s=first_step - t_detect,
        segments=segments,
        breakdown=breakdown,
        move_wall_s=t_end - t_ms,
        move_aws_s=busy_s(rec, "aws", thread, t_ms, t_end),
        move_sleep_s=busy_s(rec, "sleep", thread, t_ms, t_end),
        calls=count_calls(calls),
        polls=polls,
        error="" if finished.data["event"] == "move-finished" else finished.data["message"],
        route_calls_s=_calls_s(rec, "ReplaceRoute", thread, t_ms, t_end),
        calls_before_owner=len(calls_before(on_path, owning)) if owning else 0,
        path_calls=path_calls(on_path, owning, delays) if owning else 0,
    )


def run_mode(
    mode: str,
    runs: int,
    seed: int = 1,
    delays: dict[str, float] | None = None,
    latency_s: float = 0.0,
) -> list[RunResult]:
    """`runs` monitored failovers in `mode`, alternating between the two members.

    `delays` are the StrictLayer's transition delays (default: DELAYS[mode]); `latency_s` the
    per-call latency of every EC2 and STS call once the world is built.
    """
    delays = DELAYS[mode] if delays is None else delays
    from bench.harness import PassDriver

    rng = random.Random(seed)
    results: list[RunResult] = []
    with inprocess(**delays) as box:
        world = bench_world(box.ec2, mode)
        port = free_port(HOSTS[0])
        members = [world.primary, world.standbys[0]]
        listeners = {m: Listener(h, port).start() for m, h in zip(members, HOSTS, strict=True)}
        rig: Rig = wire(bench_config(box.tmp, mode, world, port))
        box.layer.set_latency(latency_s)
        rec = rig.recorder
        driver = PassDriver(rig, INTERVAL_S).start()
        active = world.primary
        try:
            for _ in range(runs):
                driver.wait_passes(RISE + 1)
                at = driver.last_pass_start() + rng.uniform(0.0, INTERVAL_S)
                while at < time.monotonic():
                    at += INTERVAL_S
                time.sleep(at - time.monotonic())
                t_kill = listeners[active].stop()

                def ended(t_kill: float = t_kill) -> bool:
                    return any(
                        e.data["event"] in ("move-finished", "move-failed", "move-refused")
                        for e in rec.of("alert", since=t_kill)
                    )

                if not wait_for(ended, timeout_s=30.0):
                    results.append(RunResult(mode, ok=False, error="no move within 30 s"))
                    listeners[active] = Listener(listeners[active].host, port).start()
                    continue
                alerts = rec.of("alert", since=t_kill)
                started = next(e for e in alerts if e.data["event"] == "move-started")
                finished = next(e for e in alerts if e.data["event"] != "move-started")
                result = analyse_move(rec, box.layer, mode, delays, t_kill, started, finished)
                results.append(result)
                listeners[active] = Listener(listeners[active].host, port).start()
                if result.ok:
                    active = members[1] if active == members[0] else members[0]
        finally:
            driver.stop()
            for listener in listeners.values():
                listener.stop()
            rig.close()
    return results


@dataclass
class QuickMove:
    """One engine.move with no AWS delays: its wall, AWS and sleep time, and its calls."""

    mode: str
    wall_s: float
    aws_s: float
    sleep_s: float
    calls: dict[str, int]

    @property
    def overhead_s(self) -> float:
        return self.wall_s - self.aws_s - self.sleep_s


def quick_moves(mode: str, count: int) -> list[QuickMove]:
    """`count` back-and-forth engine moves with zero AWS delays: overhead and call counts per move."""
    out: list[QuickMove] = []
    with inprocess() as box:
        world = bench_world(box.ec2, mode)
        doc = bench_config(box.tmp, mode, world, 9)
        rig = wire(doc)
        group = rig.settings.groups[0]
        members = [world.primary, world.standbys[0]]
        rig.engine.caller()  # the one STS call per process, outside the measured moves
        try:
            for k in range(count):
                target = members[(k + 1) % 2]
                start = time.monotonic()
                rig.engine.move(group, target=target, source_failed=True, reason="bench")
                end = time.monotonic()
                thread = threading.get_ident()
                out.append(
                    QuickMove(
                        mode,
                        end - start,
                        busy_s(rig.recorder, "aws", thread, start, end),
                        busy_s(rig.recorder, "sleep", thread, start, end),
                        count_calls(ec2_calls(box.layer, start, end)),
                    )
                )
        finally:
            rig.close()
    return out


def summarize(mode: str, runs: list[RunResult], quick: list[QuickMove]) -> dict[str, Any]:
    """The figures of one mode: ratios to the limit, breakdown medians, overhead, calls per move."""
    good = [r for r in runs if r.ok and not math.isnan(r.to_owned_s)]
    owned = [r.to_owned_s for r in good]
    # Each run against its own limit: a route move's calls are part of it (measured per run).
    limits = [physical_limit(DELAYS[mode], r.route_calls_s) for r in good]
    ratios = [o / lim for o, lim in zip(owned, limits, strict=True)]
    limit = median(limits) if limits else physical_limit(DELAYS[mode])
    labels: list[str] = []
    for r in good:
        labels += [label for label in r.breakdown if label not in labels]
    overheads = [r.overhead_s for r in good] + [q.overhead_s for q in quick]
    mutating = [r.calls.get("mutating", 0) for r in good]
    reads = [r.calls.get("read", 0) for r in good]
    return {
        "mode": mode,
        "runs": len(runs),
        "ok": len(good),
        "errors": [r.error for r in runs if not r.ok],
        "limit_s": limit,
        "to_owned_median_s": median(owned),
        "to_owned_p95_s": percentile(owned, 0.95),
        "ratio_median": median(ratios),
        "ratio_p95": percentile(ratios, 0.95),
        "to_done_median_s": median([r.to_done_s for r in good]),
        "breakdown_median_s": {
            label: median([r.breakdown.get(label, 0.0) for r in good]) for label in labels
        },
        "breakdown_p95_s": {
            label: percentile([r.breakdown.get(label, 0.0) for r in good], 0.95) for label in labels
        },
        "overhead_median_ms": 1000 * median(overheads),
        "overhead_p99_ms": 1000 * percentile(overheads, 0.99),
        "overhead_samples": len(overheads),
        "move_wall_median_ms": 1000 * median([r.move_wall_s for r in good]),
        "move_aws_median_ms": 1000 * median([r.move_aws_s for r in good]),
        "move_sleep_median_ms": 1000 * median([r.move_sleep_s for r in good]),
        "quick_wall_median_ms": 1000 * median([q.wall_s for q in quick]),
        "quick_aws_median_ms": 1000 * median([q.aws_s for q in quick]),
        "mutating_per_move": sorted(set(mutating)),
        "mutating_median": median(mutating),
        "reads_per_move_median": median(reads),
        "reads_per_move_max": max(reads) if reads else math.nan,
        "polls_median": median([r.polls for r in good]),
        "quick_mutating": sorted({q.calls["mutating"] for q in quick}),
        "quick_reads_median": median([q.calls["read"] for q in quick]),
        "timeline": [r.segments for r in good],
        "to_owned_all_s": owned,
    }


def run(runs: int = 20, quick: int = 100) -> dict[str, Any]:
    """Every mode: monitored failovers with AWS-like delays, then quick moves for overhead."""
    out: dict[str, Any] = {}
    for mode in MODES:
        t0 = time.monotonic()
        monitored = run_mode(mode, runs)
        fast = quick_moves(mode, quick)
        out[mode] = summarize(mode, monitored, fast)
        out[mode]["bench_s"] = time.monotonic() - t0
        print(
            f"[failover-time] {mode}: owned median {out[mode]['to_owned_median_s']:.3f}s "
            f"p95 {out[mode]['to_owned_p95_s']:.3f}s limit {out[mode]['limit_s']:.2f}s "
            f"ratio {out[mode]['ratio_median']:.3f}/{out[mode]['ratio_p95']:.3f}; overhead "
            f"median {out[mode]['overhead_median_ms']:.1f}ms p99 {out[mode]['overhead_p99_ms']:.1f}ms "
            f"({out[mode]['bench_s']:.0f}s)",
            flush=True,
        )
    return out


if __name__ == "__main__":
    import json
    import sys

    from bench.harness import log_to_file

    log_to_file(Path("/tmp/bench-failover-time.log"))
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    result = run(runs=n, quick=10)
    for mode, figures in result.items():
        figures.pop("timeline")
        print(mode, json.dumps(figures, indent=1, default=str))
