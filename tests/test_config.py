"""The config loader: the example file resolves as documented; every bad file is one clear line."""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from failover.config import (
    CommandCheck,
    Ec2Check,
    HttpCheck,
    Settings,
    TcpCheck,
    default_path,
    load,
    parse,
)
from failover.core.errors import ConfigError
from failover.core.model import Mode

EXAMPLE = Path(__file__).resolve().parent.parent / "config.yaml"

ENI = "eni-0123456789abcdef0"
ALLOC = "eipalloc-0123456789abcdef0"
I_A, I_B, I_C = "i-0aaaaaaaaaaaaaaaa", "i-0bbbbbbbbbbbbbbbb", "i-0cccccccccccccccc"


def _valid() -> dict[str, Any]:
    """A small valid document: one eni group and one eip group."""
    return {
        "aws": {"region": "us-east-1"},
        "state": {"path": "./state.db"},
        "defaults": {"interval": "2s", "timeout": "1s", "detach_timeout": "15s"},
        "groups": [
            {
                "name": "db",
                "mode": "eni",
                "eni": ENI,
                "device_index": 1,
                "members": [I_A, {"instance": I_B, "address": "127.0.0.3"}],
                "checks": [{"type": "ec2"}, {"type": "tcp", "port": 5432}],
            },
            {
                "name": "edge",
                "mode": "eip",
                "eip": ALLOC,
                "members": [I_B, I_C],
            },
        ],
    }


def _problem(data: object) -> str:
    with pytest.raises(ConfigError) as caught:
        parse(data, "test.yaml")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("invalid config test.yaml: ")
    return message


# --- the example file -------------------------------------------------------------------------


def test_example_config_loads() -> None:
    settings_ = load(EXAMPLE)
    assert isinstance(settings_, Settings)
    assert settings_.source == str(EXAMPLE)
    assert settings_.aws.region == "us-east-1"
    assert settings_.state.backend == "sqlite"
    assert settings_.state.lease_ttl_s == 15.0
    assert {g.mode for g in settings_.groups} == set(Mode)


def test_example_covers_every_mode_with_loopback_probe_targets() -> None:
    settings_ = load(EXAMPLE)
    modes = [(g.mode, g.eip is not None) for g in settings_.groups]
    assert (Mode.ENI, False) in modes
    assert (Mode.SECONDARY_IP, False) in modes
    assert (Mode.SECONDARY_IP, True) in modes
    assert (Mode.EIP, True) in modes
    for group in settings_.groups:
        for member in group.members:
            # a drill must never probe a private address
            assert member.address is not None
            assert member.address.startswith("127.0.0.")


def test_example_defaults_parse_durations() -> None:
    defaults = load(EXAMPLE).defaults
    assert defaults.interval_s == 2.0
    assert defaults.timeout_s == 1.0
    assert defaults.cooldown_s == 300.0
    assert defaults.detach_timeout_s == 15.0
    assert defaults.move_timeout_s == 60.0
    assert (defaults.fall, defaults.rise, defaults.max_moves_per_hour) == (3, 2, 3)
    assert defaults.failback == "manual"


