"""`failover move` while two daemons share the groups on the DynamoDB backend: the daemon
holding the group hands it over (failover/coord/handover.py), the move is made once, and
nothing moves it back; a holder killed mid-handover and a CLI killed mid-move both end
with one owner and the journal closed.

Real processes against moto's server behind the strict layer; each daemon and the CLI
send their own User-Agent app id, so a wrapper around the layer's `dispatch` can kill a
process at an exact request and drop whatever it had in flight. The members answer probes
on loopback all along: no daemon has a reason of its own to move anything.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from failover.sandbox.strict import Call
from failover.sandbox.world import World

from ..conftest import cli_env, failover_cmd
from ..health.conftest import Loopback, wait_until
from ..health.conftest import loopback as loopback
from .conftest import (
    TTL_S,
    Sandbox,
    create_table,
    lease_items,
    moves,
    multi_config,
    new_table,
)

SandboxFactory = Callable[..., Sandbox]
DETACH, ATTACH = "DetachNetworkInterface", "AttachNetworkInterface"
_APP_ID = re.compile(r"\bapp/(\S+)")


@dataclass
class Proc:
    """A `failover` process with its own User-Agent app id (`label`)."""

    label: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    killed: bool = False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@dataclass
class Rig:
    """Two groups, two daemons on one table, and a way to kill a process at a request."""

    sb: Sandbox
    worlds: dict[str, World]
    table: str
    config: Path
    procs: dict[str, Proc] = field(default_factory=dict)
    dead: set[str] = field(default_factory=set)
    on_ask: Callable[[], None] | None = None
    original: Callable[[Any, Any], Any] | None = None  # the layer's own dispatch
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, label: str, *args: str) -> Proc:
        log_path = self.sb.tmp_path / f"{label}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                failover_cmd("--log-level", "info", *args, "--config", str(self.config)),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=cli_env({"AWS_SDK_UA_APP_ID": label}),
            )
        self.procs[label] = Proc(label, proc, log_path)
        return self.procs[label]

    def kill(self, label: str) -> None:
        """SIGKILL `label`; from now on its requests are dropped (never applied)."""
        with self.lock:
            target = self.procs[label]
            target.killed = True
            self.dead.add(label)
            target.proc.kill()

    def holder_of(self, group: str) -> str:
        """The label of the daemon whose pid the group's lease item names."""
        pid = lease_items(self.sb, self.table)[group].pid
        return next(p.label for p in self.procs.values() if p.proc.pid == pid)

    def dispatch(self, response: Any, original: Any) -> Any:
        match = _APP_ID.search(str(response.headers.get("User-Agent", "")))
        label = match.group(1) if match else None
        if label in self.dead:
            return 500, {}, ""  # sent by a process already dead
        if (
            self.on_ask is not None
            and str(response.service_name) == "dynamodb"
            and response._get_action() == "PutItem"
        ):
            raw = response.body or {}
            item = (raw if isinstance(raw, dict) else json.loads(raw)).get("Item", {})
            if item.get("sk", {}).get("S", "").startswith("holder#") and item.get("asks", {}).get(
                "L"
            ):
                hook, self.on_ask = self.on_ask, None
                hook()  # before the ask is written: the holder never sees it
        assert self.original is not None
        return self.original(response, original)

    def daemons_up(self) -> None:
        for p in self.procs.values():
            if p.label.startswith("daemon") and not p.killed and p.proc.poll() is not None:
                pytest.fail(f"{p.label} exited {p.proc.returncode}:\n{p.log()}")


@pytest.fixture
def rig(sandbox: SandboxFactory, loopback: Callable[..., Loopback]) -> Iterator[Rig]:
    """Groups g and h, members answering on loopback, two daemons, each holding one group."""
    sb = sandbox()
    worlds = {name: sb.world("eni") for name in ("g", "h")}
    nets = {n: loopback([w.primary, w.standbys[0]]) for n, w in worlds.items()}
    groups = [
        sb.group(w, "eni", name=n, members=nets[n].members(), checks=[nets[n].check()])
        for n, w in worlds.items()
    ]
    table = new_table()
    config = multi_config(
        sb,
        *groups,
        table=table,
        defaults={"interval": "500ms", "timeout": "300ms", "fall": 2, "rise": 1},
    )
    create_table(config)
    r = Rig(sb, worlds, table, config, original=sb.layer.dispatch)
    setattr(sb.layer, "dispatch", r.dispatch)  # noqa: B010  (an instance attribute)
    try:
        for n in range(2):
            r.start(f"daemon{n}", "run")

        def spread() -> bool:
            items = lease_items(sb, table)
            pids = {i.pid for i in items.values()}
            return len(items) == 2 and None not in pids and len(pids) == 2

        wait_until(spread, 40, "g and h held, one by each daemon")
        sb.layer.reset_log()
        yield r
    finally:
        sb.layer.on_call = None
        vars(sb.layer).pop("dispatch", None)
        for p in r.procs.values():
            if p.proc.poll() is None:
                p.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.proc.wait(timeout=10)


