"""Notifier: SNS (through moto, read back from a subscribed SQS queue), a loopback webhook,
and endpoints that are dead or hung never slow notify() nor raise."""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING

import boto3
import pytest

from failover.aws.sns import SnsPublisher, sns_subject
from failover.core.errors import PermanentCloudError
from failover.ops.notify import Notice, Notifier, chain, webhook_body

if TYPE_CHECKING:
    from tests.ops.conftest import Receiver

REGION = "us-east-1"


def test_sns_publishes_subject_and_message(aws: None) -> None:
    sns, sqs = boto3.client("sns", region_name=REGION), boto3.client("sqs", region_name=REGION)
    topic = sns.create_topic(Name="failover-alerts")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="alerts")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)

    notifier = Notifier(topic, None, sns=SnsPublisher(sns))
    notifier.notify("move-finished", "db", "i-0aa -> i-0bb in 4.2s")
    assert notifier.close(timeout=10)

    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    [envelope] = [json.loads(m["Body"]) for m in messages]
    assert envelope["Subject"] == "failover move-finished: db"
    assert envelope["Message"] == "[failover] move-finished db: i-0aa -> i-0bb in 4.2s"
    assert notifier.failures == 0


def test_sns_failure_is_logged_not_raised(aws: None, caplog: pytest.LogCaptureFixture) -> None:
    sns = boto3.client("sns", region_name=REGION)
    missing = f"arn:aws:sns:{REGION}:123456789012:nobody-here"
    with pytest.raises(PermanentCloudError):
        SnsPublisher(sns).publish(missing, "s", "m")  # the adapter translates...
    notifier = Notifier(missing, None, sns=SnsPublisher(sns))
    notifier.notify("degraded", "db", "no healthy standby")  # ...the notifier only logs
    assert notifier.close(timeout=10)
    assert notifier.failures == 1
    assert "alert not delivered to SNS" in caplog.text


def test_webhook_gets_slack_json(receiver: Receiver) -> None:
    notifier = Notifier(None, receiver.url)
    notifier.notify("held", "web", "4 moves in an hour: held for an operator")
    assert notifier.close(timeout=10)
    assert receiver.bodies == [
        {
            "text": "[failover] held web: 4 moves in an hour: held for an operator",
            "event": "held",
            "group": "web",
            "message": "4 moves in an hour: held for an operator",
        }
    ]


def test_webhook_error_status_is_logged(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.status = 500
    notifier = Notifier(None, receiver.url)
    notifier.notify("suspect", "*", "every member failed")
    assert notifier.close(timeout=10)
    assert notifier.failures == 1
    assert "HTTP 500" in caplog.text


def test_unreachable_webhook_neither_blocks_nor_raises(
    closed_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = Notifier(None, f"http://127.0.0.1:{closed_port}/hook", timeout_s=3.0)
    started = time.monotonic()
    for number in range(20):
        notifier.notify("move-failed", "db", f"attempt {number}")
    assert time.monotonic() - started < 0.1
    assert notifier.close(timeout=10)
    assert notifier.failures == 20
    assert "cannot reach it" in caplog.text


def test_hung_webhook_does_not_block_notify(silent_port: int) -> None:
    notifier = Notifier(None, f"http://127.0.0.1:{silent_port}/hook", timeout_s=0.3)
    started = time.monotonic()
    notifier.notify("move-started", "db", "primary failed")
    notifier.notify("move-finished", "db", "done")
    assert time.monotonic() - started < 0.1  # the worker is the one waiting
    assert notifier.close(timeout=10)  # each delivery gives up after timeout_s
    assert notifier.failures == 2


def test_a_full_queue_drops_alerts_instead_of_growing(
    silent_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = Notifier(None, f"http://127.0.0.1:{silent_port}/hook", timeout_s=0.2, queue_size=1)
    for number in range(5):
        notifier.notify("move-failed", "db", f"attempt {number}")
    assert notifier.dropped >= 3  # one in flight, one queued at most
    assert "alert dropped" in caplog.text
    notifier.close(timeout=10)


def test_events_filter_and_closed_notifier(receiver: Receiver) -> None:
    notifier = Notifier(None, receiver.url, events=["move-failed"])
    notifier.notify("move-started", "db", "skipped by the filter")
    notifier.notify("move-failed", "db", "sent")
    assert notifier.close(timeout=10)
    notifier.notify("move-failed", "db", "after close: ignored")
    assert [b["message"] for b in receiver.bodies] == ["sent"]


def test_nothing_configured_is_a_no_op() -> None:
    notifier = Notifier(None, None)
    assert not notifier.enabled
    notifier.notify("degraded", "db", "x")
    assert notifier.close(timeout=1)


def test_misconfiguration_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="SNS publisher"):
        Notifier("arn:aws:sns:us-east-1:123456789012:t", None)
    with pytest.raises(ValueError, match="not an http"):
        Notifier(None, "ftp://127.0.0.1/hook")


def test_subject_is_what_sns_accepts() -> None:
    assert (
        sns_subject("failover move-failed: db\nsecond line\u00e9")
        == "failover move-failed: db second line"
    )
    assert len(sns_subject("x" * 300)) == 100
    assert sns_subject("\n") == "failover"


def test_chain_calls_each_alert_in_order() -> None:
    seen: list[tuple[str, str, str]] = []
    alert = chain(
        lambda *a: seen.append(("first", a[0], a[1])),
        lambda *a: seen.append(("second", a[0], a[1])),
    )
    alert("degraded", "db", "msg")
    assert seen == [("first", "degraded", "db"), ("second", "degraded", "db")]


def test_webhook_body_is_json_with_text() -> None:
    body = json.loads(webhook_body(Notice("held", "db", "why")))
    assert body["text"] == "[failover] held db: why"


def test_a_failing_destination_does_not_stop_the_other(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken:
        def publish(self, topic_arn: str, subject: str, message: str) -> str:
            raise RuntimeError("bug in the publisher")

    notifier = Notifier("arn:aws:sns:us-east-1:123456789012:t", receiver.url, sns=Broken())
    with caplog.at_level(logging.ERROR):
        notifier.notify("move-failed", "db", "still goes to the webhook")
        assert notifier.close(timeout=10)
    assert [b["message"] for b in receiver.bodies] == ["still goes to the webhook"]
    assert notifier.failures == 1
