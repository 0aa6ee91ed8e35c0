"""The Store contract, run over every backend: journal, history, counters, crashes, concurrency.

Tests speak only the `failover.core.ports.Store` protocol and `open_store(StateSettings)`, so a
new backend joins by adding a param to the `state_settings` fixture.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

import failover
from failover.config import StateSettings
from failover.core.errors import ConfigError, FailoverError
from failover.core.ports import (
    GroupMemory,
    GroupState,
    MemberHealth,
    MoveRecord,
    StepRecord,
    Store,
)
from failover.wiring import open_store

StoreFactory = Callable[[], Store]

# The directory holding the `failover` package, so child processes import this tree.
SOURCE_ROOT = str(Path(failover.__file__).resolve().parent.parent)

# Runs in a child: opens the store named by argv[1]; the rest of the script follows.
CHILD_PRELUDE = """
import sys
from failover.config import StateSettings
from failover.core.ports import MoveRecord, StepRecord
from failover.wiring import open_store

store = open_store(StateSettings.model_validate_json(sys.argv[1]))
"""


def spawn(body: str, settings: StateSettings, *args: str) -> subprocess.Popen[str]:
    """Start a Python child that opens the store of `settings` and runs `body`."""
    return subprocess.Popen(
        [sys.executable, "-c", CHILD_PRELUDE + body, settings.model_dump_json(), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": SOURCE_ROOT},
    )


def make_move(
    move_id: str, group: str = "db", started_at: float = 1000.0, **fields: object
) -> MoveRecord:
    """A journaled move with plausible fields."""
    values: dict[str, object] = {
        "move_id": move_id,
        "group": group,
        "mode": "eni",
        "resource": "eni-0123456789abcdef0",
        "source": "i-0aaaaaaaaaaaaaaaa",
        "target": "i-0bbbbbbbbbbbbbbbb",
        "caller": "arn:aws:sts::123456789012:assumed-role/failover/i-0ccc",
        "reason": "primary i-0aa failed 3 tcp probes",
        "started_at": started_at,
        **fields,
    }
    return MoveRecord(**values)  # type: ignore[arg-type]


def make_step(n: int, phase: str = "done", kind: str = "detach") -> StepRecord:
    """The n-th step event of a move."""
    return StepRecord(
        kind=kind,
        description=f"step {n}",
        phase=phase,
        at=1000.0 + n,
        elapsed_s=0.25 * n,
        detail=f"detail {n}",
    )


def test_intent_is_visible_to_another_store_at_once(
    store: Store, store_factory: StoreFactory
) -> None:
    move = make_move("m1", token=7, forced=True, source=None)
    store.begin_move(move)

    assert store_factory().open_moves() == [move]


def test_whether_the_operator_forced_is_kept_apart_from_force_being_allowed(
    store: Store, store_factory: StoreFactory
) -> None:
    """Rule: history's `forced` is the operator's --force, not the engine's Force permission."""
    automatic = make_move("m1", forced=True, operator_forced=False)
    manual = make_move("m2", forced=True, operator_forced=True)
    store.begin_move(automatic)
    store.begin_move(manual)

    by_id = {m.move_id: m for m in store_factory().open_moves()}
    assert (by_id["m1"].forced, by_id["m1"].operator_forced) == (True, False)
    assert (by_id["m2"].forced, by_id["m2"].operator_forced) == (True, True)


def test_steps_are_appended_in_order_and_returned_with_the_move(
    store: Store, store_factory: StoreFactory
) -> None:
    store.begin_move(make_move("m1"))
    steps = [
        make_step(1, "started"),
        make_step(2, "done"),
        make_step(3, "skipped", "attach"),
        make_step(4, "failed", "attach"),
    ]
    for step in steps:
        store.record_step("m1", step)

    (seen,) = store_factory().open_moves()
    assert seen.steps == tuple(steps)
    assert store.history()[0].steps == tuple(steps)
    assert store.moves_since("db", 0.0)[0].steps == tuple(steps)


