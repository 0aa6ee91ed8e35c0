"""Health tests: each member probed on its own loopback address, failures made by stopping it.

Network rule: every probe goes to loopback. Each member gets its own address in
127.0.N.0/24 (Linux routes all of 127/8 to lo) through the config's member `address`,
and a `Service` listens on (that address, one port shared by the group). Killing a
member's service is `Loopback.stop(instance)`.

Two rigs:
- `health_rig(...)`: moto in-process behind the strict layer, a real Engine, SqliteStore
  and Monitor, and a fake clock (cooldowns pass by `rig.clock.advance`, never by sleeping);
- `daemon(config)`: the real `failover run` as a process against the session's moto server
  (the `sandbox` fixture of tests/cli, imported here).
"""

from __future__ import annotations

import itertools
import random
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws

from failover import cli
from failover.aws.ec2 import Ec2Cloud
from failover.config import Group, Settings, parse
from failover.core.ports import MoveRecord
from failover.sandbox.strict import StrictLayer
from failover.sandbox.world import World, build_world
from failover.service.engine import Engine
from failover.service.monitor import GroupOutcome, Monitor
from failover.store.sqlite import SqliteStore

from ..cli.conftest import Sandbox, moto_server, sandbox  # noqa: F401  (fixtures, re-exported)
from ..clocks import FakeClock
from ..conftest import (
    REGION,
    Service,
    cli_env,
    failover_cmd,
    free_port,
    join_sts_questions,
    write_config,
)

__all__ = ["Sandbox"]

# One /24 of 127/8 per Loopback, starting at a random one so two runs at once rarely meet.
_NETS = itertools.cycle(range(10, 250))
for _ in range(random.randrange(240)):
    next(_NETS)


@dataclass
class Loopback:
    """Members' own loopback addresses, one shared port, and a Service per member."""

    port: int
    addresses: dict[str, str]
    services: dict[str, Service] = field(default_factory=dict)

    @classmethod
    def make(cls, instances: Sequence[str], *, up: bool = True) -> Loopback:
        """Addresses 127.0.N.2, .3, ... for `instances`; their services started when `up`."""
        for _attempt in range(20):
            net = next(_NETS)
            addresses = {i: f"127.0.{net}.{n}" for n, i in enumerate(instances, start=2)}
            lo = cls(free_port(next(iter(addresses.values()))), addresses)
            try:
                if up:
                    for instance in instances:
                        lo.start(instance)
            except OSError:  # the port is taken on one of the addresses: another net
                lo.close()
                continue
            return lo
        raise RuntimeError("no free loopback port for the members' services")

    def start(self, instance: str) -> None:
        if instance not in self.services:
            self.services[instance] = Service(self.addresses[instance], self.port).start()

    def stop(self, instance: str) -> None:
        """Kill the member's service: its TCP probe is refused from now on."""
        service = self.services.pop(instance, None)
        if service is not None:
            service.stop()

    def close(self) -> None:
        for instance in list(self.services):
            self.stop(instance)

    def members(self) -> list[dict[str, str]]:
        """The group's `members:` in preference order, each probed at its own address."""
        return [{"instance": i, "address": a} for i, a in self.addresses.items()]

    def check(self) -> dict[str, Any]:
        return {"type": "tcp", "port": self.port}


@pytest.fixture
def loopback() -> Iterator[Callable[..., Loopback]]:
    """`loopback(instances, up=True)`; every service is stopped after the test."""
    made: list[Loopback] = []

    def make(instances: Sequence[str], *, up: bool = True) -> Loopback:
        lo = Loopback.make(instances, up=up)
        made.append(lo)
        return lo

    yield make
    for lo in made:
        lo.close()


