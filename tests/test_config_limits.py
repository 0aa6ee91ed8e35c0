"""The config's limits: every duration and integer bounded, any loader failure one line, and
relative paths anchored at the config file's directory.

A value past its bound would pass validation and crash the daemon later (an interval of
`99999999999999999999h` overflows the scheduler's timedelta); a file the loader cannot
read (a FIFO, an alias bomb, 50,000 nested lists) must be refused at once, not hang.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from failover.config import Settings, load, parse
from failover.config.base import DAY_S, HOUR_S, MAX_DEVICE_INDEX, MINUTE_S
from failover.core.durations import format_duration
from failover.core.errors import ConfigError

ENI = "eni-0123456789abcdef0"
I_A, I_B = "i-0aaaaaaaaaaaaaaaa", "i-0bbbbbbbbbbbbbbbb"


def _document(**group: Any) -> dict[str, Any]:
    return {
        "aws": {"region": "us-east-1"},
        "state": {"path": "./state.db"},
        "defaults": {"interval": "2s", "timeout": "1s"},
        "groups": [
            {"name": "db", "mode": "eni", "eni": ENI, "members": [I_A, I_B], **group},
        ],
    }


def _problem(data: object) -> str:
    with pytest.raises(ConfigError) as caught:
        parse(data, "test.yaml")
    message = str(caught.value)
    assert "\n" not in message
    return message


# Where each duration lives (a setter on the valid document) and its ceiling in seconds.
def _at(*path: str | int) -> Any:
    def put(doc: dict[str, Any], value: object) -> None:
        node: Any = doc
        for part in path[:-1]:
            node = node.setdefault(part, {}) if isinstance(node, dict) else node[part]
        node[path[-1]] = value

    return put


DURATIONS: list[tuple[str, Any, float]] = [
    ("defaults.interval", _at("defaults", "interval"), DAY_S),
    ("defaults.timeout", _at("defaults", "timeout"), HOUR_S),
    ("defaults.cooldown", _at("defaults", "cooldown"), DAY_S),
    ("defaults.detach_timeout", _at("defaults", "detach_timeout"), HOUR_S),
    ("defaults.move_timeout", _at("defaults", "move_timeout"), HOUR_S),
    ("groups[0].interval", _at("groups", 0, "interval"), DAY_S),
    ("groups[0].cooldown", _at("groups", 0, "cooldown"), DAY_S),
    ("state.lease_ttl", _at("state", "lease_ttl"), HOUR_S),
    ("notify.timeout", _at("notify", "timeout"), MINUTE_S),
]


@pytest.mark.parametrize(
    ("where", "put", "ceiling"), [pytest.param(w, p, c, id=w) for w, p, c in DURATIONS]
)
def test_a_duration_past_its_ceiling_is_refused_naming_the_key(
    where: str, put: Any, ceiling: float
) -> None:
    """Rule: every duration has a ceiling; the absurd one from the field is one line, not an overflow later."""
    doc = _document()
    put(doc, "99999999999999999999h")
    message = _problem(doc)
    assert (
        f"{where}: '99999999999999999999h' is longer than the {format_duration(ceiling)} maximum"
        in message
    )


def test_an_interval_over_a_day_is_refused_and_a_day_is_accepted() -> None:
    """Rule: an interval over a day is refused; a day itself is a valid (if slow) interval."""
    doc = _document()
    doc["defaults"]["interval"] = "25h"
    assert "defaults.interval: '25h' is longer than the 24h maximum" in _problem(doc)
    doc["defaults"]["interval"] = "24h"
    assert parse(doc, "test.yaml").defaults.interval_s == DAY_S


def test_device_index_is_bounded() -> None:
    """Rule: device_index is bounded (a typo such as 1099511627776 never reaches a plan)."""
    message = _problem(_document(device_index=1_099_511_627_776))
    assert f"groups[0].device_index: must be at most {MAX_DEVICE_INDEX}" in message
    assert parse(_document(device_index=MAX_DEVICE_INDEX), "t.yaml").groups[0].device_index == (
        MAX_DEVICE_INDEX
    )


# --- fuzz: durations and integers -------------------------------------------------------------

_DURATION_VALUES = (
    st.builds(
        lambda n, unit: f"{n}{unit}",
        st.integers(min_value=0, max_value=10**25),
        st.sampled_from(["ms", "s", "m", "h"]),
    )
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.integers(min_value=-(10**25), max_value=10**25)
    | st.text(max_size=10)
)

_INTEGER_FIELDS = [
    (_at("defaults", "fall"), "fall"),
    (_at("defaults", "rise"), "rise"),
    (_at("defaults", "max_moves_per_hour"), "max_moves_per_hour"),
    (_at("groups", 0, "device_index"), "device_index"),
    (_at("aws", "max_attempts"), "max_attempts"),
    (_at("groups", 0, "checks"), "port"),
]


def _settings_or_message(doc: object) -> Settings | str:
    """The loaded settings, or the one-line message of the ConfigError."""
    try:
        return parse(doc, "fuzz.yaml")
    except ConfigError as exc:
        return str(exc)


def _every_duration(result: Settings) -> list[tuple[float, float]]:
    """(value, ceiling) of every duration the settings hold."""
    out = [(result.state.lease_ttl_s, HOUR_S), (result.notify.timeout_s, MINUTE_S)]
    for policy in [result.defaults, *(g.policy for g in result.groups)]:
        out += [
            (policy.interval_s, DAY_S),
            (policy.timeout_s, HOUR_S),
            (policy.cooldown_s, DAY_S),
            (policy.detach_timeout_s, HOUR_S),
            (policy.move_timeout_s, HOUR_S),
        ]
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(DURATIONS), _DURATION_VALUES)
def test_fuzz_durations_load_within_their_ceiling_or_fail_in_one_line(
    field: tuple[str, Any, float], value: object
) -> None:
    """Rule: any value of any duration field loads within its ceiling (usable as a timedelta) or is one line."""
    where, put, _ = field
    doc = _document()
    put(doc, value)
    # A timeout must stay within the interval: give the interval room so the field alone decides.
    if where == "defaults.timeout":
        doc["defaults"]["interval"] = "24h"
    result = _settings_or_message(doc)
    if isinstance(result, str):
        assert "\n" not in result
        # The field itself, or a rule across fields that names it (`timeout ... exceeds interval`).
        assert where.rpartition(".")[2] in result
        return
    for seconds, ceiling in _every_duration(result):
        assert 0 < seconds <= ceiling
        dt.timedelta(seconds=seconds)  # what APScheduler makes of an interval: must not overflow


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(_INTEGER_FIELDS),
    st.integers(min_value=-(2**70), max_value=2**70) | st.booleans() | st.floats(),
)
def test_fuzz_integers_load_within_their_bounds_or_fail_in_one_line(
    field: tuple[Any, str], value: object
) -> None:
    """Rule: any value of any integer field loads within its documented bounds or is one line."""
    put, name = field
    doc = _document()
    put(doc, [{"type": "tcp", "port": value}] if name == "port" else value)
    result = _settings_or_message(doc)
    if isinstance(result, str):
        assert "\n" not in result
        assert name in result
        return
    group = result.groups[0]
    bounds = {
        "fall": (group.policy.fall, 1, 100),
        "rise": (group.policy.rise, 1, 100),
        "max_moves_per_hour": (group.policy.max_moves_per_hour, 1, 1000),
        "device_index": (group.device_index, 1, MAX_DEVICE_INDEX),
        "max_attempts": (result.aws.max_attempts, 1, 20),
        "port": (getattr(group.checks[0], "port", 1), 1, 65535),
    }
    loaded, low, high = bounds[name]
    assert type(loaded) is int
    assert low <= loaded <= high


# --- the loader -------------------------------------------------------------------------------


def _file_problem(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load(path)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_deep_nesting_is_one_line_not_a_recursion_error(tmp_path: Path) -> None:
    """Rule: 50,000 nested lists are a config error (exit 2), not a RecursionError (exit 1)."""
    path = tmp_path / "deep.yaml"
    path.write_text("groups: " + "[" * 50_000 + "]" * 50_000 + "\n")
    assert _file_problem(path) == f"invalid config {path}: nested too deeply to be a config"


def test_an_alias_bomb_and_a_self_alias_are_refused_without_expanding(tmp_path: Path) -> None:
    """Rule: YAML aliases that expand to millions of values (or to themselves) are refused at once."""
    levels = ['a0: &a0 ["x","x","x","x","x","x","x","x","x","x"]']
    levels += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 10)}]" for n in range(1, 9)]
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(levels) + "\ngroups: *a8\n")
    assert "more than 1000000 values" in _file_problem(bomb)
    cycle = tmp_path / "cycle.yaml"
    cycle.write_text("groups: &x [*x]\n")
    assert "refers to itself" in _file_problem(cycle)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        pytest.param("groups: 2001-13-45\n", "month must be in 1..12", id="impossible-date"),
        pytest.param("groups: !!int 0x\n", "not valid YAML", id="bad-tagged-int"),
        pytest.param("groups: !!float x\n", "not valid YAML", id="bad-tagged-float"),
    ],
)
def test_any_other_loader_failure_is_one_line(tmp_path: Path, text: str, words: str) -> None:
    """Rule: values PyYAML's resolver accepts and its constructors reject are config errors too."""
    path = tmp_path / "c.yaml"
    path.write_text(text)
    message = _file_problem(path)
    assert message.startswith(f"invalid config {path}: ")
    assert words in message