def sent(sb: Sandbox, action: str) -> list[Call]:
    return [c for c in sb.layer.calls_to(action) if not c.dry_run]


def move(r: Rig, target: str) -> Proc:
    return r.start("cli", "move", "g", "--to", target, "--yes")


def settled(r: Rig, target: str) -> None:
    """The end every case must reach: g's ENI on `target` (one owner), g's journal closed, both
    groups held again by a live daemon; and a few passes later nothing has moved it back."""
    eni = r.worlds["g"].eni_id or ""

    def done() -> bool:
        r.daemons_up()
        items = lease_items(r.sb, r.table)
        live = {
            p.proc.pid for p in r.procs.values() if p.label.startswith("daemon") and not p.killed
        }
        return (
            r.sb.eni_owner(eni) == target
            and all(m.outcome != "in-progress" for m in moves(r.sb, r.table, "g"))
            and all(items[g].pid in live for g in ("g", "h"))
        )

    wait_until(done, 40, "g on the target, its journal closed, both groups held by live daemons")
    time.sleep(3.0)  # six passes of 500 ms
    r.daemons_up()
    assert r.sb.eni_owner(eni) == target
    assert r.sb.eni_owner(r.worlds["h"].eni_id or "") == r.worlds["h"].primary
    assert len(sent(r.sb, DETACH)) == 1
    assert len(sent(r.sb, ATTACH)) == 1
    assert [c for c in r.sb.layer.mutating_calls() if c.error is not None] == []
    (record,) = moves(r.sb, r.table, "g")
    assert (record.target, record.outcome, record.driver) == (target, "succeeded", "move")


@pytest.mark.process
def test_move_while_two_daemons_run_is_handed_the_group_moves_once_and_stays(rig: Rig) -> None:
    """Rule: `move` works while daemons hold the leases: exit 0, one move, nothing moves it
    back, and both daemons stay up."""
    target = rig.worlds["g"].standbys[0]
    holder = rig.holder_of("g")
    cli = move(rig, target)
    assert cli.proc.wait(timeout=60) == 0, cli.log()
    assert "asking it to hand the group over" in cli.log()
    assert f"moved from {rig.worlds['g'].primary} to {target}" in cli.log()
    assert "handed group g over to " in rig.procs[holder].log()
    settled(rig, target)


@pytest.mark.process
def test_the_holder_killed_during_the_handover_is_waited_out_and_the_move_made_once(
    rig: Rig,
) -> None:
    """Rule: the holder dies before it answers the ask: the CLI takes the group a TTL after
    the holder's last heartbeat, moves it, and the surviving daemon holds both groups after."""
    target = rig.worlds["g"].standbys[0]
    holder = rig.holder_of("g")
    rig.on_ask = lambda: rig.kill(holder)
    started = time.monotonic()
    cli = move(rig, target)
    assert cli.proc.wait(timeout=60) == 0, cli.log()
    assert rig.procs[holder].killed
    assert time.monotonic() - started >= TTL_S  # the dead holder's lease was waited out
    assert "handed group g over" not in rig.procs[holder].log()
    settled(rig, target)


@pytest.mark.process
def test_the_cli_killed_during_its_move_is_finished_by_a_daemon_and_stays(rig: Rig) -> None:
    """Rule: the CLI dies right after its detach: its lease lapses, the daemon that takes the
    group finishes the journaled move to the CLI's target, and nothing moves it back."""
    target = rig.worlds["g"].standbys[0]

    def kill_cli(call: Call) -> None:
        if call.action == DETACH and not call.dry_run and call.error is None:
            rig.kill("cli")

    rig.sb.layer.on_call = kill_cli
    cli = move(rig, target)
    assert cli.proc.wait(timeout=60) == -signal.SIGKILL
    rig.sb.layer.on_call = None
    assert rig.sb.eni_owner(rig.worlds["g"].eni_id or "") is None  # detached, mid-move
    (journaled,) = moves(rig.sb, rig.table, "g")
    assert journaled.outcome == "in-progress"
    settled(rig, target)
    finisher = next(
        p for p in rig.procs.values() if f"resuming move {journaled.move_id}" in p.log()
    )
    assert finisher.label.startswith("daemon")
