"""The command probe: run argv without a shell; exit 0 within the timeout means healthy.

The timeout is a Deadline: it charges the check only for time the event loop was free
(a busy loop notices the exit late; that is not the check's slowness).

`{address}` and `{instance}` are substituted in every argument (plain replacement, so
other braces pass through untouched). The child starts in its own session, so at the
timeout the whole process group is killed, not only the direct child. Its stdout and
stderr go to unlinked temporary files rather than pipes: a check that leaves a
background process holding its output open can then never stall the probe past its
exit, and a chatty check can never block on a full pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import tempfile
from typing import IO

from failover.config import CommandCheck
from failover.probes.deadline import Deadline, LoopLag
from failover.probes.target import ProbeTarget

_REAP_GRACE_S = 5.0
"""How long to wait for a SIGKILLed group leader to be reaped before giving up on it."""

_OUTPUT_PEEK_BYTES = 4096


def command_argv(target: ProbeTarget, check: CommandCheck) -> list[str]:
    """The argv to run: `{address}` and `{instance}` replaced in each argument."""
    return [
        arg.replace("{address}", target.address).replace("{instance}", target.instance_id)
        for arg in check.argv
    ]


def first_line(output: IO[bytes] | str) -> str:
    """The first non-blank line of a command's output (a file, or text), at most 200 characters."""
    if isinstance(output, str):
        text = output
    else:
        output.seek(0)
        text = output.read(_OUTPUT_PEEK_BYTES).decode("utf-8", errors="replace")
    return next((line.strip() for line in text.splitlines() if line.strip()), "")[:200]


def _kill_group(process: asyncio.subprocess.Process) -> None:
    # Only while the leader is unreaped: its pid, and so the group id, cannot have been
    # reused by an unrelated process yet.
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def exit_reason(returncode: int, stderr: IO[bytes], stdout: IO[bytes]) -> str:
    """`exit N` or `killed by SIGX`, with the first line the command said about it."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        what = f"killed by {name}"
    else:
        what = f"exit {returncode}"
    # Many check scripts (Nagios plugins) explain themselves on stdout, not stderr.
    line = first_line(stderr) or first_line(stdout)
    return f"{what}: {line}" if line else what


async def probe_command(target: ProbeTarget, check: CommandCheck, lag: LoopLag) -> tuple[bool, str]:
    """Run the check command; (ok, reason). A missing executable is a failure, not an error."""
    argv = command_argv(target, check)
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
            )
        except FileNotFoundError:
            return False, f"command not found: {argv[0]}"
        except PermissionError:
            return False, f"not executable: {argv[0]}"
        except OSError as exc:
            return False, f"cannot run {argv[0]}: {(exc.strerror or str(exc)).lower()}"
        deadline = Deadline(target.timeout_s, lag)
        try:
            async with deadline:
                returncode = await process.wait()
        except TimeoutError:
            _kill_group(process)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_REAP_GRACE_S):
                    await process.wait()
            return False, f"{deadline.reason} (killed)"
        finally:
            # Cancelled from outside (or any other surprise): never leave the group running.
            _kill_group(process)
        if returncode == 0:
            return True, "exit 0"
        return False, exit_reason(returncode, stderr, stdout)
