"""Malformed configs and bad usage through the real CLI: exit 2, one line, no traceback, no AWS call.

Every config points its endpoint at the sandbox server, so a call that slipped out before
validation would show in the strict layer's log.
"""

from __future__ import annotations

import copy
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from ..conftest import REGION, run_cli
from .conftest import Sandbox

SandboxFactory = Callable[..., Sandbox]

PRIMARY, STANDBY = "i-0aaaaaaaaaaaaaaaa", "i-0bbbbbbbbbbbbbbbb"
ENI = "eni-0123456789abcdef0"
EIP = "eipalloc-0123456789abcdef0"


def valid_document(url: str, state: Path) -> dict[str, Any]:
    """A config that loads: the base every malformed case breaks in one place."""
    return {
        "aws": {"region": REGION, "endpoint_url": url},
        "state": {"path": str(state)},
        "defaults": {"detach_timeout": "5s", "move_timeout": "30s"},
        "groups": [
            {
                "name": "g",
                "mode": "eni",
                "eni": ENI,
                "device_index": 1,
                "members": [PRIMARY, STANDBY],
            }
        ],
    }


def group(doc: dict[str, Any]) -> dict[str, Any]:
    first: dict[str, Any] = doc["groups"][0]
    return first


def _unknown_top(doc: dict[str, Any]) -> None:
    doc["alerts"] = {"email": "ops@example.com"}


def _unknown_group_key(doc: dict[str, Any]) -> None:
    group(doc)["devce_index"] = 1


def _bad_eni(doc: dict[str, Any]) -> None:
    group(doc)["eni"] = "eni-xyz"


def _bad_instance(doc: dict[str, Any]) -> None:
    group(doc)["members"] = [PRIMARY, "i-123"]


def _bad_allocation(doc: dict[str, Any]) -> None:
    doc["groups"][0] = {
        "name": "g",
        "mode": "eip",
        "eip": "eipalloc-nothex!",
        "members": [PRIMARY, STANDBY],
    }


def _duplicate_group(doc: dict[str, Any]) -> None:
    other = copy.deepcopy(group(doc))
    other.update(mode="eip", eip=EIP)
    del other["eni"], other["device_index"]
    doc["groups"].append(other)


def _one_member(doc: dict[str, Any]) -> None:
    group(doc)["members"] = [PRIMARY]


def _device_index_0(doc: dict[str, Any]) -> None:
    group(doc)["device_index"] = 0


def _bad_duration(doc: dict[str, Any]) -> None:
    doc["defaults"]["cooldown"] = "5 minutes"


def _endless_interval(doc: dict[str, Any]) -> None:
    doc["defaults"]["interval"] = "99999999999999999999h"


def _huge_device_index(doc: dict[str, Any]) -> None:
    group(doc)["device_index"] = 1_099_511_627_776


def _unknown_mode(doc: dict[str, Any]) -> None:
    group(doc)["mode"] = "floating-ip"


def _detach_not_shorter(doc: dict[str, Any]) -> None:
    doc["defaults"].update(detach_timeout="60s", move_timeout="30s")


def _bad_check(doc: dict[str, Any]) -> None:
    group(doc)["checks"] = [{"type": "icmp"}]


def _shared_resource(doc: dict[str, Any]) -> None:
    other = copy.deepcopy(group(doc))
    other["name"] = "h"
    doc["groups"].append(other)


# (id, how the valid document is broken, words the one error line must contain)
DOCUMENT_CASES = [
    ("unknown-top-level-key", _unknown_top, ["alerts", "unknown key"]),
    ("unknown-group-key", _unknown_group_key, ["groups[0].devce_index", "unknown key"]),
    ("bad-eni-id", _bad_eni, ["groups[0].eni", "eni-xyz"]),
    ("bad-instance-id", _bad_instance, ["groups[0].members[1]", "i-123"]),
    ("bad-allocation-id", _bad_allocation, ["groups[0].eip", "eipalloc-nothex!"]),
    ("duplicate-group-name", _duplicate_group, ["groups[1].name", "already"]),
    ("one-member", _one_member, ["groups[0].members", "at least two members"]),
    ("device-index-0", _device_index_0, ["groups[0].device_index", "eth0"]),
    ("bad-duration", _bad_duration, ["defaults.cooldown", "5 minutes"]),
    ("endless-interval", _endless_interval, ["defaults.interval", "longer than the 24h maximum"]),
    ("huge-device-index", _huge_device_index, ["groups[0].device_index", "at most 127"]),
    ("unknown-mode", _unknown_mode, ["groups[0].mode", "floating-ip"]),
    ("detach-timeout-not-shorter", _detach_not_shorter, ["detach_timeout", "move_timeout"]),
    ("unknown-check-type", _bad_check, ["groups[0].checks[0]", "icmp"]),
    ("resource-in-two-groups", _shared_resource, ["groups[1].eni", "already belongs"]),
]

