"""botocore's data trimmed to what failover sends (failover/aws/models.py).

Rules defended: every EC2 operation the code sends is in the trimmed model, with botocore's
own shapes; endpoints resolve exactly as from botocore's bundled data; the copies are
written once and then read; an operator's own models, or a cache that cannot be written,
leave botocore's full data in use.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import botocore
import botocore.session
import pytest
from botocore.config import Config
from botocore.loaders import Loader

from failover.aws import clients, models
from failover.config import AwsSettings

PACKAGE = Path(models.__file__).resolve().parents[1]
# Files that name EC2 operations without sending them: AWS's throttling buckets, the sandbox
# (moto's side) and the demo's own boto3 client.
NOT_SENDERS = {"aws/pacing.py", "demo.py"}


def _full() -> dict[str, Any]:
    loader = Loader(
        include_default_search_paths=False, extra_search_paths=[Loader.BUILTIN_DATA_PATH]
    )
    model: dict[str, Any] = loader.load_service_model("ec2", "service-2")
    return model


def _sources() -> str:
    texts = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith("sandbox/") or rel in NOT_SENDERS:
            continue
        texts.append(path.read_text())
    return "\n".join(texts)


def test_every_ec2_operation_the_code_names_is_kept_and_every_kept_one_is_sent() -> None:
    """Rule: a call the trimmed model lacks would fail at 3 a.m. with an AttributeError; the
    list is the code's, found by the operation's method name or its quoted action name."""
    source = _sources()
    named = {
        op
        for op in _full()["operations"]
        if re.search(rf"\.{botocore.xform_name(op)}\b", source) or f'"{op}"' in source
    }
    assert named == set(models.EC2_OPERATIONS)


def _walk(shapes: dict[str, Any], name: str, seen: set[str]) -> None:
    if name in seen:
        return
    seen.add(name)
    shape = shapes[name]
    for key in ("member", "key", "value"):
        if key in shape:
            _walk(shapes, shape[key]["shape"], seen)
    for member in shape.get("members", {}).values():
        _walk(shapes, member["shape"], seen)


def test_the_trimmed_model_has_botocore_s_shapes_for_each_kept_operation() -> None:
    """Rule: trimming drops operations and documentation, never a field or a constraint."""
    full = _full()
    trimmed = models.trim_ec2(full)
    assert set(trimmed["operations"]) == set(models.EC2_OPERATIONS)
    assert trimmed["metadata"] == full["metadata"]
    reached: set[str] = set()
    for op in models.EC2_OPERATIONS:
        for ref in ("input", "output"):
            if ref in full["operations"][op]:
                _walk(full["shapes"], full["operations"][op][ref]["shape"], reached)
    assert set(trimmed["shapes"]) >= reached
    for name in reached:
        assert trimmed["shapes"][name] == models._undocumented(full["shapes"][name])
    describe = trimmed["shapes"]["DescribeInstancesRequest"]["members"]
    assert {"Filters", "InstanceIds", "MaxResults", "NextToken", "DryRun"} <= set(describe)
    assert "documentation" not in trimmed["operations"]["DescribeInstances"]


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(Loader, "CUSTOMER_DATA_PATH", str(tmp_path / "no-models"))
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "x"}.items():
        monkeypatch.setenv(name, value)
    return tmp_path / "cache"


def _client(loader: Loader, service: str, region: str, **config: Any) -> Any:
    session = botocore.session.Session()
    session.register_component("data_loader", loader)
    return session.create_client(service, region_name=region, config=Config(**config))


@pytest.mark.parametrize(
    ("region", "config"),
    [
        ("us-east-1", {}),
        ("eu-west-3", {}),
        ("us-gov-west-1", {}),
        ("cn-north-1", {}),
        ("us-east-1", {"use_fips_endpoint": True}),
        ("us-west-2", {"use_dualstack_endpoint": True}),
    ],
)
def test_endpoints_resolve_as_from_botocore_s_own_data(
    cache: Path, region: str, config: dict[str, Any]
) -> None:
    """Rule: the trimmed endpoint data is botocore's bundled data for failover's services;
    botocore must not take it for an operator's override (which changes how it resolves)."""
    trimmed = models.loader(None)
    assert isinstance(trimmed, models._Trimmed)
    _, path = trimmed.load_data_with_path("endpoints")
    assert path.startswith(str(cache))
    assert trimmed.is_builtin_path(path)
    for service in models.SERVICES:
        ours = _client(trimmed, service, region, **config)
        theirs = _client(Loader(), service, region, **config)
        assert ours.meta.endpoint_url == theirs.meta.endpoint_url, service