def test_example_groups_overlay_their_keys_on_defaults() -> None:
    settings_ = load(EXAMPLE)
    db, web, api, edge = (settings_.group(n) for n in ("db", "web", "api", "edge"))

    assert (db.policy.interval_s, db.policy.timeout_s) == (0.5, 0.5)  # 500ms overrides
    assert db.policy.cooldown_s == 300.0  # 5m inherited
    assert db.eni == "eni-0123456789abcdef0"
    assert db.device_index == 1
    assert db.resource == db.eni
    assert db.instance_ids == ("i-0aaaaaaaaaaaaaaaa", "i-0bbbbbbbbbbbbbbbb")
    assert [type(c) for c in db.checks] == [Ec2Check, TcpCheck]

    assert web.policy.failback == "auto"
    assert web.policy.interval_s == 2.0
    assert (web.ip, web.eip, web.resource) == ("10.0.1.50", None, "10.0.1.50")
    assert isinstance(web.checks[0], HttpCheck)
    assert (web.checks[0].path, web.checks[0].expect) == ("/health", 200)

    assert api.policy.cooldown_s == 3600.0  # 1h
    assert (api.ip, api.eip) == ("10.0.1.51", "eipalloc-0123456789abcdef0")
    assert len(api.members) == 3
    assert isinstance(api.checks[0], CommandCheck)
    assert api.checks[0].argv == ("/bin/true", "{address}")

    assert (edge.eip, edge.ip, edge.resource) == ("eipalloc-0fedcba9876543210", None, edge.eip)
    assert (edge.policy.fall, edge.policy.max_moves_per_hour) == (2, 2)
    assert edge.policy.rise == 2  # inherited

    sap = settings_.group("sap")
    assert (sap.mode, sap.cidr, sap.resource) == (Mode.ROUTE, "192.168.100.10/32", sap.cidr)
    assert sap.route_tables == ("rtb-0aaaaaaaaaaaaaaaa", "rtb-0bbbbbbbbbbbbbbbb")
    assert sap.after_move is not None


def test_settings_group_lookup_names_known_groups() -> None:
    settings_ = load(EXAMPLE)
    with pytest.raises(
        ConfigError, match=r"no group named 'nope' .*\(groups: db, web, api, edge, sap\)"
    ):
        settings_.group("nope")


def test_group_member_lookup() -> None:
    db = load(EXAMPLE).group("db")
    member = db.member("i-0bbbbbbbbbbbbbbbb")
    assert member is not None
    assert member.address == "127.0.0.3"
    assert db.member("i-0ffffffffffffffff") is None


def test_minimal_group_gets_documented_defaults() -> None:
    settings_ = parse(
        {"groups": [{"name": "g", "mode": "eni", "eni": ENI, "members": [I_A, I_B]}]}, "x"
    )
    group = settings_.groups[0]
    assert group.device_index == 1
    assert group.checks == (Ec2Check(type="ec2"),)
    assert group.members[0].address is None
    assert group.policy == settings_.defaults
    assert (group.policy.interval_s, group.policy.timeout_s, group.policy.fall) == (2.0, 1.0, 3)
    assert settings_.state.path == "./failover-state.db"
    assert settings_.aws.endpoint_url is None


def test_valid_fixture_parses() -> None:
    assert [g.name for g in parse(_valid()).groups] == ["db", "edge"]


def test_dynamodb_backend_with_table() -> None:
    data = _valid()
    data["state"] = {"backend": "dynamodb", "table": "failover", "lease_ttl": "30s"}
    state = parse(data).state
    assert (state.backend, state.table, state.lease_ttl_s) == ("dynamodb", "failover", 30.0)


def test_settings_are_frozen() -> None:
    group = parse(_valid()).groups[0]
    with pytest.raises(Exception, match="frozen"):
        group.policy.fall = 9  # type: ignore[misc]


def test_default_path_honours_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FAILOVER_CONFIG", raising=False)
    assert default_path() == Path("config.yaml")
    monkeypatch.setenv("FAILOVER_CONFIG", "/etc/failover.yaml")
    assert default_path() == Path("/etc/failover.yaml")


# --- malformed documents ----------------------------------------------------------------------

Mutation = Callable[[dict[str, Any]], object]


def _set(path: str, value: object) -> Mutation:
    """A mutation that sets a dotted path (`groups.0.eni`) to `value`."""

    def mutate(data: dict[str, Any]) -> object:
        *parents, last = path.split(".")
        node: Any = data
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if last.isdigit():
            node[int(last)] = value
        else:
            node[last] = value
        return data

    return mutate


def _drop(path: str) -> Mutation:
    def mutate(data: dict[str, Any]) -> object:
        *parents, last = path.split(".")
        node: Any = data
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        del node[last]
        return data

    return mutate


