"""The Lease contract, run over every backend (FakeLease, TableLease over DynamoDB on moto) on a fake clock.

One winner per race, tokens that only grow, a heartbeat that keeps every lease held, a
take-over only after a whole TTL without heartbeat, a cut-off holder that stops acting
before anyone may take over, a lapsed session that voids what it held, batches that one
refused claim does not spoil, and the fair share of groups among live orchestrators.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import pytest

from failover.coord.fence import Fence
from failover.coord.handover import take
from failover.coord.lease import TableLease
from failover.coord.spread import Spreader, fair_share
from failover.core.errors import CloudError

from .conftest import TTL_S, Rig


def race(
    contenders: Sequence[TableLease], attempt: Callable[[TableLease], int | None]
) -> list[int | None]:
    """Run `attempt` on every contender at once (threads released together); their answers."""
    barrier = threading.Barrier(len(contenders))
    answers: list[int | None] = [None] * len(contenders)

    def run(index: int) -> None:
        barrier.wait()
        answers[index] = attempt(contenders[index])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(contenders))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def live(rig: Rig, name: str, **options: object) -> TableLease:
    """An orchestrator that has begun its session (heartbeat written)."""
    lease = rig.lease(name, **options)
    lease.heartbeat()
    return lease


def test_racing_acquirers_of_a_vacant_lease_have_exactly_one_winner(rig: Rig) -> None:
    contenders = [live(rig, f"o{n}") for n in range(8)]
    for group in ("g0", "g1", "g2", "g3", "g4"):
        answers = race(contenders, lambda lease, g=group: lease.acquire(g))

        assert sorted(answers, key=lambda a: a or 0)[-1] == 1
        assert answers.count(None) == len(contenders) - 1
        winner = contenders[answers.index(1)]
        assert [lease.check(group, 1) for lease in contenders].count(True) == 1
        assert winner.check(group, 1)


def test_racing_take_overs_of_a_dead_holders_lease_have_exactly_one_winner(rig: Rig) -> None:
    dead = live(rig, "dead")
    assert dead.acquire("g") == 1
    contenders = [live(rig, f"o{n}") for n in range(8)]
    assert all(lease.acquire("g") is None for lease in contenders)  # each starts watching
    rig.clock.advance(TTL_S)
    for lease in contenders:
        lease.heartbeat()

    answers = race(contenders, lambda lease: lease.acquire("g"))

    assert answers.count(2) == 1
    assert answers.count(None) == len(contenders) - 1
    assert not dead.check("g", 1)


def test_one_heartbeat_keeps_every_lease_and_a_contender_never_takes_them(rig: Rig) -> None:
    holder, contender = live(rig, "holder"), live(rig, "contender")
    tokens = holder.acquire_many([f"g{n}" for n in range(5)])
    assert tokens == {f"g{n}": 1 for n in range(5)}

    for second in range(1, 61):
        rig.clock.advance(1.0)
        if second % 5 == 0:
            holder.heartbeat()
            contender.heartbeat()
        assert contender.acquire_many(list(tokens)) == {}
        assert all(holder.check(group, 1) for group in tokens)


def test_a_dead_holders_lease_is_taken_a_ttl_after_its_heartbeat_stops(rig: Rig) -> None:
    holder, contender = live(rig, "holder"), live(rig, "contender")
    assert holder.acquire("g") == 1
    assert contender.acquire("g") is None  # first sight of the holder's heartbeat

    rig.clock.advance(TTL_S - 0.5)
    contender.heartbeat()
    assert contender.acquire("g") is None  # not yet a whole TTL
    rig.clock.advance(0.5)
    assert contender.acquire("g") == 2

    assert contender.check("g", 2)
    assert not holder.check("g", 1)
    holder.heartbeat()  # it comes back: a new session, its old lease void
    assert holder.acquire("g") is None
    assert not holder.check("g", 1)


def test_a_take_over_waits_a_whole_ttl_from_first_sight_however_old_the_heartbeat(
    rig: Rig,
) -> None:
    # Clocks are never compared across hosts: the contender cannot know how old the
    # heartbeat is when it first reads it, so it waits a full TTL from then.
    holder = live(rig, "holder")
    assert holder.acquire("g") == 1
    rig.clock.advance(10 * TTL_S)
    late = live(rig, "late")

    assert late.acquire("g") is None
    rig.clock.advance(TTL_S / 2)
    late.heartbeat()
    assert late.acquire("g") is None
    rig.clock.advance(TTL_S / 2)
    assert late.acquire("g") == 2


def test_tokens_grow_with_every_take_over_and_release(rig: Rig) -> None:
    leases = [live(rig, f"o{n}") for n in range(3)]
    tokens: list[int] = []
    holder = leases[0]
    token = holder.acquire("g")
    assert token is not None
    tokens.append(token)
    for turn in range(1, 7):
        successor = leases[turn % 3]
        if turn % 2:
            holder.release({"g": token})
            assert not holder.check("g", token)
        else:
            assert successor.acquire("g") is None
            rig.clock.advance(TTL_S)
            successor.heartbeat()
        taken = successor.acquire("g")
        assert taken is not None
        tokens.append(taken)
        holder, token = successor, taken
        for lease in leases:
            lease.heartbeat()  # the dead holder of this turn lives on as a contender

    assert tokens == list(range(1, 8))


def test_release_lets_another_take_at_once_and_a_stale_release_does_nothing(rig: Rig) -> None:
    first, second = live(rig, "first"), live(rig, "second")
    assert first.acquire("g") == 1
    first.release({"g": 1})
    assert second.acquire("g") == 2

    first.release({"g": 1})  # not ours any more: changes nothing
    assert second.check("g", 2)
    assert first.acquire("g") is None


def test_check_is_false_for_another_token_or_group(rig: Rig) -> None:
    lease = live(rig, "holder")
    assert lease.acquire("g") == 1

    assert lease.check("g", 1)
    assert not lease.check("g", 2)
    assert not lease.check("other", 1)


def test_acquire_by_the_holder_keeps_its_token(rig: Rig) -> None:
    lease = live(rig, "holder")
    assert lease.acquire("g") == 1
    rig.clock.advance(lease.renew_every_s)
    lease.heartbeat()
    assert lease.acquire("g") == 1
    assert lease.check("g", 1)


def test_nothing_is_taken_outside_a_live_session(rig: Rig) -> None:
    lease = rig.lease("silent")  # never heartbeat: nobody could tell it is alive
    assert lease.acquire_many(["g", "h"]) == {}
    assert rig.lease("other").holders() == ["other"]
    lease.heartbeat()
    assert lease.acquire_many(["g", "h"]) == {"g": 1, "h": 1}


def test_a_cut_off_holder_stops_acting_before_anyone_may_take_over(rig: Rig) -> None:
    holder, contender = live(rig, "holder"), live(rig, "contender")
    assert holder.acquire("g") == 1
    start = rig.clock.monotonic()
    rig.cut(holder)
    stopped_at = taken_at = None

    for _ in range(int(3 * TTL_S * 2)):
        rig.clock.advance(0.5)
        with pytest.raises(CloudError):
            holder.heartbeat()  # unknown, not "lost": raised
        acting = holder.check("g", 1)
        if not acting and stopped_at is None:
            stopped_at = rig.clock.monotonic() - start
        contender.heartbeat_if_due()
        if contender.acquire("g") is not None:
            taken_at = rig.clock.monotonic() - start
            assert not acting, "two orchestrators acting on one group"
            break

    assert stopped_at is not None
    assert taken_at is not None
    assert stopped_at <= TTL_S - holder.margin_s
    assert TTL_S <= taken_at <= TTL_S + 0.5


def test_a_holder_that_misses_one_heartbeat_keeps_its_leases(rig: Rig) -> None:
    holder = live(rig, "holder")
    assert holder.acquire("g") == 1
    rig.clock.advance(holder.renew_every_s)  # this heartbeat is lost
    rig.clock.advance(holder.renew_every_s)

    assert holder.check("g", 1)
    holder.heartbeat()
    assert holder.check("g", 1)
    rig.clock.advance(TTL_S - holder.margin_s - 0.1)
    assert holder.check("g", 1)


def test_a_lapsed_session_voids_what_it_held_even_if_nobody_took_it(rig: Rig) -> None:
    holder = live(rig, "holder")
    assert holder.acquire_many(["g", "h"]) == {"g": 1, "h": 1}
    rig.cut(holder)
    rig.clock.advance(TTL_S - holder.margin_s)
    rig.uncut(holder)

    holder.heartbeat()  # lands after the session ran out: others may have judged it dead
    assert not holder.check("g", 1)
    assert holder.held() == {}
    assert holder.acquire_many(["g", "h"]) == {"g": 1, "h": 1}  # its own items: same tokens
    assert holder.check("g", 1)


def test_a_holder_that_came_back_is_not_taken_over_on_a_stale_judgement(rig: Rig) -> None:
    holder, contender = live(rig, "holder"), live(rig, "contender")
    assert holder.acquire("g") == 1
    assert contender.acquire("g") is None  # the contender starts watching the holder
    rig.clock.advance(TTL_S)  # by now the contender would judge it dead...
    holder.heartbeat()  # ...but it came back (a new session) and took its item again
    assert holder.acquire("g") == 1
    contender.heartbeat()

    # The heartbeats are read after the lease item: the contender sees the new one.
    assert contender.acquire("g") is None
    assert holder.check("g", 1)


def test_one_refused_claim_does_not_spoil_the_rest_of_its_batch(rig: Rig) -> None:
    other, lease = live(rig, "other"), live(rig, "me")
    groups = [f"g{n:03d}" for n in range(min(rig.groups, 250))]
    taken_by_other = groups[len(groups) // 2]
    # Another orchestrator takes one group between our read and our first batch write.
    rig.before_write(lease, lambda: other.acquire(taken_by_other))

    before = rig.calls(lease)
    tokens = lease.acquire_many(groups)
    calls = rig.calls(lease) - before

    assert set(tokens) == set(groups) - {taken_by_other}
    assert other.check(taken_by_other, 1)
    # Reads and writes in batches of 100; the refused batch names the refused claim, and the
    # rest of it is sent again: one call more, not a claim at a time.
    batches = -(-len(groups) // 100)
    assert calls <= batches + 1 + batches + 1, calls
    assert all(lease.check(group, 1) for group in tokens)
    assert not lease.check(taken_by_other, 1)


def test_holders_are_the_daemons_whose_heartbeat_changed_within_a_ttl(rig: Rig) -> None:
    leases = {name: live(rig, name) for name in ("a", "b", "c")}
    live(rig, "one-shot", spreads=False)  # holds what it takes, gets no share
    observer = leases["a"]
    assert observer.holders() == ["a", "b", "c"]

    for _ in range(4):
        rig.clock.advance(TTL_S / 3)
        leases["a"].heartbeat()
        leases["b"].heartbeat()
        observer.holders()

    assert observer.holders() == ["a", "b"]
    assert live(rig, "newcomer").holders() == ["a", "b", "c", "newcomer"]


def test_a_one_shot_take_waits_out_a_dead_holder_and_gives_up_on_a_live_one(rig: Rig) -> None:
    dead, alive = live(rig, "dead"), live(rig, "alive")
    assert dead.acquire("of-dead") == 1
    assert alive.acquire("of-alive") == 1
    command = rig.lease("command", spreads=False)

    def sleep(seconds: float) -> None:
        rig.clock.advance(seconds)
        alive.heartbeat_if_due()

    taken = take(command, ["free", "of-dead", "of-alive"], sleep)

    assert taken.tokens == {"free": 1, "of-dead": 2}
    assert set(taken.refused) == {"of-alive"}
    assert "alive" in taken.refused["of-alive"]
    assert alive.check("of-alive", 1)
    assert not dead.check("of-dead", 1)


def test_fair_share_splits_groups_evenly_and_takes_a_dead_holders_share_within_a_ttl(
    rig: Rig,
) -> None:
    groups = [f"group-{n:05d}" for n in range(rig.groups)]
    leases = {name: rig.lease(name) for name in ("a", "b", "c")}
    spreaders = {name: Spreader(lease) for name, lease in leases.items()}
    round_s = TTL_S / 6

    def rounds(names: Sequence[str], count: int) -> None:
        for _ in range(count):
            for name in names:
                leases[name].heartbeat_if_due()  # the daemon's Keeper
                spreaders[name].rebalance(groups)
            rig.clock.advance(round_s)

    rounds("abc", 3)
    held = {name: spreaders[name].held for name in "abc"}
    share = fair_share(len(groups), 3)
    assert all(share - 1 <= len(h) <= share for h in held.values())
    assert set().union(*held.values()) == set(groups)
    assert sum(len(h) for h in held.values()) == len(groups)
    dead_tokens = held["c"]

    # c dies now. Its last heartbeat was first seen within a round; a TTL later, the next
    # round takes its groups over: within TTL + 2 rounds.
    needed = 0
    while not all(len(spreaders[n].held) == fair_share(len(groups), 2) for n in "ab"):
        rounds("ab", 1)
        needed += 1
        assert needed * round_s <= TTL_S + 2 * round_s, "c's groups not taken over in time"
    after = {name: spreaders[name].held for name in "ab"}
    assert set(after["a"]) | set(after["b"]) == set(groups)
    assert not set(after["a"]) & set(after["b"])
    for group, token in dead_tokens.items():
        new_token = after["a"].get(group) or after["b"][group]
        assert new_token == token + 1


# --- handing a daemon's group over to `failover move` (failover/coord/handover.py) ---------


def daemon_of(rig: Rig, name: str, groups: Sequence[str]) -> tuple[TableLease, Spreader, Fence]:
    """A live daemon holding `groups` after one lease round."""
    lease = live(rig, name)
    fence = Fence(lease)
    spreader = Spreader(lease, fence)
    spreader.rebalance(groups)
    assert set(fence.tokens()) == set(groups)
    return lease, spreader, fence


def test_a_daemon_hands_an_asked_group_over_at_its_next_round_then_takes_it_back(
    rig: Rig,
) -> None:
    """Rule: `move` asks in its heartbeat; the holding daemon releases the group at its next
    round and takes none asked for; once the command releases it, the daemon takes it back."""
    daemon, spreader, fence = daemon_of(rig, "daemon", ["g", "h"])
    command = live(rig, "command", spreads=False)
    rounds: list[float] = []

    def sleep(seconds: float) -> None:  # the daemon's keeper and lease rounds go on meanwhile
        rig.clock.advance(seconds)
        daemon.heartbeat_if_due()
        spreader.rebalance(["g", "h"])
        rounds.append(seconds)

    taken = take(command, ["g"], sleep, handover=True)

    assert taken.tokens == {"g": 2}
    assert taken.refused == {}
    assert len(rounds) == 1  # handed over at the first round after the ask
    assert set(fence.tokens()) == {"h"}
    assert command.check("g", 2)
    sleep(TTL_S / 6)  # the ask is withdrawn once taken; the command holds it: nobody takes it
    assert set(fence.tokens()) == {"h"}
    command.release(taken.tokens)
    sleep(TTL_S / 6)
    assert fence.tokens() == {"g": 3, "h": 1}


def test_a_group_pinned_by_a_move_of_its_daemon_is_handed_over_only_after_that_move(
    rig: Rig,
) -> None:
    """Rule: a lease round never pulls a group from under its own process's move."""
    daemon, spreader, fence = daemon_of(rig, "daemon", ["g"])
    assert fence.pin("g")
    command = live(rig, "command", spreads=False)
    rounds = 0

    def sleep(seconds: float) -> None:
        nonlocal rounds
        rig.clock.advance(seconds)
        daemon.heartbeat_if_due()
        spreader.rebalance(["g"])
        rounds += 1
        assert fence.holds("g") or rounds > 3
        if rounds == 3:
            fence.unpin("g")  # the daemon's move of g is over

    taken = take(command, ["g"], sleep, handover=True)
    assert taken.tokens == {"g": 2}
    assert rounds == 4


