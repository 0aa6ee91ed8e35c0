"""A config pointed at the wrong Region: every command says the instances are not there.

`validate` always said so; `check` used to suspect its own network and `move` to say no
member was healthy. Both now name what AWS answered: the instances do not exist in that
Region (real processes against moto's server, whose Regions are separate).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ..conftest import run_cli
from .conftest import Sandbox

SandboxFactory = Callable[..., Sandbox]


@pytest.mark.process
def test_check_and_move_say_the_instances_do_not_exist_in_the_configured_region(
    sandbox: SandboxFactory,
) -> None:
    """Rule: a wrong region is named as such (check: degraded, exit 1; move: exit 2), never
    as a network fault or unhealthy members; nothing is sent to AWS that changes anything."""
    sb = sandbox()
    world = sb.world("eni")
    members = [world.primary, *world.standbys]
    config = sb.config(
        sb.group(world, "eni"),
        aws={"region": "us-west-2", "endpoint_url": sb.url, "max_attempts": 2},
    )
    expected = f"none of its instances exist ({', '.join(members)}) in region us-west-2"

    checked = run_cli("check", "--config", str(config))
    assert checked.returncode == 1, checked.stdout + checked.stderr
    (line,) = [x for x in checked.stdout.splitlines() if x.startswith("g: ")]
    assert line.startswith("g: degraded: ")
    assert expected in line
    assert "check aws.region" in line
    assert "suspecting" not in checked.stdout + checked.stderr

    moved = run_cli("move", "g", "--yes", "--config", str(config))
    assert moved.returncode == 2, moved.stdout + moved.stderr
    (line,) = moved.stderr.splitlines()
    assert expected in line
    assert "healthy" not in line

    assert sb.layer.mutating_calls() == []
    assert sb.eni_owner(world.eni_id or "") == world.primary
