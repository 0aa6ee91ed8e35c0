"""`status` and `history` as real processes: the active member is what AWS says now; moves are audited.

`status --json` must follow AWS (before a move, after it, and when someone detached the
ENI by hand), in the shape DESIGN.md promises; `history --json` must name the caller as
STS reports it, with the move's from, to, steps and outcome.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import boto3
import pytest
from jsonschema import Draft202012Validator

from ..conftest import REGION, Service, history, run_cli
from .conftest import Sandbox

SandboxFactory = Callable[..., Sandbox]

GROUP_KEYS = {"name", "mode", "resource", "active", "state", "members", "last_failover"}
MEMBER_KEYS = {"instance", "healthy", "reason"}
README = Path(__file__).resolve().parents[2] / "README.md"


@cache
def readme_schema() -> dict[str, Any]:
    """The JSON Schema written in the README (the one ```json block with `urn:failover:output`)."""
    blocks = re.findall(r"```json\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)
    (schema,) = [json.loads(b) for b in blocks if '"urn:failover:output"' in b]
    Draft202012Validator.check_schema(schema)
    return dict(schema)


def assert_valid(document: object, definition: str) -> None:
    """`document` is valid against `#/$defs/<definition>` of the README's schema."""
    validator = Draft202012Validator({**readme_schema(), "$ref": f"#/$defs/{definition}"})
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.path))
    assert not errors, "; ".join(f"{list(e.path)}: {e.message}" for e in errors)


def status_json(config: Any) -> tuple[int, dict[str, Any]]:
    done = run_cli("status", "--json", "--config", str(config))
    assert "Traceback" not in done.stdout + done.stderr
    return done.returncode, json.loads(done.stdout)


def test_status_json_follows_aws_before_and_after_a_move(sandbox: SandboxFactory) -> None:
    """Rule: `status` reports the active member as AWS reports it now, in DESIGN.md's JSON shape."""
    sb = sandbox()
    world = sb.world("eni")
    eni = world.eni_id or ""
    config = sb.config(sb.group(world, "eni"))
    members = [world.primary, *world.standbys]

    code, before = status_json(config)
    assert code == 0
    assert set(before) == {"groups"}
    (group,) = before["groups"]
    assert set(group) >= GROUP_KEYS
    assert (group["name"], group["mode"], group["resource"]) == ("g", "eni", eni)
    assert group["active"] == world.primary == sb.eni_owner(eni)
    assert group["state"] == "ok"
    assert group["last_failover"] is None
    assert [m["instance"] for m in group["members"]] == members
    for member in group["members"]:
        assert set(member) >= MEMBER_KEYS
        assert member["healthy"] in (True, False, None)
        assert isinstance(member["reason"], str)
        assert member["reason"]
    assert sb.layer.mutating_calls() == []

    moved = run_cli("move", "g", "--yes", "--config", str(config))
    assert moved.returncode == 0, moved.stderr

    code, after = status_json(config)
    assert code == 0
    (group,) = after["groups"]
    assert group["active"] == world.standbys[0] == sb.eni_owner(eni)
    assert group["state"] == "ok"
    last = group["last_failover"]
    assert last is not None
    assert (last["from"], last["to"], last["outcome"]) == (
        world.primary,
        world.standbys[0],
        "succeeded",
    )


def test_status_json_shows_an_eni_detached_by_hand_as_unowned_with_exit_1(
    sandbox: SandboxFactory,
) -> None:
    """Rule: the store never decides who is active: an ENI detached outside failover is `unowned`, exit 1."""
    sb = sandbox()
    world = sb.world("eni")
    eni = world.eni_id or ""
    config = sb.config(sb.group(world, "eni"))
    att = sb.eni_attachment(eni)
    assert att is not None
    sb.ec2.detach_network_interface(AttachmentId=att["AttachmentId"])
    assert sb.eni_attachment(eni) is None

    done = run_cli("status", "--json", "--config", str(config))
    assert done.returncode == 1, done.stderr
    (group,) = json.loads(done.stdout)["groups"]
    assert group["active"] is None
    assert group["state"] == "unowned"
    # Reading status never repairs anything behind the operator's back.
    assert sb.eni_attachment(eni) is None


