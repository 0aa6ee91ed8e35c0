"""The one place objects are built from Settings: AWS clients, the store, leases, the engine,
and what runs beside the passes (alerts: log, SNS, webhook; post-move hooks; metrics).

Entry points (the CLI, the daemon, the Lambda handler, the demo) call these; nothing else
builds a client.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

# The one-shot commands' budget per call, re-exported: the CLI may not import the client builder.
from failover.aws.clients import READ_BUDGET_S as READ_BUDGET_S
from failover.aws.clients import READ_START_BY_S, lazy_client, make_client
from failover.aws.ec2 import Ec2Cloud
from failover.aws.pacing import Pacer
from failover.config import AwsSettings, Group, Settings, StateSettings
from failover.coord.fence import Fence, holding
from failover.coord.lease import TableLease
from failover.core.errors import ConfigError
from failover.core.model import Step
from failover.core.ports import Clock, LeaseTable, MemberHealth, StepRecord, Store
from failover.ops.clock import SystemClock
from failover.ops.hooks import AfterMoveRunner
from failover.ops.notify import Notifier, chain
from failover.service.engine import Engine, StopRequest, WaitListener
from failover.service.identity import CALLER_GRACE_S
from failover.service.switchover import Alert, FreshHealth, Switchover, log_alert
from failover.store.sqlite import SqliteStore
from failover.store.sqlite_claims import SqliteClaims

# What only some commands use is imported where it is used: a cron check or an on-call
# move must not pay at start-up for the daemon's, the DynamoDB backend's or SNS's modules.
if TYPE_CHECKING:
    from failover.ops.metrics import Metrics
    from failover.service.engine import MoveResult
    from failover.service.monitor import Monitor, Prober

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
def runtime(
    settings: Settings, *, metrics: Metrics | None = None, log_alerts: bool = True
) -> Iterator[Runtime]:
    """Start the notifier and the hook runner; on exit, flush alerts and let hooks finish.

    `log_alerts` False: alerts are only notified, not logged (`failover move` prints what
    happened itself; a failing hook still logs its error).
    """
    notify = settings.notify
    sns = None
    if notify.sns_topic_arn:
        from failover.aws.sns import SnsPublisher

        sns = SnsPublisher(make_client(settings.aws, "sns"))
    notifier = Notifier(
        notify.sns_topic_arn, notify.webhook_url, notify.timeout_s, sns=sns, events=notify.events
    )
    alert = chain(log_alert, notifier.notify) if log_alerts else notifier.notify
    needs_ssm = any(g.after_move is not None and g.after_move.ssm for g in settings.groups)
    ssm = None
    if needs_ssm:
        from failover.aws.ssm import SsmCommands

        ssm = SsmCommands(make_client(settings.aws, "ssm"))
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


@dataclass
class Wiring:
    """The objects a command needs, built once from the settings."""

    settings: Settings
    cloud: Ec2Cloud
    store: Store
    engine: Engine
    fence: Fence  # the groups' leases (dynamodb) or claims (sqlite) this process holds


def make_cloud(
    settings: Settings, clock: SystemClock, *, budget_s: float | None = None
) -> Ec2Cloud:
    """The EC2 adapter, its calls paced to EC2's token buckets on the real clock.

    `budget_s` (READ_BUDGET_S for status, check and validate): no call takes longer.
    STS (the caller's identity, for the audit trail) is built only when first asked.
    """
    return Ec2Cloud(
        make_client(settings.aws, "ec2", budget_s),
        lazy_client(settings.aws, "sts", budget_s),
        clock.now,
        Pacer(clock.monotonic, clock.sleep),
    )


@contextmanager
def read_budget(cloud: Ec2Cloud, clock: Clock) -> Iterator[None]:
    """The block's EC2 reads (this thread's) start no attempt once the read budget could
    not fit one more: a command's reads end within READ_BUDGET_S, however many calls they
    take. A move begun inside keeps its own deadline for its own calls."""
    start_by = clock.monotonic() + READ_START_BY_S
    with cloud.bounded(lambda: start_by - clock.monotonic(), "the read budget"):
        yield


@contextmanager
def wired(
    settings: Settings,
    on_step: Callable[[Step | None, StepRecord], None] | None = None,
    *,
    daemon: bool = False,
    driver: str = "",
    os_user: str | None = None,
    stop: StopRequest | None = None,
    on_wait: WaitListener | None = None,
    budget_s: float | None = None,
) -> Iterator[Wiring]:
    """Build clients, the store, the fence and the engine; close the store afterwards.

    `daemon`: this process takes a share of the groups (`run`; with SQLite it holds the
    state file's lock, so it is the only daemon there); one-shot commands hold only the
    leases they take. `driver` and `os_user` go into the history of every move begun here.
    `stop`: the command's stop request, read by the engine at
    every step boundary; `on_wait`: a wait's progress (a TTY shows it); `budget_s`: the
    longest one EC2 call may take (see failover/aws/clients.py).
    """
    clock = SystemClock()
    cloud = make_cloud(settings, clock, budget_s=budget_s)
    store = open_store(settings.state, settings.aws)
    try:
        fence = make_fence(settings, clock, store, daemon=daemon)
        engine = Engine(
            cloud,
            store,
            clock,
            on_step=on_step,
            guard=fence.guard,
            token_of=fence.token,
            driver=driver,
            os_user=os_user,
            stop=stop,
            on_wait=on_wait,
        )
        try:
            yield Wiring(settings, cloud, store, engine, fence)
        finally:
            # A move journaled before STS answered gets its caller written before the store closes.
            engine.identity.settle(CALLER_GRACE_S)
    finally:
        store.close()


def make_fence(
    settings: Settings, clock: SystemClock, store: Store, *, daemon: bool = False
) -> Fence:
    """The groups' leases: in the DynamoDB table several orchestrators share, or the claims
    in the SQLite state file (no call is made here)."""
    table: LeaseTable
    if isinstance(store, SqliteStore):
        table = SqliteClaims(store)
    else:
        from failover.aws.dynamodb import DynamoTable
        from failover.store.dynamodb_lease import DynamoLeaseTable

        assert settings.state.table is not None
        table = DynamoLeaseTable(
            DynamoTable(make_client(settings.aws, "dynamodb"), settings.state.table)
        )
    lease = TableLease(
        table,
        clock,
        ttl_s=settings.state.lease_ttl_s,
        spreads=daemon,
        sole_daemon=daemon and isinstance(store, SqliteStore),
    )
    return Fence(lease, {g.name: g.resource for g in settings.groups})


@contextmanager
def leased(
    w: Wiring,
    groups: Sequence[str],
    *,
    handover: bool = False,
    wait_s: float | None = None,
    on_ask: Callable[[str, str], None] | None = None,
) -> Iterator[dict[str, str]]:
    """Hold `groups`' leases for the block (`handover`: ask the daemons holding them);
    yields those another holds, each with who holds it."""
    if not groups:
        yield {}
        return
    with holding(
        w.fence, groups, w.engine.clock.sleep, handover=handover, wait_s=wait_s, on_ask=on_ask
    ) as refused:
        yield refused


def make_switchover(
    w: Wiring, rt: Runtime, *, fresh_health: FreshHealth | None = None
) -> Switchover:
    """The guarded path for `failover move`, wired like the passes' (alerts, hooks, metrics)."""
    return Switchover(
        w.store,
        w.engine,
        w.engine.clock,
        fence=w.fence,
        alert=rt.alert,
        on_move=rt.on_move,
        after_move=rt.after_move,
        fresh_health=fresh_health,
    )


def make_monitor(w: Wiring, rt: Runtime, *, prober: Prober | None = None) -> Monitor:
    """The health pass of the daemon, `check` and the Lambda, its moves on the guarded path
    (probing with failover.probes.runner.run_probes unless `prober` is given)."""
    from failover.service.monitor import Monitor

    return Monitor(
        w.cloud,
        w.store,
        w.engine,
        w.engine.clock,
        prober=prober,
        alert=rt.alert,
        on_health=rt.on_health,
        on_move=rt.on_move,
        after_move=rt.after_move,
        fence=w.fence,
        region=w.cloud.region,
    )


def open_store(
    state: StateSettings, aws: AwsSettings | None = None, *, read_only: bool = False
) -> Store:
    """Open the store `state.backend` names; ConfigError if it cannot be used.

    The DynamoDB backend reaches AWS as `aws` says (boto3's defaults and environment
    when None) and checks that `state.table` exists with failover's key schema.
    `read_only` (status, history): the SQLite file is opened without creating or
    writing anything, so a read-only state directory works.
    """
    if state.backend == "sqlite":
        return SqliteStore(state.path, read_only=read_only)
    if state.backend == "dynamodb":
        from failover.aws.dynamodb import DynamoTable  # only this backend needs it
        from failover.store.dynamodb import DynamoStore

        if state.table is None:  # the settings validator already insists on it
            raise ConfigError("state.table is required when state.backend is dynamodb")
        table = DynamoTable(make_client(aws or AwsSettings(), "dynamodb"), state.table)
        table.verify()
        return DynamoStore(table)
    raise ConfigError(f"state.backend {state.backend!r} is not one of sqlite, dynamodb")


def create_state_table(settings: Settings) -> bool:
    """Create the DynamoDB state table (`validate --create-table`); False when it already exists."""
    from failover.aws.dynamodb_create import create_table

    assert settings.state.table is not None
    return create_table(make_client(settings.aws, "dynamodb"), settings.state.table)
