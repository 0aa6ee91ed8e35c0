"""A `failover run` daemon SIGKILLed at every step boundary of a real failover; a restart finishes it.

The acceptance: "for every mode and every step boundary: SIGKILL there, restart -> the
resource is owned by exactly one healthy member and the history shows one move", with the
daemon as the acting process (tests/multi/test_crash_boundaries.py does it for `failover
move`). Each case: one group on the dynamodb backend (its own world, table and config),
its members probed on loopback, one daemon; the primary's service is stopped, the daemon
starts the move and is SIGKILLed at the case's boundary; then a new `failover run` is
started on the same config (a restart, as systemd's Restart= would do: nothing that lived
through the crash takes part in finishing, the new process knows the move only from the
journal and AWS). It must wait the dead holder's lease out, take the group over with a
newer token and finish the journaled move. A mode's cases run at once (a thread each; they
share only the sandbox), so the file takes about three cases' time, not eleven.

Boundaries, hooked in the server (this process) by a wrapper around the strict layer's
`dispatch` that reads who sent each request from the User-Agent (each daemon runs with its
own AWS_SDK_UA_APP_ID, as in test_chaos.py):
- `begun`: the move's journal entry was begun (the TransactWriteItems that puts the move
  item is applied) and no AWS call of the move made: the process is killed before it
  reads the answer. Distinct from `before` the first call: no step event is journaled yet.
- `before` an EC2 call: its request arrives, after the engine journaled the step as
  started (checked from the journal writes seen) and passed its lease guard; the process
  is killed and the request is neither applied nor logged: the crash came before AWS saw
  it. From a kill on, every request of the dead process is dropped, so nothing it had in
  flight (a retry, another thread's write) lands after its death.
- `after` an EC2 call: the layer's `on_call`, which runs after AWS applied the call and
  before the caller reads the answer.

Checked per case: the killed process held the lease it journaled under; afterwards exactly
one member owns the resource (the standby, whose service is up); the store's history has
exactly one move (the one begun before the kill, succeeded, its token lower than the new
holder's); every mutating call of the mode was made exactly once (none repeated, none lost),
each by the process alive and holding the lease then (the killed one: exactly the calls
before its boundary); the restarted daemon journaled and called nothing until a whole TTL
after its own first request (it cannot have seen the dead holder's heartbeat earlier).
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from failover.aws.dynamodb import DynamoTable
from failover.aws.dynamodb_create import create_table
from failover.sandbox.strict import Call
from failover.sandbox.world import World, build_world
from failover.store.dynamodb import DynamoStore

from ..conftest import REGION, cli_env, failover_cmd
from ..health.conftest import Loopback, wait_until
from ..health.conftest import loopback as loopback
from .conftest import (
    TTL_S,
    Sandbox,
    history,
    lease_items,
    moves,
    multi_config,
    new_table,
    owners,
)
from .test_chaos import Daemon

SandboxFactory = Callable[..., Sandbox]
INTERVAL_S = 0.5
START_TIMEOUT_S = 40.0  # daemons start at once on a small (and maybe busy) machine
# The restarted daemon's start-up, a lease round to first read the dead heartbeat, the TTL
# on its own clock, a round to take over, a pass to resume: slack for a loaded 2-core box.
FINISH_TIMEOUT_S = TTL_S + 40.0
_APP_ID = re.compile(r"\bapp/(\S+)")

DETACH, ATTACH = "DetachNetworkInterface", "AttachNetworkInterface"
ASSIGN, ASSOCIATE = "AssignPrivateIpAddresses", "AssociateAddress"
# Every mutating call a move makes, by mode, in order (BOUNDARIES in test_crash_boundaries.py:
# DeleteOnTermination is off in the worlds, and the EIP follows its secondary IP).
CALLS = {"eni": [DETACH, ATTACH], "secondary-ip": [ASSIGN], "eip": [ASSOCIATE]}
# The journal's step kind of each call.
STEP_OF = {DETACH: "detach", ATTACH: "attach", ASSIGN: "assign-ip", ASSOCIATE: "associate-eip"}


@dataclass(frozen=True)
class Boundary:
    point: str  # "begun", "before" or "after"
    action: str | None = None  # the EC2 call, for "before" and "after"

    @property
    def id(self) -> str:
        return self.point + (f"-{self.action}" if self.action else "")


def boundaries(mode: str) -> list[Boundary]:
    """The move's begun journal entry, then before and after each of its mutating calls."""
    return [Boundary("begun")] + [Boundary(p, a) for a in CALLS[mode] for p in ("before", "after")]


