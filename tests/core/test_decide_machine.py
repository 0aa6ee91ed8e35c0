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
from failover.core.decide import Decision, Facts, decide, is_down, network_suspect, update_health
from failover.core.model import Attachment, Eni, GroupView, Instance, Interface, Mode
from failover.core.ports import MemberHealth

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
# One draw per pass (drawing dominates the run time): 0-1 our own network blacks out,
# 2-9 one member's probe flakes, anything else is a clean pass.
BLACKOUT = 1
passes_st = st.lists(st.integers(0, 29), min_size=1, max_size=3)
Passes = list[int]


class DecideMachine(RuleBasedStateMachine):
    """One ENI-mode group: A, B, C in us-east-1a and, when drawn, D in us-east-1b.

    The simulated AWS is the ENI's owner and each member's EC2 state; a move is applied
    at once (the engine's steps are tested elsewhere) and its time kept in `move_times`.
    """

    def __init__(self) -> None:
        super().__init__()
        self.now = 1_000_000.0
        self.move_times: list[float] = []
        self.owned_moves: list[float] = []  # moves decided while someone owned the ENI
        self.held = False
        self.moves = 0
        self.racing: tuple[str, str] | None = None  # an EC2 change landing mid-pass

    @initialize(
        cross_az_at=st.one_of(st.none(), st.integers(0, 3)),
        fall=st.integers(1, 4),
        rise=st.integers(1, 3),
        interval=st.sampled_from([1.0, 10.0, 60.0, 300.0]),
        cooldown_passes=st.sampled_from([1, 3, 10]),
        max_moves=st.integers(1, 4),
        failback=st.sampled_from(["manual", "auto"]),
        owner=st.sampled_from([A, B, C, None]),
        history=st.lists(st.integers(1, 40), max_size=4, unique=True),
        warmup=st.lists(st.lists(st.booleans(), max_size=6), min_size=4, max_size=4),
    )
    def setup(
        self,
        cross_az_at: int | None,
        fall: int,
        rise: int,
        interval: float,
        cooldown_passes: int,
        max_moves: int,
        failback: str,
        owner: str | None,
        history: list[int],
        warmup: list[list[bool]],
    ) -> None:
        # D, in another AZ, sits anywhere in the preference order (a misconfiguration).
        ids = (A, B, C)
        if cross_az_at is not None:
            ids = (*ids[:cross_az_at], D, *ids[cross_az_at:])
        self.policy = Policy(
            interval_s=interval,
            timeout_s=min(1.0, interval),
            fall=fall,
            rise=rise,
            cooldown_s=interval * cooldown_passes,
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
        self.service_mode = dict.fromkeys(ids, "up")  # up | down | flapping
        # Counters the store remembers from earlier passes (a cron check starts from them):
        # folded from a drawn probe history, so only reachable counters appear.
        self.health = {i: MemberHealth(i) for i in ids}
        for i, results in zip(ids, warmup, strict=False):
            for n, ok in enumerate(results):
                at = self.now - (len(results) - n) * interval
                self.health[i] = update_health(self.health[i], ok, "earlier", at, self.policy)
        self.owner = owner
        # Moves the store remembers from before this run (passes ago), within the hour's limit.
        recent = [self.now - ago * interval for ago in history]
        self.move_times = sorted(t for t in recent if self.now - t < HOUR)[-max_moves:]
        self.owned_moves = list(self.move_times)

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

    # Every rule runs a few passes after its event: hypothesis enables a random subset of
    # rules per example (swarm testing), and time must run for anything to fall or rise.

    @rule(passes=passes_st)
    def ticks(self, passes: Passes) -> None:
        """Nothing changes but time and flaky probes."""
        self.run(passes)

    @rule(member=members_st, mode=st.sampled_from(["up", "down", "flapping"]), passes=passes_st)
    def service(self, member: str, mode: str, passes: Passes) -> None:
        """The service on a member dies, comes back, or flaps: fails every other probe,
        which hysteresis alone would keep counting as healthy."""
        if member in self.service_mode:
            self.service_mode[member] = mode
        self.run(passes)

    @rule(
        member=members_st,
        state=st.sampled_from(STATES),
        racing=st.booleans(),
        passes=passes_st,
    )
    def ec2_state(self, member: str, state: str, racing: bool, passes: Passes) -> None:
        """EC2 changes a member's state, before the next pass or (racing) between its
        probes and its observe: a member may pass its probe and then be seen stopped."""
        if racing:
            self.racing = (member, state)
        else:
            self.set_state(member, state)
        self.run(passes)

    def set_state(self, member: str, state: str) -> None:
        """Terminated is for ever, and drops the ENI (DeleteOnTermination off: it survives)."""
        if member in self.state and self.state[member] != "terminated":
            self.state[member] = state
            if state == "terminated" and self.owner == member:
                self.owner = None

    @rule(held=st.integers(0, 3).map(lambda n: n == 0), passes=passes_st)
    def operator(self, held: bool, passes: Passes) -> None:
        """An operator holds the group, or lifts the hold (`failover move --force`)."""
        self.held = held
        self.run(passes)

    def run(self, passes: Passes) -> None:
        for noise in passes:
            self.tick(noise)

    def tick(self, noise: int) -> None:
        """One pass: probe every member, fold, decide, check, apply the move."""
        ids = self.group.instance_ids
        # A probe passes when EC2 says running and the service answers, but for a rare
        # flake; a blackout is our own network failing every probe of the pass.
        blackout = noise <= BLACKOUT
        member = (noise - 2) // 2  # 2-9: that member's probe flakes
        flaky = ids[member] if 0 <= member < len(ids) else None
        self.now += self.policy.interval_s
        odd = round(self.now / self.policy.interval_s) % 2 == 1
        answers = {"up": True, "down": False, "flapping": odd}
        results = {
            i: not blackout
            and self.state[i] == "running"
            and answers[self.service_mode[i]]
            and i != flaky
            for i in ids
        }
        self.health = {
            i: update_health(self.health[i], ok, "ok" if ok else "failed", self.now, self.policy)
            for i, ok in results.items()
        }
        suspect = network_suspect(list(results.values()))
        if self.racing is not None:
            self.set_state(*self.racing)
            self.racing = None
        v = self.view()
        facts = Facts(
            now=self.now,
            move_times=tuple(self.move_times),
            held=self.held,
            held_reason="held in the simulation" if self.held else "",
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
        if d.source_failed:  # a failover picks the highest-preference eligible member
            assert target == self.eligible(active)[0], d
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
        assert not self.eligible(active), d
        assert d.action == "degraded", d

    def eligible(self, active: str | None) -> list[str]:
        """The failover targets, worked out here rather than by the planner: in preference
        order, every other member that is running, in the AZ, and healthy by its counters."""
        return [
            i
            for i in self.group.instance_ids
            if i != active
            and self.state[i] == "running"
            and self.az[i] == AZ
            and self.health[i].healthy
            and self.health[i].failures < self.policy.fall
        ]

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
