"""Alerts to people: an SNS topic and/or a Slack-compatible webhook, never on the caller's thread.

`Notifier.notify(event, group, message)` has the Monitor's alert signature. It only
puts the alert on a bounded queue and returns; one worker thread delivers it. So a
slow or dead endpoint can delay other alerts but never a pass or a move, and a
delivery failure is logged, never raised. When the queue is full (an endpoint dead
during a storm of alerts) the newest alert is dropped and counted, rather than the
orchestrator's memory growing without bound.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol, get_args

from failover.config.ops import AlertEvent
from failover.core.errors import FailoverError

log = logging.getLogger(__name__)

Alert = Callable[
    [str, str, str], None
]  # (event, group, message), as failover.service.monitor.Alert

DEFAULT_QUEUE_SIZE = 1000
EVENTS: tuple[str, ...] = get_args(AlertEvent)  # one list of events, in the config


class Publisher(Protocol):
    """What the notifier needs of SNS (failover.aws.sns.SnsPublisher); raises CloudError."""

    def publish(self, topic_arn: str, subject: str, message: str) -> str: ...


@dataclass(frozen=True)
class Notice:
    """One alert to deliver."""

    event: str
    group: str
    message: str

    @property
    def subject(self) -> str:
        return f"failover {self.event}: {self.group}"

    @property
    def text(self) -> str:
        return f"[failover] {self.event} {self.group}: {self.message}"


def webhook_body(notice: Notice) -> bytes:
    """Slack's incoming-webhook JSON (`text`), plus the fields a generic receiver can route on."""
    return json.dumps(
        {
            "text": notice.text,
            "event": notice.event,
            "group": notice.group,
            "message": notice.message,
        }
    ).encode("utf-8")


_STOP = object()


class Notifier:
    """Delivers alerts to SNS and/or a webhook from one background thread.

    `sns` is the SNS adapter (failover.aws.sns.SnsPublisher); it is required when
    `sns_topic_arn` is set. `events`, when given, limits which events are sent.
    """

    def __init__(
        self,
        sns_topic_arn: str | None = None,
        webhook_url: str | None = None,
        timeout_s: float = 3.0,
        sns: Publisher | None = None,
        *,
        events: Iterable[str] | None = None,
        queue_size: int = DEFAULT_QUEUE_SIZE,
    ) -> None:
        if sns_topic_arn and sns is None:
            raise ValueError("an SNS topic needs an SNS publisher (failover.aws.sns.SnsPublisher)")
        if webhook_url and not webhook_url.startswith(("http://", "https://")):
            raise ValueError(f"webhook {webhook_url!r} is not an http(s) URL")
        self.sns_topic_arn, self.webhook_url = sns_topic_arn or None, webhook_url or None
        self.timeout_s = timeout_s
        self._sns = sns
        self._events = frozenset(events) if events is not None else None
        self._queue: queue.Queue[Notice | object] = queue.Queue(maxsize=queue_size)
        self._closed = threading.Event()
        self.dropped = 0
        self.failures = 0
        self._thread = threading.Thread(target=self._run, name="failover-notify", daemon=True)
        self._thread.start()

    @property
    def enabled(self) -> bool:
        return bool(self.sns_topic_arn or self.webhook_url)

    def notify(self, event: str, group: str, message: str) -> None:
        """Queue an alert for delivery and return at once; never raises, never blocks."""
        if not self.enabled or self._closed.is_set():
            return
        if self._events is not None and event not in self._events:
            return
        try:
            self._queue.put_nowait(Notice(event, group, message))
        except queue.Full:
            self.dropped += 1
            log.error(
                "alert dropped, %d queued alerts are still undelivered: %s %s: %s",
                self._queue.qsize(),
                event,
                group,
                message,
                extra={"group": group, "event": event},
            )

    def close(self, timeout: float = 10.0) -> bool:
        """Stop taking alerts, deliver those queued within `timeout`; True when all were sent."""
        if not self._closed.is_set():
            self._closed.set()
            try:
                self._queue.put(_STOP, timeout=timeout)
            except queue.Full:
                return False
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if isinstance(item, Notice):
                self.deliver(item)

    def deliver(self, notice: Notice) -> bool:
        """Send one notice to every destination now; True when all took it. Logs failures."""
        ok = True
        if self.sns_topic_arn and self._sns is not None:
            try:
                self._sns.publish(self.sns_topic_arn, notice.subject, notice.text)
            except FailoverError as exc:
                ok = self._failed("SNS", notice, str(exc))
            except Exception as exc:
                # A bug in a destination must not kill the worker: the next alert still goes out.
                ok = self._failed("SNS", notice, repr(exc))
        if self.webhook_url:
            try:
                self._post(notice)
            except (OSError, ValueError) as exc:
                ok = self._failed("webhook", notice, _why(exc))
        return ok

    def _post(self, notice: Notice) -> None:
        assert self.webhook_url is not None
        request = urllib.request.Request(
            self.webhook_url,
            data=webhook_body(notice),
            headers={"Content-Type": "application/json", "User-Agent": "failover"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=self.timeout_s) as reply:
            reply.read(4096)

    def _failed(self, where: str, notice: Notice, why: str) -> bool:
        self.failures += 1
        log.error(
            "alert not delivered to %s: %s (%s %s)",
            where,
            why,
            notice.event,
            notice.group,
            extra={"group": notice.group, "event": notice.event},
        )
        return False


def _why(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return f"cannot reach it: {exc.reason}"
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__


def chain(*alerts: Alert) -> Alert:
    """One alert hook that calls each of `alerts` in turn (a log line, the notifier, ...)."""

    def alert(event: str, group: str, message: str) -> None:
        for each in alerts:
            each(event, group, message)

    return alert
