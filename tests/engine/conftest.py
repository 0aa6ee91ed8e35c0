"""A rig for engine tests: moto in-process behind the strict layer, a world, the real engine."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws

from failover.aws.ec2 import Ec2Cloud
from failover.config import Group, Settings, parse
from failover.ops.clock import SystemClock
from failover.sandbox.strict import StrictLayer
from failover.sandbox.world import World, build_world
from failover.service.engine import Engine
from failover.store.sqlite import SqliteStore

from ..conftest import join_sts_questions

REGION = "us-east-1"


def group_config(world: World, mode: str, **policy: Any) -> dict[str, Any]:
    """The config dict of one group over `world`'s members, in preference order."""
    members = [world.primary, *world.standbys] + ([world.other_az] if world.other_az else [])
    group: dict[str, Any] = {"name": "g", "mode": mode, "members": members, **policy}
    if mode == "eni":
        group.update(eni=world.eni_id, device_index=1)
    elif mode == "secondary-ip":
        group.update(ip=world.ip, eip=world.allocation_id)
    elif mode == "route":
        group.update(cidr=world.cidr, route_tables=list(world.route_tables))
    else:
        group.update(eip=world.allocation_id)
    return group


@dataclass
class Rig:
    """Everything one engine test needs, built after the mock started."""

    layer: StrictLayer
    ec2: Any
    world: World
    settings: Settings
    group: Group
    store: SqliteStore
    cloud: Ec2Cloud
    engine: Engine

    def eni(self) -> dict[str, Any]:
        assert self.world.eni_id is not None
        reply = self.ec2.describe_network_interfaces(NetworkInterfaceIds=[self.world.eni_id])
        return dict(reply["NetworkInterfaces"][0])

    def eni_owner(self) -> str | None:
        att = self.eni().get("Attachment")
        return att["InstanceId"] if att and att.get("Status") == "attached" else None

    def ip_holders(self) -> set[str]:
        """Instances whose ENIs hold the group's secondary IP (AWS allows exactly one)."""
        reply = self.ec2.describe_instances(InstanceIds=[self.world.primary, *self.world.standbys])
        return {
            i["InstanceId"]
            for r in reply["Reservations"]
            for i in r["Instances"]
            for nic in i.get("NetworkInterfaces", [])
            if self.world.ip in {p["PrivateIpAddress"] for p in nic.get("PrivateIpAddresses", [])}
        }

    def eip(self) -> dict[str, Any]:
        reply = self.ec2.describe_addresses(AllocationIds=[self.world.allocation_id])
        return dict(reply["Addresses"][0])


@pytest.fixture
def rig(aws_env: None, tmp_path: Path) -> Iterator[Callable[..., Rig]]:
    """Make a Rig: `rig(mode, layer=dict(...), world=dict(...), **policy)`."""
    opened: list[tuple[StrictLayer, SqliteStore]] = []
    with mock_aws():

        def make(
            mode: str,
            *,
            layer: dict[str, Any] | None = None,
            world: dict[str, Any] | None = None,
            **policy: Any,
        ) -> Rig:
            strict = StrictLayer(**(layer or {}))
            strict.install()
            config = Config(retries={"mode": "standard", "max_attempts": 8})
            ec2 = boto3.client("ec2", region_name=REGION, config=config)
            sts = boto3.client("sts", region_name=REGION, config=config)
            built = build_world(ec2, mode=mode, group="g", **(world or {}))
            policy = {"move_timeout": "30s", "detach_timeout": "5s", **policy}
            settings = parse(
                {
                    "aws": {"region": REGION},
                    "state": {"path": str(tmp_path / "state.db")},
                    "groups": [group_config(built, mode, **policy)],
                },
                "test",
            )
            store = SqliteStore(settings.state.path)
            opened.append((strict, store))
            clock = SystemClock()
            cloud = Ec2Cloud(ec2, sts, clock.now)
            strict.reset_log()
            return Rig(
                strict,
                ec2,
                built,
                settings,
                settings.groups[0],
                store,
                cloud,
                Engine(cloud, store, clock),
            )

        yield make
        join_sts_questions()
        for strict, store in opened:
            store.close()
            strict.uninstall()
