"""Build the boto3 clients failover uses, from the config; called by the CLI only."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, NoRegionError, ProfileNotFound

from failover.core.errors import ConfigError

if TYPE_CHECKING:
    from failover.config import AwsSettings


# One attempt of a call: connecting, then waiting for the answer. A move ends at most one
# attempt after its move_timeout (failover/aws/bounds.py).
CONNECT_TIMEOUT_S = 3
READ_TIMEOUT_S = 10


def make_client(aws: AwsSettings, service: str) -> Any:
    """A client for `service` with botocore's retry mode from the config and short timeouts.

    Botocore's retries absorb throttling per call (standard or adaptive mode); the
    timeouts keep a dead endpoint from eating the move's whole deadline on one call.
    """
    config = Config(
        retries={"mode": aws.retry_mode, "max_attempts": aws.max_attempts},
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
    )
    try:
        session = boto3.session.Session(profile_name=aws.profile, region_name=aws.region)
        make: Any = session.client  # one builder for every service; callers know the type
        return make(service, endpoint_url=aws.endpoint_url, config=config)
    except NoRegionError:
        raise ConfigError("aws.region is not set (in the config, or AWS_DEFAULT_REGION)") from None
    except ProfileNotFound:
        raise ConfigError(f"aws.profile {aws.profile!r} is not in the AWS config files") from None
    except BotoCoreError as exc:
        raise ConfigError(f"cannot build the {service} client: {exc}") from None