def test_begin_move_keeps_steps_it_already_carries(store: Store) -> None:
    move = make_move("m1", steps=(make_step(1, "started"),))
    store.begin_move(move)
    store.record_step("m1", make_step(2))

    assert store.open_moves()[0].steps == (make_step(1, "started"), make_step(2))


def test_finish_move_closes_it_and_history_keeps_the_outcome(
    store: Store, store_factory: StoreFactory
) -> None:
    store.begin_move(make_move("m1"))
    store.record_step("m1", make_step(1))
    store.finish_move("m1", "succeeded", 1010.5, "eni-0123 now on i-0bb")

    other = store_factory()
    assert other.open_moves() == []
    assert other.history() == [
        make_move(
            "m1",
            outcome="succeeded",
            finished_at=1010.5,
            detail="eni-0123 now on i-0bb",
            steps=(make_step(1),),
        )
    ]


def test_open_moves_are_oldest_first_and_filtered_by_group(store: Store) -> None:
    store.begin_move(make_move("late", started_at=30.0))
    store.begin_move(make_move("early", started_at=10.0))
    store.begin_move(make_move("web", group="web", started_at=20.0))
    store.begin_move(make_move("done", started_at=5.0))
    store.finish_move("done", "failed", 6.0)

    assert [m.move_id for m in store.open_moves()] == ["early", "web", "late"]
    assert [m.move_id for m in store.open_moves("db")] == ["early", "late"]
    assert [m.move_id for m in store.open_moves("web")] == ["web"]
    assert store.open_moves("nothing") == []


def test_history_is_newest_first_filtered_by_group_and_limited(store: Store) -> None:
    for n in range(6):
        group = "db" if n % 2 == 0 else "web"
        store.begin_move(make_move(f"m{n}", group=group, started_at=100.0 + n))
        if n < 5:
            store.finish_move(f"m{n}", "succeeded", 100.5 + n)

    assert [m.move_id for m in store.history()] == ["m5", "m4", "m3", "m2", "m1", "m0"]
    assert [m.move_id for m in store.history("db")] == ["m4", "m2", "m0"]
    assert [m.move_id for m in store.history("web", limit=2)] == ["m5", "m3"]
    assert [m.move_id for m in store.history(limit=1)] == ["m5"]
    assert store.history()[0].outcome == "in-progress"
    assert store.history("nothing") == []


def test_moves_since_includes_the_boundary_and_only_the_group(store: Store) -> None:
    store.begin_move(make_move("old", started_at=100.0))
    store.begin_move(make_move("edge", started_at=200.0))
    store.begin_move(make_move("new", started_at=300.0))
    store.begin_move(make_move("web", group="web", started_at=250.0))
    store.finish_move("new", "refused", 301.0)

    assert {m.move_id for m in store.moves_since("db", 200.0)} == {"edge", "new"}
    assert store.moves_since("db", 301.0) == []
    assert [m.move_id for m in store.moves_since("web", 0.0)] == ["web"]


def test_health_is_upserted_per_member_and_group(store: Store, store_factory: StoreFactory) -> None:
    assert store.load_health("db") == {}
    aa = MemberHealth("i-0aa", healthy=True, successes=5, failures=0, changed_at=1.0)
    bb = MemberHealth("i-0bb", healthy=False, failures=3, reason="tcp refused", changed_at=2.0)
    store.save_health("db", [aa, bb])
    store.save_health("web", [MemberHealth("i-0aa", healthy=False, failures=1)])

    aa_failing = MemberHealth(
        "i-0aa", healthy=True, successes=0, failures=1, changed_at=3.0, probed_at=4.5
    )
    store.save_health("db", [aa_failing])

    other = store_factory()
    assert other.load_health("db") == {"i-0aa": aa_failing, "i-0bb": bb}
    assert other.load_health("web") == {"i-0aa": MemberHealth("i-0aa", healthy=False, failures=1)}