def _then(*mutations: Mutation) -> Mutation:
    def mutate(data: dict[str, Any]) -> object:
        for mutation in mutations:
            mutation(data)
        return data

    return mutate


def _secondary_ip(**extra: object) -> Mutation:
    group = {"name": "web", "mode": "secondary-ip", "members": [I_A, I_C], **extra}
    return _set("groups.1", group)


RTB, CIDR = "rtb-0123456789abcdef0", "192.0.2.10/32"


def _route(**extra: object) -> Mutation:
    group = {"name": "sap", "mode": "route", "members": [I_A, I_C], "cidr": CIDR}
    group["route_tables"] = [RTB]
    group.update(extra)
    return _set("groups.1", {k: v for k, v in group.items() if v is not None})


# (id, mutation of _valid(), where the message must point, what it must say)
BAD: list[tuple[str, Mutation, str, str]] = [
    ("unknown-top-level-key", _set("metric", {"port": 9100}), "metric: ", "unknown key"),
    ("unknown-group-key", _set("groups.0.enis", ENI), "groups[0].enis: ", "unknown key"),
    ("unknown-defaults-key", _set("defaults.intervall", "2s"), "defaults.intervall", "unknown"),
    ("unknown-aws-key", _set("aws.regoin", "x"), "aws.regoin: ", "unknown key"),
    ("unknown-state-key", _set("state.file", "x"), "state.file: ", "unknown key"),
    (
        "unknown-check-key",
        _set("groups.0.checks.1", {"type": "tcp", "port": 1, "host": "x"}),
        "groups[0].checks[1].host: ",
        "unknown key",
    ),
    (
        # Status checks are read every pass: an interval of its own would be silently ignored.
        "ec2-check-interval",
        _set("groups.0.checks.0", {"type": "ec2", "interval": "30s"}),
        "groups[0].checks[0].interval: ",
        "unknown key",
    ),
    ("bad-eni-id", _set("groups.0.eni", "eni-xyz"), "groups[0].eni: ", "not an ENI id"),
    (
        "eni-id-16-digits",
        _set("groups.0.eni", "eni-0123456789abcdef"),
        "groups[0].eni: ",
        "not an ENI id",
    ),
    (
        "instance-id-uppercase",
        _set("groups.0.members.0", "i-0AAAAAAAAAAAAAAAA"),
        "groups[0].members[0]: ",
        "not an instance id",
    ),
    (
        "bad-instance-id-in-mapping",
        _set("groups.0.members.1", {"instance": "i-123", "address": "127.0.0.3"}),
        "groups[0].members[1].instance: ",
        "not an instance id",
    ),
    (
        "bad-eipalloc-id",
        _set("groups.1.eip", "eipalloc-123"),
        "groups[1].eip: ",
        "not an Elastic IP allocation id",
    ),
    (
        "eipalloc-given-public-ip",
        _set("groups.1.eip", "54.1.2.3"),
        "groups[1].eip: ",
        "not an Elastic IP allocation id",
    ),
    ("bad-group-name", _set("groups.0.name", "-db"), "groups[0].name: ", "not a group name"),
    ("duplicate-group-name", _set("groups.1.name", "db"), "groups[1].name: ", "already groups[0]"),
    ("one-member", _set("groups.0.members", [I_A]), "groups[0].members: ", "at least two members"),
    ("no-members", _set("groups.0.members", []), "groups[0].members: ", "at least two members"),
    ("members-missing", _drop("groups.0.members"), "groups[0].members: ", "missing"),
    (
        "members-not-a-list",
        _set("groups.0.members", I_A),
        "groups[0].members: ",
        "must be a list",
    ),
    (
        "member-not-id-or-mapping",
        _set("groups.0.members.1", 42),
        "groups[0].members[1]: ",
        "neither an instance id nor a mapping",
    ),
    (
        "duplicate-member",
        _set("groups.0.members", [I_A, I_B, {"instance": I_A}]),
        "groups[0].members[2]: ",
        f"{I_A} is already members[0]",
    ),
    (
        "bad-member-address",
        _set("groups.0.members.1", {"instance": I_B, "address": "localhost"}),
        "groups[0].members[1].address: ",
        "'localhost' is not an IP address",
    ),
    (
        "device-index-0",
        _set("groups.0.device_index", 0),
        "groups[0].device_index: ",
        "eth0",
    ),
    (
        "device-index-string",
        _set("groups.0.device_index", "1"),
        "groups[0].device_index: ",
        "whole number",
    ),
    ("eni-mode-without-eni", _drop("groups.0.eni"), "groups[0].eni: ", "required in mode eni"),
    (
        "eni-mode-with-ip",
        _set("groups.0.ip", "10.0.0.5"),
        "groups[0].ip: ",
        "not allowed in mode eni",
    ),
    (
        "eip-mode-with-eni",
        _set("groups.1.eni", "eni-0123456789abcdef1"),
        "groups[1].eni: ",
        "not allowed in mode eip",
    ),
    (
        "secondary-ip-without-ip",
        _secondary_ip(),
        "groups[1].ip: ",
        "required in mode secondary-ip",
    ),
    (
        "bad-ipv4",
        _secondary_ip(ip="10.0.1.300"),
        "groups[1].ip: ",
        "'10.0.1.300' is not an IPv4 address",
    ),
    ("ipv6-ip", _secondary_ip(ip="fd00::5"), "groups[1].ip: ", "not an IPv4 address"),
    ("eip-mode-without-eip", _drop("groups.1.eip"), "groups[1].eip: ", "required in mode eip"),
    (
        "eip-mode-with-ip",
        _set("groups.1.ip", "10.0.0.5"),
        "groups[1].ip: ",
        "not allowed in mode eip",
    ),
    ("unknown-mode", _set("groups.0.mode", "ring"), "groups[0].mode: ", "'eni', 'secondary-ip'"),
    ("route-without-cidr", _route(cidr=None), "groups[1].cidr: ", "required in mode route"),
    (
        "route-without-tables",
        _route(route_tables=[]),
        "groups[1].route_tables: ",
        "required in mode route",
    ),
    (
        "route-cidr-without-prefix",
        _route(cidr="192.0.2.10"),
        "groups[1].cidr: ",
        "not a CIDR: write address/prefix",
    ),
    ("route-cidr-host-bits", _route(cidr="192.0.2.10/24"), "groups[1].cidr: ", "host bits set"),
    ("route-cidr-ipv6", _route(cidr="fd00::1/128"), "groups[1].cidr: ", "not an IPv4 CIDR"),
    (
        "route-table-id",
        _route(route_tables=["rtb-nope"]),
        "groups[1].route_tables[0]: ",
        "not the expected form",
    ),
    ("route-table-twice", _route(route_tables=[RTB, RTB]), "groups[1].route_tables: ", "twice"),
    ("route-with-eip", _route(eip=ALLOC), "groups[1].eip: ", "not allowed in mode route"),
    ("eip-with-cidr", _set("groups.1.cidr", CIDR), "groups[1].cidr: ", "only mode route"),
    (
        "duration-unknown-unit",
        _set("defaults.interval", "5x"),
        "defaults.interval: ",
        "'5x' is not a duration",
    ),
    ("duration-negative", _set("groups.0.cooldown", "-1s"), "groups[0].cooldown: ", "duration"),
    ("duration-zero", _set("defaults.timeout", "0s"), "defaults.timeout: ", "longer than zero"),
    ("duration-bool", _set("defaults.cooldown", True), "defaults.cooldown: ", "not a duration"),
    ("duration-nan", _set("defaults.cooldown", math.nan), "defaults.cooldown: ", "not a duration"),
    ("lease-ttl-bad", _set("state.lease_ttl", "soon"), "state.lease_ttl: ", "not a duration"),
    (
        "timeout-exceeds-interval-in-defaults",
        _set("defaults.timeout", "3s"),
        "defaults.timeout: ",
        "3s exceeds interval 2s",
    ),
    (
        "group-interval-below-inherited-timeout",
        _set("groups.1.interval", "500ms"),
        "groups[1].timeout: ",
        "1s exceeds interval 500ms",
    ),
    (
        "detach-timeout-not-below-move-timeout",
        _set("groups.0.move_timeout", "15s"),
        "groups[0].detach_timeout: ",
        "not shorter than move_timeout 15s",
    ),
    (
        "check-timeout-exceeds-interval",
        _set("groups.0.checks.1", {"type": "tcp", "port": 5432, "timeout": "5s"}),
        "groups[0].checks[1].timeout: ",
        "5s exceeds the group's interval 2s",
    ),
    ("fall-zero", _set("defaults.fall", 0), "defaults.fall: ", "must be at least 1, not 0"),
    ("fall-bool", _set("groups.0.fall", True), "groups[0].fall: ", "whole number"),
    ("failback-bad", _set("defaults.failback", "always"), "defaults.failback: ", "'manual'"),
    (
        "port-out-of-range",
        _set("groups.0.checks.1", {"type": "tcp", "port": 70000}),
        "groups[0].checks[1].port: ",
        "must be at most 65535, not 70000",
    ),
    (
        "port-as-string",
        _set("groups.0.checks.1", {"type": "tcp", "port": "5432"}),
        "groups[0].checks[1].port: ",
        "whole number",
    ),
    (
        "tcp-check-without-port",
        _set("groups.0.checks.1", {"type": "tcp"}),
        "groups[0].checks[1].port: ",
        "missing",
    ),
    (
        "unknown-check-type",
        _set("groups.0.checks.1", {"type": "icmp"}),
        "groups[0].checks[1]: ",
        "unknown check type 'icmp' (expected ec2, tcp, http or command)",
    ),
    (
        "check-without-type",
        _set("groups.0.checks.1", {"port": 80}),
        "groups[0].checks[1]: ",
        "needs `type`",
    ),
    (
        "check-not-a-mapping",
        _set("groups.0.checks.1", "tcp"),
        "groups[0].checks[1]: ",
        "must be a mapping",
    ),
    (
        "http-path-without-slash",
        _set("groups.0.checks.1", {"type": "http", "port": 80, "path": "health"}),
        "groups[0].checks[1].path: ",
        "starting with /",
    ),
    (
        "command-without-argv",
        _set("groups.0.checks.1", {"type": "command", "argv": []}),
        "groups[0].checks[1].argv: ",
        "at least 1",
    ),
    (
        "dynamodb-without-table",
        _set("state", {"backend": "dynamodb"}),
        "state.table: ",
        "required when backend is dynamodb",
    ),
    ("bad-backend", _set("state.backend", "redis"), "state.backend: ", "'sqlite' or 'dynamodb'"),
    (
        "endpoint-not-http",
        _set("aws.endpoint_url", "127.0.0.1:5000"),
        "aws.endpoint_url: ",
        "not an http(s) URL",
    ),
    ("empty-groups", _set("groups", []), "groups: ", "at least one group"),
    ("groups-missing", _drop("groups"), "groups: ", "missing"),
    ("groups-not-a-list", _set("groups", {"name": "db"}), "groups: ", "must be a list"),
    ("group-not-a-mapping", _set("groups.1", "edge"), "groups[1]: ", "must be a mapping"),
    ("aws-not-a-mapping", _set("aws", "us-east-1"), "aws: ", "must be a mapping"),
    ("defaults-not-a-mapping", _set("defaults", ["2s"]), "defaults: ", "must be a mapping"),
    (
        "eni-in-two-groups",
        _then(
            _set("groups.1", {"name": "db2", "mode": "eni", "eni": ENI, "members": [I_B, I_C]}),
        ),
        "groups[1].eni: ",
        f"{ENI} already belongs to group db (groups[0])",
    ),
    (
        "eip-in-two-groups",
        lambda data: {
            **data,
            "groups": [
                *data["groups"],
                {
                    "name": "web",
                    "mode": "secondary-ip",
                    "ip": "10.0.1.5",
                    "eip": ALLOC,
                    "members": [I_A, I_C],
                },
            ],
        },
        "groups[2].eip: ",
        f"{ALLOC} already belongs to group edge (groups[1])",
    ),
    (
        "eip-in-two-groups-across-modes",
        _then(
            _set("groups.0", {"name": "web", "mode": "secondary-ip", "ip": "10.0.1.5"}),
            _set("groups.0.eip", ALLOC),
            _set("groups.0.members", [I_A, I_B]),
        ),
        "groups[1].eip: ",
        f"{ALLOC} already belongs to group web (groups[0])",
    ),
    (
        "top-level-list",
        lambda data: [data],
        "the top level",
        "must be a mapping",
    ),
    ("top-level-scalar", lambda data: "groups", "the top level", "must be a mapping"),
    ("top-level-empty-file", lambda data: None, "the top level", "must be a mapping"),
]


