"""The scale bench's AWS and services, in their own process: moto's server, a world, loopback listeners.

`python -m bench._scale_server MEMBERS DIR` builds MEMBERS instances (pairs: a primary
holding an Elastic IP and a standby) straight into moto's EC2 backend (the API would
take minutes: moto serializes ~3 ms per instance), starts moto's server behind a
StrictLayer that logs every call, and 8 loopback TCP listeners the members' probes
share. It writes DIR/world.json, prints `ready`, then answers commands on stdin:

  warm CONFIG   read every group of CONFIG once through the real adapter (see below)
  dump PATH     write the call log as JSON lines (action, at, error) to PATH
  quit

moto's XML serializer, not EC2, dominates a Describe of 200 instances (~0.7 s), so
the layer here memoizes Describe answers by their parameters: the world does not
change during the bench, the first answer is moto's own, later ones are replayed
(and still logged). `warm` pays moto's cost once before the daemon is timed.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench.harness import REGION, Listener, fake_aws_env, free_port

HOSTS = tuple(f"127.0.1.{k}" for k in range(1, 9))


def _memo_layer() -> Any:
    from failover.sandbox.strict import StrictLayer, _params_of

    class MemoLayer(StrictLayer):
        """A StrictLayer that replays Describe answers: the world is static while it runs."""

        def __init__(self) -> None:
            super().__init__()
            self._memo: dict[str, Any] = {}
            self._memo_lock = threading.Lock()

        def dispatch(self, response: Any, original: Any) -> Any:
            action = str(response._get_action() or "")
            if str(response.service_name or "") != "ec2" or not action.startswith("Describe"):
                return super().dispatch(response, original)
            at = self.clock()
            params = _params_of(response)
            key = action + json.dumps(params, sort_keys=True, default=str)
            with self._memo_lock:
                hit = self._memo.get(key)
            if hit is None:
                hit = super().dispatch(response, original)
                with self._memo_lock:
                    self._memo[key] = hit
                return hit
            status, headers, body = hit
            result = (status, dict(headers), body)
            self._record("ec2", action, params, at, at, result)
            return result

    return MemoLayer()


def build(members: int) -> list[tuple[str, str, str]]:
    """`members` / 2 pairs in one subnet, straight into moto's backend: (primary, standby, alloc)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ec2.models import ec2_backends

    backend = ec2_backends[DEFAULT_ACCOUNT_ID][REGION]
    vpc = backend.create_vpc("10.0.0.0/16")
    subnet = backend.create_subnet(vpc.id, "10.0.0.0/17", availability_zone=f"{REGION}a")
    kwargs = {
        "instance_type": "t3.large",
        "is_instance_type_default": False,
        "placement": None,
        "region_name": REGION,
        "subnet_id": subnet.id,
        "security_group_ids": [],
        "nics": [],
        "tags": {},
    }
    pairs = members // 2
    instances: list[Any] = []
    while len(instances) < 2 * pairs:
        count = min(1000, 2 * pairs - len(instances))
        instances += backend.run_instances("ami-12c6146b", count, None, [], **kwargs).instances
    out = []
    for k in range(pairs):
        primary, standby = instances[2 * k], instances[2 * k + 1]
        eip = backend.allocate_address("vpc")
        backend.associate_address(eni=primary.nics[0], allocation_id=eip.allocation_id)
        out.append((primary.id, standby.id, eip.allocation_id))
    return out


def warm(url: str, config: Path) -> float:
    """One batched read of every group, through the adapter the daemon uses: same requests."""
    import boto3

    from failover.aws.ec2 import Ec2Cloud
    from failover.config import load

    settings = load(config)
    cloud = Ec2Cloud(boto3.client("ec2", region_name=REGION, endpoint_url=url))
    start = time.monotonic()
    cloud.observe_pass(settings.groups)
    return time.monotonic() - start


def main(members: int, out: Path) -> None:
    fake_aws_env()
    from failover.sandbox.server import SandboxServer

    layer = _memo_layer()
    layer.install()
    started = time.monotonic()
    pairs = build(members)
    build_s = time.monotonic() - started
    port = free_port(HOSTS[0])
    listeners = [Listener(h, port, backlog=4096).start() for h in HOSTS]
    with SandboxServer() as server:
        (out / "world.json").write_text(
            json.dumps(
                {
                    "url": server.url,
                    "port": port,
                    "hosts": HOSTS,
                    "pairs": pairs,
                    "build_s": build_s,
                }
            )
        )
        print("ready", flush=True)
        for line in sys.stdin:
            command, _, arg = line.strip().partition(" ")
            if command == "warm":
                try:
                    print(f"warmed {warm(server.url, Path(arg)):.3f}", flush=True)
                except Exception as exc:  # the bench's process says why, rather than hang
                    print(f"error {type(exc).__name__}: {exc}", flush=True)
            elif command == "dump":
                with open(arg, "w") as fh:
                    for c in list(layer.calls):
                        fh.write(
                            json.dumps({"action": c.action, "at": c.at, "error": c.error}) + "\n"
                        )
                print("dumped", flush=True)
            elif command == "quit":
                break
    for listener in listeners:
        listener.stop()
    layer.uninstall()


if __name__ == "__main__":
    main(int(sys.argv[1]), Path(sys.argv[2]))