def test_group_state_round_trips_and_defaults(store: Store, store_factory: StoreFactory) -> None:
    assert store.load_group_state("db") == GroupState(group="db")
    held = GroupState("db", held=True, held_reason="4 moves in 1h", status="held", updated_at=9.5)
    store.save_group_state(held)
    assert store_factory().load_group_state("db") == held

    released = GroupState("db", status="degraded", updated_at=10.0)
    store.save_group_state(released)
    assert store_factory().load_group_state("db") == released
    assert store.load_group_state("web") == GroupState(group="web")


def test_status_and_hold_are_written_alone_so_neither_undoes_the_other(
    store: Store, store_factory: StoreFactory
) -> None:
    """Rule: a pass's status write keeps an operator's hold written after the pass read the
    state, and a hold keeps the status; `held_by` "" releases."""
    store.save_status("db", "degraded", 1.0)
    assert store_factory().load_group_state("db") == GroupState(
        "db", status="degraded", updated_at=1.0
    )
    store.save_hold("db", "operator", "patching the kernel", 2.0)
    store.save_status("db", "ok", 3.0)  # a pass that read the state before the hold
    held = store_factory().load_group_state("db")
    assert held == GroupState(
        "db",
        held=True,
        held_reason="patching the kernel",
        status="ok",
        updated_at=3.0,
        held_by="operator",
    )
    store.save_hold("db", "", "ignored when releasing", 4.0)
    assert store_factory().load_group_state("db") == GroupState("db", status="ok", updated_at=4.0)
    store.save_hold("web", "flap-limit", "3 moves in the last hour", 5.0)
    assert store_factory().load_group_state("web") == GroupState(
        "web",
        held=True,
        held_reason="3 moves in the last hour",
        status="ok",
        updated_at=5.0,
        held_by="flap-limit",
    )


def test_a_move_keeps_its_driver_and_os_user(store: Store, store_factory: StoreFactory) -> None:
    """Rule: the history names what drove each move and, for a person, the OS user (None kept)."""
    store.begin_move(make_move("manual", driver="move", os_user="alice (sudo to root)"))
    store.begin_move(make_move("auto", started_at=2000.0, driver="daemon"))
    found = {m.move_id: m for m in store_factory().history("db")}
    assert (found["manual"].driver, found["manual"].os_user) == ("move", "alice (sudo to root)")
    assert (found["auto"].driver, found["auto"].os_user) == ("daemon", None)


def test_load_groups_answers_what_the_per_group_reads_answer(
    store: Store, store_factory: StoreFactory
) -> None:
    """Rule: a pass's batched read says, group by group, what load_health (of the members
    asked about), load_group_state and moves_since (start times) say."""
    aa = MemberHealth("i-0aa", healthy=True, successes=5, changed_at=1.0)
    bb = MemberHealth("i-0bb", failures=3, reason="tcp refused", changed_at=2.0)
    cc = MemberHealth("i-0cc", healthy=True, successes=9)
    store.save_health_many({"db": [aa, bb], "web": [cc]})
    store.save_health("db", [MemberHealth("i-0gone", failures=7)])  # no longer a member
    held = GroupState("web", held=True, held_reason="flap", status="held", updated_at=5.0)
    store.save_group_state(held)
    store.begin_move(make_move("old", started_at=100.0))
    store.begin_move(make_move("edge", started_at=200.0))
    store.begin_move(make_move("new", started_at=300.0))
    store.finish_move("new", "refused", 301.0)
    store.begin_move(make_move("web", group="web", started_at=250.0))
    asked = {"db": ["i-0aa", "i-0bb", "i-0new"], "web": ["i-0cc"], "fresh": ["i-0dd"]}

    other = store_factory()
    memory = other.load_groups(asked, 200.0)

    assert memory == {
        "db": GroupMemory("db", {"i-0aa": aa, "i-0bb": bb}, GroupState("db"), (200.0, 300.0)),
        "web": GroupMemory("web", {"i-0cc": cc}, held, (250.0,)),
        "fresh": GroupMemory("fresh", {}, GroupState("fresh"), ()),
    }
    for group, ids in asked.items():
        health = {i: h for i, h in other.load_health(group).items() if i in ids}
        times = tuple(m.started_at for m in other.moves_since(group, 200.0))
        assert memory[group] == GroupMemory(group, health, other.load_group_state(group), times)
    assert other.load_groups({}, 0.0) == {}


