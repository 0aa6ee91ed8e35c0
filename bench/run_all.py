"""Run every benchmark and write bench/RESULTS.md, bench/results.json and the PNGs.

`python -m bench.run_all` is the full run (about 15 minutes on 2 cores);
`--quick` runs small sizes as a smoke test (about 3 minutes). Benchmarks print
figures and never fail on a slow machine: a missed goal is a finding, not an error.
"""

from __future__ import annotations

import argparse
import json
import math
import time
import traceback
from pathlib import Path
from typing import Any

from bench import api_cost, az_failure, cron_startup, failover_time, scale
from bench.harness import BENCH_DIR, log_to_file, machine
from bench.report import markdown, plots


def findings(results: dict[str, Any]) -> list[str]:
    """One bullet per missed goal: by how much, and what the recorded breakdown shows."""
    notes: list[str] = []
    ft = results.get("failover_time", {})
    for mode, f in ft.items():
        if f["ratio_p95"] > 1.05:
            b, p = f["breakdown_median_s"], f["breakdown_p95_s"]
            worst = sorted(p.items(), key=lambda kv: -kv[1])[:4]
            notes.append(
                f"- Failover time, {mode}: p95 ratio {f['ratio_p95']:.3f} (goal 1.05). At p95 the "
                f"parts are {', '.join(f'{k} {v:.3f}s' for k, v in worst)}; the decision part "
                f"(probes done to first AWS step) is {b.get('decision', 0):.3f}s median and polling "
                f"slack {sum(v for k, v in b.items() if 'slack' in k):.3f}s median."
            )
        if f["overhead_p99_ms"] > 50:
            notes.append(
                f"- Overhead, {mode}: p99 {f['overhead_p99_ms']:.0f} ms, median "
                f"{f['overhead_median_ms']:.0f} ms (goal 50 ms)."
            )
    sc = results.get("scale", {})
    big = sc.get("10000") or sc.get("1000")
    if big:
        notes.append(
            f"- Scale, {big['members']} members: pass {big['pass_wall_median_s']:.1f}s median of which "
            f"AWS calls {big['pass_aws_median_s']:.1f}s and probes {big['pass_probe_median_s']:.1f}s; "
            f"CPU {big['pass_cpu_median_s']:.1f}s per pass ({20 * big['pass_cpu_median_s']:.0f}% of a "
            f"core at the 5 s cadence); the remaining "
            f"{big['pass_wall_median_s'] - big['pass_cpu_median_s']:.1f}s of wall time the daemon is "
            f"not on a CPU (waiting on the store's commits and on the sandbox)."
        )
    az = results.get("az_failure")
    if az and (not az["all_served"] or az["ratio"] > 1.1 or az["throttled"]):
        notes.append(
            f"- AZ failure: {az['served']}/{az['groups']} served; {az['throttled']} RequestLimitExceeded "
            f"answers {az['throttled_by_action']}; {az['describe_calls']} Describe calls for "
            f"{az['calls']['mutating_ok']} successful mutations."
        )
    cron = results.get("cron")
    if cron:
        notes.append(
            f"- Cron start-up: {cron['check_median_s']:.2f}s against a {cron['floor_median_s']:.2f}s "
            f"floor (ratio {cron['ratio']:.1f})."
        )
    notes.append("")
    notes.append(
        "The fix proposals that go with these findings are in the bench's report to the lead "
        "(file, function, change, expected effect); rerun `make bench` after applying them."
    )
    return notes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke test")
    parser.add_argument("--only", nargs="*", help="run only these measures")
    parser.add_argument("--out", type=Path, default=BENCH_DIR)
    parser.add_argument(
        "--render", action="store_true", help="only rewrite RESULTS.md and PNGs from results.json"
    )
    args = parser.parse_args()
    if args.render:
        results = json.loads((args.out / "results.json").read_text())
        results["notes"] = findings(results)
        pngs = plots(results, args.out)
        (args.out / "RESULTS.md").write_text(markdown(results, pngs))
        return 0
    quick: bool = args.quick
    log_to_file(Path("/tmp/failover-bench.log"))
    started = time.monotonic()
    results: dict[str, Any] = {"machine": machine(), "quick": quick}
    previous = args.out / "results.json"
    if args.only and previous.exists():
        # Rerun some measures, keep the others' last figures.
        results = {**json.loads(previous.read_text()), **results}
    plan = {
        "failover_time": lambda: failover_time.run(
            runs=3 if quick else 20, quick=10 if quick else 25
        ),
        "api_cost": lambda: api_cost.run((10,)),
        "scale": lambda: scale.run((200, 1_000) if quick else (1_000, 10_000), passes=2),
        "az_failure": lambda: az_failure.run(
            60 if quick else 500, interval_s=2.0 if quick else 5.0, cap_s=60 if quick else 240
        ),
        "cron": lambda: cron_startup.run(3 if quick else 10),
    }
    for name, job in plan.items():
        if args.only and name not in args.only:
            continue
        t0 = time.monotonic()
        try:
            results[name] = job()
        except Exception:  # a bench that breaks is reported, the others still run
            results.setdefault("errors", {})[name] = traceback.format_exc()
            print(f"[{name}] FAILED:\n{results['errors'][name]}", flush=True)
        print(f"[{name}] {time.monotonic() - t0:.0f}s", flush=True)
    ran_scale = not args.only or "scale" in args.only
    sc = results.get("scale", {}) if ran_scale else {}
    for key in ("1000", "10000"):
        if key in sc:
            per = [
                r
                for r, p in zip(sc[key]["reads_per_pass"], sc[key]["passes"], strict=True)
                if p["ec2_due"]
            ]
            if per:
                results.setdefault("api_cost", []).append(
                    {
                        "members": int(key),
                        "reads": sum(per[-1].values()),
                        "by_action": per[-1],
                        "floor": math.ceil(int(key) / 100),
                    }
                )
    if not args.only:
        results["wall_s"] = time.monotonic() - started
    results["notes"] = findings(results)
    args.out.mkdir(parents=True, exist_ok=True)
    pngs = plots(results, args.out)
    (args.out / "RESULTS.md").write_text(markdown(results, pngs))
    (args.out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    print(
        f"wrote {args.out / 'RESULTS.md'} and {', '.join(pngs) or 'no PNGs (matplotlib missing)'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