def test_the_ask_of_a_dead_command_is_ignored_a_ttl_later_and_the_daemon_takes_the_group_back(
    rig: Rig,
) -> None:
    """Rule: an ask lives and dies with its heartbeat: a command killed while waiting leaves
    the group unheld for at most a TTL and a round."""
    daemon, spreader, fence = daemon_of(rig, "daemon", ["g"])
    command = live(rig, "command", spreads=False)
    command.ask(["g"])  # ... and the command is killed here
    spreader.rebalance(["g"])
    assert fence.tokens() == {}  # handed over, and not taken again while the ask lives
    waited = 0.0
    while "g" not in fence.tokens():
        rig.clock.advance(TTL_S / 6)
        waited += TTL_S / 6
        daemon.heartbeat_if_due()
        spreader.rebalance(["g"])
        assert waited <= TTL_S + 2 * TTL_S / 6, "the dead command's ask still honoured"
    assert waited >= TTL_S
    assert fence.tokens() == {"g": 2}


def test_a_command_does_not_ask_another_command_and_gives_up_once_it_is_seen_alive(
    rig: Rig,
) -> None:
    """Rule: only daemons hand groups over: a live one-shot holder (another `move`) is refused."""
    first = live(rig, "first", spreads=False)
    assert first.acquire("g") == 1
    second = live(rig, "second", spreads=False)

    def sleep(seconds: float) -> None:
        rig.clock.advance(seconds)
        first.heartbeat_if_due()

    taken = take(second, ["g"], sleep, handover=True)
    assert taken.tokens == {}
    assert "first (another failover move, check or Lambda run)" in taken.refused["g"]
    assert first.check("g", 1)
    assert rig.lease("observer").requested() == {}


def test_the_sole_daemon_of_a_state_file_takes_a_dead_daemons_groups_at_once(rig: Rig) -> None:
    """Rule: a daemon holding the SQLite state file's lock knows every other daemon there is
    dead (the OS released its lock), so a restart need not wait a TTL; one-shot holders it
    still waits out."""
    old = live(rig, "old")
    assert old.acquire("g") == 1
    command = live(rig, "command", spreads=False)
    assert command.acquire("h") == 1
    restarted = live(rig, "restarted", sole_daemon=True)
    assert restarted.acquire_many(["g", "h"]) == {"g": 2}
    assert restarted.holders() == ["restarted"]