def test_a_fifo_as_the_config_is_refused_without_hanging(tmp_path: Path) -> None:
    """Rule: a non-regular file (a FIFO nobody writes to) is refused at once; reading it would block."""
    fifo = tmp_path / "config.yaml"
    os.mkfifo(fifo)
    outcome: list[str] = []
    reader = threading.Thread(target=lambda: outcome.append(_file_problem(fifo)), daemon=True)
    reader.start()
    reader.join(timeout=30)
    if reader.is_alive():
        # Unblock the reader (open a writer end) so the thread ends, then fail.
        with open(fifo, "w"):
            pass
        pytest.fail("loading a FIFO blocked")
    assert outcome == [f"cannot read config {fifo}: not a regular file"]


def test_a_device_as_the_config_is_refused(tmp_path: Path) -> None:
    """Rule: /dev/zero would be read forever: a character device is not a config file."""
    assert _file_problem(Path("/dev/zero")) == "cannot read config /dev/zero: not a regular file"


# --- relative paths ---------------------------------------------------------------------------


def test_relative_paths_resolve_against_the_config_files_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rule: `state.path` and program paths in the config are relative to the config's directory.

    Bare program names stay for PATH lookup; absolute paths are kept.
    """
    etc = tmp_path / "etc"
    etc.mkdir()
    doc = _document(
        checks=[{"type": "command", "argv": ["./checks/db.sh", "{address}"]}],
        after_move={"command": ["hooks/notify", "{group}"]},
    )
    doc["state"]["path"] = "./x.db"
    doc["groups"].append(
        {
            "name": "web",
            "mode": "eip",
            "eip": "eipalloc-0123456789abcdef0",
            "members": [I_A, I_B],
            "checks": [{"type": "command", "argv": ["check-web", "/abs/arg"]}],
            "after_move": {"command": ["/usr/local/bin/lb", "x"]},
        }
    )
    path = etc / "config.yaml"
    path.write_text(yaml.safe_dump(doc))
    monkeypatch.chdir(tmp_path)  # the shell is elsewhere; a relative --config too
    settings_ = load(Path("etc/config.yaml"))
    assert settings_.state.path == str(etc / "x.db")
    db, web = settings_.groups
    assert db.checks[0].argv == (str(etc / "checks/db.sh"), "{address}")  # type: ignore[union-attr]
    assert db.after_move is not None
    assert db.after_move.command == (str(etc / "hooks/notify"), "{group}")
    assert web.checks[0].argv == ("check-web", "/abs/arg")  # type: ignore[union-attr]
    assert web.after_move is not None
    assert web.after_move.command == ("/usr/local/bin/lb", "x")
