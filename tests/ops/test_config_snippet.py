"""The operations sections of the config (metrics, notify, after_move): defaults, parsing, and
agreement with the notifier and the hook runner they configure."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from failover.config.base import _Strict
from failover.config.ops import AfterMove, AlertEvent, MetricsSettings, NotifySettings
from failover.ops.hooks import HookResult, run_after_move
from failover.ops.notify import EVENTS


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