@dataclass(frozen=True)
class Kill:
    label: str
    pid: int
    at: float  # time.monotonic(), the clock of Call.at


@dataclass(frozen=True)
class Journaled:
    """A journal write seen in the server: a move begun, or a step event."""

    at: float
    label: str
    kind: str  # "begin" or the step's kind
    phase: str = ""
    move_id: str = ""
    token: int | None = None


@dataclass(frozen=True)
class Acted:
    call: Call
    label: str


@dataclass
class Case:
    """One boundary of one mode: its own group, table, config, services and daemons."""

    mode: str
    boundary: Boundary
    world: World
    net: Loopback
    table: str
    config: Path
    logs: Path
    daemons: list[Daemon] = field(default_factory=list)
    kill: Kill | None = None
    acted: list[Acted] = field(default_factory=list)
    journal: list[Journaled] = field(default_factory=list)
    killed_holder: Any = None  # the lease item right after the kill
    shown: list[dict[str, Any]] = field(default_factory=list)  # `failover history --json`
    first_request: dict[str, float] = field(default_factory=dict)  # by label, monotonic
    error: str | None = None

    @property
    def id(self) -> str:
        return f"{self.mode}-{self.boundary.id}"

    def label(self, n: int) -> str:
        return f"{self.id}-{n}"

    def start(self) -> Daemon:
        label = self.label(len(self.daemons))
        log_path = self.logs / f"{label}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                failover_cmd("--log-level", "info", "run", "--config", str(self.config)),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=cli_env({"AWS_SDK_UA_APP_ID": label}),
            )
        daemon = Daemon(label, proc, log_path)
        self.daemons.append(daemon)
        return daemon

    def check(self) -> None:
        """Fail if a daemon that was not killed has exited."""
        for d in self.daemons:
            if not d.killed and d.proc.poll() is not None:
                pytest.fail(f"{d.label} exited {d.proc.returncode}:\n{d.log_tail()}")

    def close(self) -> None:
        for d in self.daemons:
            if d.proc.poll() is None:
                d.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                d.proc.wait(timeout=10)


class KillSwitch:
    """Wraps the layer's `dispatch`: attributes requests to cases, notes journal writes, kills."""

    def __init__(self, sb: Sandbox, cases: list[Case]) -> None:
        self._layer = sb.layer
        self._dispatch = sb.layer.dispatch
        self._cases = cases
        self._lock = threading.Lock()
        self._local = threading.local()
        self._dead: set[str] = set()
        self.errors: list[str] = []

    def install(self) -> None:
        setattr(self._layer, "dispatch", self.dispatch)  # noqa: B010  (an instance attribute)
        self._layer.on_call = self.on_call

    def uninstall(self) -> None:
        self._layer.on_call = None
        vars(self._layer).pop("dispatch", None)

    def _case_of(self, label: str | None) -> Case | None:
        if label is None:
            return None
        for case in self._cases:
            if label.startswith(case.id + "-"):
                return case
        return None

    def _kill(self, case: Case, label: str) -> None:
        """SIGKILL `label` (the lock held): from now on its requests are dropped."""
        daemon = next(d for d in case.daemons if d.label == label)
        daemon.killed = True  # first: `Case.check` must not take the kill for a crash
        daemon.proc.kill()
        self._dead.add(label)
        case.kill = Kill(label, daemon.pid, time.monotonic())

    def dispatch(self, response: Any, original: Any) -> Any:
        match = _APP_ID.search(str(response.headers.get("User-Agent", "")))
        label = match.group(1) if match else None
        case = self._case_of(label)
        service = str(response.service_name or "")
        action = str(response._get_action() or "")
        with self._lock:
            if case is not None and label is not None:
                case.first_request.setdefault(label, time.monotonic())
            if label in self._dead:
                return 500, {}, ""  # sent by a process already dead: never applied
            if (
                case is not None
                and label is not None
                and case.kill is None
                and case.boundary.point == "before"
                and service == "ec2"
                and action == case.boundary.action
                and response._get_param("DryRun") in (None, False, "false")
            ):
                self._kill(case, label)  # before AWS saw the call: not applied, not logged
                return 500, {}, ""
        begins = False
        if service == "dynamodb" and case is not None and label is not None:
            try:
                begins = self._journal_writes(case, label, action, response)
            except Exception as exc:  # never break the server; reported by the test
                self.errors.append(f"{label} {action}: {exc!r}")
        self._local.label = label
        try:
            result = self._dispatch(response, original)
        finally:
            self._local.label = None
        if begins and case is not None and label is not None and int(result[0]) < 300:
            with self._lock:
                if case.kill is None and case.boundary.point == "begun":
                    self._kill(case, label)  # the move is journaled; its caller never knows
        return result

    def _journal_writes(self, case: Case, label: str, action: str, response: Any) -> bool:
        """Note the journal writes in this request; True if it begins a move."""
        if action == "TransactWriteItems" or action == "PutItem":
            raw = response.body or {}
            body = raw if isinstance(raw, dict) else json.loads(raw)
        else:
            return False
        if action == "TransactWriteItems":
            items = [e.get("Put", {}).get("Item", {}) for e in body.get("TransactItems", [])]
        else:
            items = [body.get("Item", {})]
        begins = False
        at = time.monotonic()
        for item in items:
            sk = item.get("sk", {}).get("S", "")
            if not sk.startswith("move#"):
                continue
            if "#step#" in sk:
                step = json.loads(item["step"]["S"])
                seen = Journaled(at, label, step["kind"], step["phase"])
            elif "move_id" in item:
                token = item.get("token", {})
                seen = Journaled(
                    at,
                    label,
                    "begin",
                    move_id=item["move_id"]["S"],
                    token=int(token["N"]) if "N" in token else None,
                )
                begins = True
            else:
                continue
            with self._lock:
                case.journal.append(seen)
        return begins

    def on_call(self, call: Call) -> None:
        """After AWS applied a call, before its caller reads the answer."""
        if not call.mutating:
            return
        label = getattr(self._local, "label", None)
        case = self._case_of(label)
        with self._lock:
            if case is None or label is None:
                self.errors.append(f"unattributed {call.action} {call.params} from {label}")
                return
            case.acted.append(Acted(call, label))
            b = case.boundary
            if (
                case.kill is None
                and b.point == "after"
                and call.action == b.action
                and call.error is None
            ):
                self._kill(case, label)


