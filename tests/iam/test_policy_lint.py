"""The policies in policies/ are valid and least-privilege by IAM's own reference, offline.

parliament carries AWS's Service Authorization Reference (every action's access level,
the resource types it authorizes against, marked when required, and their condition
keys). moto cannot check ARNs or conditions (test_policy_moto.py proves the action set
only), so this is where the scoping is proved: no mutating action that supports
resource-level permissions is granted on "*", every resource type AWS requires is
granted, and the tag condition is one each of those resource types supports.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from botocore import xform_name
from botocore.session import get_session

from .conftest import (
    DYNAMODB_POLICY,
    EC2_ACTIONS,
    EC2_POLICY,
    as_list,
    load_policy,
    parliament,
    statements,
)

REPO = Path(__file__).resolve().parents[2]
READ_LEVELS = {"List", "Read"}
TAG_CONDITION = {"StringLike": {"aws:ResourceTag/failover:group": "*"}}

# What each mutating call authorizes against on AWS, all of it granted (tag-scoped).
# ModifyNetworkInterfaceAttribute also knows security-group and subnet: left out on
# purpose, so the role cannot change an ENI's security groups.
EC2_SCOPE = {
    "ec2:AttachNetworkInterface": {"instance", "network-interface"},
    "ec2:DetachNetworkInterface": {"instance", "network-interface"},
    "ec2:ModifyNetworkInterfaceAttribute": {"instance", "network-interface"},
    "ec2:AssignPrivateIpAddresses": {"network-interface"},
    "ec2:AssociateAddress": {"elastic-ip", "instance", "network-interface"},
    "ec2:ReplaceRoute": {"route-table"},
}
DYNAMODB_RUNTIME = {
    "dynamodb:BatchGetItem",
    "dynamodb:DeleteItem",
    "dynamodb:DescribeTable",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:UpdateItem",
}
DYNAMODB_CREATE = {"dynamodb:CreateTable", "dynamodb:DescribeTable", "dynamodb:UpdateTimeToLive"}
# TransactWriteItems is no IAM action: each write in a transaction needs its item action.
TRANSACTION_WRITES = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


def findings(policy: dict[str, Any]) -> list[tuple[str, Any]]:
    """Every parliament finding for `policy`, community auditors included, at any severity."""
    result = parliament().analyze_policy_string(
        json.dumps(policy), ignore_private_auditors=True, include_community_auditors=True
    )
    return [(f.issue, f.detail) for f in result.findings]


def privilege(action: str) -> dict[str, Any]:
    """parliament's record of `service:Action`: access level, resource types, service resources."""
    info: dict[str, Any] = parliament().statement.get_privilege_info(*action.split(":"))
    return info


def resource_types(action: str) -> dict[str, set[str]]:
    """{resource type: its condition keys} for `action`; a required type ends with '*'."""
    return {
        r["resource_type"]: set(r["condition_keys"])
        for r in privilege(action)["resource_types"]
        if r["resource_type"]
    }


def granted_types(action: str, resources: list[str]) -> set[str]:
    """The resource types of `action` that the statement's ARNs can match (parliament's matching)."""
    service_resources = privilege(action)["service_resources"]
    arn_format = parliament().statement.get_arn_format
    return {
        kind.rstrip("*")
        for kind in resource_types(action)
        if any(
            parliament().is_arn_match(kind, arn_format(kind, service_resources), r)
            for r in resources
        )
    }


