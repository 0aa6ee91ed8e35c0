"""parse_duration and format_duration: the config's duration spellings, by table."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from failover.core.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        pytest.param("500ms", 0.5, id="ms"),
        pytest.param("1ms", 0.001, id="one-ms"),
        pytest.param("300ms", 0.3, id="ms-not-double-rounded"),
        pytest.param("1500ms", 1.5, id="ms-over-a-second"),
        pytest.param("5s", 5.0, id="s"),
        pytest.param("1.5s", 1.5, id="fractional-s"),
        pytest.param("5m", 300.0, id="m"),
        pytest.param("1h", 3600.0, id="h"),
        pytest.param("2.5h", 9000.0, id="fractional-h"),
        pytest.param(" 5s ", 5.0, id="surrounding-space"),
        pytest.param("5 s", 5.0, id="space-before-unit"),
        pytest.param("007s", 7.0, id="leading-zeros"),
        pytest.param(5, 5.0, id="bare-int-seconds"),
        pytest.param(0.25, 0.25, id="bare-float-seconds"),
    ],
)
def test_parse_duration(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        pytest.param("5x", "'5x' is not a duration (write 500ms, 5s, 5m or 1h)", id="unknown-unit"),
        pytest.param("-1s", "'-1s' is not a duration", id="negative-text"),
        pytest.param("0s", "'0s' must be longer than zero", id="zero"),
        pytest.param("0ms", "'0ms' must be longer than zero", id="zero-ms"),
        pytest.param(0, "0 must be longer than zero", id="zero-number"),
        pytest.param(-1, "-1 must be longer than zero", id="negative-number"),
        pytest.param("5", "'5' is not a duration", id="text-without-unit"),
        pytest.param("5S", "'5S' is not a duration", id="uppercase-unit"),
        pytest.param("5sec", "'5sec' is not a duration", id="long-unit"),
        pytest.param("1m30s", "'1m30s' is not a duration", id="compound"),
        pytest.param(".5s", "'.5s' is not a duration", id="no-leading-digit"),
        pytest.param("1e3s", "'1e3s' is not a duration", id="exponent"),
        pytest.param("", "'' is not a duration", id="empty"),
        pytest.param(None, "None is not a duration", id="none"),
        pytest.param(True, "True is not a duration", id="bool"),
        pytest.param([5], "[5] is not a duration", id="list"),
        pytest.param(math.nan, "nan is not a duration", id="nan"),
        pytest.param(math.inf, "inf is not a duration", id="inf"),
        pytest.param("x" * 200, "...", id="long-text-shortened"),
    ],
)
def test_parse_duration_rejects(value: object, problem: str) -> None:
    with pytest.raises(ValueError, match=r"not a duration|longer than zero") as caught:
        parse_duration(value)
    assert problem in str(caught.value)
    assert len(str(caught.value)) < 100


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        pytest.param(3600.0, "1h", id="h"),
        pytest.param(7200.0, "2h", id="hours"),
        pytest.param(5400.0, "90m", id="not-whole-hours"),
        pytest.param(300.0, "5m", id="m"),
        pytest.param(90.0, "90s", id="not-whole-minutes"),
        pytest.param(5.0, "5s", id="s"),
        pytest.param(1.5, "1500ms", id="not-whole-seconds"),
        pytest.param(0.5, "500ms", id="ms"),
        pytest.param(0.3, "300ms", id="ms-float-noise"),
        pytest.param(0.001, "1ms", id="one-ms"),
        pytest.param(0.0005, "0.0005s", id="below-a-ms"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("text", ["500ms", "5s", "5m", "1h", "1.5s", "0.5ms", "2.5h", "1.25m"])
def test_format_parses_back(text: str) -> None:
    seconds = parse_duration(text)
    assert parse_duration(format_duration(seconds)) == seconds


@given(st.integers(min_value=1, max_value=10**9))
def test_whole_milliseconds_round_trip(millis: int) -> None:
    seconds = parse_duration(f"{millis}ms")
    assert parse_duration(format_duration(seconds)) == seconds


@given(st.floats(min_value=1e-6, max_value=1e9, allow_nan=False, allow_infinity=False))
def test_any_positive_seconds_round_trip(seconds: float) -> None:
    text = format_duration(seconds)
    assert parse_duration(text) == seconds
    assert len(text) <= 40
