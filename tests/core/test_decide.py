"""The health core by value: one table row per rule of update_health, is_down and decide."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from failover.config import Group, Member, Policy
from failover.core.decide import (
    Decision,
    Facts,
    MoveRequest,
    decide,
    is_down,
    network_suspect,
    update_health,
)
from failover.core.model import Attachment, Eni, GroupView, Instance, Interface, Mode
from failover.core.ports import MemberHealth

A, B, C = "i-0aaaaaaaaaaaaaaaa", "i-0bbbbbbbbbbbbbbbb", "i-0cccccccccccccccc"
ENI = "eni-0f0f0f0f0f0f0f0f0"
OTHER_ENI = "eni-0999999999999999a"
AZ = "us-east-1a"
NOW = 100_000.0


def group(**policy: object) -> Group:
    """Group `db`: ENI mode, members A, B, C in preference order; fall 3, rise 2 by default."""
    return Group(
        name="db",
        mode=Mode.ENI,
        members=tuple(Member(instance=i) for i in (A, B, C)),
        checks=(),
        policy=Policy(**policy),  # type: ignore[arg-type]
        eni=ENI,
    )


def inst(iid: str, *, state: str = "running", az: str = AZ, taken: bool = False) -> Instance:
    """A member; `taken`: another ENI already sits at device index 1."""
    eth0 = Interface(f"eni-{iid[2:]}", 0, (f"10.0.1.{ord(iid[3])}",))
    extra = (Interface(OTHER_ENI, 1),) if taken else ()
    return Instance(iid, state, az, private_ip=eth0.private_ips[0], interfaces=(eth0, *extra))


def view(*members: Instance, on: str | None = A) -> GroupView:
    """What AWS says: the floating ENI attached at index 1 to `on`, or to nobody."""
    members = members or (inst(A), inst(B), inst(C))
    members = tuple(
        Instance(m.instance_id, m.state, m.az, m.private_ip, (*m.interfaces, Interface(ENI, 1)))
        if m.instance_id == on
        else m
        for m in members
    )
    att = Attachment("eni-attach-1", on, 1, "attached", False) if on else None
    return GroupView(
        "db", Mode.ENI, members, eni=Eni(ENI, AZ, "in-use" if att else "available", att)
    )


def up(iid: str, successes: int = 5) -> MemberHealth:
    """Healthy: passed at least `rise` probes in a row."""
    return MemberHealth(iid, healthy=True, successes=successes, reason="tcp 5432 ok")


def down(iid: str, failures: int = 3) -> MemberHealth:
    """Unhealthy: failed `fall` probes in a row."""
    return MemberHealth(iid, healthy=False, failures=failures, reason="tcp 5432 refused")


def failing(iid: str, failures: int) -> MemberHealth:
    """Still healthy (hysteresis), but its last `failures` probes failed."""
    return MemberHealth(iid, healthy=True, failures=failures, reason="tcp 5432 refused")


def rising(iid: str, successes: int = 1) -> MemberHealth:
    """Not healthy yet: passed fewer than `rise` probes since it was down or first seen."""
    return MemberHealth(iid, healthy=False, successes=successes, reason="tcp 5432 ok")


def health(*members: MemberHealth) -> dict[str, MemberHealth]:
    return {h.instance_id: h for h in members}


def facts(*ago: float, held: str = "", suspect: bool = False, by: str = "") -> Facts:
    """Facts at NOW with moves `ago` seconds back; `held` non-empty holds the group (`by`
    "operator" or "flap-limit"; "" reads as the flap limit's)."""
    return Facts(
        now=NOW,
        move_times=tuple(NOW - a for a in ago),
        held=bool(held),
        held_reason=held,
        network_suspect=suspect,
        held_by=by,
    )


# --- update_health: rise/fall hysteresis ------------------------------------------------


def fold(start: MemberHealth, results: Sequence[bool], **policy: object) -> MemberHealth:
    """Probe results folded one per second from t=1, as the daemon does one per interval."""
    p = Policy(**policy)  # type: ignore[arg-type]
    h = start
    for t, ok in enumerate(results, start=1):
        h = update_health(h, ok, f"probe {t} {'ok' if ok else 'failed'}", float(t), p)
    return h


UNSEEN = MemberHealth(A)


@pytest.mark.parametrize(
    ("start", "results", "policy", "healthy", "successes", "failures", "changed_at"),
    [
        pytest.param(UNSEEN, [], {}, False, 0, 0, 0.0, id="never-seen-is-not-healthy"),
        pytest.param(UNSEEN, [True], {"rise": 2}, False, 1, 0, 0.0, id="one-pass-below-rise"),
        pytest.param(UNSEEN, [True, True], {"rise": 2}, True, 2, 0, 2.0, id="rise-passes-healthy"),
        pytest.param(UNSEEN, [True], {"rise": 1}, True, 1, 0, 1.0, id="rise-1-one-pass-healthy"),
        pytest.param(
            UNSEEN, [True, False, True], {"rise": 2}, False, 1, 0, 0.0, id="failure-resets-passes"
        ),
        pytest.param(
            up(A), [False, False], {"fall": 3}, True, 0, 2, 0.0, id="fall-minus-1-still-healthy"
        ),
        pytest.param(
            up(A), [False, False, False], {"fall": 3}, False, 0, 3, 3.0, id="fall-failures-down"
        ),
        pytest.param(up(A), [False], {"fall": 1}, False, 0, 1, 1.0, id="fall-1-one-failure-down"),
        pytest.param(
            up(A),
            [False, False, True, False, False],
            {"fall": 3},
            True,
            0,
            2,
            0.0,
            id="pass-resets-failures",
        ),
        pytest.param(down(A), [True], {"rise": 2}, False, 1, 0, 0.0, id="down-needs-rise-again"),
        pytest.param(
            down(A), [True, True], {"rise": 2}, True, 2, 0, 2.0, id="down-back-after-rise"
        ),
        pytest.param(
            UNSEEN, [False] * 5, {"fall": 3}, False, 0, 5, 0.0, id="never-seen-failing-stays-down"
        ),
    ],
)
def test_update_health_hysteresis(
    start: MemberHealth,
    results: list[bool],
    policy: dict[str, object],
    healthy: bool,
    successes: int,
    failures: int,
    changed_at: float,
) -> None:
    """Rule: `rise` passes in a row to count healthy, `fall` failures in a row to stop."""
    h = fold(start, results, **policy)
    assert (h.healthy, h.successes, h.failures, h.changed_at) == (
        healthy,
        successes,
        failures,
        changed_at,
    )
    if results:
        assert h.reason == f"probe {len(results)} {'ok' if results[-1] else 'failed'}"


@pytest.mark.parametrize(
    ("h", "expected"),
    [
        pytest.param(None, False, id="no-counters-not-down"),
        pytest.param(failing(A, 2), False, id="fall-minus-1-not-down"),
        pytest.param(failing(A, 3), True, id="fall-failures-down"),
        pytest.param(down(A, 7), True, id="more-than-fall-down"),
    ],
)
def test_is_down_means_fall_consecutive_failures(h: MemberHealth | None, expected: bool) -> None:
    """Rule: one bad probe is not a failover; `fall` in a row is."""
    assert is_down(h, Policy(fall=3)) is expected


@pytest.mark.parametrize(
    ("results", "expected"),
    [
        pytest.param([], False, id="nothing-probed"),
        pytest.param([False], False, id="one-member-is-not-evidence"),
        pytest.param([False, False], True, id="two-all-failed"),
        pytest.param([False, False, False, False], True, id="all-failed"),
        pytest.param([False, True, False], False, id="one-passed"),
        pytest.param([True, True], False, id="all-passed"),
    ],
)
def test_network_suspect_needs_two_members_all_failed(results: list[bool], expected: bool) -> None:
    """Rule: every member of every group failing at once points at our own network."""
    assert network_suspect(results) is expected


# --- decide: one row per rule -------------------------------------------------------------

MOVED = "moving " + ENI


@pytest.mark.parametrize(
    ("v", "g", "h", "f", "action", "target", "says"),
    [
        pytest.param(
            view(),
            group(),
            health(up(A), up(B), up(C)),
            facts(),
            "stay",
            None,
            [f"active {A} is healthy"],
            id="active-healthy-stays",
        ),
        pytest.param(
            view(),
            group(),
            health(failing(A, 2), up(B), up(C)),
            facts(),
            "stay",
            None,
            [f"active {A}"],
            id="fall-minus-1-failures-stays",
        ),
        pytest.param(
            view(),
            group(),
            health(down(A, 3), up(B, 2), up(C, 9)),
            facts(),
            "move",
            B,
            [f"active {A} failed 3 probes", "tcp 5432 refused", MOVED, B, "2 passes", AZ],
            id="down-after-fall-moves-to-highest-preference-healthy",
        ),
        pytest.param(
            view(),
            group(),
            health(down(A), rising(B), up(C)),
            facts(),
            "move",
            C,
            [MOVED, C],
            id="not-yet-risen-standby-never-chosen",
        ),
        pytest.param(
            view(),
            group(),
            health(down(A), down(B), up(C)),
            facts(),
            "move",
            C,
            [MOVED, C],
            id="down-standby-never-chosen",
        ),
        pytest.param(
            view(),
            group(),
            health(down(A), up(C)),
            facts(),
            "move",
            C,
            [MOVED, C],
            id="never-seen-standby-never-chosen",
        ),
        pytest.param(
            view(inst(A), inst(B, state="stopped"), inst(C)),
            group(),
            health(down(A), up(B), up(C)),
            facts(),
            "move",
            C,
            [MOVED, C],
            id="stopped-standby-never-chosen",
        ),
        pytest.param(
            view(inst(A), inst(B, state="terminated"), inst(C)),
            group(),
            health(down(A), up(B), up(C)),
            facts(),
            "move",
            C,
            [MOVED, C],
            id="terminated-standby-never-chosen",
        ),
        pytest.param(
            view(inst(A), inst(B, az="us-east-1b"), inst(C)),
            group(),
            health(down(A), up(B), up(C)),
            facts(),
            "move",
            C,
            [MOVED, C],
            id="cross-az-standby-never-chosen",
        ),
        pytest.param(
            view(inst(A), inst(B, taken=True), inst(C)),
            group(),
            health(down(A), up(B), up(C)),
            facts(),
            "move",
            C,
            [MOVED, C],
            id="index-taken-standby-never-chosen",
        ),
        pytest.param(
            view(inst(A), inst(B, az="us-east-1b"), inst(C, state="stopped")),
            group(),
            health(down(A), up(B), up(C)),
            facts(),
            "degraded",
            None,
            [f"active {A} failed 3 probes", "no standby is healthy"],
            id="no-eligible-healthy-candidate-degraded",
        ),
        pytest.param(
            view(),
            group(),
            health(down(A), down(B), rising(C)),
            facts(),
            "degraded",
            None,
            ["no standby is healthy"],
            id="no-healthy-candidate-degraded",
        ),
        pytest.param(
            view(),
            group(cooldown="5m"),
            health(down(A), up(B)),
            facts(60),
            "cooldown",
            None,
            [f"active {A} failed 3 probes", "last move 1m ago", "within cooldown 5m"],
            id="within-cooldown-no-move",
        ),
        pytest.param(
            view(),
            group(cooldown="5m"),
            health(down(A), down(B)),
            facts(60),
            "degraded",
            None,
            ["no standby is healthy"],
            id="no-healthy-candidate-is-degraded-even-within-cooldown",
        ),
        pytest.param(
            view(),
            group(cooldown="5m"),
            health(down(A), up(B)),
            facts(300),
            "move",
            B,
            [MOVED, B],
            id="cooldown-just-over-moves",
        ),
        pytest.param(
            view(),
            group(max_moves_per_hour=3),
            health(down(A), up(B)),
            facts(3000, 2000, 1000),
            "hold",
            None,
            ["3 moves in the last hour", "holding for an operator", "--force"],
            id="flap-limit-reached-holds",
        ),
        pytest.param(
            view(),
            group(max_moves_per_hour=3),
            health(down(A), up(B)),
            facts(5000, 3600, 1000),
            "move",
            B,
            [MOVED, B],
            id="moves-older-than-an-hour-do-not-count",
        ),
        pytest.param(
            view(),
            group(),
            health(down(A), up(B)),
            facts(held="flap limit at 12:00"),
            "held",
            None,
            ["held for an operator", "flap limit at 12:00"],
            id="held-never-moves",
        ),
        pytest.param(
            view(on=None),
            group(),
            health(up(A), up(B)),
            facts(held="operator said so"),
            "held",
            None,
            ["held for an operator", "operator said so"],
            id="held-never-moves-even-unowned",
        ),
        pytest.param(
            view(),
            group(),
            health(down(A), failing(B, 1), failing(C, 1)),
            facts(suspect=True),
            "suspect",
            None,
            [f"active {A} failed 3 probes", "suspecting our own network"],
            id="network-suspect-no-move",
        ),
        pytest.param(
            view(on=None),
            group(),
            health(failing(A, 1), failing(B, 1)),
            facts(suspect=True),
            "suspect",
            None,
            ["suspecting our own network"],
            id="network-suspect-no-move-even-unowned",
        ),
        pytest.param(
            view(on=None),
            group(),
            health(up(A), up(B)),
            facts(),
            "move",
            A,
            ["owned by nobody", f"moving it to {A}"],
            id="unowned-moves-to-best-healthy",
        ),
        pytest.param(
            view(inst(A, state="stopped"), inst(B), inst(C), on=None),
            group(),
            health(up(A), rising(B), up(C)),
            facts(),
            "move",
            C,
            ["owned by nobody", f"moving it to {C}"],
            id="unowned-skips-stopped-and-unhealthy",
        ),
        pytest.param(
            view(on=None),
            group(cooldown="5m", max_moves_per_hour=3),
            health(up(A)),
            facts(30, 20, 10),
            "move",
            A,
            ["owned by nobody"],
            id="unowned-moves-at-once-despite-cooldown-and-flap-limit",
        ),
        pytest.param(
            view(on=None),
            group(),
            health(down(A), rising(B)),
            facts(),
            "degraded",
            None,
            ["owned by nobody", "no member is healthy"],
            id="unowned-no-healthy-degraded",
        ),
        pytest.param(
            view(on=B),
            group(failback="auto", cooldown="5m"),
            health(up(A, 2), up(B), up(C)),
            facts(600),
            "move",
            A,
            ["failback", A, f"preferred over {B}", "passed 2 probes"],
            id="failback-auto-moves-back-once-healthy-and-cooldown-over",
        ),
        pytest.param(
            view(on=C),
            group(failback="auto", cooldown="5m"),
            health(down(A), up(B), up(C)),
            facts(600),
            "move",
            B,
            ["failback", B, f"preferred over {C}"],
            id="failback-auto-to-best-healthy-higher-preference",
        ),
        pytest.param(
            view(on=B),
            group(failback="manual"),
            health(up(A), up(B)),
            facts(),
            "stay",
            None,
            [f"active {B} is healthy"],
            id="failback-manual-never",
        ),
        pytest.param(
            view(on=B),
            group(failback="auto", cooldown="5m"),
            health(up(A), up(B)),
            facts(60),
            "stay",
            None,
            [f"active {B} is healthy"],
            id="failback-auto-within-cooldown-stays",
        ),
        pytest.param(
            view(on=B),
            group(failback="auto", max_moves_per_hour=2),
            health(up(A), up(B)),
            facts(3000, 1000),
            "stay",
            None,
            [f"active {B}"],
            id="failback-auto-flap-limit-stays",
        ),
        pytest.param(
            view(on=B),
            group(failback="auto"),
            health(rising(A), up(B)),
            facts(),
            "stay",
            None,
            [f"active {B}"],
            id="failback-auto-preferred-not-yet-risen-stays",
        ),
        pytest.param(
            view(on=B),
            group(failback="auto"),
            health(failing(A, 1), up(B)),
            facts(),
            "stay",
            None,
            [f"active {B}"],
            id="failback-auto-preferred-just-failed-a-probe-stays",
        ),
        pytest.param(
            view(on=B),
            group(failback="auto"),
            health(failing(A, 1), failing(B, 1), failing(C, 1)),
            facts(suspect=True),
            "stay",
            None,
            [f"active {B}"],
            id="failback-auto-never-while-network-suspect",
        ),
        pytest.param(
            view(inst(A, az="us-east-1b"), inst(B), inst(C), on=B),
            group(failback="auto"),
            health(up(A), up(B)),
            facts(),
            "stay",
            None,
            [f"active {B}"],
            id="failback-auto-never-cross-az",
        ),
        pytest.param(
            view(),
            group(failback="auto"),
            health(up(A), up(B), up(C)),
            facts(),
            "stay",
            None,
            [f"active {A} is healthy"],
            id="failback-auto-never-to-lower-preference",
        ),
    ],
)
def test_decide(
    v: GroupView,
    g: Group,
    h: dict[str, MemberHealth],
    f: Facts,
    action: str,
    target: str | None,
    says: list[str],
) -> None:
    """One rule per row; the id names it. The reason names who, what and why."""
    d = decide(v, g, h, f)
    assert (d.action, d.target) == (action, target), d.reason
    assert d.moves is (action == "move")
    for text in says:
        assert text in d.reason


def test_failover_move_marks_source_failed_and_failback_does_not() -> None:
    """Rule: only a failed source may be Force-detached; a failback leaves a healthy one."""
    failover = decide(view(), group(), health(down(A), up(B)), facts())
    failback = decide(view(on=B), group(failback="auto"), health(up(A), up(B)), facts())
    unowned = decide(view(on=None), group(), health(up(A)), facts())
    assert (failover.target, failover.source_failed) == (B, True)
    assert (failback.target, failback.source_failed) == (A, False)
    assert (unowned.target, unowned.source_failed) == (A, True)


def test_decision_is_a_value() -> None:
    d = decide(view(), group(), health(up(A)), facts())
    assert d == Decision("stay", f"active {A} is healthy")


def test_a_resource_on_a_non_member_is_degraded_never_taken_back() -> None:
    """Rule: an instance outside the group owns the resource: alert (degraded), move nothing."""
    outsider = "i-0dddddddddddddddd"
    members = (inst(A), inst(B), inst(C))
    att = Attachment("eni-attach-9", outsider, 1, "attached", False)
    seen = GroupView("db", Mode.ENI, members, eni=Eni(ENI, AZ, "in-use", att))
    decision = decide(seen, group(), health(up(A), up(B), up(C)), facts())
    assert decision.action == "degraded"
    assert outsider in decision.reason
    assert decision.target is None


# --- decide with a request: `failover move` under the same rules --------------------------

FORCE = "--force overrides"


@pytest.mark.parametrize(
    ("v", "h", "f", "request_", "action", "target", "says", "clears"),
    [
        pytest.param(
            view(),
            health(up(A), up(B), up(C)),
            facts(),
            MoveRequest(C),
            "move",
            C,
            [f"manual move to {C}"],
            False,
            id="to-a-healthy-member-moves",
        ),
        pytest.param(
            view(),
            health(up(A), rising(B), up(C)),
            facts(),
            MoveRequest(),
            "move",
            C,
            [f"manual move to {C}"],
            False,
            id="no-target-picks-the-best-healthy-candidate",
        ),
        pytest.param(
            view(),
            {},
            facts(),
            MoveRequest(),
            "move",
            B,
            [f"manual move to {B}"],
            False,
            id="never-probed-picks-the-first-candidate",
        ),
        pytest.param(
            view(),
            health(up(A), down(B), down(C)),
            facts(),
            MoveRequest(),
            "refused",
            None,
            ["no other member is healthy"],
            False,
            id="no-healthy-candidate-refused",
        ),
        pytest.param(
            view(),
            health(up(A), down(B), down(C)),
            facts(),
            MoveRequest(force=True),
            "move",
            B,
            [f"manual move to {B}"],
            False,
            id="force-takes-the-first-candidate-when-none-is-healthy",
        ),
        pytest.param(
            view(),
            health(up(A), up(B)),
            facts(),
            MoveRequest(A),
            "move",
            A,
            [f"already has {ENI}"],
            False,
            id="to-the-active-member-is-nothing-to-move",
        ),
        pytest.param(
            view(inst(A), inst(B, az="us-east-1b"), inst(C)),
            health(up(A), up(B)),
            facts(),
            MoveRequest(B, force=True),
            "refused",
            None,
            ["same AZ only"],
            False,
            id="aws-rule-refused-even-with-force",
        ),
        pytest.param(
            view(inst(A), inst(B, taken=True), inst(C)),
            health(up(A), up(B)),
            facts(),
            MoveRequest(B),
            "refused",
            None,
            [f"device index 1 on {B} is taken"],
            False,
            id="device-index-taken-refused",
        ),
        pytest.param(
            view(),
            health(up(A), up(B)),
            facts(60.0),
            MoveRequest(B),
            "refused",
            None,
            ["within cooldown 5m", FORCE],
            False,
            id="cooldown-refused",
        ),
        pytest.param(
            view(),
            health(up(A), up(B)),
            facts(60.0),
            MoveRequest(B, force=True),
            "move",
            B,
            ["--force: last move was 1m ago, within cooldown 5m"],
            False,
            id="force-overrides-cooldown",
        ),
        pytest.param(
            view(),
            health(up(A), up(B)),
            facts(3000.0, 2000.0, 1000.0),
            MoveRequest(B),
            "refused",
            None,
            ["3 moves in the last hour (flap limit)", FORCE],
            False,
            id="flap-limit-refused",
        ),
        pytest.param(
            view(),
            health(up(A), up(B)),
            facts(held="3 moves in 1h"),
            MoveRequest(B),
            "refused",
            None,
            ["held by the flap limit (3 moves in 1h)", FORCE],
            False,
            id="flap-limit-hold-refused",
        ),
        pytest.param(
            view(),
            health(up(A), up(B)),
            facts(held="3 moves in 1h", by="flap-limit"),
            MoveRequest(B, force=True),
            "move",
            B,
            ["--force: group is held by the flap limit"],
            True,
            id="force-moves-and-clears-the-flap-limit-hold",
        ),
        pytest.param(
            view(),
            health(up(A), up(B)),
            facts(held="kernel patching", by="operator"),
            MoveRequest(B),
            "move",
            B,
            [f"manual move to {B}"],
            False,
            id="operator-hold-does-not-refuse-and-stays",
        ),
        pytest.param(
            view(),
            health(up(A), down(B), up(C)),
            facts(),
            MoveRequest(B),
            "refused",
            None,
            [f"target {B} is not healthy (tcp 5432 refused)", FORCE],
            False,
            id="unhealthy-target-refused",
        ),
        pytest.param(
            view(),
            health(up(A), down(B), up(C)),
            facts(),
            MoveRequest(B, force=True),
            "move",
            B,
            [f"--force: target {B} is not healthy"],
            False,
            id="force-overrides-target-health",
        ),
    ],
)
def test_decide_on_a_request(
    v: GroupView,
    h: dict[str, MemberHealth],
    f: Facts,
    request_: MoveRequest,
    action: str,
    target: str | None,
    says: list[str],
    clears: bool,
) -> None:
    """An operator's move is a decision with a request: one rule per row, the id names it."""
    d = decide(v, group(), h, f, request_)
    assert (d.action, d.target, d.clears_hold) == (action, target, clears), d.reason
    assert not d.source_failed  # a planned move: Force only with --force
    for text in says:
        assert text in d.reason


def test_an_operator_hold_stops_automatic_moves_and_names_release() -> None:
    """Rule: `failover hold` holds the group even with its primary down; the reason says how to end it."""
    d = decide(view(), group(), health(down(A), up(B)), facts(held="maintenance", by="operator"))
    assert (d.action, d.target) == ("held", None)
    assert "held by an operator (maintenance)" in d.reason
    assert "failover release db" in d.reason


def test_a_group_aws_does_not_know_is_degraded_naming_the_region_not_a_network_fault() -> None:
    """Rule: no member exists (a wrong region or ids): degraded, saying so, even on a suspect pass."""
    from failover.config import parse

    group = parse(
        {
            "groups": [
                {
                    "name": "g",
                    "mode": "eip",
                    "eip": "eipalloc-0123456789abcdef0",
                    "members": ["i-0aaaaaaaaaaaaaaaa", "i-0bbbbbbbbbbbbbbbb"],
                }
            ]
        }
    ).groups[0]
    view = GroupView(
        "g", "eip", tuple(Instance(i, "missing", "") for i in group.instance_ids), address=None
    )
    decision = decide(view, group, {}, Facts(now=0.0, network_suspect=True, region="us-west-2"))
    assert decision.action == "degraded"
    assert decision.reason == (
        "none of its instances exist (i-0aaaaaaaaaaaaaaaa, i-0bbbbbbbbbbbbbbbb) in region "
        "us-west-2: check aws.region and the ids (`failover validate`)"
    )
