"""Botocore errors translated, once, into failover's own error tree.

Nothing above failover/aws sees a ClientError. The split between transient and
permanent codes decides what tenacity retries: a transient code means the state
is converging or AWS is busy; a permanent one means retrying cannot help.
"""

from __future__ import annotations

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from failover.aws.bounds import DeadlineReached
from failover.core.errors import (
    CloudError,
    PermanentCloudError,
    PermissionDeniedError,
    TransientCloudError,
)

# Throttling and 5xx that botocore's own retries did not absorb, and states still converging.
TRANSIENT_CODES = frozenset(
    {
        "RequestLimitExceeded",
        "Throttling",
        "ThrottlingException",
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "Unavailable",
        "IncorrectState",
        "RequestTimeout",
        "RequestExpired",
    }
)
# AWS says UnauthorizedOperation; moto's IAM emulation says AccessDenied.
PERMISSION_CODES = frozenset({"UnauthorizedOperation", "AccessDenied", "AccessDeniedException"})

# The code of an error botocore raised without an answer from AWS (timeouts, refused connections).
UNREACHABLE = "NetworkError"


def error_code(exc: ClientError) -> str:
    """The AWS error code of a ClientError ("" when the body had none)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def translate(exc: Exception, action: str, resource: str = "", service: str = "ec2") -> CloudError:
    """Map a botocore exception raised by `service`'s `action` on `resource` to a CloudError."""
    if isinstance(exc, ClientError):
        code = error_code(exc)
        message = str(exc.response.get("Error", {}).get("Message", "")) or str(exc)
        if code in PERMISSION_CODES:
            return PermissionDeniedError(action, code, message, resource, service)
        if code in TRANSIENT_CODES:
            return TransientCloudError(action, code, message, resource)
        return PermanentCloudError(action, code, message, resource)
    if isinstance(exc, DeadlineReached):
        return TransientCloudError(action, exc.code, str(exc), resource)
    if isinstance(exc, NoCredentialsError):
        return PermanentCloudError(
            action, "NoCredentials", "no AWS credentials found (boto3 credential chain)", resource
        )
    if isinstance(exc, EndpointConnectionError | ConnectionError | ReadTimeoutError):
        return TransientCloudError(action, UNREACHABLE, str(exc), resource)
    if isinstance(exc, BotoCoreError):
        return PermanentCloudError(action, type(exc).__name__, str(exc), resource)
    raise exc
