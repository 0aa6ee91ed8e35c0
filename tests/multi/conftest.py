"""Several orchestrators as real processes on one DynamoDB table (moto's server) and one sandbox.

The session's moto server (tests/cli) runs in this process, so the lock that makes moto's
DynamoDB atomic (tests/store/moto_dynamodb.py) is applied here, around every test: it
patches moto's DynamoDB handler class, which the server thread uses too.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from failover.aws.dynamodb import DynamoTable
from failover.core.ports import MoveRecord
from failover.sandbox.strict import Call
from failover.sandbox.world import World
from failover.store.dynamodb import DynamoStore

from ..cli.conftest import Sandbox, moto_server, sandbox  # noqa: F401  (fixtures, re-exported)
from ..conftest import REGION, cli_env, failover_cmd, run_cli, write_config
from ..store.moto_dynamodb import serialized_dynamodb

__all__ = ["Sandbox"]

TTL = "3s"
TTL_S = 3.0


@pytest.fixture(autouse=True)
def _atomic_dynamodb() -> Iterator[None]:
    """DynamoDB on moto as atomic as the real one, for the server thread too."""
    with serialized_dynamodb():
        yield


def multi_config(
    sb: Sandbox,
    *groups: dict[str, Any],
    table: str,
    defaults: dict[str, Any] | None = None,
    ttl: str = TTL,
) -> Path:
    """A config on the dynamodb backend: `table` in moto's server, leases of `ttl`."""
    document = {
        "aws": {"region": REGION, "endpoint_url": sb.url, "max_attempts": 3},
        "state": {"backend": "dynamodb", "table": table, "lease_ttl": ttl},
        "metrics": {"listen": "127.0.0.1:0"},
        "defaults": {"move_timeout": "30s", "detach_timeout": "5s", **(defaults or {})},
        "groups": list(groups),
    }
    return write_config(sb.tmp_path / f"config-{table}.yaml", document)


def create_table(config: Path) -> None:
    """`failover validate --create-table`: the table exists afterwards."""
    done = run_cli("validate", "--offline", "--create-table", "--config", str(config))
    assert done.returncode == 0, done.stdout + done.stderr
    assert ": created" in done.stdout, done.stdout


def new_table() -> str:
    return f"failover-{uuid.uuid4().hex[:10]}"


def history(config: Path, group: str | None = None) -> list[dict[str, Any]]:
    args = ["history", "--json", "--config", str(config)]
    if group is not None:
        args += ["--group", group]
    done = run_cli(*args)
    assert done.returncode == 0, done.stderr
    moves: list[dict[str, Any]] = json.loads(done.stdout)
    return moves


@dataclass(frozen=True)
class LeaseItem:
    """A group's lease item as the table holds it."""

    group: str
    holder: str
    token: int

    @property
    def pid(self) -> int | None:
        """The holder's pid (holder ids are host:pid:random), None once released."""
        return int(self.holder.split(":")[-2]) if self.holder else None


def lease_items(sb: Sandbox, table: str) -> dict[str, LeaseItem]:
    """Every group's lease item, read straight from the table."""
    client = boto3.client("dynamodb", region_name=REGION, endpoint_url=sb.url)
    items: dict[str, LeaseItem] = {}
    for page in client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        for item in page["Items"]:
            if item["sk"]["S"] == "lease":
                group = item["group"]["S"]
                items[group] = LeaseItem(group, item["holder"]["S"], int(item["token"]["N"]))
    return items


def moves(sb: Sandbox, table: str, group: str | None = None) -> list[MoveRecord]:
    """The journal and history as the store keeps them (tokens included), oldest first."""
    client = boto3.client("dynamodb", region_name=REGION, endpoint_url=sb.url)
    return list(reversed(DynamoStore(DynamoTable(client, table)).history(group, 1000)))


def start_daemon(config: Path, log_path: Path) -> subprocess.Popen[bytes]:
    """`failover run` as a process, its log in `log_path`."""
    with log_path.open("wb") as log:
        return subprocess.Popen(
            failover_cmd("--log-level", "info", "run", "--config", str(config)),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=cli_env(),
        )


def owners(sb: Sandbox, world: World, mode: str) -> set[str]:
    """Which members own the resource now, as AWS says."""
    if mode == "eni":
        owner = sb.eni_owner(world.eni_id or "")
        return {owner} if owner else set()
    if mode == "secondary-ip":
        return sb.ip_holders(world)
    owner = sb.eip_owner(world.allocation_id or "")
    return {owner} if owner else set()


CallHook = Callable[[Call], None]
