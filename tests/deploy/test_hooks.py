"""deploy/hooks/: the after_move examples, run on a fake host whose `curl`, `ip` and `sleep` are stubs.

Each script runs as SSM would run it on the new active member (the README's
`after_move.ssm` line, `{resource}` substituted by failover's own hook runner), with a
PATH holding only the stubs and bash, awk and grep: the scripts can reach no real
network and no real `ip`. The tests assert what the host's interfaces, routes and rules
hold afterwards and which commands changed them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from failover.ops.hooks import Invocation, run_after_move

ROOT = Path(__file__).resolve().parents[2]
HOOKS = ROOT / "deploy" / "hooks"
TOOL = Path(__file__).with_name("fake_host_tool.py")
WAIT_S = 5  # $FAILOVER_HOOK_WAIT_S: how many one-second sleeps a script may take waiting

MAC0, MAC1 = "0a:1b:2c:3d:4e:01", "0a:1b:2c:3d:4e:02"
ENI = "eni-0f1e2d3c4b5a69788"
MACS = "network/interfaces/macs/"


@dataclass
class FakeHost:
    """A member's view of itself: IMDS, links and addresses, as JSON the stubs share."""

    root: Path
    state: dict[str, Any]
    commands: list[list[str]] = field(default_factory=list)

    @property
    def state_path(self) -> Path:
        return self.root / "state.json"

    def env(self) -> dict[str, str]:
        return {
            "PATH": f"{self.root / 'bin'}:{self.root / 'tools'}",
            "FAKE_HOST": str(self.state_path),
            "FAILOVER_HOOK_WAIT_S": str(WAIT_S),
        }

    def run(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        """Run `argv` on the host; afterwards `state` and `commands` are what it left."""
        log = self.root / "log.jsonl"
        log.write_text("")
        self.state_path.write_text(json.dumps({**self.state, "log": str(log)}))
        done = subprocess.run(
            list(argv), capture_output=True, text=True, env=self.env(), timeout=60, check=False
        )
        self.state = json.loads(self.state_path.read_text())
        self.commands = [json.loads(line) for line in log.read_text().splitlines()]
        return done

    def calls(self, prog: str) -> list[list[str]]:
        return [c[1:] for c in self.commands if c[0] == prog]

    def changes(self) -> list[list[str]]:
        """The `ip` commands that add, set or replace something."""
        return [c for c in self.calls("ip") if {"add", "set", "replace"} & set(c)]


@pytest.fixture
def host(tmp_path: Path) -> FakeHost:
    """A standby with eth0 (ens5, MAC0) in 10.0.1.0/24, IMDSv2 only; no hook has run yet."""
    bin_dir, tools = tmp_path / "bin", tmp_path / "tools"
    bin_dir.mkdir()
    tools.mkdir()
    for prog in ("curl", "ip", "sleep"):
        stub = bin_dir / prog
        stub.write_text(f'#!/bin/sh\nexec {sys.executable} {TOOL} {prog} "$@"\n')
        stub.chmod(0o755)
    for tool in ("bash", "awk", "grep"):
        found = shutil.which(tool)
        assert found is not None, tool
        (tools / tool).symlink_to(found)
    state = {
        "tick": 0,
        "imds": {
            MACS: f"{MAC0}/",
            f"{MACS}{MAC0}/local-ipv4s": "10.0.1.10",
            f"{MACS}{MAC0}/interface-id": "eni-0aaaaaaaaaaaaaaa0",
            f"{MACS}{MAC0}/device-number": "0",
            f"{MACS}{MAC0}/subnet-ipv4-cidr-block": "10.0.1.0/24",
        },
        "later": [],
        "links": [["ens5", MAC0]],
        "addrs": {"ens5": ["10.0.1.10/24"]},
    }
    return FakeHost(tmp_path, state)


@dataclass
class HostSsm:
    """The SSM port, delivering to the fake host: AWS-RunShellScript runs the lines with bash."""

    host: FakeHost
    results: dict[str, Invocation] = field(default_factory=dict)

    def send(
        self, instance_id: str, document: str, commands: list[str], timeout_s: float, comment: str
    ) -> str:
        assert document == "AWS-RunShellScript"
        done = self.host.run(["bash", "-c", "\n".join(["set -e", *commands])])
        status = "Success" if done.returncode == 0 else "Failed"
        command_id = f"cmd-{len(self.results)}"
        self.results[command_id] = Invocation(status, done.returncode, done.stdout, done.stderr)
        return command_id

    def invocation(self, command_id: str, instance_id: str) -> Invocation:
        return self.results[command_id]


@dataclass(frozen=True)
class Ssm:
    commands: Sequence[str]
    document: str = "AWS-RunShellScript"


@dataclass(frozen=True)
class Hook:
    ssm: Ssm
    command: Sequence[str] | None = None
    timeout_s: float = 30.0


def after_move(host: FakeHost, line: str, *, resource: str) -> subprocess.CompletedProcess[str]:
    """failover's after_move with `ssm: {commands: [line]}`, delivered to `host`."""
    ssm = HostSsm(host)
    hook = Hook(Ssm([line]))
    result = run_after_move(
        hook, group="g", instance_id="i-0bbbbbbbbbbbbbbbb", resource=resource, address="", ssm=ssm
    )
    (invocation,) = ssm.results.values()
    assert result.ok == (invocation.status == "Success"), result.detail
    return subprocess.CompletedProcess(
        line, invocation.response_code, invocation.stdout, invocation.stderr
    )


@pytest.mark.parametrize("name", ["secondary-ip", "eni-policy-routing"])
def test_hook_scripts_find_their_tools_on_path(name: str) -> None:
    """Rule: the examples call `ip` and `curl` by name, so PATH decides (and the stubs here win)."""
    text = (HOOKS / name).read_text()
    assert [p for p in ("/sbin/ip", "/bin/ip", "/usr/bin/curl") if p in text] == []


def test_secondary_ip_hook_adds_the_moved_ip_where_imds_lists_it(host: FakeHost) -> None:
    """Rule: the moved IP goes on (as /32) the interface whose MAC IMDS lists it under, once IMDS does."""
    host.state["links"].append(["ens6", MAC1])  # another ENI: not where the IP went
    host.state["imds"][MACS] = f"{MAC0}/\n{MAC1}/"
    # its IP starts with the moved one: a prefix match would pick the wrong interface
    host.state["imds"][f"{MACS}{MAC1}/local-ipv4s"] = "10.0.1.50"
    # IMDS shows the assignment two seconds after the move.
    host.state["later"].append(
        {"tick": 2, "imds": {f"{MACS}{MAC0}/local-ipv4s": "10.0.1.10\n10.0.1.5"}}
    )
    done = after_move(host, f"{HOOKS / 'secondary-ip'} {{resource}}", resource="10.0.1.5")
    assert done.returncode == 0, done.stderr
    assert host.changes() == [["addr", "add", "10.0.1.5/32", "dev", "ens5"]]
    assert host.state["addrs"] == {"ens5": ["10.0.1.10/24", "10.0.1.5/32"]}
    assert len(host.calls("sleep")) == 2
    # IMDSv2: a token first, and every read carries it (the stub refuses those that don't).
    assert host.calls("curl")[0][:4] == ["-sSf", "--max-time", "2", "-X"]
    assert "added 10.0.1.5/32 to ens5" in done.stdout

    again = after_move(host, f"{HOOKS / 'secondary-ip'} {{resource}}", resource="10.0.1.5")
    assert again.returncode == 0, again.stderr
    assert host.changes() == []  # idempotent: a rerun (or AL2023's own refresh) changes nothing
    assert "10.0.1.5 is already on ens5" in again.stdout


def test_secondary_ip_hook_with_an_interface_reads_no_metadata(host: FakeHost) -> None:
    """Rule: given the interface, the hook asks IMDS nothing (hosts with IMDS off)."""
    done = host.run([str(HOOKS / "secondary-ip"), "10.0.1.50", "ens5"])
    assert done.returncode == 0, done.stderr
    assert host.calls("curl") == []
    assert host.changes() == [["addr", "add", "10.0.1.50/32", "dev", "ens5"]]


def test_secondary_ip_hook_gives_up_naming_the_ip_when_imds_never_lists_it(
    host: FakeHost,
) -> None:
    """Rule: an IP that never reaches IMDS fails the hook in one line after the wait; nothing changes."""
    done = host.run([str(HOOKS / "secondary-ip"), "10.0.1.50"])
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "failover-secondary-ip: IMDS lists 10.0.1.50 on none of this instance's "
        f"interfaces after {WAIT_S}s"
    ]
    assert host.changes() == []
    assert len(host.calls("sleep")) == WAIT_S


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("secondary-ip", []),
        ("secondary-ip", ["10.0.1"]),
        ("secondary-ip", ["10.0.1.50", "ens5", "extra"]),
        ("eni-policy-routing", []),
        ("eni-policy-routing", ["i-0bbbbbbbbbbbbbbbb"]),
        ("eni-policy-routing", [ENI, "extra"]),
    ],
)
def test_hooks_refuse_bad_arguments_touching_nothing(
    host: FakeHost, name: str, args: list[str]
) -> None:
    """Rule: bad usage is one line and exit 2, before any metadata read or `ip` call."""
    done = host.run([str(HOOKS / name), *args])
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1
    assert done.stderr.startswith("usage: ")
    assert host.commands == []


