"""A hypothesis state machine over random probe results, EC2 state changes and ticks.

It drives update_health and decide the way the daemon does, applies every move to a
simulated AWS view, and checks the safety invariants at every decision: never move to
an unhealthy, cross-AZ or not-running member; never before `fall` (but for an unowned
resource or a failback); never while held, suspect or within cooldown; never more than
`max_moves_per_hour` in any hour.
"""

from __future__ import annotations

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from failover.config import Group, Member, Policy
from failover.decide import Decision, Facts, decide, is_down, network_suspect, update_health
from failover.model import Attachment, Eni, GroupView, Instance, Interface, Mode
from failover.ports import MemberHealth

A, B, C, D = (
    "i-0aaaaaaaaaaaaaaaa",
    "i-0bbbbbbbbbbbbbbbb",
    "i-0cccccccccccccccc",
    "i-0dddddddddddddddd",
)
ENI = "eni-0f0f0f0f0f0f0f0f0"
AZ = "us-east-1a"
HOUR = 3600.0
# Weighted towards running, so a member that stopped often comes back.
STATES = ("running", "running", "stopped", "stopping", "pending", "terminated")

members_st = st.sampled_from([A, B, C, D])


class DecideMachine(RuleBasedStateMachine):
    """One ENI-mode group: A, B, C in us-east-1a and, when drawn, D in us-east-1b."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 1_000_000.0
        self.move_times: list[float] = []
        self.owned_moves: list[float] = []  # moves decided while someone owned the ENI
        self.held = False
        self.moves = 0

    @initialize(
        cross_az=st.booleans(),
        fall=st.integers(1, 4),
        rise=st.integers(1, 3),
        interval=st.sampled_from([1.0, 5.0, 30.0, 120.0]),
        cooldown=st.sampled_from([1.0, 10.0, 60.0, 300.0]),
        max_moves=st.integers(1, 4),
        failback=st.sampled_from(["manual", "auto"]),
        owner=st.sampled_from([A, B, None]),
    )
    def setup(
        self,
        cross_az: bool,
        fall: int,
        rise: int,
        interval: float,
        cooldown: float,
        max_moves: int,
        failback: str,
        owner: str | None,
    ) -> None:
        ids = (A, B, C, D) if cross_az else (A, B, C)
        self.policy = Policy(
            interval_s=interval,
            timeout_s=min(1.0, interval),
            fall=fall,
            rise=rise,
            cooldown_s=cooldown,
            max_moves_per_hour=max_moves,
            failback=failback,  # type: ignore[arg-type]
        )
        self.group = Group(
            name="db",
            mode=Mode.ENI,
            members=tuple(Member(instance=i) for i in ids),
            checks=(),
            policy=self.policy,
            eni=ENI,
        )
        self.az = {i: ("us-east-1b" if i == D else AZ) for i in ids}
        self.state = dict.fromkeys(ids, "running")
        self.alive = dict.fromkeys(ids, True)  # the service behind the probe answers
        self.health = {i: MemberHealth(i) for i in ids}
        self.owner = owner

    # --- the simulated world -----------------------------------------------------------

    def view(self) -> GroupView:
        members = []
        for i in self.group.instance_ids:
            eth0 = Interface(f"eni-{i[2:]}", 0, (f"10.0.1.{ord(i[3])}",))
            ifaces = (eth0, Interface(ENI, 1)) if i == self.owner else (eth0,)
            members.append(Instance(i, self.state[i], self.az[i], eth0.private_ips[0], ifaces))
        att = Attachment("eni-attach-1", self.owner, 1, "attached", False) if self.owner else None
        eni = Eni(ENI, AZ, "in-use" if att else "available", att)
        return GroupView("db", Mode.ENI, tuple(members), eni=eni, observed_at=self.now)

    @rule(member=members_st, alive=st.booleans())
    def service(self, member: str, alive: bool) -> None:
        """The service on a member dies or comes back (its probes follow)."""
        if member in self.alive:
            self.alive[member] = alive

    @rule(member=members_st, state=st.sampled_from(STATES))
    def ec2_state(self, member: str, state: str) -> None:
        """EC2 changes a member's state; terminated is for ever and drops the ENI."""
        if member not in self.state or self.state[member] == "terminated":
            return
        self.state[member] = state
        if state == "terminated" and self.owner == member:
            self.owner = None  # DeleteOnTermination off: the ENI survives, detached

    @rule()
    def operator_clears_hold(self) -> None:
        """`failover move --force` or an operator lifts the hold."""
        self.held = False

    @rule(
        flaky=st.lists(st.integers(0, 9), min_size=4, max_size=4),
        blackout=st.integers(0, 9).map(lambda n: n == 0),
    )
    def tick(self, flaky: list[int], blackout: bool) -> None:
        """One pass: probe every member, fold, decide, apply the move."""
        ids = self.group.instance_ids
        # A probe passes when EC2 says running and the service answers, but for a rare
        # flake; a blackout is our own network failing every probe of the pass.
        results = {
            i: not blackout and self.state[i] == "running" and self.alive[i] and flaky[n] != 0
            for n, i in enumerate(ids)
        }
        self.now += self.policy.interval_s
        self.health = {
            i: update_health(self.health[i], ok, "ok" if ok else "failed", self.now, self.policy)
            for i, ok in results.items()
        }
        suspect = network_suspect(list(results.values()))
        v = self.view()
        facts = Facts(
            now=self.now,
            move_times=tuple(self.move_times),
            held=self.held,
            held_reason="flap limit" if self.held else "",
            network_suspect=suspect,
        )
        d = decide(v, self.group, self.health, facts)
        event(
            d.action
            + (" failback" if d.moves and not d.source_failed else "")
            + (" unowned" if v.active is None else "")
        )
        self.check(v, facts, d)
        if d.action == "hold":
            self.held = True
        if d.moves:
            assert d.target is not None
            if v.active is not None:
                self.owned_moves.append(self.now)
            self.owner = d.target
            self.move_times.append(self.now)
            self.moves += 1

    # --- the invariants ----------------------------------------------------------------

    def check(self, v: GroupView, facts: Facts, d: Decision) -> None:
        p = self.policy
        active = v.active
        assert d.reason, "every decision carries a reason"
        if facts.held:
            assert d.action == "held", d
        if not d.moves:
            assert d.target is None, d
            self.check_liveness(v, facts, d)
            return
        target = d.target
        assert target is not None
        h = self.health[target]
        # Never to an unhealthy, cross-AZ or not-running member, nor to the owner itself.
        assert target != active, d
        assert h.healthy, (d, h)
        assert h.failures < p.fall, (d, h)
        assert self.state[target] == "running", (d, self.state[target])
        assert self.az[target] == AZ, d
        # Never while held or while our own network is suspect.
        assert not facts.held, d
        assert not facts.network_suspect, d
        if active is None:
            return  # rule 2: an unowned ENI moves at once, cooldown and flap limit or not
        # Never within cooldown of the last move, never past the flap limit.
        if self.move_times:
            assert self.now - max(self.move_times) >= p.cooldown_s, d
        assert sum(1 for t in self.move_times if self.now - t < HOUR) < p.max_moves_per_hour, d
        # Never before `fall`, but for a failback to a member preferred over the active one.
        if self.health[active].failures < p.fall:
            order = self.group.instance_ids
            assert p.failback == "auto", d
            assert order.index(target) < order.index(active), d
            assert h.successes >= p.rise, (d, h)
            assert not d.source_failed, d
        else:
            assert d.source_failed, d

    def check_liveness(self, v: GroupView, facts: Facts, d: Decision) -> None:
        """Safety by doing nothing would pass the rest: a down owner with a good standby moves."""
        active = v.active
        if facts.held or facts.network_suspect:
            return
        if active is not None:
            if not is_down(self.health[active], self.policy):
                return
            recent = [t for t in self.move_times if self.now - t < HOUR]
            if self.move_times and self.now - max(self.move_times) < self.policy.cooldown_s:
                return
            if len(recent) >= self.policy.max_moves_per_hour:
                return
        eligible = [
            i
            for i in self.group.instance_ids
            if i != active
            and self.state[i] == "running"
            and self.az[i] == AZ
            and self.health[i].healthy
            and self.health[i].failures < self.policy.fall
        ]
        assert not eligible, (d, eligible)
        assert d.action == "degraded", d

    @invariant()
    def flap_limit_holds_in_every_hour(self) -> None:
        """No hour holds more than `max_moves_per_hour` moves decided from an owned ENI."""
        times = self.owned_moves
        for t in times:
            in_window = sum(1 for u in times if t <= u < t + HOUR)
            assert in_window <= self.policy.max_moves_per_hour, times

    @invariant()
    def counters_are_consistent(self) -> None:
        """update_health keeps one streak at a time, and a down member is never healthy."""
        for h in self.health.values():
            assert h.successes == 0 or h.failures == 0, h
            assert not (h.healthy and h.failures >= self.policy.fall), h


DecideMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=50, deadline=None)
TestDecideMachine = DecideMachine.TestCase