def test_status_json_reports_each_mode(sandbox: SandboxFactory) -> None:
    """Rule: `status` covers every group of the config, each with its own mode and resource owner."""
    sb = sandbox()
    eni_world = sb.world("eni")
    ip_world = sb.world("secondary-ip")
    eip_world = sb.world("eip")
    config = sb.config(
        sb.group(eni_world, "eni", name="db"),
        sb.group(ip_world, "secondary-ip", name="web"),
        sb.group(eip_world, "eip", name="edge"),
    )
    code, status = status_json(config)
    assert code == 0
    by_name = {g["name"]: g for g in status["groups"]}
    assert {n: g["mode"] for n, g in by_name.items()} == {
        "db": "eni",
        "web": "secondary-ip",
        "edge": "eip",
    }
    assert by_name["db"]["active"] == eni_world.primary
    assert by_name["web"]["active"] == ip_world.primary
    assert by_name["web"]["resource"] == ip_world.ip
    assert by_name["edge"]["active"] == eip_world.primary
    assert by_name["edge"]["resource"] == eip_world.allocation_id


def test_history_json_audits_the_move_with_the_sts_caller(sandbox: SandboxFactory) -> None:
    """Rule: every move is audited: when, who (STS caller identity), from, to, each step, outcome."""
    sb = sandbox(detach_delay_s=0.1)
    world = sb.world("eni")
    config = sb.config(sb.group(world, "eni"))
    assert history(config) == []

    moved = run_cli("move", "g", "--yes", "--config", str(config))
    assert moved.returncode == 0, moved.stderr
    assert sb.eni_owner(world.eni_id or "") == world.standbys[0]

    sts = boto3.client("sts", region_name=REGION, endpoint_url=sb.url)
    caller = sts.get_caller_identity()["Arn"]
    (move,) = history(config)
    assert move["caller"] == caller
    assert caller.startswith("arn:aws:")
    assert (move["group"], move["mode"], move["resource"]) == ("g", "eni", world.eni_id)
    assert (move["from"], move["to"], move["outcome"]) == (
        world.primary,
        world.standbys[0],
        "succeeded",
    )
    assert move["started_at"] != "-"
    assert move["finished_at"] != "-"
    done_steps = [s["step"] for s in move["steps"] if s["phase"] == "done"]
    assert done_steps == ["detach", "wait-detached", "attach", "wait-attached"]
    assert all(s["phase"] in ("started", "done") for s in move["steps"])

    text = run_cli("history", "--group", "g", "--config", str(config))
    assert text.returncode == 0, text.stderr
    assert caller in text.stdout
    assert "succeeded" in text.stdout


def test_history_of_an_unknown_group_is_a_usage_error(sandbox: SandboxFactory) -> None:
    """Rule: bad usage exits 2 with one line naming the problem."""
    sb = sandbox()
    world = sb.world("eip")
    config = sb.config(sb.group(world, "eip"))
    done = run_cli("history", "--group", "nosuch", "--config", str(config))
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert "nosuch" in lines[0]
    assert sb.layer.calls == []


