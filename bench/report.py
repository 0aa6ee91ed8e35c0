"""RESULTS.md and the PNGs from the figures the benches returned (bench/results.json)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from bench.az_failure import describe_limit_s

COLORS = {
    "detection": "#9e9e9e",
    "decision": "#ff9800",
    "polling slack": "#e53935",
    "AWS transition": "#90caf9",
}
STEP_COLOR = "#1565c0"
# The measures bench/run_all.py runs, by their key in results.json.
MEASURES = ("failover_time", "api_cost", "scale", "az_failure", "cron", "latency")


def _scale_profile(sc: dict[str, Any]) -> list[str]:
    """Where a pass's time goes, per size: a cProfile'd pass (untimed), by part of the stack,
    in 100 ms units of that pass, and its slowest functions."""
    lines: list[str] = []
    for key, r in sc.items():
        prof = r.get("profile") if isinstance(r, dict) else None
        if not prof or not prof.get("parts"):
            continue
        total = sum(prof["parts"].values())
        lines += [
            f"Where a pass over {key} members goes: one more pass under cProfile (untimed; "
            f"{_f(prof['wall_s'])} s with the profiler's overhead, {_f(total)} s charged), by "
            "part of the stack (a function's own time), and the share applied to the median "
            f"pass of {_f(r['pass_wall_median_s'])} s:",
            "",
            "| part | profiled s | share % | of the median pass, s |",
            "|---|---|---|---|",
        ]
        for part, secs in prof["parts"].items():
            share = secs / total if total else 0.0
            lines.append(
                f"| {part} | {_f(secs)} | {_f(100 * share, 0)} | "
                f"{_f(share * r['pass_wall_median_s'])} |"
            )
        lines += [
            "",
            "| slowest functions (own time) | calls | own s | cumulative s |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| `{t['function']}` | {t['calls']} | {_f(t['own_s'])} | {_f(t['cum_s'])} |"
            for t in prof["top"][:10]
        ]
        lines.append("")
    return lines


def _f(value: Any, digits: int = 2) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def _verdict(ratio: float, goal: float) -> str:
    if math.isnan(ratio):
        return "not measured"
    return "met" if ratio <= goal else f"missed by {100 * (ratio / goal - 1):.0f} %"


def az_variants(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The AZ-failure runs (a results.json from before the disrupted variant holds one)."""
    az = results.get("az_failure") or []
    return [az] if isinstance(az, dict) else list(az)


def _az_name(az: dict[str, Any]) -> str:
    disrupted = az.get("disrupted") or []
    return f"{', '.join(disrupted)} disrupted" if disrupted else "instance reads answered"


def _az_png(az: dict[str, Any]) -> str:
    return "az_failure_disrupted.png" if az.get("disrupted") else "az_failure.png"


def _run_sizes(results: dict[str, Any]) -> list[str]:
    """Which measures ran at the quick sizes, and which failed (their last traceback line)."""
    sizes = results.get("sizes") or {
        name: {"quick": bool(results.get("quick"))} for name in MEASURES if name in results
    }
    quick = sorted(name for name, size in sizes.items() if size.get("quick"))
    lines = [f"Run at the quick sizes (`--quick`): {', '.join(quick)}.", ""] if quick else []
    for name, trace in sorted((results.get("errors") or {}).items()):
        last = trace.strip().splitlines()[-1] if trace.strip() else "no traceback"
        lines += [f"Measure `{name}` failed: `{last}`.", ""]
    return lines


