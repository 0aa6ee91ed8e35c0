"""Build the botocore clients failover uses, from the config; called by the wiring only.

Every call is bounded. The daemon uses the config's `max_attempts` (its passes retry
anyway, and a blind daemon says so). The one-shot commands (status, check, validate,
move) give up on an endpoint within READ_BUDGET_S: short timeouts, and only as many
attempts as fit the budget in the worst case (each attempt timing out, and botocore's
longest backoff between them); their reads as a whole start no attempt after
READ_START_BY_S (`wiring.read_budget`).

Start-up: clients come from botocore itself (boto3 adds resources, S3 transfers and its
user-agent name, and ~20 ms of imports); every session of the process shares one loader, so each service
model and the endpoint data are read from disk once, and trimmed to what failover sends
(failover/aws/models.py); a client a command may not need (STS) is built on its first use
(`lazy_client`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import botocore.session
from botocore import handlers
from botocore.config import Config
from botocore.exceptions import BotoCoreError, NoRegionError, ProfileNotFound

from failover.aws import models
from failover.core.errors import ConfigError

if TYPE_CHECKING:
    from failover.config import AwsSettings

CONNECT_TIMEOUT_S = 3.0
READ_TIMEOUT_S = 10.0
# status, check and validate give up on an endpoint within this (README, "Bounded calls").
READ_BUDGET_S = 15.0
BUDGET_CONNECT_TIMEOUT_S = 2.0
BUDGET_READ_TIMEOUT_S = 5.0
# botocore's standard retry: before attempt i + 1, at most min(2 ** (i - 1), 20) seconds.
_MAX_BACKOFF_S = 20.0
# A command's reads span several calls: no attempt starts later than this into it, so the
# last one still ends within READ_BUDGET_S (failover/aws/bounds.py refuses later ones).
READ_START_BY_S = READ_BUDGET_S - (BUDGET_CONNECT_TIMEOUT_S + BUDGET_READ_TIMEOUT_S)


def worst_case_s(attempts: int, connect_s: float, read_s: float) -> float:
    """The longest one call can take: every attempt times out, every backoff is the longest."""
    backoffs = sum(min(2.0 ** (i - 1), _MAX_BACKOFF_S) for i in range(1, attempts))
    return attempts * (connect_s + read_s) + backoffs


def attempts_within(budget_s: float, connect_s: float, read_s: float, most: int) -> int:
    """The most attempts (at least one, at most `most`) whose worst case fits in `budget_s`."""
    attempts = 1
    while attempts < most and worst_case_s(attempts + 1, connect_s, read_s) <= budget_s:
        attempts += 1
    return attempts


def client_config(aws: AwsSettings, budget_s: float | None = None) -> Config:
    """botocore's retry mode from the config, with timeouts; fitted to `budget_s` when given."""
    if budget_s is None:
        return Config(
            retries={"mode": aws.retry_mode, "max_attempts": aws.max_attempts},
            connect_timeout=CONNECT_TIMEOUT_S,
            read_timeout=READ_TIMEOUT_S,
        )
    # botocore's `max_attempts` counts retries (the config passes it as such above);
    # `total_max_attempts` counts the first request too, which is what the budget bounds.
    attempts = attempts_within(
        budget_s, BUDGET_CONNECT_TIMEOUT_S, BUDGET_READ_TIMEOUT_S, aws.max_attempts + 1
    )
    return Config(
        retries={"mode": aws.retry_mode, "total_max_attempts": attempts},
        connect_timeout=BUDGET_CONNECT_TIMEOUT_S,
        read_timeout=BUDGET_READ_TIMEOUT_S,
    )


# The parsed service models and endpoint data, by the data path that found them.
_LOADERS: dict[object, Any] = {}
_LOADERS_LOCK = threading.Lock()


def _session(aws: AwsSettings) -> botocore.session.Session:
    """A session for the config's profile and region, on the process's shared loader."""
    session = botocore.session.Session(profile=aws.profile, include_builtin_handlers=False)
    _register_builtin_handlers(session)
    if aws.region is not None:
        session.set_config_variable("region", aws.region)
    data_path = session.get_config_variable("data_path")  # a profile may add model paths
    with _LOADERS_LOCK:
        if data_path not in _LOADERS:
            _LOADERS[data_path] = models.loader(data_path)
        loader = _LOADERS[data_path]
    session.register_component("data_loader", loader)
    return session


def _fires_for_failover(event: str) -> bool:
    """Whether a botocore handler's event can fire for a client failover builds: generic
    events, and those of its services (`before-call.ec2.CopySnapshot`); never those of
    other services, nor the documentation's (`docs.*`, emitted only to write docs)."""
    parts = event.split(".")
    if parts[0] == "docs":
        return False
    return len(parts) < 2 or parts[1] in (*models.SERVICES, "*")


def _register_builtin_handlers(session: botocore.session.Session) -> None:
    """botocore's own handlers, as a session registers them, less those that never fire for
    failover's services: 15 of its 127, whose registration (each handler's signature
    checked, each event name matched against renamed services) took 6 ms a session."""
    events = session.get_component("event_emitter")
    for event, handler, *how in handlers.BUILTIN_HANDLERS:
        if not _fires_for_failover(event):
            continue
        if not how:
            session.register(event, handler)
        elif how[0] is handlers.REGISTER_FIRST:
            events.register_first(event, handler)
        elif how[0] is handlers.REGISTER_LAST:
            events.register_last(event, handler)


def _build(aws: AwsSettings, service: str, budget_s: float | None) -> Any:
    """The client, or botocore's error."""
    make: Any = _session(aws).create_client  # one builder for every service; callers know the type
    return make(service, endpoint_url=aws.endpoint_url, config=client_config(aws, budget_s))


def make_client(aws: AwsSettings, service: str, budget_s: float | None = None) -> Any:
    """A client for `service` with botocore's retry mode from the config and short timeouts.

    Botocore's retries absorb throttling per call (standard or adaptive mode); the
    timeouts keep a dead endpoint from eating the move's whole deadline on one call.
    `budget_s`: no call takes longer than this, whatever the endpoint does.
    """
    try:
        return _build(aws, service, budget_s)
    except NoRegionError:
        raise ConfigError("aws.region is not set (in the config, or AWS_DEFAULT_REGION)") from None
    except ProfileNotFound:
        raise ConfigError(f"aws.profile {aws.profile!r} is not in the AWS config files") from None
    except BotoCoreError as exc:
        raise ConfigError(f"cannot build the {service} client: {exc}") from None


class LazyClient:
    """A client built on its first use (an attribute read), once, whichever thread asks first."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build
        self._client: Any = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._build()
        return getattr(self._client, name)


def lazy_client(aws: AwsSettings, service: str, budget_s: float | None = None) -> Any:
    """`make_client`'s client, built when first used: a command that never calls `service`
    never pays for it. If it cannot be built, that first use raises botocore's error, as
    a failed call would (its caller already handles those)."""
    return LazyClient(lambda: _build(aws, service, budget_s))