def test_copies_are_written_once_then_read(cache: Path) -> None:
    """Rule: the first process after an install writes the copies; later ones only read."""
    first = models.loader(None)
    written = sorted(p.relative_to(cache) for p in cache.rglob("*.json"))
    assert [p.name for p in written] == ["service-2.json", "endpoints.json"]
    stamps = {p: p.stat().st_mtime_ns for p in cache.rglob("*.json")}
    second = models.loader(None)
    assert {p: p.stat().st_mtime_ns for p in cache.rglob("*.json")} == stamps
    for loader in (first, second):
        _, path = loader.load_data_with_path("ec2/2016-11-15/service-2")
        assert path.startswith(str(cache))
        ec2 = _client(loader, "ec2", "us-east-1")
        assert sorted(ec2.meta.service_model.operation_names) == sorted(models.EC2_OPERATIONS)
        assert hasattr(ec2, "describe_instances")
        assert not hasattr(ec2, "run_instances")
    leftovers = [p for p in (cache / "failover").iterdir() if p.name.startswith(".writing-")]
    assert leftovers == []


def test_a_cache_that_cannot_be_written_leaves_botocore_s_full_data(cache: Path) -> None:
    """Rule: no cache is no failure: the client is built from botocore's own data."""
    cache.parent.mkdir(exist_ok=True)
    cache.write_text("a file where the cache directory would be")
    loader = models.loader(None)
    assert not isinstance(loader, models._Trimmed)
    ec2 = _client(loader, "ec2", "us-east-1")
    assert "RunInstances" in ec2.meta.service_model.operation_names


def test_an_operator_s_own_models_are_never_shadowed(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rule: ~/.aws/models or a profile's data_path holding EC2 data is read as botocore
    reads it; the trimmed copies would hide it."""
    own = tmp_path / "own-models"
    (own / "ec2").mkdir(parents=True)
    monkeypatch.setattr(Loader, "CUSTOMER_DATA_PATH", str(own))
    assert not isinstance(models.loader(None), models._Trimmed)
    monkeypatch.setattr(Loader, "CUSTOMER_DATA_PATH", str(tmp_path / "no-models"))
    assert isinstance(models.loader(None), models._Trimmed)
    by_profile = models.loader(str(own))
    assert not isinstance(by_profile, models._Trimmed)
    assert str(own) in by_profile.search_paths


def test_two_processes_racing_to_write_the_copies_both_get_them(cache: Path) -> None:
    """Rule: a copy another process finished first is used, not an error (cron and an
    operator's move on a new host start together)."""
    root = models._trimmed_root()
    assert root is not None
    staged = root.parent / "other"
    os.rename(root, staged)
    models._write(root)  # this process writes while "the other" has not finished
    os.rename(root, root.parent / "mine")
    os.rename(staged, root)
    models._write(root)  # the other finished first: ours is thrown away, no error
    assert (root / "endpoints.json").is_file()


STAGES = (
    "provide-client-params",
    "before-parameter-build",
    "before-endpoint-resolution",
    "before-call",
    "request-created",
    "choose-signer",
    "before-sign",
    "needs-retry",
    "after-call",
    "after-call-error",
)


def _handlers(session: botocore.session.Session, event: str) -> list[Any]:
    """The handlers `event` calls, in order (botocore's emitter, unwrapped from its aliaser)."""
    emitter = session.get_component("event_emitter")._emitter
    return list(emitter._handlers.prefix_search(event))


def test_every_botocore_handler_that_can_fire_for_failover_s_clients_is_registered() -> None:
    """Rule: registering only the handlers of failover's services changes nothing a client
    of those services does: every event any of their operations emits calls exactly the
    handlers botocore's own session would, in the same order."""
    ours = clients._session(AwsSettings(region="us-east-1"))
    theirs = botocore.session.Session()
    loader = Loader()
    checked = 0
    for service in models.SERVICES:
        model = loader.load_service_model(service, "service-2")
        service_id = model["metadata"]["serviceId"].lower().replace(" ", "-")
        events = [f"creating-client-class.{service_id}", "choose-service-name"]
        events += [f"service-data-loaded.{service_id}"]
        for op in model["operations"]:
            events += [f"{stage}.{service_id}.{op}" for stage in STAGES]
        for event in events:
            assert _handlers(ours, event) == _handlers(theirs, event), event
            checked += 1
    assert checked > 1000
    assert len(_handlers(ours, "before-parameter-build.s3.PutObject")) < len(
        _handlers(theirs, "before-parameter-build.s3.PutObject")
    )
