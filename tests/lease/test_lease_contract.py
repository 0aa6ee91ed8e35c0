"""The Lease contract, run over every backend (FakeLease, DynamoLease on moto) on a fake clock.

One winner per race, tokens that only grow, renewals that keep the token, take-over only
after a whole TTL without renewal, a cut-off holder that stops acting before anyone may
take over, and the fair share of groups among live orchestrators.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import pytest

from failover.errors import CloudError
from failover.lease import Spreader, TableLease, fair_share

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


def test_racing_acquirers_of_a_vacant_lease_have_exactly_one_winner(rig: Rig) -> None:
    contenders = [rig.lease(f"o{n}") for n in range(8)]
    for group in ("g0", "g1", "g2", "g3", "g4"):
        answers = race(contenders, lambda lease, g=group: lease.acquire(g))

        assert sorted(answers, key=lambda a: a or 0)[-1] == 1
        assert answers.count(None) == len(contenders) - 1
        winner = contenders[answers.index(1)]
        assert [lease.check(group, 1) for lease in contenders].count(True) == 1
        assert winner.check(group, 1)


def test_racing_take_overs_of_an_expired_lease_have_exactly_one_winner(rig: Rig) -> None:
    dead = rig.lease("dead")
    assert dead.acquire("g") == 1
    contenders = [rig.lease(f"o{n}") for n in range(8)]
    assert all(lease.acquire("g") is None for lease in contenders)  # each starts watching
    rig.clock.advance(TTL_S)

    answers = race(contenders, lambda lease: lease.acquire("g"))

    assert answers.count(2) == 1
    assert answers.count(None) == len(contenders) - 1
    assert not dead.check("g", 1)


def test_renew_keeps_the_token_and_a_contender_never_takes_a_renewed_lease(rig: Rig) -> None:
    holder, contender = rig.lease("holder"), rig.lease("contender")
    token = holder.acquire("g")
    assert token == 1

    for second in range(1, 61):
        rig.clock.advance(1.0)
        if second % 5 == 0:
            assert holder.renew("g", token)
        assert contender.acquire("g") is None
        assert holder.check("g", token)


def test_an_expired_lease_is_taken_over_with_a_higher_token(rig: Rig) -> None:
    holder, contender = rig.lease("holder"), rig.lease("contender")
    assert holder.acquire("g") == 1
    assert contender.acquire("g") is None  # first sight of this version

    rig.clock.advance(TTL_S - 0.5)
    assert contender.acquire("g") is None  # not yet a whole TTL
    rig.clock.advance(0.5)
    assert contender.acquire("g") == 2

    assert contender.check("g", 2)
    assert not holder.check("g", 1)
    assert not holder.renew("g", 1)  # lost, and it says so
    assert holder.acquire("g") is None


def test_a_take_over_waits_a_whole_ttl_from_first_sight_however_old_the_lease(rig: Rig) -> None:
    # Clocks are never compared across hosts: the contender cannot know how old the
    # version is when it first reads it, so it waits a full TTL from then.
    holder = rig.lease("holder")
    assert holder.acquire("g") == 1
    rig.clock.advance(10 * TTL_S)
    late = rig.lease("late")

    assert late.acquire("g") is None
    rig.clock.advance(TTL_S / 2)
    assert late.acquire("g") is None
    rig.clock.advance(TTL_S / 2)
    assert late.acquire("g") == 2


def test_tokens_grow_with_every_take_over_and_release(rig: Rig) -> None:
    leases = [rig.lease(f"o{n}") for n in range(3)]
    tokens: list[int] = []
    holder = leases[0]
    token = holder.acquire("g")
    assert token is not None
    tokens.append(token)
    for turn in range(1, 7):
        successor = leases[turn % 3]
        if turn % 2:
            holder.release("g", token)
            assert not holder.check("g", token)
        else:
            assert successor.acquire("g") is None
            rig.clock.advance(TTL_S)
        taken = successor.acquire("g")
        assert taken is not None
        tokens.append(taken)
        holder, token = successor, taken

    assert tokens == list(range(1, 8))


def test_release_lets_another_take_at_once_and_a_stale_release_does_nothing(rig: Rig) -> None:
    first, second = rig.lease("first"), rig.lease("second")
    assert first.acquire("g") == 1
    first.release("g", 1)
    assert second.acquire("g") == 2

    first.release("g", 1)  # not ours any more: changes nothing
    assert second.check("g", 2)
    assert second.renew("g", 2)
    assert first.acquire("g") is None


def test_check_is_false_for_another_token_or_group(rig: Rig) -> None:
    lease = rig.lease("holder")
    assert lease.acquire("g") == 1

    assert lease.check("g", 1)
    assert not lease.check("g", 2)
    assert not lease.check("other", 1)
    assert not lease.renew("g", 2)
    assert lease.check("g", 1)


def test_acquire_by_the_holder_keeps_its_token(rig: Rig) -> None:
    lease = rig.lease("holder")
    assert lease.acquire("g") == 1
    rig.clock.advance(TTL_S - 1)
    assert lease.acquire("g") == 1  # refreshed: valid again from now
    rig.clock.advance(TTL_S - lease.margin_s - 1)
    assert lease.check("g", 1)


def test_a_cut_off_holder_stops_acting_before_anyone_may_take_over(rig: Rig) -> None:
    holder, contender = rig.lease("holder"), rig.lease("contender")
    assert holder.acquire("g") == 1
    start = rig.clock.monotonic()
    rig.cut(holder)
    stopped_at = taken_at = None

    for _ in range(int(3 * TTL_S * 2)):
        rig.clock.advance(0.5)
        with pytest.raises(CloudError):
            holder.renew("g", 1)  # unknown, not "lost": raised, never False
        acting = holder.check("g", 1)
        if not acting and stopped_at is None:
            stopped_at = rig.clock.monotonic() - start
        if contender.acquire("g") is not None:
            taken_at = rig.clock.monotonic() - start
            assert not acting, "two orchestrators acting on one group"
            break

    assert stopped_at is not None
    assert taken_at is not None
    assert stopped_at < TTL_S
    assert stopped_at <= TTL_S - holder.margin_s
    assert taken_at >= TTL_S


def test_a_holder_that_misses_one_renewal_keeps_its_lease(rig: Rig) -> None:
    holder = rig.lease("holder")
    assert holder.acquire("g") == 1
    rig.clock.advance(holder.renew_every_s)  # this renewal is lost
    rig.clock.advance(holder.renew_every_s)

    assert holder.check("g", 1)
    assert holder.renew("g", 1)
    assert holder.check("g", 1)


def test_holders_are_the_orchestrators_whose_heartbeat_changed_within_a_ttl(rig: Rig) -> None:
    leases = {name: rig.lease(name) for name in ("a", "b", "c")}
    for lease in leases.values():
        lease.heartbeat()
    observer = leases["a"]
    assert observer.holders() == ["a", "b", "c"]

    for _ in range(4):
        rig.clock.advance(TTL_S / 3)
        leases["a"].heartbeat()
        leases["b"].heartbeat()
        observer.holders()

    assert observer.holders() == ["a", "b"]
    assert rig.lease("newcomer").holders() == ["a", "b", "c", "newcomer"]


def test_fair_share_splits_groups_evenly_and_takes_over_a_dead_holders_share(rig: Rig) -> None:
    groups = [f"group-{n:05d}" for n in range(rig.groups)]
    spreaders = {name: Spreader(rig.lease(name)) for name in ("a", "b", "c")}

    def rounds(names: Sequence[str], count: int) -> None:
        for _ in range(count):
            for name in names:
                spreaders[name].rebalance(groups)
            rig.clock.advance(TTL_S / 3)

    rounds("abc", 3)
    held = {name: spreaders[name].held for name in "abc"}
    share = fair_share(len(groups), 3)
    assert all(share - 1 <= len(h) <= share for h in held.values())
    assert set().union(*held.values()) == set(groups)
    assert sum(len(h) for h in held.values()) == len(groups)
    dead_tokens = held["c"]

    rounds("ab", 8)  # c is dead: its heartbeat stalls for a TTL, then its leases for another
    after = {name: spreaders[name].held for name in "ab"}
    assert all(len(h) == fair_share(len(groups), 2) for h in after.values())
    assert set(after["a"]) | set(after["b"]) == set(groups)
    assert not set(after["a"]) & set(after["b"])
    for group, token in dead_tokens.items():
        new_token = after["a"].get(group) or after["b"][group]
        assert new_token > token
