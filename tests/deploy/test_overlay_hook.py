"""deploy/hooks/overlay-ip: the `route` after_move example, run against a stubbed `ip`.

The stub keeps the host's addresses in a JSON file and logs every call, so nothing touches
the real network. The last test runs it as a real `after_move` command of a route move
(`failover check` against moto's server), with `{resource}` replaced by the group's cidr.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ..conftest import run_cli
from .conftest import Sandbox

ROOT = Path(__file__).resolve().parents[2]
HOOK = ROOT / "deploy" / "hooks" / "overlay-ip"
CIDR = "198.18.0.10/32"

_FAKE_IP = """
import json, os, sys
state_path = os.environ["FAKE_HOST"]
state = json.load(open(state_path))
args = sys.argv[1:]
with open(state["log"], "a") as log:
    log.write(json.dumps(args) + "\\n")
addrs = state["addrs"]
if args[:4] == ["-o", "-4", "addr", "show"] and args[4:5] == ["dev"]:
    dev = args[5]
    if dev not in addrs:
        print(f'Device "{dev}" does not exist.', file=sys.stderr)
        sys.exit(1)
    for n, cidr in enumerate(addrs[dev], 1):
        print(f"{n}: {dev}    inet {cidr} scope global {dev}\\\\       valid_lft forever")
    sys.exit(0)
if args[:2] == ["addr", "add"] and args[3:4] == ["dev"] and args[4] in addrs:
    if args[2] in addrs[args[4]]:
        print("RTNETLINK answers: File exists", file=sys.stderr)
        sys.exit(2)
    addrs[args[4]].append(args[2])
    json.dump(state, open(state_path, "w"))
    sys.exit(0)
print(f"ip: the fake host does not know `ip {' '.join(args)}`", file=sys.stderr)
sys.exit(255)
"""


class FakeHost:
    """A directory with a stub `ip` on PATH and the host's addresses in a JSON file."""

    def __init__(self, root: Path) -> None:
        self.bin = root / "bin"
        self.bin.mkdir()
        ip = self.bin / "ip"
        ip.write_text(f"#!{sys.executable}\n{_FAKE_IP}")
        ip.chmod(0o755)
        self.state = root / "host.json"
        self.log = root / "ip.log"
        self.log.write_text("")
        self.write({"lo": ["127.0.0.1/8"], "eth0": ["10.0.0.5/24"]})

    def write(self, addrs: dict[str, list[str]]) -> None:
        self.state.write_text(json.dumps({"addrs": addrs, "log": str(self.log)}))

    def addrs(self) -> dict[str, list[str]]:
        state: dict[str, Any] = json.loads(self.state.read_text())
        return dict(state["addrs"])

    def calls(self) -> list[list[str]]:
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def env(self) -> dict[str, str]:
        return {"PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}", "FAKE_HOST": str(self.state)}

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(HOOK), *args],
            capture_output=True,
            text=True,
            timeout=30,
            env={**os.environ, **self.env()},
            check=False,
        )


@pytest.fixture
def host(tmp_path: Path) -> FakeHost:
    return FakeHost(tmp_path)


def test_the_overlay_address_goes_on_lo(host: FakeHost) -> None:
    """The new active member holds the overlay address (on lo by default), so it answers for it."""
    done = host.run(CIDR)
    assert done.returncode == 0, done.stderr
    assert host.addrs()["lo"] == ["127.0.0.1/8", CIDR]
    assert ["addr", "add", CIDR, "dev", "lo"] in host.calls()
    assert f"added {CIDR} to lo" in done.stdout


def test_running_it_again_changes_nothing(host: FakeHost) -> None:
    """Idempotent: an address already there is left alone, exit 0 (every member has it at boot)."""
    assert host.run(CIDR).returncode == 0
    again = host.run(CIDR)
    assert again.returncode == 0, again.stderr
    assert "already on lo" in again.stdout
    assert host.addrs()["lo"] == ["127.0.0.1/8", CIDR]
    assert [c for c in host.calls() if c[:2] == ["addr", "add"]] == [
        ["addr", "add", CIDR, "dev", "lo"]
    ]


def test_an_interface_can_be_named(host: FakeHost) -> None:
    """As aws-vpc-move-ip does, the address may go on eth0 instead."""
    assert host.run(CIDR, "eth0").returncode == 0
    assert host.addrs()["eth0"] == ["10.0.0.5/24", CIDR]


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        pytest.param((), 2, "usage:", id="no-args"),
        pytest.param(("198.18.0.10",), 2, "not an IPv4 CIDR", id="no-prefix"),
        pytest.param(("198.18.0.300/32",), 2, "not an IPv4 CIDR", id="bad-octet"),
        pytest.param(("198.18.0.10/33",), 2, "not an IPv4 CIDR", id="bad-prefix"),
        pytest.param((CIDR, "eth9"), 1, "no interface eth9", id="no-such-interface"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(
    host: FakeHost, args: tuple[str, ...], code: int, says: str
) -> None:
    before = host.addrs()
    done = host.run(*args)
    assert done.returncode == code
    assert says in done.stderr
    assert host.addrs() == before
    assert not [c for c in host.calls() if c[:2] == ["addr", "add"]]


def test_a_route_move_runs_it_as_after_move_with_the_groups_cidr(
    sandbox: Callable[..., Sandbox], host: FakeHost
) -> None:
    """`after_move` of a route group: `{resource}` is the cidr; the hook runs once the
    failover of a dead primary (one `check`) is done."""
    sb = sandbox()
    world = sb.world("route", cross_az=True)
    assert world.cidr is not None
    hook = {"command": [str(HOOK), "{resource}"]}
    checks = [{"type": "ec2"}]
    config = sb.config(sb.group(world, "route", after_move=hook, checks=checks, fall=1, rise=1))
    sb.ec2.stop_instances(InstanceIds=[world.primary])
    done = run_cli("check", "--config", str(config), env=host.env())
    assert done.returncode == 0, done.stdout + done.stderr
    assert host.addrs()["lo"] == ["127.0.0.1/8", world.cidr]
    eth0 = sb.eth0(world.standbys[0])
    assert set(sb.routes(world).values()) == {(eth0, "active")}