def healthy(sb: Sandbox, table: str) -> set[str]:
    """The members the store's probe counters call healthy."""
    client = boto3.client("dynamodb", region_name=REGION, endpoint_url=sb.url)
    counters = DynamoStore(DynamoTable(client, table)).load_health("g")
    return {i for i, h in counters.items() if h.healthy}


def drive(sb: Sandbox, case: Case) -> None:
    """Start a daemon, fail the primary, wait for the kill, restart, wait until finished."""
    first = case.start()

    def held_by_first() -> bool:
        case.check()
        item = lease_items(sb, case.table).get("g")
        return item is not None and item.pid == first.pid

    wait_until(held_by_first, START_TIMEOUT_S, f"{case.id}: the daemon to hold the lease")
    case.net.stop(case.world.primary)

    def killed() -> Kill | None:
        case.check()
        return case.kill

    wait_until(killed, 30, f"{case.id}: the daemon to reach the boundary")
    # The item still names the dead holder: a contender waits a TTL before taking it.
    case.killed_holder = lease_items(sb, case.table)["g"]
    restarted = case.start()
    standby = case.world.standbys[0]

    def finished() -> bool:
        case.check()
        item = lease_items(sb, case.table).get("g")
        return (
            item is not None
            and item.pid == restarted.pid
            and owners(sb, case.world, case.mode) == {standby}
            and [m.outcome for m in moves(sb, case.table)] == ["succeeded"]
            and healthy(sb, case.table) == {standby}
        )

    wait_until(finished, FINISH_TIMEOUT_S, f"{case.id}: the restarted daemon to finish")
    case.shown = history(case.config)


