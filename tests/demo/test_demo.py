"""`failover demo` (what `make demo` runs) ends by itself, exit 0, with the ENI on the standby."""

from __future__ import annotations

from ..conftest import run_cli


def test_demo_fails_over_and_shows_the_eni_on_the_standby() -> None:
    """Rule: the daemon detects a dead primary and moves the ENI; the demo's table says where it is."""
    done = run_cli("demo", timeout=60)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "ENI is now on" in done.stdout
    assert "(the standby)" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
