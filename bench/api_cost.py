"""Measure 3 (check passes): read calls of one `check` pass over 10 and 1,000 members, in-process.

The 10,000-member figure comes from the scale bench's call log (bench/scale.py).
Each size is a world of eip-mode pairs; one Monitor pass with the status checks due
runs against it and the layer's call log is counted.
"""

from __future__ import annotations

import math
import time
from typing import Any

from bench.az_failure import build_eip_groups
from bench.harness import config_doc, ec2_calls, group_doc, inprocess, wire


def check_pass_reads(members: int) -> dict[str, Any]:
    with inprocess() as box:
        pairs = build_eip_groups(box.ec2, members // 2)
        docs = [
            group_doc(f"g{k}", "eip", [(p, None), (s, None)], [{"type": "ec2"}], eip=alloc)
            for k, (p, s, alloc) in enumerate(pairs)
        ]
        rig = wire(config_doc(docs, box.tmp / "state.db"))
        try:
            start = time.monotonic()
            rig.monitor.run_pass(list(rig.settings.groups))
            calls = ec2_calls(box.layer, start, time.monotonic())
        finally:
            rig.close()
    by_action: dict[str, int] = {}
    for c in calls:
        by_action[c.action] = by_action.get(c.action, 0) + 1
    return {
        "members": members,
        "reads": sum(by_action.values()),
        "by_action": by_action,
        "floor": math.ceil(members / 100),
    }


def run(sizes: tuple[int, ...] = (10, 1_000)) -> list[dict[str, Any]]:
    rows = [check_pass_reads(m) for m in sizes]
    for row in rows:
        print(
            f"[api-cost] {row['members']} members: {row['reads']} reads {row['by_action']}",
            flush=True,
        )
    return rows