def hot_attach(host: FakeHost) -> None:
    """ENI at device index 1 (two IPs): in IMDS after one second, in the kernel after two."""
    eni = f"{MACS}{MAC1}/"
    host.state["later"] += [
        {
            "tick": 1,
            "imds": {
                MACS: f"{MAC0}/\n{MAC1}/",
                f"{eni}interface-id": ENI,
                f"{eni}device-number": "1",
                f"{eni}local-ipv4s": "10.0.1.20\n10.0.1.21",
                f"{eni}subnet-ipv4-cidr-block": "10.0.1.0/24",
            },
        },
        {"tick": 2, "links": [["ens6", MAC1]]},
    ]


ENI_ROUTED = [
    ["link", "set", "dev", "ens6", "up"],
    ["addr", "add", "10.0.1.20/24", "dev", "ens6"],
    ["addr", "add", "10.0.1.21/32", "dev", "ens6"],
    ["route", "replace", "10.0.1.0/24", "dev", "ens6", "src", "10.0.1.20", "table", "10001"],
    ["route", "replace", "default", "via", "10.0.1.1", "dev", "ens6", "table", "10001"],
    ["-4", "rule", "add", "from", "10.0.1.20", "table", "10001", "priority", "10001"],
    ["-4", "rule", "add", "from", "10.0.1.21", "table", "10001", "priority", "10001"],
]


