"""The Lambda handler runs `check` passes in-process against moto: summaries, counters, a move,
with the SQLite state in the function's /tmp and with the DynamoDB backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from moto import mock_aws

from failover.aws.dynamodb import DynamoTable
from failover.aws.dynamodb_create import create_table
from failover.aws_lambda import handler
from failover.sandbox.strict import StrictLayer
from failover.sandbox.world import World, build_world
from failover.store.dynamodb import DynamoStore

from ..conftest import REGION, write_config
from ..store.moto_dynamodb import serialized_dynamodb


@pytest.fixture
def ec2(aws_env: None) -> Iterator[Any]:
    """moto in-process behind the strict layer; the client is built after the mock starts."""
    with mock_aws(), StrictLayer() as _layer:
        yield boto3.client("ec2", region_name=REGION)


def lambda_config(tmp_path: Path, world: World) -> Path:
    """An eni group watched by the ec2 check alone: a Lambda outside the VPC reaches no member."""
    return write_config(
        tmp_path / "config.yaml",
        {
            "aws": {"region": REGION},
            "state": {"path": "/var/task/read-only/failover-state.db"},
            "defaults": {"move_timeout": "30s", "detach_timeout": "5s"},
            "groups": [
                {
                    "name": "db",
                    "mode": "eni",
                    "eni": world.eni_id,
                    "device_index": 1,
                    "members": [world.primary, *world.standbys],
                    "checks": [{"type": "ec2"}],
                }
            ],
        },
    )


def eni_owner(ec2: Any, eni_id: str) -> str | None:
    eni = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni_id])["NetworkInterfaces"][0]
    att = eni.get("Attachment")
    return att["InstanceId"] if att and att.get("Status") == "attached" else None


def test_handler_moves_a_stopped_primary_after_fall_invocations(
    ec2: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rule: each invocation is one check pass; counters survive in the state dir; fall 3 moves."""
    world = build_world(ec2, mode="eni", group="db")
    assert world.eni_id is not None
    state_dir = tmp_path / "lambda-tmp"
    state_dir.mkdir()
    monkeypatch.setenv("FAILOVER_CONFIG", str(lambda_config(tmp_path, world)))
    monkeypatch.setenv("FAILOVER_STATE_DIR", str(state_dir))

    first = handler({}, None)
    assert first["exit_code"] == 0
    assert [(g["name"], g["outcome"], g["active"]) for g in first["groups"]] == [
        ("db", "stay", world.primary)
    ]
    assert first["groups"][0]["summary"].startswith("db: stay: ")
    # The config's state path is read-only on Lambda: the file went to the state dir instead.
    assert (state_dir / "failover-state.db").exists()

    ec2.stop_instances(InstanceIds=[world.primary])
    for _ in range(2):  # failures 1 and 2 of fall 3: counted, nothing moves
        waiting = handler({}, None)
        assert waiting["groups"][0]["outcome"] == "stay", waiting
        assert eni_owner(ec2, world.eni_id) == world.primary

    moved = handler({}, None)
    assert moved["exit_code"] == 0, moved
    (group,) = moved["groups"]
    assert (group["outcome"], group["active"]) == ("moved", world.standbys[0])
    assert f"moved {world.primary} -> {world.standbys[0]}" in group["summary"]
    assert eni_owner(ec2, world.eni_id) == world.standbys[0]


def test_handler_reads_config_yaml_from_the_package_without_failover_config(
    ec2: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rule: without $FAILOVER_CONFIG the config is config.yaml in $LAMBDA_TASK_ROOT."""
    world = build_world(ec2, mode="eni", group="db")
    package = tmp_path / "task"
    package.mkdir()
    lambda_config(package, world)
    monkeypatch.delenv("FAILOVER_CONFIG", raising=False)
    monkeypatch.setenv("LAMBDA_TASK_ROOT", str(package))
    monkeypatch.setenv("FAILOVER_STATE_DIR", str(tmp_path))
    result = handler({"source": "aws.events"}, None)
    assert result == {
        "groups": [
            {
                "name": "db",
                "outcome": "stay",
                "active": world.primary,
                "exit_code": 0,
                "summary": result["groups"][0]["summary"],
            }
        ],
        "exit_code": 0,
    }


def test_handler_on_the_dynamodb_backend_takes_the_leases_and_moves_within_fall_invocations(
    ec2: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rule: the Lambda with `state.backend: dynamodb` is a one-shot holder like `check`: it
    takes the group's lease, moves a stopped primary's ENI at the `fall`-th invocation (the
    counters live in the shared table), records the move as the Lambda's, and gives the
    lease back after every invocation."""
    world = build_world(ec2, mode="eni", group="db")
    assert world.eni_id is not None
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    assert create_table(dynamodb, "failover-lambda") is True
    document = yaml.safe_load(lambda_config(tmp_path, world).read_text())
    document["state"] = {"backend": "dynamodb", "table": "failover-lambda", "lease_ttl": "3s"}
    monkeypatch.setenv("FAILOVER_CONFIG", str(write_config(tmp_path / "config.yaml", document)))
    store = DynamoStore(DynamoTable(dynamodb, "failover-lambda"))

    with serialized_dynamodb():  # the lease keeper's thread and the pass share moto
        assert handler({}, None)["groups"][0]["outcome"] == "stay"
        ec2.stop_instances(InstanceIds=[world.primary])
        for failures in (1, 2):
            waiting = handler({}, None)
            assert waiting["groups"][0]["outcome"] == "stay", waiting
            assert store.load_health("db")[world.primary].failures == failures
            assert eni_owner(ec2, world.eni_id) == world.primary
        moved = handler({}, None)

    assert moved["exit_code"] == 0, moved
    assert (moved["groups"][0]["outcome"], moved["groups"][0]["active"]) == (
        "moved",
        world.standbys[0],
    )
    assert eni_owner(ec2, world.eni_id) == world.standbys[0]
    (record,) = store.history("db")
    assert (record.outcome, record.driver, record.os_user) == ("succeeded", "lambda", None)
    assert record.token is not None  # begun under the lease
    lease = dynamodb.get_item(
        TableName="failover-lambda", Key={"pk": {"S": "group#db"}, "sk": {"S": "lease"}}
    )["Item"]
    assert lease["holder"]["S"] == ""  # given back on the way out
    assert int(lease["token"]["N"]) == record.token