def grants(policy: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(action, its Allow statement) for every action `policy` grants."""
    return [
        (action, s)
        for s in statements(policy)
        if s["Effect"] == "Allow"
        for action in as_list(s["Action"])
    ]


@pytest.mark.parametrize("path", [EC2_POLICY, DYNAMODB_POLICY], ids=lambda p: p.name)
def test_parliament_finds_nothing(path: Path) -> None:
    """No finding at any severity: known actions, matching ARNs, known condition keys."""
    assert findings(load_policy(path)) == []


def _mutant(edit: str) -> dict[str, Any]:
    policy: dict[str, Any] = copy.deepcopy(load_policy(EC2_POLICY))
    by_sid = {s["Sid"]: s for s in statements(policy)}
    if edit == "resource-star":
        by_sid["MoveFloatingEni"]["Resource"] = "*"
    elif edit == "instance-missing":
        by_sid["MoveFloatingEni"]["Resource"] = ["arn:aws:ec2:*:*:network-interface/*"]
    elif edit == "misspelled-action":
        by_sid["MoveSecondaryIp"]["Action"] = "ec2:AssignPrivateIpAddress"
    elif edit == "unknown-condition":
        by_sid["MoveElasticIp"]["Condition"] = {"StringLike": {"ec2:ResourceTags/g": "*"}}
    return policy


@pytest.mark.parametrize(
    ("edit", "issue"),
    [
        ("resource-star", "RESOURCE_STAR"),
        ("instance-missing", "RESOURCE_MISMATCH"),
        ("misspelled-action", "UNKNOWN_ACTION"),
        ("unknown-condition", "UNKNOWN_CONDITION_FOR_ACTION"),
    ],
)
def test_parliament_catches_a_planted_mistake(edit: str, issue: str) -> None:
    """The checker bites: each mistake planted in the real policy is reported."""
    assert issue in {i for i, _ in findings(_mutant(edit))}


def test_the_ec2_policy_grants_exactly_the_calls_failover_makes() -> None:
    """Every EC2 call in failover/aws/ec2.py (and ec2_routes.py), every action `validate` DryRuns,
    and no other."""
    operations = {
        xform_name(op): op for op in get_session().get_service_model("ec2").operation_names
    }
    adapter = "".join((REPO / "failover/aws" / f).read_text() for f in ("ec2.py", "ec2_routes.py"))
    called = {
        operations[m]
        for m in re.findall(r"(?:self\._ec2|\bec2)\.(\w+)\b", adapter)
        if m in operations
    }
    checked = set(
        re.findall(r'_dry_run\(\s*"(\w+)"', (REPO / "failover/aws/permissions.py").read_text())
    )
    assert checked  # the DryRuns are still found where the test looks
    assert {f"ec2:{a}" for a in called | checked} == set(EC2_ACTIONS)


@pytest.mark.parametrize("path", [EC2_POLICY, DYNAMODB_POLICY], ids=lambda p: p.name)
def test_no_mutating_action_that_can_be_scoped_is_granted_on_every_resource(path: Path) -> None:
    """Resource "*" only for reads, and only for those AWS cannot scope to a resource."""
    for action, statement in grants(load_policy(path)):
        resources = as_list(statement["Resource"])
        if "*" not in resources:
            continue
        assert privilege(action)["access_level"] in READ_LEVELS, action
        assert resource_types(action) == {}, f"{action} could be scoped to a resource"


@pytest.mark.parametrize("action", sorted(EC2_SCOPE))
def test_each_ec2_mutation_covers_what_aws_authorizes_and_only_tagged_resources(
    action: str,
) -> None:
    """Required resource types granted (else AWS denies every call), nothing beyond EC2_SCOPE,
    and the tag condition is a key of every granted type (else the condition never matches)."""
    ((_, statement),) = [g for g in grants(load_policy(EC2_POLICY)) if g[0] == action]
    assert privilege(action)["access_level"] == "Write"
    kinds = resource_types(action)
    required = {k.rstrip("*") for k in kinds if k.endswith("*")}
    granted = granted_types(action, as_list(statement["Resource"]))
    assert required <= granted == EC2_SCOPE[action]
    assert statement["Condition"] == TAG_CONDITION
    for kind, keys in kinds.items():
        if kind.rstrip("*") in granted:
            assert "aws:ResourceTag/${TagKey}" in keys, (action, kind)


def test_the_ec2_policy_reads_with_describes_only_and_mutates_with_the_scoped_six() -> None:
    """The policy's actions split into the reads on "*" and the six tag-scoped mutations."""
    reads = {a for a in EC2_ACTIONS if privilege(a)["access_level"] in READ_LEVELS}
    assert reads == {
        "ec2:DescribeAddresses",
        "ec2:DescribeInstanceStatus",
        "ec2:DescribeInstances",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeRouteTables",
    }
    assert set(EC2_ACTIONS) - reads == set(EC2_SCOPE)


def test_the_dynamodb_policy_touches_only_the_failover_table() -> None:
    """The store's and the lease's calls, CreateTable & co. apart, all on table/failover only."""
    policy = load_policy(DYNAMODB_POLICY)
    by_sid = {s["Sid"]: set(as_list(s["Action"])) for s in statements(policy)}
    assert by_sid == {
        "LeaseAndJournal": DYNAMODB_RUNTIME,
        "CreateTableForValidate": DYNAMODB_CREATE,
    }
    for action, statement in grants(policy):
        assert as_list(statement["Resource"]) == ["arn:aws:dynamodb:*:*:table/failover"]
        assert granted_types(action, as_list(statement["Resource"])) == {"table"}, action


def test_the_dynamodb_policy_grants_exactly_the_calls_failover_makes() -> None:
    """Every DynamoDB call in failover/aws/dynamodb*.py (the only DynamoDB callers), and no other."""
    adapter = "\n".join(p.read_text() for p in sorted((REPO / "failover/aws").glob("dynamodb*.py")))
    model = get_session().get_service_model("dynamodb")
    operations = {xform_name(op): op for op in model.operation_names}
    called = {
        operations[m] for m in re.findall(r"(?:_client|api)\.(\w+)\b", adapter) if m in operations
    }
    if "table_exists" in adapter:
        called.add("DescribeTable")  # the waiter polls it
    if called & {"TransactWriteItems"}:
        called.remove("TransactWriteItems")
        kinds = re.findall(r'\{"(Put|Update|Delete|ConditionCheck)": \{"TableName"', adapter)
        assert kinds, "cannot tell which writes the transactions make"
        called |= {TRANSACTION_WRITES[k] for k in kinds}
    assert {f"dynamodb:{a}" for a in called} == DYNAMODB_RUNTIME | DYNAMODB_CREATE