@pytest.mark.parametrize(
    ("mutation", "where", "what"),
    [pytest.param(m, w, p, id=i) for i, m, w, p in BAD],
)
def test_malformed_config_is_one_line_naming_key_and_problem(
    mutation: Mutation, where: str, what: str
) -> None:
    message = _problem(mutation(_valid()))
    assert where in message
    assert what in message
    # pydantic's own vocabulary must not leak to the operator
    for internal in ("function-", "tagged-union", "instance of", "_GroupFile", "Value error"):
        assert internal not in message


def test_malformed_cases_are_distinct() -> None:
    assert len({case_id for case_id, *_ in BAD}) == len(BAD) >= 20


def test_every_problem_in_a_file_is_reported_at_once() -> None:
    data = _valid()
    data["groups"][0]["eni"] = "eni-bad"
    data["groups"][0]["colour"] = "red"
    data["groups"][1]["members"] = [I_B]
    data["aws"]["regoin"] = "x"
    message = _problem(data)
    for part in (
        "aws.regoin: unknown key",
        "groups[0].eni: 'eni-bad' is not an ENI id",
        "groups[0].colour: unknown key",
        "groups[1].members: a group needs at least two members",
    ):
        assert part in message


def test_one_bad_group_does_not_claim_the_list_is_empty() -> None:
    data = _valid()
    data["groups"][0]["eni"] = "eni-bad"
    assert "at least one group" not in _problem(data)