# (id, raw file text, words the one error line must contain)
TEXT_CASES = [
    ("yaml-syntax-error", "groups:\n  - name: g\n    members: [i-0aaaaaaa\n", ["line"]),
    ("empty-file", "", ["top level must be a mapping"]),
    ("key-written-twice", "groups: []\ngroups: []\n", ["written twice"]),
    ("50000-deep", "groups: " + "[" * 50_000 + "]" * 50_000 + "\n", ["nested too deeply"]),
    ("impossible-date", "groups: 2001-13-45\n", ["not valid YAML"]),
]


def assert_rejected(done: subprocess.CompletedProcess[str], words: list[str], sb: Sandbox) -> None:
    """Exit 2, exactly one stderr line holding `words`, no traceback, nothing sent to AWS."""
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "Traceback" not in output
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    for word in words:
        assert word in lines[0], lines[0]
    assert sb.layer.calls == []


COMMANDS = [
    pytest.param(("validate",), id="validate"),
    pytest.param(("move", "g", "--yes"), id="move"),
    pytest.param(("run",), id="run"),
]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    ("breaks", "words"), [pytest.param(b, w, id=i) for i, b, w in DOCUMENT_CASES]
)
def test_a_malformed_config_exits_2_with_one_line_before_any_aws_call(
    sandbox: SandboxFactory,
    tmp_path: Path,
    command: tuple[str, ...],
    breaks: Callable[[dict[str, Any]], None],
    words: list[str],
) -> None:
    """Rule: config problems are found at load: exit 2, one line naming the key, nothing touched."""
    sb = sandbox()
    doc = valid_document(sb.url, tmp_path / "state.db")
    breaks(doc)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    done = run_cli(*command, "--config", str(path))
    assert_rejected(done, [str(path), *words], sb)
    assert not (tmp_path / "state.db").exists()


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(("text", "words"), [pytest.param(t, w, id=i) for i, t, w in TEXT_CASES])
def test_an_unparseable_config_exits_2_with_one_line(
    sandbox: SandboxFactory, tmp_path: Path, command: tuple[str, ...], text: str, words: list[str]
) -> None:
    """Rule: YAML that is not a config document is a config error (exit 2, one line), not a crash."""
    sb = sandbox()
    path = tmp_path / "config.yaml"
    path.write_text(text)
    done = run_cli(*command, "--config", str(path))
    assert_rejected(done, [str(path), *words], sb)


@pytest.mark.parametrize("command", COMMANDS)
def test_a_missing_config_file_exits_2_naming_it(
    sandbox: SandboxFactory, tmp_path: Path, command: tuple[str, ...]
) -> None:
    """Rule: an unreadable config is exit 2 and one line naming the file."""
    sb = sandbox()
    missing = tmp_path / "nope.yaml"
    done = run_cli(*command, "--config", str(missing))
    assert_rejected(done, [str(missing), "cannot read config"], sb)


def test_the_config_comes_from_failover_config_when_no_option_is_given(
    sandbox: SandboxFactory, tmp_path: Path
) -> None:
    """Rule: without --config, $FAILOVER_CONFIG names the file (here a broken one: exit 2)."""
    sb = sandbox()
    doc = valid_document(sb.url, tmp_path / "state.db")
    _one_member(doc)
    path = tmp_path / "from-env.yaml"
    path.write_text(yaml.safe_dump(doc))
    done = run_cli("validate", env={"FAILOVER_CONFIG": str(path)})
    assert_rejected(done, [str(path), "at least two members"], sb)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        pytest.param(("move", "nosuch", "--yes"), ["nosuch", "groups: g"], id="move-unknown-group"),
        pytest.param(
            ("move", "g", "--to", "i-0ccccccccccccccccc", "--yes"),
            ["--to i-0ccccccccccccccccc", "not a member"],
            id="move-to-non-member",
        ),
    ],
)
def test_bad_usage_exits_2_with_one_line_before_any_aws_call(
    sandbox: SandboxFactory, tmp_path: Path, args: tuple[str, ...], words: list[str]
) -> None:
    """Rule: an unknown group, a --to that is not a member, a bad option: exit 2, nothing touched."""
    sb = sandbox()
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(valid_document(sb.url, tmp_path / "state.db")))
    done = run_cli(*args, "--config", str(path))
    assert_rejected(done, words, sb)


@pytest.mark.parametrize("command", COMMANDS)
def test_a_fifo_as_the_config_exits_2_at_once(
    sandbox: SandboxFactory, tmp_path: Path, command: tuple[str, ...]
) -> None:
    """Rule: a non-regular file as the config is refused (exit 2, one line); reading it would hang."""
    sb = sandbox()
    fifo = tmp_path / "config.yaml"
    os.mkfifo(fifo)
    done = run_cli(*command, "--config", str(fifo), timeout=60)
    assert_rejected(done, [str(fifo), "not a regular file"], sb)