def verify(sb: Sandbox, case: Case) -> float:
    """The case's assertions; how long the restarted daemon waited before it first acted."""
    first, restarted = case.daemons
    kill, acted, journal = case.kill, list(case.acted), list(case.journal)
    assert kill is not None
    standby = case.world.standbys[0]
    context = (
        f"kill {kill}\ncalls {[(a.call.action, a.label) for a in acted]}\n"
        f"journal {[(j.label, j.kind, j.phase) for j in journal]}\n"
        f"{first.label}:\n{first.log_tail()}\n{restarted.label}:\n{restarted.log_tail()}"
    )
    # Killed at the boundary: what the killed process had journaled by then.
    assert kill.label == first.label, context
    (begun,) = [j for j in journal if j.kind == "begin"]
    assert begun.label == first.label, context
    steps = [(j.kind, j.phase) for j in journal if j.label == first.label and j.kind != "begin"]
    if case.boundary.point == "begun":
        assert steps == [], context
    else:
        assert case.boundary.action is not None
        assert steps[-1:] == [(STEP_OF[case.boundary.action], "started")], context
    # It held the lease it journaled the move under.
    assert case.killed_holder.pid == first.pid, (case.killed_holder, context)
    assert case.killed_holder.token == begun.token, (case.killed_holder, context)

    # Exactly one member owns the resource: the standby, whose service is up and which the
    # probes call healthy (the primary's is down).
    assert owners(sb, case.world, case.mode) == {standby}, context
    assert set(case.net.services) == {standby}
    assert healthy(sb, case.table) == {standby}
    # One move in the history: the one begun before the kill, finished by the new holder.
    (shown,) = case.shown
    assert (shown["move_id"], shown["outcome"]) == (begun.move_id, "succeeded"), case.shown
    (record,) = moves(sb, case.table)
    assert record.move_id == begun.move_id, context
    assert record.outcome == "succeeded", context
    assert record.target == standby, context
    now_held = lease_items(sb, case.table)["g"]
    assert now_held.pid == restarted.pid, context
    assert record.token is not None
    assert record.token < now_held.token, (record, now_held)

    # Every call of the mode exactly once (none repeated, none lost), each made by the
    # process alive then: the killed one up to the kill, the restarted one after it.
    calls = CALLS[case.mode]
    assert [a.call.action for a in acted] == calls, context
    b = case.boundary
    done_first = 0 if b.action is None else calls.index(b.action) + (b.point == "after")
    assert [a.label for a in acted] == [first.label] * done_first + [restarted.label] * (
        len(calls) - done_first
    ), context
    for a in acted:
        assert a.call.error is None, context
        assert (a.call.at <= kill.at) == (a.label == first.label), context
    # The restarted daemon waited the dead holder's lease out: it cannot have read that
    # heartbeat before its own first request, and it journaled and called nothing until a
    # whole TTL later (by our clock; a lease round and a pass come on top).
    first_request = case.first_request[restarted.label]
    acts = [a.call.at for a in acted if a.label == restarted.label]
    acts += [j.at for j in journal if j.label == restarted.label]
    waited = min(acts) - first_request
    assert waited >= TTL_S, (waited, context)
    return waited


@pytest.mark.process
@pytest.mark.timeout(180)
@pytest.mark.parametrize("mode", list(CALLS))
def test_daemon_killed_at_each_step_boundary_is_finished_by_a_restarted_daemon(
    sandbox: SandboxFactory, loopback: Callable[..., Loopback], tmp_path: Path, mode: str
) -> None:
    """Rule: SIGKILL a failover anywhere, restart: one healthy owner, one move, no call twice."""
    sb = sandbox()
    client = boto3.client("dynamodb", region_name=REGION, endpoint_url=sb.url)
    cases: list[Case] = []
    for boundary in boundaries(mode):
        world = build_world(sb.ec2, mode=mode, group="g")
        net = loopback([world.primary, world.standbys[0]])
        table = new_table()
        config = multi_config(
            sb,
            sb.group(world, mode, members=net.members(), checks=[net.check()]),
            table=table,
            defaults={
                "interval": f"{int(INTERVAL_S * 1000)}ms",
                "timeout": "200ms",
                "fall": 2,
                "rise": 1,
            },
        )
        assert create_table(client, table)
        cases.append(Case(mode, boundary, world, net, table, config, tmp_path))
    sb.layer.reset_log()

    switch = KillSwitch(sb, cases)
    switch.install()
    failures: list[str] = []

    def run(case: Case) -> None:
        try:
            drive(sb, case)
        except BaseException:  # pytest.fail raises an OutcomeException (a BaseException)
            case.error = traceback.format_exc()

    try:
        threads = [threading.Thread(target=run, args=(c,), name=c.id) for c in cases]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not switch.errors, switch.errors
        for case in cases:
            if case.error is not None:
                failures.append(f"{case.id}: {case.error}")
                continue
            try:
                took = verify(sb, case)
            except AssertionError:
                failures.append(f"{case.id}: {traceback.format_exc()}")
                continue
            print(
                f"{case.id}: the restarted daemon first acted {took:.2f}s after its first request"
            )
        assert not failures, "\n\n".join(failures)
    finally:
        switch.uninstall()
        for case in cases:
            case.close()
