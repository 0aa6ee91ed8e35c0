"""deploy/systemd and deploy/cron: the settings the daemon's contract needs, and systemd's own verdict."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from failover.config import parse

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
UNIT = DEPLOY / "systemd" / "failover.service"
CRON = DEPLOY / "cron" / "failover"


def unit() -> dict[str, dict[str, list[str]]]:
    """section -> key -> every value (systemd keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key, []).append(value)
    return sections


def seconds(value: str) -> float:
    assert value.endswith("s"), value
    assert not value.endswith("ms"), value
    return float(value[:-1])


def test_unit_is_a_hardened_notify_service_with_a_watchdog() -> None:
    """Rule: Type=notify with a watchdog, reload by SIGHUP, its own user, a sandboxed filesystem."""
    service = {k: v[-1] for k, v in unit()["Service"].items()}
    assert service["Type"] == "notify"
    assert service["ExecStart"] == "/usr/local/bin/failover run --config /etc/failover/config.yaml"
    assert unit()["Service"]["ExecReload"][-1] == "/bin/kill -HUP $MAINPID"
    assert (service["User"], service["Group"]) == ("failover", "failover")
    assert service["Restart"] == "on-failure"
    assert service["KillSignal"] == "SIGTERM"
    assert service["StateDirectory"] == "failover"
    for key in ("NoNewPrivileges", "ProtectHome", "PrivateTmp"):
        assert service[key] == "yes", key
    assert service["ProtectSystem"] == "strict"
    assert "/var/lib/failover" in service["ReadWritePaths"].split()


_GROUP = {
    "name": "g",
    "mode": "eni",
    "eni": "eni-0123456789abcdef0",
    "members": ["i-0aaaaaaaaaaaaaaaa", "i-0bbbbbbbbbbbbbbbb"],
}


def test_unit_timeouts_leave_room_for_a_whole_move() -> None:
    """Rule: neither the stop timeout nor the watchdog may cut a move (move_timeout) in half."""
    service = {k: v[-1] for k, v in unit()["Service"].items()}
    move_timeout_s = parse({"groups": [_GROUP]}).defaults.move_timeout_s
    assert seconds(service["TimeoutStopSec"]) > move_timeout_s
    assert seconds(service["WatchdogSec"]) > move_timeout_s


def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    """Rule: systemd itself finds nothing wrong with the unit (unknown keys, bad values)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed on this machine")
    # verify checks that ExecStart's program exists: point it at this venv's failover.
    installed = Path(sys.executable).with_name("failover")
    assert installed.exists(), installed
    copy = tmp_path / UNIT.name
    copy.write_text(UNIT.read_text().replace("/usr/local/bin/failover", str(installed)))
    done = subprocess.run(
        [analyze, "verify", "--man=no", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    # Unknown keys and unparsable values are only warnings: any line naming the unit fails.
    assert str(copy) not in done.stderr, done.stderr
    assert UNIT.name not in done.stderr, done.stderr


def cron_jobs() -> list[list[str]]:
    """The job lines of the cron.d file, split into fields (not comments, not VAR=value)."""
    jobs = []
    for raw in CRON.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        first = line.split(None, 1)[0]
        if "=" in first:
            continue  # SHELL=, PATH=
        jobs.append(line.split(None, 6))
    return jobs


def test_cron_runs_check_every_minute_as_failover_under_flock() -> None:
    """Rule: one /etc/cron.d line: every minute, user failover, flock -n, `failover check`, syslog."""
    (job,) = cron_jobs()
    assert len(job) == 7, job  # five time fields, the user, the command
    assert job[:5] == ["*", "*", "*", "*", "*"]
    user, command = job[5], job[6]
    assert user == "failover"
    assert "%" not in command  # cron would turn it into a newline
    words = shlex.split(command)
    flock = words.index("flock")
    assert words[flock + 1] == "-n"
    assert "/var/lib/failover/check.lock" in words[flock:]
    check = words.index("check", flock)
    assert words[check - 1] == "failover"
    assert words[check + 1 : check + 3] == ["--config", "/etc/failover/config.yaml"]
    assert "logger" in words
    assert words[words.index("-t") + 1] == "failover"


def test_cron_command_runs_under_sh_and_reports_the_exit_code(tmp_path: Path) -> None:
    """Rule: the job's shell logic passes output through and names a non-zero exit (no pipefail)."""
    (job,) = cron_jobs()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "syslog"
    (bin_dir / "failover").write_text('#!/bin/sh\necho "groups checked: $*"\nexit 3\n')
    # logger stand-in: the message is its argument or its stdin; one line per message.
    (bin_dir / "logger").write_text(
        f'#!/bin/sh\nif [ $# -gt 4 ]; then echo "$@" >> {log}; else cat >> {log}; fi\n'
    )
    (bin_dir / "flock").write_text('#!/bin/sh\nshift 4\nexec "$@"\n')  # flock -n -E 75 LOCK cmd
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    done = subprocess.run(
        ["/bin/sh", "-c", job[6]],
        env={"PATH": f"{bin_dir}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    logged = log.read_text()
    assert "groups checked: check --config /etc/failover/config.yaml" in logged
    assert "failover check exited 3" in logged
