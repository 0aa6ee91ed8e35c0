"""Blindness is counted in passes: said once on the Nth failed pass in a row, cleared once."""

from __future__ import annotations

from failover.service.blindness import BLIND_AFTER_PASSES, Sight


def test_blind_on_the_nth_failed_pass_in_a_row_once_and_recovered_once() -> None:
    """Rule: N consecutive failed passes make the daemon blind (one change, not one per pass);
    the next pass that reads AWS clears it (one change); a success before N resets the count."""
    sight = Sight()
    assert sight.pass_failed("DescribeInstances: ServiceUnavailable") is None
    assert sight.pass_succeeded() is None  # a blip: the count starts again
    changes = [sight.pass_failed("DescribeInstances: ServiceUnavailable") for _ in range(5)]
    blind = [c for c in changes if c is not None]
    assert len(blind) == 1
    assert changes.index(blind[0]) == BLIND_AFTER_PASSES - 1
    assert blind[0].event == "blind"
    problem = sight.problem()
    assert problem is not None
    assert "5 passes in a row could not read AWS (last: DescribeInstances: ServiceUnavailable)" in (
        problem
    )
    recovered = sight.pass_succeeded()
    assert recovered is not None
    assert recovered.event == "recovered"
    assert "after 5 passes" in recovered.message
    assert sight.problem() is None
    assert sight.pass_succeeded() is None
