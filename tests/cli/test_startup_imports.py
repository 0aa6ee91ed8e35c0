"""Start-up: `failover check` and `failover move` load only what they use before their first AWS call.

Each runs as a real process against the sandbox, through a wrapper that records the
modules loaded and the botocore clients built when the first request leaves, and again
at exit. The daemon's scheduler, the metrics server, the DynamoDB backend and (for a
move) the probes and the monitor stay out of the process: importing them is most of what
made a cron check or an on-call move start 3-4 x slower than `import boto3`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from failover.aws.models import EC2_OPERATIONS

from ..conftest import cli_env
from .conftest import Sandbox

# Runs `failover ARGV` in this interpreter; writes what was loaded and built to argv[1].
_WRAPPER = """
import json, sys
import botocore.endpoint, botocore.session

out, argv = sys.argv[1], sys.argv[2:]
seen = {"clients": []}
send = botocore.endpoint.Endpoint._send
create = botocore.session.Session.create_client

def first_send(self, request):
    if "at_first_call" not in seen:
        seen["at_first_call"] = sorted(sys.modules)
        seen["clients_at_first_call"] = list(seen["clients"])
    return send(self, request)

def creating(self, service_name, *args, **kwargs):
    seen["clients"].append(service_name)
    client = create(self, service_name, *args, **kwargs)
    seen.setdefault("operations", {})[service_name] = client.meta.service_model.operation_names
    return client

botocore.endpoint.Endpoint._send = first_send
botocore.session.Session.create_client = creating
from failover.cli import main
code = main(argv)
seen["at_exit"] = sorted(sys.modules)
with open(out, "w") as f:
    json.dump(seen, f)
sys.exit(code)
"""

# Only `failover run` (the daemon) and the DynamoDB backend need these.
NEVER = {
    "apscheduler",
    "prometheus_client",
    "filelock",
    "failover.daemon",
    "failover.ops.metrics",
    "failover.coord.statelock",
    "failover.aws.dynamodb",
    "failover.aws.dynamodb_create",
    "failover.store.dynamodb",
    "failover.store.dynamodb_lease",
}
# Loaded when a command needs them (a wait, a message), never to reach the first call.
NOT_BEFORE_FIRST_CALL = NEVER | {"boto3", "s3transfer", "tenacity"}
# A pass probes after its read of AWS: the probes' event loop loads then.
CHECK_NOT_BEFORE_FIRST_CALL = NOT_BEFORE_FIRST_CALL | {
    "asyncio",
    "failover.probes.runner",
    "failover.probes.command",
}
# A move decides on the store's health and AWS's answers: it probes only when the stored
# verdict is stale, after its reads.
MOVE_NOT_BEFORE_FIRST_CALL = NOT_BEFORE_FIRST_CALL | {
    "asyncio",
    "failover.probes",
    "failover.service.monitor",
}


def _run(sb: Sandbox, *argv: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    out = sb.tmp_path / "loaded.json"
    done = subprocess.run(
        [sys.executable, "-c", _WRAPPER, str(out), *argv],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env=cli_env(),
        check=False,
    )
    return done, json.loads(out.read_text()) if out.exists() else {}


def _loaded(modules: list[str], names: set[str]) -> set[str]:
    """The modules of `names` (or their submodules) among `modules`."""
    return {m for m in modules for n in names if m == n or m.startswith(n + ".")}


def test_check_loads_no_daemon_metrics_or_dynamodb_module_and_builds_only_ec2(
    sandbox: Callable[..., Sandbox],
) -> None:
    """Rule: a cron `failover check` (SQLite state) never loads the daemon, its scheduler,
    the metrics server or the DynamoDB backend, reaches its first AWS call without boto3,
    tenacity or the probes' event loop, and builds only the EC2 client (STS is built on
    first use; a pass asks none), from the model trimmed to failover's operations."""
    sb = sandbox()
    world = sb.world("eip")
    config = sb.config(sb.group(world, "eip"))
    done, seen = _run(sb, "check", "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert sb.eip_owner(world.allocation_id) == world.primary
    assert sb.layer.calls
    assert sb.layer.calls[0].service == "ec2"
    assert _loaded(seen["at_first_call"], CHECK_NOT_BEFORE_FIRST_CALL) == set()
    assert _loaded(seen["at_exit"], NEVER) == set()
    assert seen["clients"] == ["ec2"]
    assert sorted(seen["operations"]["ec2"]) == sorted(EC2_OPERATIONS)
    assert not sb.layer.calls_to("GetCallerIdentity")


def test_move_reaches_its_first_call_without_probes_monitor_or_sts(
    sandbox: Callable[..., Sandbox],
) -> None:
    """Rule: `failover move --yes` reaches its first AWS call with only the EC2 client built
    and without the probes, the monitor, boto3 or the DynamoDB backend; it still moves, and
    never loads the daemon's modules."""
    sb = sandbox()
    world = sb.world("eip")
    config = sb.config(sb.group(world, "eip"))
    done, seen = _run(sb, "move", "g", "--yes", "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert sb.eip_owner(world.allocation_id) == world.standbys[0]
    assert sb.layer.calls[0].service == "ec2"
    assert seen["clients_at_first_call"] == ["ec2"]
    assert _loaded(seen["at_first_call"], MOVE_NOT_BEFORE_FIRST_CALL) == set()
    assert _loaded(seen["at_exit"], NEVER) == set()


def test_the_wrapper_sees_what_the_command_loads(
    sandbox: Callable[..., Sandbox], tmp_path: Path
) -> None:
    """Rule: the wrapper above records modules the command does load (so an empty
    intersection means absent, not unrecorded): a check loads the config and the monitor."""
    sb = sandbox()
    world = sb.world("eip")
    config = sb.config(sb.group(world, "eip"))
    done, seen = _run(sb, "check", "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert {"failover.config", "failover.service.monitor", "pydantic"} <= set(seen["at_exit"])
