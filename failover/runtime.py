"""What runs beside the health passes: alerts (log, SNS, webhook), post-move hooks, metrics.

Built once per process by the CLI (and the Lambda handler) from the settings, handed to
the Monitor as plain callbacks, and closed on the way out so queued alerts are sent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from failover.aws.clients import make_client
from failover.aws.sns import SnsPublisher
from failover.aws.ssm import SsmCommands
from failover.hooks import AfterMoveRunner
from failover.monitor import Alert, log_alert
from failover.notify import Notifier, chain
from failover.ports import MemberHealth

if TYPE_CHECKING:
    from failover.config import Group, Settings
    from failover.engine import MoveResult
    from failover.metrics import Metrics

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """The callbacks a Monitor takes, wired to notifications, hooks and (optionally) metrics."""

    alert: Alert
    after_move: Callable[[Group, MoveResult, str], None]
    metrics: Metrics | None = None

    def on_health(self, group: str, health: Mapping[str, MemberHealth]) -> None:
        if self.metrics is not None:
            self.metrics.observe_health(group, health)

    def on_move(self, group: str, outcome: str, seconds: float) -> None:
        if self.metrics is not None and outcome in ("succeeded", "failed", "refused"):
            self.metrics.move_finished(group, outcome, seconds)


@contextmanager
def runtime(settings: Settings, *, metrics: Metrics | None = None) -> Iterator[Runtime]:
    """Start the notifier and the hook runner; on exit, flush alerts and let hooks finish."""
    notify = settings.notify
    sns = SnsPublisher(make_client(settings.aws, "sns")) if notify.sns_topic_arn else None
    notifier = Notifier(
        notify.sns_topic_arn, notify.webhook_url, notify.timeout_s, sns=sns, events=notify.events
    )
    alert = chain(log_alert, notifier.notify)
    needs_ssm = any(g.after_move is not None and g.after_move.ssm for g in settings.groups)
    ssm = SsmCommands(make_client(settings.aws, "ssm")) if needs_ssm else None
    hooks = AfterMoveRunner(ssm, alert=alert)

    def after_move(group: Group, result: MoveResult, address: str) -> None:
        if group.after_move is not None:
            hooks.submit(
                group.after_move,
                group=group.name,
                instance_id=result.target,
                resource=group.resource,
                address=address,
            )

    try:
        yield Runtime(alert, after_move, metrics)
    finally:
        hooks.close()
        if not notifier.close(10.0):
            log.warning("some alerts were not delivered before exit")
