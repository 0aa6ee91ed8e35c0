"""A daemon that cannot reach AWS is loud: alert, /healthz 503 with the reason, and it clears.

The real `failover run` against moto's server; the strict layer then answers every EC2
call with 503 ServiceUnavailable, as an EC2 outage would, and later lets them through.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ..conftest import free_port
from .conftest import DaemonProcess, Loopback, Sandbox, wait_until
from .test_daemon_ops import get

BLIND_AFTER = 3  # failover.service.blindness.BLIND_AFTER_PASSES, as the README documents


@pytest.mark.process
def test_a_daemon_blind_to_aws_alerts_and_fails_healthz_then_clears_when_aws_answers(
    sandbox: Callable[..., Sandbox],
    loopback: Callable[..., Loopback],
    daemon: Callable[[Path], DaemonProcess],
    webhook: tuple[str, list[dict[str, str]]],
) -> None:
    """Rule: after a few passes that could not read AWS the daemon is blind: a `blind` alert,
    /healthz 503 naming the reason; when AWS answers, /healthz is 200 and a recovery line is
    logged. Each failed pass is one log line with AWS's error code, never a traceback; the
    daemon keeps running (its liveness is not AWS's)."""
    url, received = webhook
    sb = sandbox()
    world = sb.world("eni")
    lo = loopback([world.primary, world.standbys[0]])
    port = free_port()
    config = sb.config(
        sb.group(world, "eni", members=lo.members(), checks=[lo.check()]),
        aws={"region": "us-east-1", "endpoint_url": sb.url, "max_attempts": 2},
        defaults={"interval": "500ms", "timeout": "300ms"},
        metrics={"listen": f"127.0.0.1:{port}"},
        notify={"webhook_url": url, "timeout": "2s"},
    )
    d = daemon(config)
    healthz = f"http://127.0.0.1:{port}/healthz"
    wait_until(lambda: get(healthz)[0] == 200, 30, "/healthz 200 while AWS answers")
    d.wait_log("failover daemon started", 15)

    sb.layer.inject_faults(1.0, ("ServiceUnavailable",))
    wait_until(lambda: get(healthz)[0] == 503, 60, "/healthz 503 once blind")
    _, body = get(healthz)
    assert body.startswith("unhealthy: blind: ")
    assert "could not read AWS" in body
    assert "ServiceUnavailable" in body
    wait_until(lambda: any(r["event"] == "blind" for r in received), 15, "the blind alert")
    (alert,) = [r for r in received if r["event"] == "blind"]
    assert "ServiceUnavailable" in alert["text"]
    failed = [x for x in d.log().splitlines() if "health pass could not read AWS" in x]
    assert len(failed) >= BLIND_AFTER
    assert all("ServiceUnavailable" in line for line in failed)

    sb.layer.inject_faults(0.0)
    wait_until(lambda: get(healthz)[0] == 200, 60, "/healthz 200 once AWS answers")
    d.wait_log("AWS answers again after", 15)
    wait_until(lambda: any(r["event"] == "recovered" for r in received), 15, "the recovery alert")
    assert [r["event"] for r in received if r["event"] in ("blind", "recovered")] == [
        "blind",
        "recovered",
    ]
    assert "Traceback" not in d.log()
    assert d.running
