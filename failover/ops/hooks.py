"""Post-move hooks: after a move, run a local command and/or an SSM command on the new active member.

The EC2 User Guide warns that a hot-attached interface may need to be brought up by
hand in the guest; `after_move` does that. A hook runs only after the move succeeded,
and its failure is returned and logged, never raised: the resource has already moved,
and undoing a move because a hook failed would take the service down twice.

`{instance}`, `{group}`, `{resource}` and `{address}` are replaced in every argument
and every SSM command line (plain replacement, other braces pass through): the new
active instance, the group's name, its floating resource (ENI id, IP or allocation id)
and the new active member's address (its `address` override or primary private IP).
The local command runs without a shell, in its own session, and its whole process
group is killed at the timeout. `timeout` applies to each of the two parts.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from failover.core.errors import CloudError, TransientCloudError

log = logging.getLogger(__name__)

Alert = Callable[
    [str, str, str], None
]  # (event, group, message), as failover.service.monitor.Alert

_REAP_GRACE_S = 5.0
_POLL_FIRST_S, _POLL_MAX_S = 0.5, 2.0
# GetCommandInvocation statuses after which nothing more will happen.
_SSM_DONE = frozenset({"Success", "Failed", "Cancelled", "TimedOut"})


class SsmHookSpec(Protocol):
    """The `after_move.ssm` part of the config."""

    @property
    def commands(self) -> Sequence[str]: ...

    @property
    def document(self) -> str: ...


class AfterMoveHook(Protocol):
    """The `after_move` config of a group (config.AfterMove satisfies it)."""

    @property
    def command(self) -> Sequence[str] | None: ...

    @property
    def ssm(self) -> SsmHookSpec | None: ...

    @property
    def timeout_s(self) -> float: ...


@dataclass(frozen=True)
class Invocation:
    """One SSM command invocation as GetCommandInvocation reports it."""

    status: str  # Pending | InProgress | Delayed | Success | Failed | Cancelled | TimedOut | ...
    response_code: int = -1
    stdout: str = ""
    stderr: str = ""
    details: str = ""

    @property
    def done(self) -> bool:
        return self.status in _SSM_DONE


class SsmPort(Protocol):
    """What a hook needs of SSM (failover.aws.ssm.SsmCommands); raises CloudError."""

    def send(
        self, instance_id: str, document: str, commands: list[str], timeout_s: float, comment: str
    ) -> str: ...

    def invocation(self, command_id: str, instance_id: str) -> Invocation: ...


@dataclass(frozen=True)
class HookResult:
    """How a hook went: `ok` only when every configured part succeeded; `detail` says each."""

    ok: bool
    detail: str


def substitute(text: str, values: Mapping[str, str]) -> str:
    """`text` with each `{name}` of `values` replaced; other braces are left alone."""
    for name, value in values.items():
        text = text.replace("{" + name + "}", value)
    return text


def run_after_move(
    hook: AfterMoveHook,
    *,
    group: str,
    instance_id: str,
    resource: str,
    address: str,
    ssm: SsmPort | None = None,
    timeout_s: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> HookResult:
    """Run the hook's local command, then its SSM command; never raises for the hook failing."""
    values = {"instance": instance_id, "group": group, "resource": resource, "address": address}
    limit_s = hook.timeout_s if timeout_s is None else timeout_s
    parts: list[tuple[bool, str]] = []
    if hook.command:
        argv = [substitute(arg, values) for arg in hook.command]
        parts.append(run_command(argv, limit_s))
    if hook.ssm is not None:
        commands = [substitute(line, values) for line in hook.ssm.commands]
        if ssm is None:
            parts.append((False, "ssm: no SSM client was configured"))
        else:
            parts.append(
                run_ssm(
                    ssm,
                    instance_id,
                    hook.ssm.document,
                    commands,
                    limit_s,
                    comment=f"failover after_move {group}",
                    sleep=sleep,
                    monotonic=monotonic,
                )
            )
    if not parts:
        return HookResult(True, "nothing to run")
    result = HookResult(all(ok for ok, _ in parts), "; ".join(detail for _, detail in parts))
    fields = {"group": group, "member": instance_id, "resource": resource}
    if result.ok:
        log.info("group %s: after_move on %s: %s", group, instance_id, result.detail, extra=fields)
    else:
        log.error(
            "group %s: after_move on %s FAILED (the move stands): %s",
            group,
            instance_id,
            result.detail,
            extra=fields,
        )
    return result