def test_a_key_named_like_a_check_type_is_still_named() -> None:
    # pydantic inserts the tag ("tcp") into error locations; only the user's keys may show.
    data = _valid()
    data["groups"][0]["checks"][1] = {"type": "tcp", "port": 1, "tcp": True}
    assert "groups[0].checks[1].tcp: unknown key" in _problem(data)
    data = _valid()
    data["ec2"] = {}
    assert "test.yaml: ec2: unknown key" in _problem(data)


def test_long_values_are_shortened_in_messages() -> None:
    data = _valid()
    data["groups"][0]["eni"] = "eni-" + "z" * 500
    message = _problem(data)
    assert "..." in message
    assert len(message) < 300


def test_newlines_in_values_stay_on_one_line() -> None:
    data = _valid()
    data["groups"][0]["name"] = "db\nsecond line"
    assert "groups[0].name: " in _problem(data)


# --- files --------------------------------------------------------------------------------------


def _file_problem(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load(path)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_load_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("groups:\n  - name: db\n    mode: [eni\n", encoding="utf-8")
    message = _file_problem(path)
    assert message.startswith(f"invalid config {path}: line ")


def test_load_tab_indentation_is_a_syntax_error(tmp_path: Path) -> None:
    path = tmp_path / "tabs.yaml"
    path.write_text("groups:\n\t- name: db\n", encoding="utf-8")
    assert "line 2" in _file_problem(path)


def test_load_rejects_a_key_written_twice(tmp_path: Path) -> None:
    # PyYAML keeps the last value silently; the operator meant one of the two.
    path = tmp_path / "twice.yaml"
    path.write_text(
        "groups:\n  - name: db\n    mode: eni\n    eni: eni-0123456789abcdef0\n"
        "    eni: eni-0123456789abcdef1\n    members: [i-0aaaaaaaaaaaaaaaa, i-0bbbbbbbbbbbbbbbb]\n",
        encoding="utf-8",
    )
    assert f"invalid config {path}: line 5: key 'eni' is written twice" == _file_problem(path)


def test_load_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    assert _file_problem(path) == f"cannot read config {path}: No such file or directory"


def test_load_directory(tmp_path: Path) -> None:
    assert _file_problem(tmp_path).startswith(f"cannot read config {tmp_path}: ")


def test_load_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"\xff\xfe\x00groups")
    assert "not UTF-8" in _file_problem(path)


