"""after_move hooks: the local command (ok, failing, killed at the timeout) and SSM (moto, fakes)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

import boto3
import pytest

from failover.aws.ssm import SsmCommands
from failover.core.errors import PermanentCloudError, TransientCloudError
from failover.ops.hooks import AfterMoveRunner, HookResult, Invocation, run_after_move, run_ssm

from ..clocks import FakeClock

REGION = "us-east-1"


class Places(TypedDict):
    group: str
    instance_id: str
    resource: str
    address: str


PLACES = Places(group="db", instance_id="i-0bb", resource="eni-0f1", address="127.0.0.3")


@dataclass(frozen=True)
class Ssm:
    commands: Sequence[str]
    document: str = "AWS-RunShellScript"


@dataclass(frozen=True)
class Hook:
    command: Sequence[str] | None = None
    ssm: Ssm | None = None
    timeout_s: float = 10.0


def python(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", code, *args]


def test_command_gets_the_substituted_arguments(tmp_path: Path) -> None:
    out = tmp_path / "args"
    code = "import sys; open(sys.argv[1], 'w').write(' '.join(sys.argv[2:]))"
    hook = Hook(
        python(code, str(out), "{instance}", "{group}", "{resource}", "{address}", "{other}")
    )
    result = run_after_move(hook, **PLACES)
    assert result.ok, result.detail
    assert out.read_text() == "i-0bb db eni-0f1 127.0.0.3 {other}"


def test_failing_command_is_reported_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    code = "import sys; print('eth1 missing', file=sys.stderr); sys.exit(3)"
    result = run_after_move(Hook(python(code)), **PLACES)
    assert result == HookResult(
        False, f"command {os.path.basename(sys.executable)}: exit 3: eth1 missing"
    )
    assert "FAILED (the move stands)" in caplog.text


def test_command_is_killed_at_the_timeout_with_its_children(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    code = (
        "import subprocess, sys; p = subprocess.Popen(['sleep', '60']); "
        "open(sys.argv[1], 'w').write(str(p.pid)); p.wait()"
    )
    started = time.monotonic()
    result = run_after_move(Hook(python(code, str(pid_file)), timeout_s=1.0), **PLACES)
    assert not result.ok
    assert "timed out after 1.0s (killed)" in result.detail
    assert time.monotonic() - started < 5
    grandchild = int(pid_file.read_text())
    assert wait_gone(grandchild), "the command's child outlived the timeout"


def wait_gone(pid: int, within_s: float = 5.0) -> bool:
    """True once `pid` is gone or a zombie (killed, waiting for a reaper that may be slow)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["/nonexistent/bring-up-eth1"], "command: not found: /nonexistent/bring-up-eth1"),
        (["/"], "command: "),
    ],
)
def test_command_that_cannot_start_is_a_failure(argv: list[str], expected: str) -> None:
    result = run_after_move(Hook(argv), **PLACES)
    assert not result.ok
    assert result.detail.startswith(expected)


def test_ssm_through_moto(aws: None) -> None:
    ec2 = boto3.client("ec2", region_name=REGION)
    instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)["Instances"][0][
        "InstanceId"
    ]
    ssm = boto3.client("ssm", region_name=REGION)
    hook = Hook(ssm=Ssm(["ip link set dev eth1 up", "echo {group} {resource}"]), timeout_s=30)

    result = run_after_move(
        hook, **Places({**PLACES, "instance_id": instance}), ssm=SsmCommands(ssm)
    )

    assert result.ok, result.detail
    assert result.detail.endswith(f"on {instance}: Success")
    [sent] = ssm.list_commands(InstanceId=instance)["Commands"]
    assert sent["DocumentName"] == "AWS-RunShellScript"
    assert sent["Parameters"]["commands"] == ["ip link set dev eth1 up", "echo db eni-0f1"]
    assert sent["Parameters"]["executionTimeout"] == ["30"]


def test_ssm_adapter_reads_an_unregistered_invocation_as_pending(aws: None) -> None:
    ec2 = boto3.client("ec2", region_name=REGION)
    instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)["Instances"][0][
        "InstanceId"
    ]
    ssm = SsmCommands(boto3.client("ssm", region_name=REGION))
    command_id = ssm.send(instance, "AWS-RunShellScript", ["true"], 30)
    # AWS answers InvocationDoesNotExist until it has registered a fresh command on an
    # instance; moto does for an instance the command was not sent to.
    assert ssm.invocation(command_id, "i-0123456789abcdef0") == Invocation("Pending")
    with pytest.raises(PermanentCloudError, match="InvalidCommandId"):
        ssm.invocation("00000000-0000-0000-0000-000000000000", instance)


