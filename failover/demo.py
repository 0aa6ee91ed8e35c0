"""`failover demo`: the real daemon fails over a real-looking pair, in a sandbox, in under a minute.

An embedded AWS (moto's server behind the strict layer, with AWS-like detach and attach
delays) holds a VPC, a primary and a standby in one AZ and a floating ENI; two tiny
TCP services on loopback play the instances' applications. `failover run` watches
them as a separate process; the demo kills the primary's service, stops its instance,
and shows what the daemon did and how long each part took. No AWS account needed;
nothing leaves 127.0.0.0/8.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

PRIMARY_ADDRESS, STANDBY_ADDRESS = "127.0.0.2", "127.0.0.3"
DETACH_DELAY_S, ATTACH_DELAY_S = 2.0, 1.0
INTERVAL_S, TIMEOUT_S, FALL, RISE = 1.0, 0.5, 3, 2


class TinyService:
    """A TCP service on a loopback address that accepts and closes, until stopped."""

    def __init__(self, host: str, port: int) -> None:
        self._sock = socket.create_server((host, port), reuse_port=False)
        self._sock.settimeout(0.1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._sock.close()


def _say(text: str) -> None:
    print(text, flush=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _sandbox() -> Iterator[tuple[str, Any]]:
    """moto's server on loopback behind the strict layer; yields its URL and an EC2 client."""
    import boto3  # the sandbox extra is only needed by the demo: import here
    from botocore.config import Config

    from failover.sandbox.server import SandboxServer
    from failover.sandbox.strict import StrictLayer

    layer = StrictLayer(detach_delay_s=DETACH_DELAY_S, attach_delay_s=ATTACH_DELAY_S)
    with layer, SandboxServer() as server:
        ec2 = boto3.client(
            "ec2",
            region_name="us-east-1",
            endpoint_url=server.url,
            config=Config(retries={"mode": "standard"}),
        )
        yield server.url, ec2


def _owner(ec2: Any, eni_id: str) -> tuple[str | None, str]:
    att = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni_id])["NetworkInterfaces"][0].get(
        "Attachment"
    )
    return (att["InstanceId"], att["Status"]) if att else (None, "available")


def run_demo(timeout_s: float = 50.0) -> int:
    """Build the sandbox, start the daemon, kill the primary, report. Returns an exit code."""
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "demo",
            "AWS_SECRET_ACCESS_KEY": "demo",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    from failover.sandbox.world import build_world

    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="failover-demo-") as tmp, _sandbox() as (url, ec2):
        world = build_world(ec2, mode="eni", group="demo")
        assert world.eni_id is not None
        standby = world.standbys[0]
        _say(
            f"sandbox AWS at {url} (moto + strict EC2 rules: detach {DETACH_DELAY_S:g}s, attach {ATTACH_DELAY_S:g}s)"
        )
        _say(f"  primary {world.primary} and standby {standby} in {world.az_a}")
        _say(f"  floating ENI {world.eni_id} attached to the primary at device index 1")
        services = {
            world.primary: TinyService(PRIMARY_ADDRESS, port),
            standby: TinyService(STANDBY_ADDRESS, port),
        }
        _say(
            f"  services: primary on {PRIMARY_ADDRESS}:{port}, standby on {STANDBY_ADDRESS}:{port}"
        )
        config = Path(tmp) / "config.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "aws": {"region": "us-east-1", "endpoint_url": url},
                    "state": {"path": str(Path(tmp) / "state.db")},
                    "metrics": {"listen": "127.0.0.1:0"},
                    "defaults": {
                        "interval": f"{int(INTERVAL_S * 1000)}ms",
                        "timeout": f"{int(TIMEOUT_S * 1000)}ms",
                        "fall": FALL,
                        "rise": RISE,
                        "detach_timeout": "10s",
                        "move_timeout": "30s",
                    },
                    "groups": [
                        {
                            "name": "demo",
                            "mode": "eni",
                            "eni": world.eni_id,
                            "device_index": 1,
                            "members": [
                                {"instance": world.primary, "address": PRIMARY_ADDRESS},
                                {"instance": standby, "address": STANDBY_ADDRESS},
                            ],
                            "checks": [{"type": "ec2"}, {"type": "tcp", "port": port}],
                        }
                    ],
                },
                sort_keys=False,
            )
        )
        _say(f"\nstarting the daemon: failover run --config {config}")
        daemon = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "failover",
                "--log-level",
                "info",
                "run",
                "--config",
                str(config),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        relay = threading.Thread(target=_relay, args=(daemon,), daemon=True)
        relay.start()
        try:
            return _drill(
                ec2, world.primary, standby, world.eni_id, services, daemon, config, timeout_s
            )
        finally:
            if daemon.poll() is None:
                daemon.send_signal(signal.SIGTERM)
                try:
                    daemon.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    daemon.kill()
            relay.join(timeout=2)
            for service in services.values():
                service.stop()


def _relay(daemon: subprocess.Popen[str]) -> None:
    assert daemon.stdout is not None
    for line in daemon.stdout:
        _say(f"  daemon | {line.rstrip()}")


def _drill(
    ec2: Any,
    primary: str,
    standby: str,
    eni_id: str,
    services: dict[str, TinyService],
    daemon: subprocess.Popen[str],
    config: Path,
    timeout_s: float,
) -> int:
    # Let the daemon see both members healthy (`rise` passes) before the failure.
    time.sleep(INTERVAL_S * (RISE + 1) + 0.5)
    _say(f"\n>>> killing the primary's service and stopping {primary}")
    killed_wall, killed = time.time(), time.monotonic()
    services[primary].stop()
    ec2.stop_instances(InstanceIds=[primary])
    deadline = killed + timeout_s
    owner, status = _owner(ec2, eni_id)
    while time.monotonic() < deadline and not (owner == standby and status == "attached"):
        if daemon.poll() is not None:
            _say(f"the daemon exited early with {daemon.returncode}")
            return 1
        time.sleep(0.05)
        owner, status = _owner(ec2, eni_id)
    total = time.monotonic() - killed
    daemon.send_signal(signal.SIGTERM)
    daemon.wait(timeout=15)
    history = json.loads(
        subprocess.run(
            [sys.executable, "-m", "failover", "history", "--json", "--config", str(config)],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        or "[]"
    )
    moved = owner == standby and status == "attached"
    _say("")
    _say("what happened")
    if history:
        from datetime import datetime

        move = history[0]
        started = datetime.fromisoformat(move["started_at"].replace("Z", "+00:00")).timestamp()
        steps = {s["step"]: s["elapsed_s"] for s in move["steps"] if s["phase"] == "done"}
        move_s = sum(steps.values())
        _row(
            "detection", f"{started - killed_wall:.1f} s  (fall {FALL} x interval {INTERVAL_S:g} s)"
        )
        _row(
            "move",
            f"{move_s:.1f} s  (detach+wait {steps.get('detach', 0) + steps.get('wait-detached', 0):.1f}, attach+wait {steps.get('attach', 0) + steps.get('wait-attached', 0):.1f})",
        )
    _row("total", f"{total:.1f} s  (service killed -> ENI attached)")
    _row("ENI is now on", f"{owner or 'nobody'} ({'the standby' if moved else status})")
    _say("+----------------------+-------------------------------+")
    _say(
        "demo finished: the daemon moved the ENI to the standby."
        if moved
        else "demo FAILED: the ENI did not move in time."
    )
    return 0 if moved else 1


def _row(label: str, value: str) -> None:
    _say(f"  {label:<15} {value}")
