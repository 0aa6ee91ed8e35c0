"""The config models proposed for failover/config.py, checked here until they are pasted there.

Everything between the PASTE markers is meant to go into config.py as is (it uses
config.py's own `_Strict`, `_Problems` and `Duration`); the tests below then import
the models from failover.config instead.
"""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import Field, ValidationError, field_validator, model_validator

from failover.config import Duration, _Problems, _Strict
from failover.hooks import HookResult, run_after_move
from failover.metrics import DEFAULT_LISTEN, parse_listen
from failover.notify import EVENTS

# --- PASTE into failover/config.py (imports: from failover.metrics import DEFAULT_LISTEN,
# --- parse_listen; from failover.notify import EVENTS) ---------------------------------

AlertEvent = Literal[
    "move-started",
    "move-finished",
    "move-failed",
    "move-refused",
    "degraded",
    "held",
    "suspect",
    "after-move-failed",
]


class MetricsSettings(_Strict):
    """The daemon's /metrics and /healthz endpoint; loopback unless the operator says otherwise."""

    enabled: bool = Field(default=True, strict=True)
    listen: str = DEFAULT_LISTEN

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        parse_listen(value)  # raises ValueError with a one-line message
        return value


class NotifySettings(_Strict):
    """Where alerts go: an SNS topic and/or a Slack-compatible webhook (either, both or none)."""

    # A FIFO topic would need a MessageGroupId on every publish: standard topics only.
    sns_topic_arn: str | None = Field(
        default=None, pattern=r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$"
    )
    webhook_url: str | None = None
    timeout_s: Duration = Field(default=3.0, alias="timeout")
    events: tuple[AlertEvent, ...] | None = None  # None: every event

    @field_validator("webhook_url")
    @classmethod
    def _webhook_is_http(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value


class SsmAfterMove(_Strict):
    """Run Command on the new active instance (it needs the SSM agent and an instance profile)."""

    commands: tuple[str, ...] = Field(min_length=1)
    document: str = "AWS-RunShellScript"


class AfterMove(_Strict):
    """What to run once a move succeeded; its failure is alerted, never undoes the move."""

    command: tuple[str, ...] | None = Field(default=None, min_length=1)
    ssm: SsmAfterMove | None = None
    timeout_s: Duration = Field(default=30.0, alias="timeout")

    @model_validator(mode="after")
    def _something_to_run(self) -> AfterMove:
        if self.command is None and self.ssm is None:
            raise _Problems([("command", "after_move needs a command, ssm, or both")])
        return self


# --- end PASTE ---------------------------------------------------------------------------


def test_alert_events_match_the_notifier() -> None:
    assert set(AlertEvent.__args__) == set(EVENTS)  # type: ignore[attr-defined]


def test_defaults_are_loopback_and_quiet() -> None:
    assert MetricsSettings().listen == "127.0.0.1:9105"
    notify = NotifySettings()
    assert (notify.sns_topic_arn, notify.webhook_url, notify.timeout_s) == (None, None, 3.0)


def test_full_sections_parse() -> None:
    metrics = MetricsSettings.model_validate({"listen": "0.0.0.0:9105"})
    assert metrics.listen == "0.0.0.0:9105"
    notify = NotifySettings.model_validate(
        {
            "sns_topic_arn": "arn:aws:sns:us-east-1:123456789012:failover-alerts",
            "webhook_url": "https://hooks.slack.com/services/T/B/X",
            "timeout": "5s",
            "events": ["move-failed", "degraded"],
        }
    )
    assert notify.timeout_s == 5.0
    assert notify.events == ("move-failed", "degraded")


@pytest.mark.parametrize(
    ("model", "data", "needle"),
    [
        (MetricsSettings, {"listen": "9105"}, "is not host:port"),
        (MetricsSettings, {"port": 9105}, "extra"),
        (NotifySettings, {"webhook_url": "hooks.slack.com/x"}, "is not an http"),
        (NotifySettings, {"sns_topic_arn": "failover-alerts"}, "pattern"),
        (NotifySettings, {"events": ["moved"]}, "move-started"),
        (AfterMove, {}, "needs a command, ssm, or both"),
        (AfterMove, {"command": []}, "at least 1"),
        (AfterMove, {"ssm": {"document": "AWS-RunShellScript"}}, "commands"),
        (AfterMove, {"command": ["x"], "timeout": "0s"}, "longer than zero"),
    ],
)
def test_bad_sections_are_refused(
    model: type[_Strict], data: dict[str, object], needle: str
) -> None:
    with pytest.raises(ValidationError, match=needle):
        model.model_validate(data)


def test_after_move_model_drives_the_hook() -> None:
    hook = AfterMove.model_validate(
        {"command": ["/bin/sh", "-c", "test {instance} = i-0bb"], "timeout": "5s"}
    )
    result = run_after_move(
        hook, group="db", instance_id="i-0bb", resource="eni-0f1", address="127.0.0.3"
    )
    assert result == HookResult(True, "command sh: exit 0")
    with_ssm = AfterMove.model_validate({"ssm": {"commands": ["ip link set eth1 up"]}})
    assert with_ssm.ssm is not None
    assert with_ssm.ssm.document == "AWS-RunShellScript"
    assert with_ssm.timeout_s == 30.0