def test_eth0s_are_remembered_apart_from_the_counters(
    store: Store, store_factory: StoreFactory
) -> None:
    """Rule: a member's eth0, once a read showed it, is found by the next process before it
    reads AWS (load_groups), per group and member asked about; health writes never erase it,
    and an eth0 alone is no health verdict (the member stays never probed)."""
    aa = MemberHealth("i-0aa", healthy=True, successes=5, changed_at=1.0, probed_at=1.0)
    store.save_health("db", [aa])
    store.save_eth0s({"db": {"i-0aa": "eni-0a", "i-0bb": "eni-0b"}, "web": {"i-0cc": "eni-0c"}})
    store.save_health_many({"db": [replace(aa, successes=6, probed_at=2.0)]})  # a later pass
    store.save_eth0s({})

    other = store_factory()
    memory = other.load_groups({"db": ["i-0aa", "i-0bb"], "web": ["i-0cc"], "new": ["i-0dd"]}, 0)
    assert memory["db"].eth0s == {"i-0aa": "eni-0a", "i-0bb": "eni-0b"}
    assert memory["db"].health == {"i-0aa": replace(aa, successes=6, probed_at=2.0)}
    assert other.load_health("db") == {"i-0aa": replace(aa, successes=6, probed_at=2.0)}
    assert memory["web"].eth0s == {"i-0cc": "eni-0c"}
    assert (memory["web"].health, other.load_health("web")) == ({}, {})
    assert memory["new"].eth0s == {}
    assert other.load_groups({"db": ["i-0bb"]}, 0)["db"].eth0s == {"i-0bb": "eni-0b"}

    other.save_health("web", [MemberHealth("i-0cc", failures=1, probed_at=3.0)])
    assert store_factory().load_groups({"web": ["i-0cc"]}, 0)["web"] == GroupMemory(
        "web",
        {"i-0cc": MemberHealth("i-0cc", failures=1, probed_at=3.0)},
        GroupState("web"),
        (),
        {"i-0cc": "eni-0c"},
    )


def test_load_groups_sees_every_move_begun_since_it_last_read(
    store: Store, store_factory: StoreFactory
) -> None:
    """Rule: the flap limit and the cooldown never miss a move, however the moves came
    (this store, another one, before or after the last read)."""
    store.begin_move(make_move("before", started_at=1000.0))
    assert store.load_groups({"db": []}, 900.0)["db"].move_times == (1000.0,)

    store.begin_move(make_move("mine", started_at=1500.0))
    store_factory().begin_move(make_move("theirs", started_at=1200.0))
    store_factory().begin_move(make_move("other group", group="web", started_at=1300.0))

    again = store_factory()
    assert again.load_groups({"db": []}, 900.0)["db"].move_times == (1000.0, 1200.0, 1500.0)
    assert again.load_groups({"db": []}, 1200.0)["db"].move_times == (1200.0, 1500.0)
    assert store.load_groups({"db": []}, 100.0)["db"].move_times == (1000.0, 1200.0, 1500.0)
    assert store.load_groups({"db": [], "web": []}, 1501.0)["db"].move_times == ()


def test_batched_reads_and_writes_cover_more_groups_than_one_request_takes(
    store: Store, store_factory: StoreFactory
) -> None:
    """Rule: batching is invisible: 150 groups of 3 members (more than 100 keys or writes a
    request) round-trip, and a group's members are written together."""
    health = {
        f"g{n}": [MemberHealth(f"i-{n}-{k}", successes=n + k) for k in range(3)] for n in range(150)
    }
    health["big"] = [MemberHealth(f"i-big-{k}", failures=k) for k in range(130)]
    store.save_health_many(health)

    other = store_factory()
    memory = other.load_groups({g: [m.instance_id for m in ms] for g, ms in health.items()}, 0.0)
    assert {g: dict(m.health) for g, m in memory.items()} == {
        g: {m.instance_id: m for m in ms} for g, ms in health.items()
    }
    assert other.load_health("g149") == {m.instance_id: m for m in health["g149"]}


