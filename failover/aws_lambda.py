"""AWS Lambda entry point: `handler` runs one `failover check` pass, as cron would.

An EventBridge schedule (deploy/cloudformation/failover.yaml, rate 1 minute) invokes it;
`fall: 3` then means three bad minutes. The wiring is the CLI's `check`: the config is
`$FAILOVER_CONFIG`, else `config.yaml` in the function's package (`$LAMBDA_TASK_ROOT`).

State: Lambda's only writable place is /tmp, so a `sqlite` state file is put there
(`$FAILOVER_STATE_DIR` overrides the directory). /tmp lives as long as one warm execution
environment: a cold start forgets the consecutive-failure counters and the journal, and
two concurrent environments would keep two. The template therefore caps the function at
one concurrent execution; the `dynamodb` state backend, once it exists, is the right one
for Lambda (shared, durable, with the lease).

Like the CLI, this module is an entry point: it reads the environment and builds objects.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from failover import config as config_module
from failover.config import Settings
from failover.service.monitor import Monitor
from failover.wiring import wired

log = logging.getLogger(__name__)

DEFAULT_STATE_DIR = "/tmp"  # Lambda's only writable directory


def config_path() -> Path:
    """`$FAILOVER_CONFIG`, else config.yaml in the function's package (or the cwd)."""
    if path := os.environ.get("FAILOVER_CONFIG"):
        return Path(path)
    return Path(os.environ.get("LAMBDA_TASK_ROOT", ".")) / "config.yaml"


def lambda_settings(settings: Settings, state_dir: Path) -> Settings:
    """`settings` with a sqlite state file moved into `state_dir` (the package is read-only)."""
    if settings.state.backend != "sqlite":
        return settings
    path = state_dir / Path(settings.state.path).name
    return replace(settings, state=settings.state.model_copy(update={"path": str(path)}))


def handler(event: Any, context: Any) -> dict[str, Any]:
    """One check pass over every group: {"groups": [one summary per group], "exit_code": n}.

    `exit_code` is `failover check`'s: 0 ok, 1 a move failed or a group has no healthy
    active member, 3 refused by a safety rule. An unusable config or AWS error raises
    (the ConfigError or CloudError line), so the invocation counts in the function's
    Errors metric.
    """
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO)
    logging.getLogger("failover").setLevel(logging.INFO)
    state_dir = Path(os.environ.get("FAILOVER_STATE_DIR", DEFAULT_STATE_DIR))
    settings = lambda_settings(config_module.load(config_path()), state_dir)
    with wired(settings) as w:
        monitor = Monitor(w.cloud, w.store, w.engine, w.engine.clock, region=w.cloud.region)
        outcomes = monitor.run_pass(settings.groups)
    groups = [
        {
            "name": o.group,
            "outcome": o.outcome,
            "active": o.active,
            "exit_code": o.exit_code,
            "summary": o.summary(),
        }
        for o in outcomes
    ]
    for group in groups:
        log.info("%s", group["summary"])
    codes = {o.exit_code for o in outcomes}
    return {"groups": groups, "exit_code": 1 if 1 in codes else 3 if 3 in codes else 0}