def wait_until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll `predicate` until it is truthy; fail the test with `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def read_store(path: Path | str, fn: Callable[[SqliteStore], Any]) -> Any:
    """Open the state file like another process would, read, close."""
    store = SqliteStore(str(path))
    try:
        return fn(store)
    finally:
        store.close()


# ---- the in-process Monitor rig ------------------------------------------------------


@dataclass
class HealthRig:
    """Groups g0, g1, ... in moto, their members' loopback services, a Monitor over them."""

    layer: StrictLayer
    ec2: Any
    worlds: dict[str, World]
    nets: dict[str, Loopback]
    settings: Settings
    config_path: Path
    store: SqliteStore
    clock: FakeClock
    engine: Engine
    monitor: Monitor
    alerts: list[tuple[str, str, str]]

    def group(self, name: str = "g0") -> Group:
        return self.settings.group(name)

    def members(self, name: str = "g0") -> list[str]:
        world = self.worlds[name]
        return [world.primary, *world.standbys]

    def run_pass(self) -> dict[str, GroupOutcome]:
        return {o.group: o for o in self.monitor.run_pass(self.settings.groups)}

    def passes(self, n: int) -> list[dict[str, GroupOutcome]]:
        return [self.run_pass() for _ in range(n)]

    def eni_owner(self, name: str = "g0") -> str | None:
        eni_id = self.worlds[name].eni_id
        assert eni_id is not None
        att = self.ec2.describe_network_interfaces(NetworkInterfaceIds=[eni_id])[
            "NetworkInterfaces"
        ][0].get("Attachment")
        return att["InstanceId"] if att and att.get("Status") == "attached" else None

    def moves(self, name: str = "g0") -> list[MoveRecord]:
        """The group's moves, oldest first."""
        return list(reversed(self.store.history(name)))

    def stop(self, instance: str) -> None:
        for net in self.nets.values():
            if instance in net.addresses:
                net.stop(instance)

    def start(self, instance: str) -> None:
        for net in self.nets.values():
            if instance in net.addresses:
                net.start(instance)

    def cli_check(self, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
        """`failover check` in this process (same mock, same state file): exit code, stdout."""
        capsys.readouterr()
        code = cli.main(["check", "--config", str(self.config_path)])
        return code, capsys.readouterr().out


@pytest.fixture
def health_rig(
    aws_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Callable[..., HealthRig]]:
    """`health_rig(groups=1, standbys=1, ec2=False, **policy)`: a Monitor over loopback-probed
    groups (with an `ec2` check too when `ec2`)."""
    # Moto's 1,300 default AMIs are filtered at every RunInstances: not needed here.
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    opened: list[tuple[StrictLayer, SqliteStore]] = []
    nets: list[Loopback] = []
    with mock_aws():

        def make(
            *, groups: int = 1, standbys: int = 1, ec2: bool = False, **policy: Any
        ) -> HealthRig:
            layer = StrictLayer()
            layer.install()
            config = Config(retries={"mode": "standard", "max_attempts": 8})
            ec2 = boto3.client("ec2", region_name=REGION, config=config)
            sts = boto3.client("sts", region_name=REGION, config=config)
            worlds = {
                f"g{n}": build_world(ec2, mode="eni", group=f"g{n}", standbys=standbys)
                for n in range(groups)
            }
            group_docs = []
            made: dict[str, Loopback] = {}
            for name, world in worlds.items():
                lo = Loopback.make([world.primary, *world.standbys])
                nets.append(lo)
                made[name] = lo
                group_docs.append(
                    {
                        "name": name,
                        "mode": "eni",
                        "eni": world.eni_id,
                        "device_index": 1,
                        "members": lo.members(),
                        "checks": [{"type": "ec2"}, lo.check()] if ec2 else [lo.check()],
                    }
                )
            document = {
                "aws": {"region": REGION},
                "state": {"path": str(tmp_path / "state.db")},
                "defaults": {
                    "interval": "1s",
                    "timeout": "300ms",
                    "move_timeout": "30s",
                    "detach_timeout": "5s",
                    **policy,
                },
                "groups": group_docs,
            }
            config_path = write_config(tmp_path / "config.yaml", document)
            settings = parse(document, str(config_path))
            store = SqliteStore(settings.state.path)
            opened.append((layer, store))
            clock = FakeClock(wall=time.time())
            cloud = Ec2Cloud(ec2, sts, clock.now)
            engine = Engine(cloud, store, clock)
            alerts: list[tuple[str, str, str]] = []
            monitor = Monitor(
                cloud,
                store,
                engine,
                clock,
                alert=lambda event, group, message: alerts.append((event, group, message)),
            )
            layer.reset_log()
            return HealthRig(
                layer,
                ec2,
                worlds,
                made,
                settings,
                config_path,
                store,
                clock,
                engine,
                monitor,
                alerts,
            )

        yield make
        join_sts_questions()
        for lo in nets:
            lo.close()
        for layer, store in opened:
            store.close()
            layer.uninstall()


# ---- the daemon as a process ---------------------------------------------------------


@dataclass
class DaemonProcess:
    """`failover run` in its own process; its log (stderr) goes to a file."""

    proc: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_log(self, text: str, timeout: float = 15.0) -> None:
        def seen() -> bool:
            if self.proc.poll() is not None and text not in self.log():
                pytest.fail(f"daemon exited {self.proc.returncode} first:\n{self.log()}")
            return text in self.log()

        wait_until(seen, timeout, f"{text!r} in the daemon's log")

    def send(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 30.0) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"daemon still running after {timeout}s:\n{self.log()}")

    @property
    def running(self) -> bool:
        return self.proc.poll() is None


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Callable[..., DaemonProcess]]:
    """`daemon(config_path, env=None)` starts `failover run` (`env` added to its environment);
    one still running at teardown is killed."""
    started: list[DaemonProcess] = []

    def start(config: Path, env: dict[str, str] | None = None) -> DaemonProcess:
        log_path = tmp_path / f"daemon-{len(started)}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                failover_cmd("--log-level", "info", "run", "--config", str(config)),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=cli_env(env),
            )
        process = DaemonProcess(proc, log_path)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.proc.poll() is None:
            process.proc.kill()
            process.proc.wait(timeout=10)