def test_load_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("", encoding="utf-8")
    assert "the top level must be a mapping" in _file_problem(path)


def test_load_problem_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    data = _valid()
    data["groups"][0]["eni"] = "eni-nope"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    assert _file_problem(path).startswith(f"invalid config {path}: groups[0].eni: ")


def test_load_round_trips_the_valid_fixture(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text(yaml.safe_dump(_valid()), encoding="utf-8")
    assert load(path).groups == parse(_valid()).groups


# --- fuzz ---------------------------------------------------------------------------------------

_KEYS = st.sampled_from(
    [
        "aws", "state", "defaults", "groups", "name", "mode", "eni", "ip", "eip", "members",
        "checks", "type", "port", "instance", "address", "interval", "timeout", "tcp", "ec2",
        "device_index", "backend", "table", "fall", "argv", "path",
    ]
) | st.text(max_size=8)  # fmt: skip
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["eni", "eip", "secondary-ip", "tcp", "5s", "500ms", "0s", ENI, I_A, ALLOC])
)
_DOCUMENTS = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=5),
    max_leaves=20,
)


def _paths(node: object, prefix: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Every path to a node of the document, the root excluded."""
    out: list[tuple[object, ...]] = []
    children: list[tuple[object, object]] = []
    if isinstance(node, dict):
        children = list(node.items())
    elif isinstance(node, list):
        children = list(enumerate(node))
    for key, child in children:
        out.append((*prefix, key))
        out.extend(_paths(child, (*prefix, key)))
    return out


@functools.cache
def _example_document() -> Any:
    return yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))


@st.composite
def _mutated_examples(draw: st.DrawFn) -> object:
    """The example file with a few keys dropped, values replaced and keys added."""
    data: Any = copy.deepcopy(_example_document())
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = _paths(data)
        path = draw(st.sampled_from(paths))
        parent: Any = data
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["drop", "replace", "add"]))
        if action == "drop":
            del parent[path[-1]]
        elif action == "replace":
            parent[path[-1]] = draw(_DOCUMENTS)
        elif isinstance(parent[path[-1]], dict):
            parent[path[-1]][draw(_KEYS)] = draw(_DOCUMENTS)
        else:
            parent[path[-1]] = draw(_SCALARS)
    return data


def _parses_or_fails_cleanly(data: object) -> None:
    try:
        result = parse(data, "fuzz.yaml")
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith("invalid config fuzz.yaml: ")
        assert "\n" not in message
        assert "\r" not in message
    else:
        assert isinstance(result, Settings)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_DOCUMENTS | st.dictionaries(_KEYS, _DOCUMENTS, max_size=5))
def test_fuzz_random_documents(data: object) -> None:
    _parses_or_fails_cleanly(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutated_examples())
def test_fuzz_mutated_example(data: object) -> None:
    _parses_or_fails_cleanly(data)
