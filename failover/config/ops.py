"""Config sections for running in production: metrics endpoint, notifications, post-move hooks."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, field_validator, model_validator

from failover.config.base import HourDuration, MinuteDuration, _Problems, _Strict

DEFAULT_LISTEN = "127.0.0.1:9105"


def parse_listen(listen: str) -> tuple[str, int]:
    """`host:port`, `[v6]:port` or `:port` (loopback) -> (host, port); ValueError if malformed."""
    host, sep, port_text = listen.rpartition(":")
    if not sep or not port_text.isdigit():
        raise ValueError(f"{listen!r} is not host:port (for example {DEFAULT_LISTEN})")
    port = int(port_text)
    if port > 65535:
        raise ValueError(f"{listen!r}: port {port} is out of range")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host:
        return "127.0.0.1", port
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if host != "localhost":
            raise ValueError(f"{listen!r}: {host!r} is not an IP address (or localhost)") from None
    return host, port


AlertEvent = Literal[
    "move-started",
    "move-finished",
    "move-failed",
    "move-refused",
    "degraded",
    "held",
    "suspect",
    "after-move-failed",
    "blind",
    "recovered",
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
    timeout_s: MinuteDuration = Field(default=3.0, alias="timeout")
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
    timeout_s: HourDuration = Field(default=30.0, alias="timeout")

    @model_validator(mode="after")
    def _something_to_run(self) -> AfterMove:
        if self.command is None and self.ssm is None:
            raise _Problems([("command", "after_move needs a command, ssm, or both")])
        return self
