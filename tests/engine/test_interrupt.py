"""A stop request (the CLI's SIGINT/SIGTERM) ends a move at a step boundary, and says the truth.

The engine asks `stop()` before every step, before every mutating call and between the
polls of a wait. Where it stops decides what it may say: before any change, "nothing
changed" and the journal is closed; after one, the move stays open for the next run and
the error names the last finished step and `failover move GROUP`.
"""

from __future__ import annotations

import signal
from collections.abc import Callable

import pytest

from failover.core.errors import MoveInterruptedError
from failover.service.engine import Engine

from .conftest import Rig

RigFactory = Callable[..., Rig]


def stopping_engine(r: Rig, stop: Callable[[], int | None]) -> Engine:
    return Engine(r.cloud, r.store, r.engine.clock, stop=stop)


def test_a_stop_before_the_move_begins_journals_nothing_and_changes_nothing(
    rig: RigFactory,
) -> None:
    """Rule: interrupted before the journal: nothing changed, and the message says exactly that."""
    r = rig("eni")
    engine = stopping_engine(r, lambda: signal.SIGINT)
    with pytest.raises(MoveInterruptedError) as caught:
        engine.move(r.group, target=r.world.standbys[0])
    assert caught.value.exit_code == 130
    assert caught.value.move_id is None
    assert "before the move began: nothing changed" in str(caught.value)
    assert r.store.history() == []
    assert r.layer.mutating_calls() == []
    assert r.eni_owner() == r.world.primary


def test_a_stop_after_the_journal_but_before_any_call_closes_the_move_as_interrupted(
    rig: RigFactory,
) -> None:
    """Rule: a move stopped before its first mutating call changed nothing: closed, never resumed."""
    r = rig("eni")
    engine = stopping_engine(r, lambda: signal.SIGTERM if r.store.open_moves("g") else None)
    with pytest.raises(MoveInterruptedError) as caught:
        engine.move(r.group, target=r.world.standbys[0])
    error = caught.value
    assert error.exit_code == 143
    assert not error.unfinished
    assert "nothing changed" in str(error)
    assert r.layer.mutating_calls() == []
    assert r.eni_owner() == r.world.primary
    assert r.store.open_moves("g") == []
    (record,) = r.store.history("g")
    assert record.outcome == "interrupted"


def test_a_stop_after_the_detach_leaves_the_move_open_and_names_the_step_and_the_command(
    rig: RigFactory,
) -> None:
    """Rule: stopped after a change, the move stays open in the journal and the next run finishes it.

    The stop comes while AWS applies the detach: the engine finishes that step (its call
    returns), stops at the boundary before the wait, and says where AWS stands now.
    """
    r = rig("eni", layer={"detach_delay_s": 0.5})
    asked: list[int] = []
    r.layer.on_call = lambda call: (
        asked.append(signal.SIGINT) if call.action == "DetachNetworkInterface" else None
    )
    engine = stopping_engine(r, lambda: asked[0] if asked else None)
    with pytest.raises(MoveInterruptedError) as caught:
        engine.move(r.group, target=r.world.standbys[0])
    r.layer.on_call = None
    error = caught.value
    assert error.unfinished
    assert error.exit_code == 130
    assert error.after is not None
    assert error.after.startswith("detach")
    text = str(error)
    assert f"move {error.move_id}" in text
    assert "the move is unfinished" in text
    assert "`failover move g` finishes it" in text
    assert "nothing changed" not in text
    assert [c.action for c in r.layer.mutating_calls()] == ["DetachNetworkInterface"]
    (open_move,) = r.store.open_moves("g")
    assert open_move.move_id == error.move_id
    assert open_move.steps[-1].kind == "interrupted"

    # The next run (no stop) finishes the journaled move: the ENI lands on its target.
    (result,) = r.engine.resume(r.group)
    assert result.outcome == "succeeded"
    assert r.eni_owner() == r.world.standbys[0]
    assert r.store.open_moves("g") == []
