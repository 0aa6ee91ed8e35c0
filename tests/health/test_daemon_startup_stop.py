"""`failover run` asked to stop while it is still starting (systemd stopping a unit that has
not reported ready yet): the request is kept for the daemon, which exits 0 before any pass."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from ..conftest import REGION, cli_env, failover_cmd, free_port, write_config


@pytest.mark.process
def test_a_sigterm_during_start_up_is_a_clean_stop(tmp_path: Path) -> None:
    """Rule: a SIGTERM between the state lock and the first pass ends `failover run` with 0
    (it was death by signal, or 143, when it landed before the daemon's own handler)."""
    state = tmp_path / "state.db"
    config = write_config(
        tmp_path / "config.yaml",
        {
            # Nothing answers here: the daemon must stop before its first AWS call.
            "aws": {"region": REGION, "endpoint_url": f"http://127.0.0.1:{free_port()}"},
            "state": {"path": str(state)},
            "metrics": {"enabled": False},
            "groups": [
                {
                    "name": "g",
                    "mode": "eni",
                    "eni": "eni-0123456789abcdef0",
                    "members": ["i-0aaaaaaaaaaaaaaaa", "i-0bbbbbbbbbbbbbbbb"],
                }
            ],
        },
    )
    proc = subprocess.Popen(
        failover_cmd("run", "--config", str(config)),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    lock = Path(f"{state}.lock")
    deadline = time.monotonic() + 30
    while not lock.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert lock.exists(), "the daemon never took its state lock"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, out + err
    assert "Traceback" not in err