def plots(results: dict[str, Any], out: Path) -> list[str]:
    """A timeline per mode and the AZ-failure curve; [] when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.patches import Patch
    except ImportError:
        return []
    written = []
    for mode, fig_data in results.get("failover_time", {}).items():
        timeline = fig_data["timeline"]
        fig, ax = plt.subplots(figsize=(10, 0.3 * len(timeline) + 2.2))
        for row, segments in enumerate(timeline):
            for label, start, end in segments:
                color = next((c for k, c in COLORS.items() if label.endswith(k)), STEP_COLOR)
                ax.barh(row, end - start, left=start, color=color, edgecolor="white", height=0.8)
        ax.axvline(fig_data["limit_s"], color="black", linestyle="--", linewidth=1)
        ax.text(fig_data["limit_s"], -0.9, " physical limit", fontsize=8, va="top")
        ax.set_xlabel("seconds since the primary's service died")
        ax.set_ylabel("run")
        ax.set_title(
            f"{mode}: median {fig_data['to_owned_median_s']:.2f}s, p95 {fig_data['to_owned_p95_s']:.2f}s "
            f"to ownership; limit {fig_data['limit_s']:.2f}s"
        )
        ax.invert_yaxis()
        handles = [Patch(color=c, label=k) for k, c in COLORS.items()]
        handles.append(Patch(color=STEP_COLOR, label="AWS call step (observe + call)"))
        fig.legend(handles=handles, loc="lower center", ncol=5, fontsize=7)
        fig.tight_layout(rect=(0, 0.08, 1, 1))
        name = f"timeline_{mode}.png"
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        written.append(name)
    for az in az_variants(results):
        if not az.get("served_times_s"):
            continue
        fig, ax = plt.subplots(figsize=(9, 5))
        times = az["served_times_s"]
        ax.step(times, range(1, len(times) + 1), where="post", label="groups served (measured)")
        horizon = max(max(times), az["limit_s"]) * 1.05
        xs = [horizon * k / 200 for k in range(201)]
        ax.plot(
            xs,
            [min(az["groups"], 50 + 5 * x) for x in xs],
            linestyle="--",
            color="black",
            label="mutating bucket limit (50 + 5/s)",
        )
        if az["throttle_times_s"]:
            ax.plot(
                az["throttle_times_s"],
                [0] * len(az["throttle_times_s"]),
                "|",
                color="red",
                markersize=12,
                label=f"RequestLimitExceeded answers ({az['throttled']})",
            )
        ax.set_xlabel("seconds since the first move started")
        ax.set_ylabel("groups served")
        ax.set_title(
            f"AZ failure: {az['groups']} groups (eip mode, token buckets on), {_az_name(az)}"
        )
        ax.legend(loc="lower right", fontsize=8)
        fig.tight_layout()
        name = _az_png(az)
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        written.append(name)
    return written


def markdown(results: dict[str, Any], pngs: list[str]) -> str:
    m = results["machine"]
    lines = [
        "# Benchmarks",
        "",
        f"Written by `make bench` (`python -m bench.run_all`) in {results['wall_s']:.0f} s. Every figure is computed from recorded events (the strict "
        "layer's call log, botocore call timestamps, engine step events, monitor alerts, pass "
        "boundaries, the clock's sleeps); only the limits they are divided by come from configuration.",
        "",
        f"Machine: {m['cores']} cores, Python {m['python']}, moto {m['moto']}, boto3 {m['boto3']}, "
        f"{m['platform']}.",
        "",
        *_run_sizes(results),
    ]
    ft = results.get("failover_time")
    if ft:
        lines += [
            "## 1. Failover time against the physical limit",
            "",
            "Strict sandbox in-process, detach 2 s, attach 1 s, EIP follow 1 s; interval 0.5 s, "
            "fall 2, probe timeout 0.25 s. Time from the primary's TCP service dying to the standby "
            "owning the resource in AWS (attach call + attach delay; assign call + EIP follow "
            "delay; associate call; the last of a route group's two ReplaceRoutes, to a standby in "
            "the other AZ). Limit = interval x fall + the transition delays on the path (route: "
            "+ the time AWS took to answer its ReplaceRoutes, measured per run; the ratio is per run).",
            "",
            "| mode | runs | median s | p95 s | limit s | ratio median | ratio p95 | goal | verdict (p95) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for mode, f in ft.items():
            lines.append(
                f"| {mode} | {f['ok']}/{f['runs']} | {_f(f['to_owned_median_s'], 3)} | "
                f"{_f(f['to_owned_p95_s'], 3)} | {_f(f['limit_s'])} | {_f(f['ratio_median'], 3)} | "
                f"{_f(f['ratio_p95'], 3)} | <= 1.05 | {_verdict(f['ratio_p95'], 1.05)} |"
            )
        lines += ["", "Breakdown of the time to ownership (median / p95 seconds per part):", ""]
        for mode, f in ft.items():
            parts = ", ".join(
                f"{label} {_f(v, 3)} / {_f(f['breakdown_p95_s'][label], 3)}"
                for label, v in f["breakdown_median_s"].items()
            )
            lines.append(
                f"- **{mode}**: {parts}; move finished (last wait confirmed) at "
                f"{_f(f['to_done_median_s'], 3)} s median."
            )
        lines += [""] + [f"![{p}]({p})" for p in pngs if p.startswith("timeline_")] + [""]
        lines += [
            "## 2. Orchestrator overhead per move",
            "",
            "Wall time of a move (monitor's move-started to move-finished alert, or one "
            "`Engine.move` call for the zero-delay quick moves) minus time inside botocore "
            "calls (provide-client-params to after-call, the sandbox included) minus the "
            "clock's sleeps. Samples: the monitored moves above plus quick moves.",
            "",
            "| mode | samples | median ms | p99 ms | goal ms | verdict (p99) | monitored move: wall / AWS / sleeps ms |",
            "|---|---|---|---|---|---|---|",
        ]
        for mode, f in ft.items():
            lines.append(
                f"| {mode} | {f['overhead_samples']} | {_f(f['overhead_median_ms'], 1)} | "
                f"{_f(f['overhead_p99_ms'], 1)} | 50 | {_verdict(f['overhead_p99_ms'] / 50, 1.0)} | "
                f"{_f(f['move_wall_median_ms'], 0)} / {_f(f['move_aws_median_ms'], 0)} / "
                f"{_f(f['move_sleep_median_ms'], 0)} |"
            )
        lines += [
            "",
            "## 3. API cost",
            "",
            "Per move, from the call log between the move's alerts (monitored moves with delays; "
            "quick moves without):",
            "",
            "| mode | mutating per move | goal | reads per move (median, max) | of which polls | quick-move reads |",
            "|---|---|---|---|---|---|",
        ]
        goals = {"eni": 2, "secondary-ip": 1, "eip": 1, "route": 2}  # route: one per table
        for mode, f in ft.items():
            lines.append(
                f"| {mode} | {f['mutating_per_move']} | {goals[mode]} | "
                f"{_f(f['reads_per_move_median'], 0)}, {_f(f['reads_per_move_max'], 0)} | "
                f"{_f(f['polls_median'], 0)} | {_f(f['quick_reads_median'], 0)} |"
            )
    cost = results.get("api_cost")
    if cost:
        lines += [
            "",
            "Reads per `check` pass (status checks due), against ceil(members/100):",
            "",
            "| members | reads | by action | ceil(m/100) | reads / ceil(m/100) |",
            "|---|---|---|---|---|",
        ]
        for row in cost:
            lines.append(
                f"| {row['members']} | {row['reads']} | {row['by_action']} | {row['floor']} | "
                f"{_f(row['reads'] / row['floor'])} |"
            )
        lines.append("")
    sc = results.get("scale")
    if sc:
        lines += [
            "## 4. Scale: one daemon, 5 s interval, probe timeout 1 s",
            "",
            f"AWS side in its own process (moto's server, world built into moto's backend in "
            f"{_f(sc['build_s'], 1)} s; Describe answers memoized after moto's first, see "
            "bench/_scale_server.py); the daemon (`failover run`'s objects and APScheduler) in "
            "another, timed per pass. Goals at 10,000: pass <= 1.5 s, < 25 % of a core, < 300 MB.",
            "",
            "CPU demand at the cadence = CPU seconds per pass / the 5 s interval (what one core "
            "must give for passes to keep their schedule); CPU measured = process CPU / elapsed "
            "over the run (passes longer than the interval run back to back, so it under-states "
            "the demand).",
            "",
            "Passes after the first read state and ownership only (DescribeInstanceStatus with "
            "IncludeAllInstances, the floating resources by id); the first also reads the members' "
            "topology (DescribeInstances), as a pass does after SIGHUP and every 5 minutes.",
            "",
            "| members | pass median s | max s | AWS s | probes s | CPU s/pass | CPU demand at cadence % | CPU measured % | RSS MB | Describe/s | reads a pass (first pass) | first pass s | verdict |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for key, r in sc.items():
            if not isinstance(r, dict):
                continue
            verdicts = [
                _verdict(r["pass_wall_median_s"] / 1.5, 1.0),
                _verdict(r["pass_cpu_median_s"] / 5.0 / 0.25, 1.0),
                _verdict(r["rss_mb"] / 300, 1.0),
            ]
            lines.append(
                f"| {key} | {_f(r['pass_wall_median_s'])} | {_f(r['pass_wall_max_s'])} | "
                f"{_f(r['pass_aws_median_s'])} | {_f(r['pass_probe_median_s'])} | "
                f"{_f(r['pass_cpu_median_s'])} | {_f(100 * r['pass_cpu_median_s'] / 5.0, 0)} | "
                f"{_f(100 * r['cpu_share_of_core'], 0)} | "
                f"{_f(r['rss_mb'], 0)} | {_f(r['describe_rate_per_s'], 1)} | "
                f"{r['steady_pass_reads']} ({r['first_pass_reads']}) | {_f(r['first_pass_s'])} | "
                f"pass {verdicts[0]}; CPU {verdicts[1]}; RSS {verdicts[2]} |"
            )
        lines.append("")
        lines += _scale_profile(sc)
    lines += _az_section(az_variants(results), pngs)
    cron = results.get("cron")
    if cron and "commands" in cron:
        lines += [
            "## 6. Start-up: `failover check` and `failover move`",
            "",
            "Each command a fresh process of the installed console script against the sandbox; "
            "start-up is spawn to the first request the sandbox receives from it, the floor "
            "`python -c 'import boto3'` spawn to exit, the two alternated; medians of "
            f"{cron['repeats']} runs. Goal: start-up <= {_f(cron['goal_ratio'], 1)} x the floor.",
            "",
            "| command | first AWS call | start-up median s | min s | floor s | ratio | goal | "
            "whole run s | exit codes |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for c in cron["commands"].values():
            lines.append(
                f"| `{c['command']}` | {', '.join(c['first_calls'])} | "
                f"{_f(c['start_median_s'], 3)} | {_f(c['start_min_s'], 3)} | "
                f"{_f(c['floor_median_s'], 3)} | {_f(c['ratio'])} | "
                f"{'met' if c['ratio'] <= cron['goal_ratio'] else 'missed'} | "
                f"{_f(c['wall_median_s'], 3)} | {c['exit_codes']} |"
            )
        lines.append("")
        for c in cron["commands"].values():
            lines += [
                f"Where `{c['command'].split()[1]}`'s start-up goes (ms, median of 5 runs): "
                + ", ".join(f"{k} {v:.0f}" for k, v in c["phases_ms"].items()),
                "",
                f"Largest imports of one `{c['command'].split()[1]}` run before its first request "
                f"(`-X importtime`, which slows imports down; own time summed by package, ms; "
                f"all imports before the first request {c['import_total_ms']:.0f} ms): "
                + ", ".join(f"{n} {v:.0f}" for n, v in c["import_ms"]),
                "",
            ]
    lines += _latency_section(results.get("latency"))
    return "\n".join(lines)


def _az_section(variants: list[dict[str, Any]], pngs: list[str]) -> list[str]:
    if not variants:
        return []
    first = variants[0]
    lines = [
        "## 5. An AZ fails",
        "",
        f"{first['groups']} groups in eip mode (primaries in us-east-1a, standbys in us-east-1b) "
        f"lose their primaries at once; token buckets on; passes every "
        f"{_f(first['interval_s'], 1)} s, fall 2; thread pool of 8, every EC2 call paced by the "
        "client-side token buckets (failover/aws/pacing.py), botocore standard retries as a "
        "backstop. Run twice: with the instance reads answered, and with the primaries' AZ "
        "disrupted from the same instant (DescribeInstances/DescribeInstanceStatus naming one "
        "of its instances answer Unavailable). Served = the group's successful AssociateAddress "
        "in the call log. Limit = (groups - 50) / 5 s after the first move starts (the mutating "
        "bucket); the Describe bucket's time for the reads sent = (Describes - 100) / 20 s.",
        "",
        "| AZ reads | served | time s | limit s | ratio | goal | verdict | RequestLimitExceeded "
        "| by action | Describes after the failure (per group served) | Describe bucket time s "
        "| Spearman (served vs config order) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for az in variants:
        served = az["all_served"]
        ratio = az["ratio"] if served else math.nan
        verdict = (
            _verdict(ratio, 1.1)
            if served
            else f"missed: {az['served']}/{az['groups']} served in {_f(az['observed_s'], 1)} s"
        )
        lines.append(
            f"| {_az_name(az)} | {az['served']}/{az['groups']} | "
            f"{_f(az['elapsed_s'], 1) if served else '> ' + _f(az['observed_s'], 1)} | "
            f"{_f(az['limit_s'], 1)} | {_f(ratio)} | <= 1.1 | {verdict} | {az['throttled']} | "
            f"{az['throttled_by_action']} | {az['describe_calls']} "
            f"({_f(az['describe_calls'] / az['served'] if az['served'] else math.nan, 1)}) | "
            f"{_f(describe_limit_s(az['describe_calls']), 1)} | {_f(az['order_spearman'], 3)} |"
        )
    lines.append("")
    for az in variants:
        lines += [
            f"**{_az_name(az)}**: calls after the failure {az['calls']}, "
            f"{az['describe_calls']} Describe. Detection (kill to first move) "
            f"{_f(az['detect_s'], 1)} s; calm passes took "
            f"{', '.join(_f(x, 1) for x in az['calm_pass_s'])} s. First served: "
            f"{', '.join(az['order_first']) or 'none'}. Alerts: {az['alerts']}."
            + (
                f" Passes that raised: {az['pass_errors']} (first: `{az['pass_error_first'][:160]}`)."
                if az.get("pass_errors")
                else ""
            ),
            "",
        ]
        if _az_png(az) in pngs:
            lines += [f"![{_az_png(az)}]({_az_png(az)})", ""]
    return lines


def _latency_section(lat: dict[str, Any] | None) -> list[str]:
    if not lat:
        return []
    goal = lat["goal"]
    lines = [
        "## 7. Per-call latency: calls and time to ownership",
        "",
        f"Every EC2 and STS call answered L after it was sent (the strict layer's latency; AWS "
        f"acts then), L = {', '.join(str(x) for x in lat['latencies_ms'])} ms. Transitions as in "
        "measure 1, except that a secondary IP's Elastic IP follows it at once: ownership is the "
        "IP on the target. `failover move --yes` runs as a process against moto's server, from "
        "its start to AWS applying the owning call (+ the attach transition for eni). The "
        "daemon: measure 1's monitored failovers at the same latency, from the primary's death. "
        "Calls before ownership: EC2/STS calls sent before the owning call (the daemon's from "
        "the end of the probes that found the primary dead); round trips: those not sent during "
        "a detach transition, calls in flight together counted once, plus the owning call. Floors: move = start-up "
        f"(`python -c 'import boto3'`, median {_f(lat['startup_floor_s'], 3)} s) + round trips "
        "x L + transitions; daemon = detection (measured per run) + round trips x L + "
        "transitions. Ratios are medians of per-run ratios.",
        "",
        "| mode | L ms | move: calls before ownership | move: round trips | move: first call s "
        "| move: to ownership s | move: floor s | move: ratio | daemon: calls before ownership "
        "| daemon: detection s | daemon: to ownership s | daemon: floor s | daemon: ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in lat["rows"]:
        mv, dm = row["move"], row["daemon"]
        lines.append(
            f"| {row['mode']} | {row['latency_ms']} | {_f(mv['calls_before_median'], 0)} | "
            f"{_f(mv['path_calls_median'], 0)} | {_f(mv['first_call_median_s'], 3)} | "
            f"{_f(mv['to_owned_median_s'], 3)} | {_f(mv['floor_median_s'], 3)} | "
            f"{_f(mv['ratio_median'])} | {_f(dm['calls_before_median'], 0)} | "
            f"{_f(dm['detection_median_s'], 3)} | {_f(dm['to_owned_median_s'], 3)} | "
            f"{_f(dm['floor_median_s'], 3)} | {_f(dm['ratio_median'])} |"
        )
    lines += ["", "Calls `failover move` sent before the owning call (first run):", ""]
    seen: set[str] = set()
    for row in lat["rows"]:
        if row["mode"] in seen or not row["move"]["actions_before"]:
            continue
        seen.add(row["mode"])
        lines.append(f"- **{row['mode']}**: {', '.join(row['move']['actions_before'])}")
    lines += [
        "",
        f"Goal at L = {goal['latency_ms']} ms for {' and '.join(goal['modes'])}: `failover move` "
        f"to ownership <= its start-up (its first call, per run) + {goal['round_trips']} x L + "
        f"{_f(goal['slack_s'], 1)} s; the ratio is the median of the per-run ratios.",
        "",
        "| mode | runs ok | to ownership s | goal s | ratio | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for row in lat["rows"]:
        if row["mode"] not in goal["modes"] or row["latency_ms"] != goal["latency_ms"]:
            continue
        mv = row["move"]
        lines.append(
            f"| {row['mode']} | {mv['ok']}/{mv['runs']} | {_f(mv['to_owned_median_s'], 3)} | "
            f"{_f(mv['goal_s'], 3)} | {_f(mv['goal_ratio'])} | {_verdict(mv['goal_ratio'], 1.0)} |"
        )
    errors = [(r["mode"], r["latency_ms"], e) for r in lat["rows"] for e in r["move"]["errors"]]
    if errors:
        lines += ["", "Move processes that failed:", ""]
        lines += [f"- {mode} at {ms} ms: `{err}`" for mode, ms, err in errors]
    lines.append("")
    return lines
