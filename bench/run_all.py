"""Run every benchmark and write bench/RESULTS.md, bench/results.json and the PNGs.

`python -m bench.run_all` is the full run (about 25 minutes on 2 cores);
`--quick` runs small sizes as a smoke test (about 6 minutes); `--only NAME...` reruns some
measures and keeps the others' last figures. Benchmarks print
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

from bench import api_cost, az_failure, cron_startup, failover_time, latency, scale
from bench.harness import BENCH_DIR, log_to_file, machine
from bench.report import MEASURES, markdown, plots


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
        pngs = plots(results, args.out)
        (args.out / "RESULTS.md").write_text(markdown(results, pngs))
        return 0
    quick: bool = args.quick
    log_to_file(Path("/tmp/failover-bench.log"))
    started = time.monotonic()
    results: dict[str, Any] = {"machine": machine(), "quick": quick}
    previous = args.out / "results.json"
    if args.only and previous.exists():
        # Rerun some measures, keep the others' last figures (and how they were run).
        kept = json.loads(previous.read_text())
        sizes = kept.get("sizes") or {
            name: {"quick": bool(kept.get("quick"))} for name in kept if name in MEASURES
        }
        results = {**kept, **results, "sizes": sizes}
    plan = {
        "failover_time": lambda: failover_time.run(
            runs=3 if quick else 20, quick=10 if quick else 25
        ),
        "api_cost": lambda: api_cost.run((10,)),
        "scale": lambda: scale.run((200, 1_000) if quick else (1_000, 10_000), passes=2),
        "az_failure": lambda: [
            az_failure.run(
                60 if quick else 500,
                interval_s=2.0 if quick else 5.0,
                cap_s=60 if quick else 240,
                disrupted=disrupted,
            )
            for disrupted in (False, True)
        ],
        "cron": lambda: cron_startup.run(3 if quick else 20),
        "latency": lambda: latency.run(
            runs=1 if quick else 5,
            daemon_runs=1 if quick else 3,
            startup_repeats=3 if quick else 10,
        ),
    }
    for name, job in plan.items():
        if args.only and name not in args.only:
            continue
        t0 = time.monotonic()
        errors = results.setdefault("errors", {})
        try:
            results[name] = job()
            errors.pop(name, None)
        except Exception:  # a bench that breaks is reported, the others still run
            errors[name] = traceback.format_exc()
            print(f"[{name}] FAILED:\n{errors[name]}", flush=True)
        seconds = time.monotonic() - t0
        results.setdefault("sizes", {})[name] = {"quick": quick, "seconds": round(seconds)}
        print(f"[{name}] {seconds:.0f}s", flush=True)
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
    results.pop("notes", None)  # written by older runs
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