def test_open_move_groups_names_the_groups_open_moves_names(store: Store) -> None:
    assert store.open_move_groups() == set()
    store.begin_move(make_move("a", started_at=10.0))
    store.begin_move(make_move("b", started_at=20.0))
    store.begin_move(make_move("w", group="web|odd#name", started_at=30.0))
    store.begin_move(make_move("done", group="done", started_at=40.0, outcome="succeeded"))

    assert (
        store.open_move_groups() == {m.group for m in store.open_moves()} == {"db", "web|odd#name"}
    )
    store.finish_move("a", "succeeded", 11.0)
    assert store.open_move_groups() == {"db", "web|odd#name"}
    store.finish_move("b", "failed", 21.0)
    assert store.open_move_groups() == {"web|odd#name"}


def test_calls_from_many_threads_lose_nothing(store: Store) -> None:
    store.begin_move(make_move("m1"))

    def writer(n: int) -> None:
        for i in range(25):
            store.record_step("m1", make_step(i, kind=f"t{n}"))
            store.save_health("db", [MemberHealth(f"i-{n}", successes=i)])
            store.open_moves()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    steps = store.open_moves()[0].steps
    for n in range(4):
        assert [s.description for s in steps if s.kind == f"t{n}"] == [
            f"step {i}" for i in range(25)
        ]
    assert {h.successes for h in store.load_health("db").values()} == {24}


def test_a_caller_named_after_the_move_began_is_kept_open_or_finished(
    store: Store, store_factory: StoreFactory
) -> None:
    """Rule: STS may answer after a move was journaled (its caller empty): the answer is
    written into the move's row, whether the move is still open or finished already."""
    store.begin_move(make_move("open", caller=""))
    store.begin_move(make_move("done", caller="", started_at=1001.0))
    store.finish_move("done", "succeeded", 1010.0)
    store.record_caller("open", "arn:aws:iam::123456789012:user/a")
    store.record_caller("done", "arn:aws:iam::123456789012:user/b")

    other = store_factory()
    assert [m.caller for m in other.open_moves()] == ["arn:aws:iam::123456789012:user/a"]
    assert {m.move_id: m.caller for m in other.history()} == {
        "open": "arn:aws:iam::123456789012:user/a",
        "done": "arn:aws:iam::123456789012:user/b",
    }
    with pytest.raises(KeyError, match="move nope is not journaled"):
        store.record_caller("nope", "arn:aws:iam::123456789012:user/c")


def test_steps_and_finish_of_an_unknown_move_are_refused(store: Store) -> None:
    with pytest.raises(KeyError, match="move nope is not journaled"):
        store.record_step("nope", make_step(1))
    with pytest.raises(KeyError, match="move nope is not journaled"):
        store.finish_move("nope", "succeeded", 3.0)
    assert store.history() == []


def test_journaling_a_move_id_twice_is_refused_and_keeps_the_first(store: Store) -> None:
    first = make_move("m1")
    store.begin_move(first)
    for again in (make_move("m1", reason="again"), make_move("m1", started_at=5.0)):
        with pytest.raises(ValueError, match="move m1 is already journaled"):
            store.begin_move(again)
    assert store.open_moves() == [first]
    assert store.history() == [first]


def test_a_closed_store_refuses_calls_and_closes_twice(store: Store) -> None:
    store.close()
    store.close()
    with pytest.raises(FailoverError, match="store is closed"):
        store.open_moves()


KILL_AFTER_STEP = """
store.begin_move(MoveRecord(
    move_id="crash", group="db", mode="eni", resource="eni-1", source="i-0aa",
    target="i-0bb", caller="child", reason="drill", started_at=1.0,
))
store.record_step("crash", StepRecord(kind="detach", description="detach eni-1",
                                      phase="started", at=2.0))
print("written", flush=True)
sys.stdin.readline()
"""