@pytest.mark.process
def test_status_and_history_json_validate_against_the_readme_schema(
    sandbox: SandboxFactory, services: list[Service]
) -> None:
    """Rule: `status --json` and `history --json` have the shape the README documents;
    unknown values are null; `forced` is true only when the operator passed --force.

    Also the text form: column headers, each member's AZ and last probe age, and a member
    below `rise` shown as `not yet healthy (1/2)`, not DOWN.
    """
    sb = sandbox(detach_delay_s=0.1)
    world = sb.world("eni")
    primary, standby = world.primary, world.standbys[0]
    up = [Service(f"127.0.96.{n}", 0).start() for n in (2, 3)]
    services.extend(up)
    port = up[0].port
    up[1].stop()
    services.append(Service("127.0.96.3", port).start())
    members = [
        {"instance": primary, "address": "127.0.96.2"},
        {"instance": standby, "address": "127.0.96.3"},
    ]
    config = sb.config(
        sb.group(world, "eni", members=members, checks=[{"type": "tcp", "port": port}]),
        defaults={"rise": 2, "timeout": "500ms"},
    )
    # Nothing probed yet: the move picks the first running standby, no --force.
    assert run_cli("move", "g", "--yes", "--config", str(config)).returncode == 0
    assert run_cli("check", "--config", str(config)).returncode == 0

    code, status = status_json(config)
    assert code == 0
    assert_valid(status, "status")
    (group,) = status["groups"]
    assert group["active"] == standby == sb.eni_owner(world.eni_id or "")
    by_id = {m["instance"]: m for m in group["members"]}
    assert by_id[primary]["verdict"] == "rising"
    assert (by_id[primary]["passes"], by_id[primary]["rise"]) == (1, 2)
    assert by_id[primary]["last_probe"] is not None
    assert by_id[primary]["last_probe_age_s"] >= 0
    assert by_id[primary]["az"] == "us-east-1a"

    text = run_cli("status", "--config", str(config))
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0].split() == ["GROUP", "MODE", "RESOURCE", "ACTIVE", "STATE"]
    assert lines[2].split() == ["MEMBER", "AZ", "EC2", "HEALTH", "PROBED", "REASON"]
    (row,) = [line for line in lines if primary in line and "last failover" not in line]
    assert "us-east-1a" in row
    assert "not yet healthy (1/2)" in row
    assert "DOWN" not in row
    assert re.search(r"\d+s ago", row), row

    # Back to the primary, which has not reached `rise` yet: only --force allows it.
    back = run_cli("move", "g", "--to", primary, "--force", "--yes", "--config", str(config))
    assert back.returncode == 0, back.stdout + back.stderr
    moves = history(config)
    assert_valid(moves, "history")
    assert [(m["to"], m["forced"]) for m in moves] == [(primary, True), (standby, False)]
    assert all(m["finished_at"] is not None for m in moves)
    code, status = status_json(config)
    assert_valid(status, "status")
    assert status["groups"][0]["last_failover"]["forced"] is True


@pytest.mark.process
def test_status_exits_1_when_the_active_member_is_down_and_says_down(
    sandbox: SandboxFactory,
) -> None:
    """Rule: `status` exits 1 when a group is down or degraded (both members failed their probes)."""
    sb = sandbox()
    world = sb.world("eni")
    members = [
        {"instance": world.primary, "address": "127.0.97.2"},
        {"instance": world.standbys[0], "address": "127.0.97.3"},
    ]
    config = sb.config(
        sb.group(world, "eni", members=members, checks=[{"type": "tcp", "port": 9}]),
        defaults={"fall": 1, "timeout": "300ms"},
    )
    checked = run_cli("check", "--config", str(config))
    assert checked.returncode != 0, checked.stdout
    code, status = status_json(config)
    assert code == 1
    assert_valid(status, "status")
    (group,) = status["groups"]
    assert group["state"] == "down"
    assert group["active"] == world.primary == sb.eni_owner(world.eni_id or "")
    assert {m["verdict"] for m in group["members"]} == {"down"}
    text = run_cli("status", "--config", str(config))
    assert text.returncode == 1
    assert "DOWN" in text.stdout


def test_history_json_uses_null_for_what_is_unknown() -> None:
    """Rule: an open move has no finish time and a move recorded before `forced` was kept has
    no answer: both are null (never "-"), and still valid against the README's schema."""
    from failover.cli.report import move_json
    from failover.core.ports import MoveRecord, StepRecord

    record = MoveRecord(
        move_id="m1",
        group="g",
        mode="eni",
        resource="eni-0123456789abcdef0",
        source=None,
        target="i-0bbbbbbbbbbbbbbbb",
        caller="",
        reason="eni-0123456789abcdef0 is owned by nobody",
        started_at=1_800_000_000.0,
        operator_forced=None,
        steps=(StepRecord("attach", "attach eni", "started", 1_800_000_001.0),),
    )
    move = move_json(record)
    assert_valid([move], "history")
    assert move["finished_at"] is None
    assert move["forced"] is None
    assert move["from"] is None
    assert move["caller"] is None
    assert move["detail"] is None
    assert move["steps"][0]["detail"] is None
    assert "-" not in [v for v in move.values() if isinstance(v, str)]