def run_command(argv: Sequence[str], timeout_s: float) -> tuple[bool, str]:
    """Run `argv` without a shell; (ok, detail). The process group is killed at `timeout_s`."""
    name = os.path.basename(argv[0]) or argv[0]
    # Output to unlinked files, not pipes: a background child holding a pipe open could
    # otherwise keep us waiting past the command's own exit.
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        try:
            process = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
            )
        except FileNotFoundError:
            return False, f"command: not found: {argv[0]}"
        except PermissionError:
            return False, f"command: not executable: {argv[0]}"
        except OSError as exc:
            return False, f"command: cannot run {argv[0]}: {exc.strerror or exc}"
        try:
            returncode = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=_REAP_GRACE_S)
            return False, f"command {name}: timed out after {round(timeout_s, 3)}s (killed)"
        finally:
            _kill_group(process)
        if returncode == 0:
            return True, f"command {name}: exit 0"
        # The probes' wording for a failed command; that package (asyncio) loads only now.
        from failover.probes.command import exit_reason

        return False, f"command {name}: {exit_reason(returncode, stderr, stdout)}"


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    # Only while the leader is unreaped: its pid, and so the group id, cannot be reused yet.
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)


def run_ssm(
    ssm: SsmPort,
    instance_id: str,
    document: str,
    commands: list[str],
    timeout_s: float,
    *,
    comment: str = "",
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> tuple[bool, str]:
    """SendCommand, then poll GetCommandInvocation until it ends or `timeout_s` passes."""
    deadline = monotonic() + timeout_s
    try:
        command_id = ssm.send(instance_id, document, commands, timeout_s, comment)
    except CloudError as exc:
        return False, f"ssm {document}: {exc}"
    where = f"ssm {document} {command_id} on {instance_id}"
    pause = _POLL_FIRST_S
    last = Invocation("Pending")
    while True:
        try:
            last = ssm.invocation(command_id, instance_id)
        except TransientCloudError as exc:
            log.warning("%s: %s; polling again", where, exc)
        except CloudError as exc:
            return False, f"{where}: {exc}"
        if last.done:
            break
        remaining = deadline - monotonic()
        if remaining <= 0:
            return False, f"{where}: still {last.status} after {round(timeout_s, 3)}s"
        sleep(min(pause, remaining))
        pause = min(pause * 2, _POLL_MAX_S)
    if last.status == "Success":
        return True, f"{where}: Success"
    from failover.probes.command import first_line

    line = first_line(last.stderr) or first_line(last.stdout) or last.details
    code = f" (exit {last.response_code})" if last.response_code >= 0 else ""
    return False, f"{where}: {last.status}{code}" + (f": {line}" if line else "")


class AfterMoveRunner:
    """Runs hooks on a small pool, so a 30 s hook never holds up the next health pass.

    A failed hook also goes to `alert` as `after-move-failed` (the notifier, the log).
    """

    def __init__(
        self, ssm: SsmPort | None = None, alert: Alert | None = None, max_workers: int = 4
    ) -> None:
        self._ssm, self._alert = ssm, alert
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="after-move")

    def submit(
        self, hook: AfterMoveHook, *, group: str, instance_id: str, resource: str, address: str
    ) -> Future[HookResult]:
        """Start the hook in the background; the future's result is its HookResult."""
        return self._pool.submit(
            self._run,
            hook,
            group=group,
            instance_id=instance_id,
            resource=resource,
            address=address,
        )

    def _run(
        self, hook: AfterMoveHook, *, group: str, instance_id: str, resource: str, address: str
    ) -> HookResult:
        result = run_after_move(
            hook,
            group=group,
            instance_id=instance_id,
            resource=resource,
            address=address,
            ssm=self._ssm,
        )
        if not result.ok and self._alert is not None:
            self._alert("after-move-failed", group, f"on {instance_id}: {result.detail}")
        return result

    def close(self, wait: bool = True) -> None:
        """Let running hooks finish (each is bounded by its timeout) and stop the pool."""
        self._pool.shutdown(wait=wait)