def test_a_sigkill_right_after_a_write_loses_nothing(
    store: Store, store_factory: StoreFactory, state_settings: StateSettings
) -> None:
    with spawn(KILL_AFTER_STEP, state_settings) as child:
        assert child.stdout is not None
        line = child.stdout.readline()
        os.kill(child.pid, signal.SIGKILL)
        _, err = child.communicate(timeout=10)
    assert line == "written\n", err
    assert child.returncode == -signal.SIGKILL

    step = StepRecord(kind="detach", description="detach eni-1", phase="started", at=2.0)
    for view in (store, store_factory()):
        (move,) = view.open_moves()
        assert (move.move_id, move.outcome, move.steps) == ("crash", "in-progress", (step,))


CONCURRENT_WRITER = """
name, count = sys.argv[2], int(sys.argv[3])
print("ready", flush=True)
sys.stdin.readline()
for i in range(count):
    store.record_step("shared", StepRecord(kind=name, description=str(i), phase="done", at=i))
store.begin_move(MoveRecord(
    move_id=name, group="db", mode="eni", resource="eni-1", source=None,
    target="i-0bb", caller=name, reason="concurrency", started_at=float(count),
))
store.close()
"""


def test_two_processes_writing_at_once_lose_nothing(
    store: Store, state_settings: StateSettings
) -> None:
    count = 200
    store.begin_move(make_move("shared", started_at=0.0))
    children = [spawn(CONCURRENT_WRITER, state_settings, name, str(count)) for name in "ab"]
    try:
        for child in children:
            assert child.stdout is not None
            assert child.stdout.readline() == "ready\n"
        # Both are open and waiting: release them together so their writes interleave.
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        for child in children:
            _, err = child.communicate(timeout=30)
            assert child.returncode == 0, err
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
            child.communicate()

    steps = store.history("db", limit=1_000)
    by_id = {m.move_id: m for m in steps}
    assert set(by_id) == {"shared", "a", "b"}
    shared = by_id["shared"].steps
    assert len(shared) == 2 * count
    for name in "ab":
        assert [s.description for s in shared if s.kind == name] == [str(i) for i in range(count)]


OPEN_AND_BEGIN = """
store.begin_move(MoveRecord(
    move_id=sys.argv[2], group="db", mode="eni", resource="eni-1", source=None,
    target="i-0bb", caller="child", reason="race to create", started_at=1.0,
))
store.close()
"""


def test_processes_opening_a_new_store_at_once_all_succeed(
    state_settings: StateSettings, store_factory: StoreFactory
) -> None:
    children = [spawn(OPEN_AND_BEGIN, state_settings, f"m{n}") for n in range(4)]
    for child in children:
        with child:
            _, err = child.communicate(timeout=30)
        assert child.returncode == 0, err

    assert {m.move_id for m in store_factory().open_moves()} == {"m0", "m1", "m2", "m3"}


@pytest.mark.parametrize(
    ("make_path", "cause"),
    [
        pytest.param(lambda tmp: tmp, "is a directory", id="directory"),
        pytest.param(
            lambda tmp: tmp / "file" / "state.db", "cannot use its directory", id="parent-is-file"
        ),
        pytest.param(lambda tmp: tmp / "junk.db", "not a usable state database", id="not-sqlite"),
    ],
)
def test_a_bad_sqlite_path_is_a_config_error(
    tmp_path: Path, make_path: Callable[[Path], Path], cause: str
) -> None:
    (tmp_path / "file").write_text("not a directory")
    (tmp_path / "junk.db").write_bytes(b"this is not an sqlite database, not even close" * 100)
    path = make_path(tmp_path)

    with pytest.raises(ConfigError) as raised:
        open_store(StateSettings(backend="sqlite", path=str(path)))

    message = str(raised.value)
    assert str(path) in message
    assert cause in message
    assert "\n" not in message
    assert raised.value.exit_code == 2


@pytest.mark.usefixtures("dynamodb_env")
def test_a_missing_dynamodb_table_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as raised:
        open_store(StateSettings(backend="dynamodb", table="no-such-table"))

    message = str(raised.value)
    assert "no-such-table" in message
    assert "failover validate --create-table" in message
    assert "\n" not in message
    assert raised.value.exit_code == 2
