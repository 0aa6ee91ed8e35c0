"""Process tests: moto's server in this process behind the strict layer, the real CLI outside.

The strict layer patches moto process-wide, so the server thread enforces EC2's rules
for the `failover` subprocesses that talk to it; the tests read AWS state back with
their own boto3 client and the layer's call log.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from failover.sandbox.server import SandboxServer
from failover.sandbox.strict import Call, StrictLayer
from failover.sandbox.world import World, build_world

from ..conftest import REGION, cli_env, failover_cmd, members_of, write_config


@pytest.fixture(scope="session")
def moto_server() -> Iterator[SandboxServer]:
    """One moto server for the session on 127.0.0.1; reset before each test."""
    with SandboxServer() as server:
        yield server


@dataclass
class Sandbox:
    """The server, the layer over it and a client to read AWS state back."""

    server: SandboxServer
    layer: StrictLayer
    ec2: Any
    tmp_path: Path

    @property
    def url(self) -> str:
        return self.server.url

    def signalled_after(
        self,
        argv: list[str],
        action: str,
        sig: int = signal.SIGKILL,
        timeout_s: float = 90.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run `failover ARGV` and send it `sig` as soon as AWS has applied its first `action`
        (a crash, Ctrl-C or SIGTERM at that step boundary); what it printed and its status."""
        proc: list[subprocess.Popen[str]] = []
        started, sent = threading.Event(), threading.Event()

        def send_after(call: Call) -> None:
            if call.action == action and call.error is None and not call.dry_run:
                started.wait(10)
                if proc and not sent.is_set():
                    os.kill(proc[0].pid, sig)
                    sent.set()

        self.layer.on_call = send_after
        try:
            child = subprocess.Popen(
                failover_cmd(*argv),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=cli_env(),
            )
            proc.append(child)
            started.set()
            stdout, stderr = child.communicate(timeout=timeout_s)
        finally:
            self.layer.on_call = None
        assert sent.is_set(), f"{action} was never made: {stderr}"
        return subprocess.CompletedProcess(child.args, child.returncode, stdout, stderr)

    def world(self, mode: str, **options: Any) -> World:
        world = build_world(self.ec2, mode=mode, group="g", **options)
        self.layer.reset_log()
        return world

    def group(self, world: World, mode: str, name: str = "g", **extra: Any) -> dict[str, Any]:
        group: dict[str, Any] = {"name": name, "mode": mode, "members": list(members_of(world))}
        if mode == "eni":
            group.update(eni=world.eni_id, device_index=1)
        elif mode == "secondary-ip":
            group.update(ip=world.ip, eip=world.allocation_id)
        elif mode == "route":
            group.update(cidr=world.cidr, route_tables=list(world.route_tables))
        else:
            group.update(eip=world.allocation_id)
        group.update(extra)
        return group

    def config(
        self,
        *groups: dict[str, Any],
        defaults: dict[str, Any] | None = None,
        name: str = "config.yaml",
        **sections: Any,
    ) -> Path:
        document: dict[str, Any] = {
            "aws": {"region": REGION, "endpoint_url": self.url, "max_attempts": 8},
            # Short claims: a killed process's group is taken over 3 s after its last beat.
            "state": {"path": str(self.tmp_path / "state.db"), "lease_ttl": "3s"},
            # Several daemons may run at once in the tests: let the OS pick the metrics port.
            "metrics": {"listen": "127.0.0.1:0"},
            "defaults": {"move_timeout": "30s", "detach_timeout": "5s", **(defaults or {})},
            "groups": list(groups),
        }
        document.update(sections)
        return write_config(self.tmp_path / name, document)

    def eni_attachment(self, eni_id: str) -> dict[str, Any] | None:
        reply = self.ec2.describe_network_interfaces(NetworkInterfaceIds=[eni_id])
        att = reply["NetworkInterfaces"][0].get("Attachment")
        return dict(att) if att else None

    def eni_owner(self, eni_id: str) -> str | None:
        att = self.eni_attachment(eni_id)
        return att["InstanceId"] if att and att.get("Status") == "attached" else None

    def eip_owner(self, allocation_id: str) -> str | None:
        reply = self.ec2.describe_addresses(AllocationIds=[allocation_id])
        return reply["Addresses"][0].get("InstanceId")

    def eth0(self, instance_id: str) -> str:
        """The id of an instance's primary network interface."""
        reply = self.ec2.describe_instances(InstanceIds=[instance_id])
        nics = reply["Reservations"][0]["Instances"][0]["NetworkInterfaces"]
        return str(
            next(n for n in nics if n["Attachment"]["DeviceIndex"] == 0)["NetworkInterfaceId"]
        )

    def routes(self, world: World) -> dict[str, tuple[str | None, str]]:
        """Each of the world's route tables: (the ENI its overlay route targets, the route's State)."""
        reply = self.ec2.describe_route_tables(RouteTableIds=list(world.route_tables))
        out = {}
        for table in reply["RouteTables"]:
            route = next(r for r in table["Routes"] if r.get("DestinationCidrBlock") == world.cidr)
            out[table["RouteTableId"]] = (route.get("NetworkInterfaceId"), route["State"])
        return out

    def ip_holders(self, world: World) -> set[str]:
        reply = self.ec2.describe_instances(InstanceIds=list(members_of(world)))
        return {
            i["InstanceId"]
            for r in reply["Reservations"]
            for i in r["Instances"]
            for nic in i.get("NetworkInterfaces", [])
            if world.ip in {p["PrivateIpAddress"] for p in nic.get("PrivateIpAddresses", [])}
        }


@pytest.fixture
def sandbox(
    moto_server: SandboxServer, aws_env: None, tmp_path: Path
) -> Iterator[Callable[..., Sandbox]]:
    """`sandbox(**layer_options)`: a fresh server state behind a new strict layer."""
    layers: list[StrictLayer] = []

    def make(**options: Any) -> Sandbox:
        moto_server.reset()
        layer = StrictLayer(**options)
        layer.install()
        layers.append(layer)
        config = Config(retries={"mode": "standard", "max_attempts": 8})
        ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=moto_server.url, config=config)
        return Sandbox(moto_server, layer, ec2, tmp_path)

    yield make
    for layer in layers:
        layer.on_call = None
        layer.uninstall()