def test_eni_hook_routes_a_hot_attached_eni_through_its_own_table(host: FakeHost) -> None:
    """Rule: the ENI's IPs go on its interface, and their replies leave through it (policy routing)."""
    hot_attach(host)
    done = after_move(host, f"{HOOKS / 'eni-policy-routing'} {{resource}}", resource=ENI)
    assert done.returncode == 0, done.stderr
    assert host.changes() == ENI_ROUTED
    assert host.state["addrs"]["ens6"] == ["10.0.1.20/24", "10.0.1.21/32"]
    assert host.state["routes"] == {
        "10001": {"10.0.1.0/24": "dev ens6 src 10.0.1.20", "default": "via 10.0.1.1 dev ens6"}
    }
    assert host.state["rules"] == [
        ["10001", "10.0.1.20", "10001"],
        ["10001", "10.0.1.21", "10001"],
    ]
    assert host.state["addrs"]["ens5"] == ["10.0.1.10/24"]  # eth0 untouched
    assert "ens6 (device index 1)" in done.stdout


def test_eni_hook_run_again_adds_nothing(host: FakeHost) -> None:
    """Rule: a rerun (a failback, a journaled move finished twice) leaves one address and rule per IP."""
    hot_attach(host)
    first = host.run([str(HOOKS / "eni-policy-routing"), ENI])
    assert first.returncode == 0, first.stderr
    before = {k: host.state[k] for k in ("addrs", "routes", "rules")}
    again = host.run([str(HOOKS / "eni-policy-routing"), ENI])
    assert again.returncode == 0, again.stderr
    assert not [c for c in host.changes() if "add" in c]
    assert {k: host.state[k] for k in ("addrs", "routes", "rules")} == before


def test_eni_hook_keeps_an_address_dhcp_already_set(host: FakeHost) -> None:
    """Rule: an address the distribution already configured is not added twice."""
    hot_attach(host)
    host.state["addrs"]["ens6"] = ["10.0.1.20/24"]
    done = host.run([str(HOOKS / "eni-policy-routing"), ENI])
    assert done.returncode == 0, done.stderr
    assert ["addr", "add", "10.0.1.20/24", "dev", "ens6"] not in host.changes()
    assert host.state["addrs"]["ens6"] == ["10.0.1.20/24", "10.0.1.21/32"]


def test_eni_hook_gives_up_naming_the_eni_when_it_never_shows(host: FakeHost) -> None:
    """Rule: an ENI IMDS never shows fails in one line after the wait, with nothing changed."""
    done = host.run([str(HOOKS / "eni-policy-routing"), ENI])
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"failover-eni-policy-routing: IMDS shows {ENI} on none of this instance's "
        f"interfaces after {WAIT_S}s"
    ]
    assert host.changes() == []


def test_eni_hook_leaves_amazon_linux_to_ec2_net_utils(host: FakeHost) -> None:
    """Rule: where amazon-ec2-net-utils runs (AL2023), it configures the ENI: the hook does nothing."""
    hot_attach(host)
    marker = host.root / "bin" / "setup-policy-routes"
    marker.write_text("#!/bin/sh\nexit 99\n")
    marker.chmod(0o755)
    done = host.run([str(HOOKS / "eni-policy-routing"), ENI])
    assert done.returncode == 0, done.stderr
    assert "amazon-ec2-net-utils" in done.stdout
    assert host.commands == []


def test_stubs_refuse_what_the_real_tools_would_do_elsewhere(host: FakeHost) -> None:
    """The fake host itself: IMDS without a token is refused, and unknown `ip` verbs fail."""
    done = host.run(["curl", "-sSf", f"http://169.254.169.254/latest/meta-data/{MACS}"])
    assert done.returncode == 22
    done = host.run(["ip", "route", "flush", "table", "main"])
    assert done.returncode == 255
    assert os.environ.get("FAKE_HOST") is None  # nothing leaked into the test process
