"""Benchmarks of failover against the strict sandbox: timings and counts from recorded events.

`python -m bench.run_all` runs every measure and writes bench/RESULTS.md and the PNGs.
"""
