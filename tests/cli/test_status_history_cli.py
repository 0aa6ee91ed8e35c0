"""`status` and `history` as real processes: the active member is what AWS says now; moves are audited.

`status --json` must follow AWS (before a move, after it, and when someone detached the
ENI by hand), in the shape DESIGN.md promises; `history --json` must name the caller as
STS reports it, with the move's from, to, steps and outcome.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3

from ..conftest import REGION, run_cli
from .conftest import Sandbox

SandboxFactory = Callable[..., Sandbox]

GROUP_KEYS = {"name", "mode", "resource", "active", "state", "members", "last_failover"}
MEMBER_KEYS = {"instance", "healthy", "reason"}


def status_json(config: Any) -> tuple[int, dict[str, Any]]:
    done = run_cli("status", "--json", "--config", str(config))
    assert "Traceback" not in done.stdout + done.stderr
    return done.returncode, json.loads(done.stdout)


def history_json(config: Any) -> list[dict[str, Any]]:
    done = run_cli("history", "--json", "--config", str(config))
    assert done.returncode == 0, done.stderr
    moves: list[dict[str, Any]] = json.loads(done.stdout)
    return moves


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
    assert history_json(config) == []

    moved = run_cli("move", "g", "--yes", "--config", str(config))
    assert moved.returncode == 0, moved.stderr
    assert sb.eni_owner(world.eni_id or "") == world.standbys[0]

    sts = boto3.client("sts", region_name=REGION, endpoint_url=sb.url)
    caller = sts.get_caller_identity()["Arn"]
    (move,) = history_json(config)
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
