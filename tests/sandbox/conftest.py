"""Fixtures for the strict layer's tests: fake credentials, moto, a layer factory, clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws

from failover.sandbox.strict import StrictLayer

REGION = "us-east-1"
# Zero retries: the tests want to see the raw error EC2 answered.
NO_RETRY = Config(retries={"total_max_attempts": 1, "mode": "standard"})


_sessions: list[boto3.Session] = []


def client(service: str, **options: Any) -> Any:
    """A boto3 client from one shared session: its loader caches the service models (~0.25 s)."""
    if not _sessions:
        _sessions.append(boto3.Session())
    return _sessions[0].client(service, region_name=REGION, **options)  # type: ignore[call-overload]


@pytest.fixture
def moto(aws_env: None) -> Iterator[None]:
    """moto's in-process mock, fresh for each test."""
    with mock_aws():
        yield


@pytest.fixture
def strict(moto: None) -> Iterator[Callable[..., StrictLayer]]:
    """Make and install a StrictLayer with the given options; uninstalled after the test."""
    layers: list[StrictLayer] = []

    def make(**options: Any) -> StrictLayer:
        layer = StrictLayer(**options)
        layer.install()
        layers.append(layer)
        return layer

    yield make
    for layer in layers:
        layer.uninstall()


@pytest.fixture
def ec2(moto: None) -> Any:
    """An EC2 client with botocore's retries off, built after the mock started."""
    return client("ec2", config=NO_RETRY)
