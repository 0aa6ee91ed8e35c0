"""A missing permission names the exact IAM action to grant, in the service it belongs to.

Rule (STYLE: messages a user can act on): "missing IAM permission <service>:<Action> on
<resource>" — the operator copies it into the role's policy. A DynamoDB, SNS or SSM call
denied must not send them looking for an ec2: action.
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from failover.aws.dynamodb import translate_dynamodb
from failover.aws.errors import translate
from failover.core.errors import PermissionDeniedError


def denied(code: str = "AccessDeniedException") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "not authorized"}}, "Op")


@pytest.mark.parametrize(
    ("service", "action", "resource"),
    [
        ("ec2", "AttachNetworkInterface", "eni-0123 -> i-0123"),
        ("sns", "Publish", "arn:aws:sns:us-east-1:123456789012:failover"),
        ("ssm", "SendCommand", "i-0123"),
    ],
)
def test_a_denied_call_names_its_own_service(service: str, action: str, resource: str) -> None:
    error = translate(denied(), action, resource, service)

    assert isinstance(error, PermissionDeniedError)
    assert str(error).startswith(f"missing IAM permission {service}:{action} on {resource} ")


def test_a_denied_dynamodb_call_names_dynamodb_and_the_table() -> None:
    error = translate_dynamodb(denied(), "BatchGetItem", "failover")

    assert str(error).startswith("missing IAM permission dynamodb:BatchGetItem on table failover ")
