"""Measure 5: an AZ fails; hundreds of groups lose their primaries in the same pass.

moto in-process behind a StrictLayer with EC2's token buckets on (mutating calls 50
burst, 5/s; Assign/Unassign 100, 5/s; Describe 100, 20/s). Every group is in eip
mode (one AssociateAddress per move), its primary in us-east-1a with its TCP service on
127.0.0.2, its standby in us-east-1b with its service on 127.0.0.3: stopping the first
listener fails every primary at once. In the `disrupted` variant us-east-1a's instance
reads fail from that instant too (the layer's `disrupt_az`), as they do when an AZ fails.
The real Monitor runs passes on the daemon's schedule and moves the groups with its
thread pool and botocore's standard retries. A group counts as served from its
successful AssociateAddress in the call log; the limit is what the mutating bucket
allows: (groups - burst) / refill seconds after the first move starts.
"""

from __future__ import annotations

import math
import time
from typing import Any

from bench.harness import (
    Listener,
    PassDriver,
    config_doc,
    count_calls,
    ec2_calls,
    free_port,
    group_doc,
    inprocess,
    wait_for,
    wire,
)

PRIMARY_HOST, STANDBY_HOST = "127.0.0.2", "127.0.0.3"
PRIMARY_AZ, STANDBY_AZ = "us-east-1a", "us-east-1b"
DESCRIBE_BURST, DESCRIBE_REFILL_PER_S = 100.0, 20.0
MUTATING_BURST, MUTATING_REFILL_PER_S = 50.0, 5.0


def bucket_limit_s(groups: int, calls_per_group: int = 1) -> float:
    """Seconds the mutating bucket needs to allow `groups` moves of `calls_per_group` calls."""
    return max(0.0, (groups * calls_per_group - MUTATING_BURST) / MUTATING_REFILL_PER_S)


def describe_limit_s(describes: int) -> float:
    """Seconds the Describe bucket needs to allow `describes` calls."""
    return max(0.0, (describes - DESCRIBE_BURST) / DESCRIBE_REFILL_PER_S)


def build_eip_groups(ec2: Any, n: int, *, cross_az: bool = False) -> list[tuple[str, str, str]]:
    """`n` (primary, standby, allocation id), each EIP on its primary: ~2n + 6 calls. The
    standbys share the primaries' subnet, or (`cross_az`) have their own in the next AZ."""
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=az)["Subnet"]["SubnetId"]
        for cidr, az in [("10.0.0.0/18", PRIMARY_AZ), ("10.0.64.0/18", STANDBY_AZ)][
            : 2 if cross_az else 1
        ]
    ]
    members: list[list[dict[str, Any]]] = []
    for subnet_id in (subnets[0], subnets[-1]):
        launched: list[dict[str, Any]] = []
        while len(launched) < n:
            count = min(250, n - len(launched))
            reply = ec2.run_instances(
                ImageId="ami-12c6146b",
                InstanceType="t3.large",
                MinCount=count,
                MaxCount=count,
                SubnetId=subnet_id,
            )
            launched += reply["Instances"]
        members.append(launched)
    out = []
    for primary, standby in zip(members[0], members[1], strict=True):
        eth0 = primary["NetworkInterfaces"][0]
        alloc = ec2.allocate_address(Domain="vpc")["AllocationId"]
        ec2.associate_address(
            AllocationId=alloc,
            NetworkInterfaceId=eth0["NetworkInterfaceId"],
            PrivateIpAddress=eth0["PrivateIpAddress"],
            AllowReassociation=False,
        )
        out.append((primary["InstanceId"], standby["InstanceId"], alloc))
    return out


