"""botocore's data, trimmed to what failover sends, so a command builds its EC2 client fast.

botocore parses the whole EC2 model (6 MB of JSON, 800+ operations) and the endpoint data of
every AWS service (1.2 MB) for each process's first client, and lists its ~400 data
directories twice: ~130 ms of a `failover check` or `failover move` before its first call,
more than the rest of its start-up. failover sends a dozen EC2 operations.

The first client after an install or a botocore upgrade writes trimmed copies to the user's
cache (`$XDG_CACHE_HOME/failover/`, else `~/.cache/failover/`), one directory per botocore
version; every later process reads those (~15 ms). A trimmed copy is botocore's own data
minus the operations and services failover never calls and the documentation strings: the
same shapes, the same endpoint rules and regions. Where the cache cannot be written, or a
profile or `~/.aws/models` supplies its own models, botocore's full data is used unchanged.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore
from botocore.exceptions import BotoCoreError
from botocore.loaders import Loader, create_loader

log = logging.getLogger(__name__)

# The services failover builds clients for (failover/wiring.py).
SERVICES = ("dynamodb", "ec2", "sns", "ssm", "sts")
# Every EC2 operation failover sends, DryRun included (tests/aws/test_models.py finds each
# one named in the code in this list).
EC2_OPERATIONS = (
    "AssignPrivateIpAddresses",
    "AssociateAddress",
    "AttachNetworkInterface",
    "DescribeAddresses",
    "DescribeInstanceStatus",
    "DescribeInstances",
    "DescribeNetworkInterfaces",
    "DescribeRouteTables",
    "DetachNetworkInterface",
    "ModifyNetworkInterfaceAttribute",
    "ReplaceRoute",
)
# Bumped when what is written changes, so an old copy is never read as a new one.
_FORMAT = 1


def loader(data_path: str | None) -> Loader:
    """The loader for every client of the process: on the trimmed copies when they can be had.

    `data_path`: the profile's or AWS_DATA_PATH's model directories, if any.
    """
    if data_path is not None or _own_models():
        # The operator's models take precedence; trimmed copies of botocore's would hide them.
        return create_loader(data_path)
    root = _trimmed_root()
    return _Trimmed(root) if root is not None else create_loader(None)


def _own_models() -> bool:
    """Whether ~/.aws/models holds data for a service failover uses, or endpoint data."""
    own = Path(Loader.CUSTOMER_DATA_PATH)
    return any((own / name).exists() for name in (*SERVICES, "endpoints.json"))


class _Trimmed(Loader):
    """botocore's loader reading the trimmed copies first, and knowing failover's services
    without listing every data directory botocore ships."""

    def __init__(self, root: Path) -> None:
        super().__init__(extra_search_paths=[str(root)])
        self._root = str(root)

    def list_available_services(self, type_name: str) -> list[str]:
        return list(SERVICES)

    def is_builtin_path(self, path: str) -> bool:
        # The copies are botocore's bundled data: endpoints resolve as they would from it
        # (botocore treats endpoint data from elsewhere as an operator's override).
        return bool(super().is_builtin_path(path)) or path.startswith(self._root)


def _cache_home() -> Path | None:
    if xdg := os.environ.get("XDG_CACHE_HOME"):
        return Path(xdg)
    try:
        return Path.home() / ".cache"
    except RuntimeError:  # no HOME and no passwd entry
        return None


def _trimmed_root() -> Path | None:
    """The directory of trimmed copies for this botocore, written now if missing; None when
    it cannot be had (no usable cache directory, or botocore lacks an operation)."""
    home = _cache_home()
    if home is None:
        return None
    key = hashlib.sha256(repr((_FORMAT, SERVICES, EC2_OPERATIONS)).encode()).hexdigest()[:12]
    root = home / "failover" / f"botocore-{botocore.__version__}-{key}"
    if root.is_dir():
        return root
    try:
        _write(root)
    except (OSError, ValueError, KeyError, BotoCoreError) as exc:
        log.debug("botocore's full data is used: cannot write trimmed copies to %s: %s", root, exc)
        return None
    return root


def _write(root: Path) -> None:
    """Write the trimmed copies into `root` whole, or not at all (another process may race)."""
    root.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    full = Loader(include_default_search_paths=False, extra_search_paths=[Loader.BUILTIN_DATA_PATH])
    version = full.determine_latest_version("ec2", "service-2")
    staging = Path(tempfile.mkdtemp(prefix=".writing-", dir=root.parent))
    try:
        model = trim_ec2(full.load_service_model("ec2", "service-2", version))
        _dump(staging / "ec2" / version / "service-2.json", model)
        _dump(staging / "endpoints.json", trim_endpoints(full.load_data("endpoints")))
        try:
            staging.rename(root)
        except OSError:
            if not root.is_dir():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _dump(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, separators=(",", ":")), encoding="utf-8")


def trim_ec2(model: dict[str, Any]) -> dict[str, Any]:
    """The EC2 model with only failover's operations and the shapes they reach."""
    missing = [op for op in EC2_OPERATIONS if op not in model["operations"]]
    if missing:
        raise KeyError(f"botocore's EC2 model lacks {', '.join(missing)}")
    operations = {op: _undocumented(model["operations"][op]) for op in EC2_OPERATIONS}
    shapes = model["shapes"]
    kept: dict[str, Any] = {}
    todo = [
        ref["shape"]
        for op in operations.values()
        for ref in [op.get("input"), op.get("output"), *op.get("errors", [])]
        if ref is not None
    ]
    while todo:
        name = todo.pop()
        if name in kept:
            continue
        kept[name] = _undocumented(shapes[name])
        todo.extend(_referenced(kept[name]))
    rest = {k: v for k, v in model.items() if k not in ("operations", "shapes", "documentation")}
    return {**rest, "operations": operations, "shapes": kept}


def _referenced(shape: dict[str, Any]) -> Iterator[str]:
    for key in ("member", "key", "value"):
        if key in shape:
            yield shape[key]["shape"]
    for member in shape.get("members", {}).values():
        yield member["shape"]


def _undocumented(node: Any) -> Any:
    """`node` without its documentation strings (a member named `documentation` stays)."""
    if isinstance(node, dict):
        return {
            k: _undocumented(v)
            for k, v in node.items()
            if not (k in ("documentation", "documentationUrl") and isinstance(v, str))
        }
    if isinstance(node, list):
        return [_undocumented(v) for v in node]
    return node


def trim_endpoints(endpoints: dict[str, Any]) -> dict[str, Any]:
    """The endpoint data of every partition, for failover's services only."""
    partitions = [
        {**p, "services": {s: v for s, v in p.get("services", {}).items() if s in SERVICES}}
        for p in endpoints["partitions"]
    ]
    return {**endpoints, "partitions": partitions}