class FakeSsm:
    """An SsmPort that answers a script of invocations (the last one forever)."""

    def __init__(
        self, *answers: Invocation | Exception, send_error: Exception | None = None
    ) -> None:
        self.answers, self.send_error = list(answers), send_error
        self.sent: list[tuple[str, str, list[str]]] = []
        self.polls = 0

    def send(
        self, instance_id: str, document: str, commands: list[str], timeout_s: float, comment: str
    ) -> str:
        if self.send_error is not None:
            raise self.send_error
        self.sent.append((instance_id, document, commands))
        return "cmd-1"

    def invocation(self, command_id: str, instance_id: str) -> Invocation:
        self.polls += 1
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_ssm_polls_until_the_command_ends_and_reports_its_failure() -> None:
    clock = FakeClock(mono=0.0)
    ssm = FakeSsm(
        Invocation("Pending"),
        TransientCloudError("GetCommandInvocation", "ThrottlingException", "slow down"),
        Invocation("InProgress"),
        Invocation("Failed", 1, stdout="", stderr="RTNETLINK answers: No such device\n"),
    )
    ok, detail = run_ssm(
        ssm,
        "i-0bb",
        "AWS-RunShellScript",
        ["ip link set eth1 up"],
        30,
        sleep=clock.sleep,
        monotonic=clock.monotonic,
    )
    assert not ok
    assert detail == (
        "ssm AWS-RunShellScript cmd-1 on i-0bb: Failed (exit 1): RTNETLINK answers: No such device"
    )
    assert ssm.polls == 4
    assert 0 < clock.monotonic() < 30


def test_ssm_gives_up_at_the_timeout() -> None:
    clock = FakeClock(mono=0.0)
    ssm = FakeSsm(Invocation("InProgress"))
    result = run_after_move(
        Hook(ssm=Ssm(["sleep 600"]), timeout_s=10),
        **PLACES,
        ssm=ssm,
        sleep=clock.sleep,
        monotonic=clock.monotonic,
    )
    assert not result.ok
    assert result.detail.endswith("still InProgress after 10s")
    assert clock.monotonic() == pytest.approx(10)


def test_ssm_errors_are_reported() -> None:
    denied = PermanentCloudError("SendCommand", "AccessDeniedException", "not allowed", "i-0bb")
    result = run_after_move(Hook(ssm=Ssm(["true"])), **PLACES, ssm=FakeSsm(send_error=denied))
    assert not result.ok
    assert "SendCommand on i-0bb: AccessDeniedException" in result.detail
    gone = PermanentCloudError("GetCommandInvocation", "InvalidInstanceId", "not managed", "i-0bb")
    assert not run_after_move(Hook(ssm=Ssm(["true"])), **PLACES, ssm=FakeSsm(gone)).ok


def test_ssm_part_without_a_client_fails() -> None:
    result = run_after_move(Hook(ssm=Ssm(["true"])), **PLACES)
    assert result == HookResult(False, "ssm: no SSM client was configured")


def test_both_parts_run_and_both_must_pass() -> None:
    ssm = FakeSsm(Invocation("Success", 0))
    result = run_after_move(
        Hook(python("raise SystemExit(2)"), Ssm(["ip link set eth1 up"])), **PLACES, ssm=ssm
    )
    assert not result.ok
    assert "exit 2" in result.detail
    assert result.detail.endswith("on i-0bb: Success")
    assert ssm.sent == [("i-0bb", "AWS-RunShellScript", ["ip link set eth1 up"])]


def test_empty_hook_is_ok() -> None:
    assert run_after_move(Hook(), **PLACES) == HookResult(True, "nothing to run")


def test_runner_runs_in_the_background_and_alerts_on_failure() -> None:
    alerts: list[tuple[str, str, str]] = []
    runner = AfterMoveRunner(alert=lambda *a: alerts.append(a))
    try:
        started = time.monotonic()
        slow = runner.submit(Hook(python("import time; time.sleep(0.5)")), **PLACES)
        assert time.monotonic() - started < 0.3
        failed = runner.submit(Hook(python("raise SystemExit(1)")), **PLACES)
        assert slow.result(timeout=10).ok
        assert not failed.result(timeout=10).ok
    finally:
        runner.close()
    [(event, group, message)] = alerts
    assert (event, group) == ("after-move-failed", "db")
    assert message.startswith("on i-0bb: command ")