def run(
    groups: int = 500,
    interval_s: float = 5.0,
    cap_s: float = 240.0,
    retry_mode: str = "standard",
    *,
    disrupted: bool = False,
) -> dict[str, Any]:
    """Fail every primary at once; record when each group is served again, and every throttle.

    `retry_mode` is the config's aws.retry_mode (botocore's standard or adaptive);
    `disrupted`: the primaries' AZ's instance reads fail from the same instant.
    """
    t_build = time.monotonic()
    with inprocess() as box:
        built = build_eip_groups(box.ec2, groups, cross_az=True)
        build_s = time.monotonic() - t_build
        port = free_port(PRIMARY_HOST)
        primaries = Listener(PRIMARY_HOST, port, backlog=4096).start()
        standbys = Listener(STANDBY_HOST, port, backlog=4096).start()
        docs = [
            group_doc(
                f"g{k}",
                "eip",
                [(p, PRIMARY_HOST), (s, STANDBY_HOST)],
                [{"type": "tcp", "port": port}],
                eip=alloc,
            )
            for k, (p, s, alloc) in enumerate(built)
        ]
        doc = config_doc(
            docs,
            box.tmp / "state.db",
            interval=f"{interval_s}s",
            timeout="1s",
            fall=2,
            rise=1,
            cooldown="1ms",
            max_moves_per_hour=1000,
        )
        doc["aws"]["retry_mode"] = retry_mode
        rig = wire(doc)
        rig.engine.caller()
        box.layer.token_buckets = True  # built without throttling; EC2's buckets from here on
        driver = PassDriver(rig, interval_s).start()
        rec = rig.recorder
        alloc_group = {alloc: k for k, (_, _, alloc) in enumerate(built)}
        try:
            driver.wait_passes(2, timeout_s=600)  # every standby healthy (rise 1), settled
            t_calm = time.monotonic()
            calm_passes = rec.of("pass-end", since=t_calm - 3600)
            pass_s = [e.t - e.data["start"] for e in calm_passes]
            t_kill = primaries.stop()
            if disrupted:
                box.layer.disrupt_az(PRIMARY_AZ)

            def served() -> dict[int, float]:
                out: dict[int, float] = {}
                for c in ec2_calls(box.layer, since=t_kill):
                    if c.action == "AssociateAddress" and c.error is None:
                        k = alloc_group.get(str(c.params.get("AllocationId")))
                        if k is not None and k not in out:
                            out[k] = c.at
                return out

            def moves_started() -> list[float]:
                alerts = rec.of("alert", since=t_kill)
                return [e.t for e in alerts if e.data["event"] == "move-started"]

            # Detection takes `fall` passes; four times that (and a margin for slow passes) is
            # long enough to say that no move started.
            wait_for(lambda: bool(moves_started()), timeout_s=8 * interval_s + 20, poll_s=0.1)
            first_move = min(moves_started(), default=math.nan)
            if not math.isnan(first_move):
                wait_for(
                    lambda: len(served()) >= groups,
                    timeout_s=max(1.0, first_move + cap_s - time.monotonic()),
                    poll_s=0.5,
                )
            t_stop = time.monotonic()
        finally:
            driver.stop()
            primaries.stop()
            standbys.stop()
            rig.close()
        done = served()
        calls = ec2_calls(box.layer, since=t_kill)
        alerts = rec.of("alert", since=t_kill)
        pass_errors = [
            str(e.data["error"]) for e in rec.of("pass-end", since=t_kill) if "error" in e.data
        ]
    order = sorted(done, key=done.__getitem__)
    all_served = len(done) >= groups
    last = max(done.values()) if done else math.nan
    elapsed = (last - first_move) if all_served else math.nan
    limit = bucket_limit_s(groups)
    throttled = [c for c in calls if c.error == "RequestLimitExceeded"]
    by_action: dict[str, int] = {}
    for c in throttled:
        by_action[c.action] = by_action.get(c.action, 0) + 1
    served_times = sorted(t - first_move for t in done.values())
    # How far serving follows the config order: Spearman's rho of served rank vs group index.
    n = len(order)
    rho = (
        1 - 6 * sum((rank - k) ** 2 for rank, k in enumerate(order)) / (n * (n * n - 1))
        if n > 2
        else math.nan
    )
    outcome_counts: dict[str, int] = {}
    for e in alerts:
        outcome_counts[e.data["event"]] = outcome_counts.get(e.data["event"], 0) + 1
    result = {
        "groups": groups,
        "disrupted": [PRIMARY_AZ] if disrupted else [],
        "retry_mode": retry_mode,
        "interval_s": interval_s,
        "build_s": build_s,
        "calm_pass_s": pass_s,
        "detect_s": first_move - t_kill,
        "served": len(done),
        "all_served": all_served,
        "cap_s": cap_s,
        "elapsed_s": elapsed,
        "observed_s": t_stop - (t_kill if math.isnan(first_move) else first_move),
        "limit_s": limit,
        "ratio": elapsed / limit if limit and all_served else math.nan,
        "throttled": len(throttled),
        "throttled_by_action": by_action,
        "calls": count_calls(calls),
        "describe_calls": sum(1 for c in calls if c.action.startswith("Describe")),
        "served_times_s": served_times,
        "throttle_times_s": [c.at - first_move for c in throttled],
        "order_first": [f"g{k}" for k in order[:10]],
        "order_spearman": rho,
        "alerts": outcome_counts,
        # Passes that raised after the failure (a pass that could read no group is blind).
        "pass_errors": len(pass_errors),
        "pass_error_first": pass_errors[0][:160] if pass_errors else "",
    }
    print(
        f"[az-failure] {groups} groups{', ' + PRIMARY_AZ + ' disrupted' if disrupted else ''}: served {len(done)} in {elapsed:.1f}s "
        f"(limit {limit:.1f}s, ratio {result['ratio']:.2f}); RequestLimitExceeded {len(throttled)} "
        f"{by_action}; alerts {outcome_counts}",
        flush=True,
    )
    return result


if __name__ == "__main__":
    import json
    import sys
    from pathlib import Path

    from bench.harness import log_to_file

    log_to_file(Path("/tmp/bench-az.log"))
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    out = run(
        n,
        interval_s=float(sys.argv[2]) if len(sys.argv) > 2 else 2.0,
        cap_s=float(sys.argv[3]) if len(sys.argv) > 3 else 120.0,
        retry_mode=sys.argv[4] if len(sys.argv) > 4 else "standard",
        disrupted="--disrupted" in sys.argv,
    )
    out.pop("served_times_s")
    out.pop("throttle_times_s")
    print(json.dumps(out, indent=1))
