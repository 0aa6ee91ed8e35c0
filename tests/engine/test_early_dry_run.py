"""Which target an operator's move DryRuns with its read, decided from the store alone (by value).

The process tests (tests/cli/test_move_early_dry_run.py) show the calls; these pin the choice:
`--to`'s target, else the first stored-healthy member that is not where the last move left the
resource; none when the calls need an eth0 no read has shown, or when the move is one call.
"""

from __future__ import annotations

from typing import Any

import pytest

from failover.config import Group, parse
from failover.core.decide import MoveRequest
from failover.core.ports import GroupMemory, GroupState, MemberHealth, MoveRecord
from failover.service.early import likely_target, taking

A, B, C = "i-0aaaaaaaaaaaaaaaa", "i-0bbbbbbbbbbbbbbbb", "i-0cccccccccccccccc"
ETH0S = {A: "eni-0a", B: "eni-0b", C: "eni-0c"}


def group_of(mode: str, **fields: Any) -> Group:
    resources: dict[str, dict[str, Any]] = {
        "secondary-ip": {"ip": "10.0.1.50", "eip": "eipalloc-0123456789abcdef0"},
        "eip": {"eip": "eipalloc-0123456789abcdef0"},
        "eni": {"eni": "eni-0123456789abcdef0", "device_index": 1},
        "route": {
            "cidr": "192.168.100.10/32",
            "route_tables": ["rtb-0aaaaaaaaaaaaaaaa", "rtb-0bbbbbbbbbbbbbbbb"],
        },
    }
    group = {"name": "g", "mode": mode, "members": [A, B, C], **resources[mode], **fields}
    return parse({"aws": {"region": "us-east-1"}, "groups": [group]}, "test").groups[0]


def memory(healthy: set[str], eth0s: dict[str, str] | None = None) -> GroupMemory:
    health = {i: MemberHealth(i, healthy=i in healthy, successes=3) for i in (A, B, C)}
    return GroupMemory("g", health, GroupState("g"), (), ETH0S if eth0s is None else eth0s)


def moved(source: str, target: str, outcome: str = "succeeded") -> MoveRecord:
    return MoveRecord("m1", "g", "eni", "r", source, target, "", "", 1.0, outcome=outcome)


class History:
    """The store's history as `taking` reads it: the last move, and how often it was asked."""

    def __init__(self, *moves: MoveRecord) -> None:
        self.moves, self.asked = list(moves), 0

    def history(self, group: str | None = None, limit: int = 100) -> list[MoveRecord]:
        self.asked += 1
        return self.moves[:limit]


@pytest.mark.parametrize(
    ("healthy", "last", "expected"),
    [
        ({A, B, C}, None, B),  # no history: the group is on its primary
        ({A, C}, None, C),  # B not healthy in the store
        ({A, B, C}, moved(A, B), A),  # the last move left it on B: back to the primary
        ({B, C}, moved(A, B), C),
        ({A, B, C}, moved(A, B, "failed"), B),  # a failed move left it where it was
        ({A}, None, None),  # no healthy standby: no guess
    ],
)
def test_the_likely_target_is_the_first_healthy_member_not_holding_the_resource(
    healthy: set[str], last: MoveRecord | None, expected: str | None
) -> None:
    """Rule: without --to, the guess is the first stored-healthy member in preference order
    other than where the history's last move left the resource (the primary without one)."""
    group = group_of("secondary-ip")
    assert likely_target(group, memory(healthy), [last] if last else []) == expected


@pytest.mark.parametrize(
    ("mode", "eth0s", "expected"),
    [
        ("secondary-ip", ETH0S, (C, "eni-0c")),
        ("secondary-ip", {A: "eni-0a"}, None),  # C's eth0 not shown yet
        ("route", ETH0S, (C, "eni-0c")),
        ("eni", {}, (C, None)),  # the attach names no eth0
        ("eip", ETH0S, None),  # one call: its own permission check
    ],
)
def test_to_targets_dry_runs_go_with_the_read_only_when_their_ids_are_known(
    mode: str, eth0s: dict[str, str], expected: tuple[str, str | None] | None
) -> None:
    """Rule: --to's target is DryRun with the read when the move is screened and every id of
    its calls is known before the read (its eth0 remembered, or none needed)."""
    store = History()
    history: Any = store  # the one Store method `taking` reads
    got = taking(history, group_of(mode), MoveRequest(C), memory({A, B, C}, eth0s), ())
    assert got == expected
    assert store.asked == 0  # --to needs no guess


def test_no_dry_run_goes_with_a_read_that_finishes_a_journaled_move_or_a_one_table_route() -> None:
    """Rule: a move finishing a journaled one, a pass's move (no request) and a route over one
    table (one call) send nothing with the read."""
    store = History()
    args: Any = store
    mem = memory({A, B, C})
    assert taking(args, group_of("secondary-ip"), MoveRequest(C), mem, [moved(A, C)]) is None
    assert taking(args, group_of("secondary-ip"), None, mem, ()) is None
    one_table = group_of("route", route_tables=["rtb-0aaaaaaaaaaaaaaaa"])
    assert taking(args, one_table, MoveRequest(C), mem, ()) is None
    assert (
        taking(args, group_of("secondary-ip"), MoveRequest(None), memory({A, B, C}, {}), ()) is None
    )
    assert store.asked == 0  # no eth0 known: no store read for a guess
