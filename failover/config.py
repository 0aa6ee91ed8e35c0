"""config.yaml -> validated, frozen Settings; every problem is reported at load, nothing repaired.

The file is validated by pydantic models with `extra="forbid"` (unknown keys are
errors), then resolved: each group's policy is `defaults` overlaid with the group's
own keys. `load` raises ConfigError whose message is a single line naming every
problem as `path.to.key: what is wrong`, so the CLI can print it and exit 2 before
any AWS call.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BeforeValidator,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from failover.config_base import (
    AllocationId,
    Count,
    Duration,
    EniId,
    Failback,
    GroupName,
    InstanceId,
    MovesPerHour,
    Port,
    _Problems,
    _Strict,
)
from failover.config_ops import AfterMove, MetricsSettings, NotifySettings
from failover.durations import format_duration
from failover.errors import ConfigError
from failover.model import Mode

_ID_HINTS = {
    "^i-": "an instance id (i- and 8 or 17 hex digits)",
    "^eni-": "an ENI id (eni- and 8 or 17 hex digits)",
    "^eipalloc-": "an Elastic IP allocation id (eipalloc- and 8 or 17 hex digits)",
    "^[A-Za-z0-9]": "a group name (letters, digits, '_', '.', '-'; at most 63)",
    "^/": "a URL path starting with /",
    "^arn:": "an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)",
}
_CHECK_TYPES = "ec2, tcp, http or command"


class AwsSettings(_Strict):
    """How to reach AWS: region, an optional endpoint (moto's server) and botocore's retry mode."""

    region: str | None = None
    endpoint_url: str | None = None
    profile: str | None = None
    retry_mode: Literal["standard", "adaptive"] = "standard"
    max_attempts: int = Field(default=8, ge=1, le=20, strict=True)

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint_is_http(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value


class StateSettings(_Strict):
    """Where counters, the journal and the history live."""

    backend: Literal["sqlite", "dynamodb"] = "sqlite"
    path: str = "./failover-state.db"
    table: str | None = None
    lease_ttl_s: Duration = Field(default=15.0, alias="lease_ttl")

    @model_validator(mode="after")
    def _table_for_dynamodb(self) -> StateSettings:
        if self.backend == "dynamodb" and not self.table:
            raise _Problems([("table", "required when backend is dynamodb")])
        return self


class Policy(_Strict):
    """The timing and safety knobs every group inherits from `defaults` and may override."""

    interval_s: Duration = Field(default=2.0, alias="interval")
    timeout_s: Duration = Field(default=1.0, alias="timeout")
    fall: Count = 3
    rise: Count = 2
    cooldown_s: Duration = Field(default=300.0, alias="cooldown")
    max_moves_per_hour: MovesPerHour = 3
    failback: Failback = "manual"
    detach_timeout_s: Duration = Field(default=15.0, alias="detach_timeout")
    move_timeout_s: Duration = Field(default=60.0, alias="move_timeout")

    @model_validator(mode="after")
    def _timeouts_fit(self) -> Policy:
        problems = []
        if self.timeout_s > self.interval_s:
            problems.append(
                (
                    "timeout",
                    f"{format_duration(self.timeout_s)} exceeds interval "
                    f"{format_duration(self.interval_s)} (a pass's probes would overlap the next)",
                )
            )
        if self.detach_timeout_s >= self.move_timeout_s:
            problems.append(
                (
                    "detach_timeout",
                    f"{format_duration(self.detach_timeout_s)} is not shorter than move_timeout "
                    f"{format_duration(self.move_timeout_s)} (a Force detach needs time to finish)",
                )
            )
        if problems:
            raise _Problems(problems)
        return self


class _Overrides(_Strict):
    """Policy keys as written in `defaults` or a group: each optional, each checked on its own.

    The cross-key rules (timeout vs interval, ...) run on the resolved Policy, because
    a group may set one key of a pair and inherit the other.
    """

    interval: Duration | None = None
    timeout: Duration | None = None
    fall: Count | None = None
    rise: Count | None = None
    cooldown: Duration | None = None
    max_moves_per_hour: MovesPerHour | None = None
    failback: Failback | None = None
    detach_timeout: Duration | None = None
    move_timeout: Duration | None = None

    def given(self) -> dict[str, Any]:
        """The policy keys this mapping sets, by their config names."""
        return {
            key: getattr(self, key)
            for key in _Overrides.model_fields
            if key in self.model_fields_set and getattr(self, key) is not None
        }


class Ec2Check(_Strict):
    """Instance state plus EC2 system and instance status checks, batched for all members."""

    type: Literal["ec2"]
    interval_s: Duration | None = Field(default=None, alias="interval")


class TcpCheck(_Strict):
    """A TCP connect to the member's address."""

    type: Literal["tcp"]
    port: Port
    timeout_s: Duration | None = Field(default=None, alias="timeout")


class HttpCheck(_Strict):
    """An HTTP GET to the member's address: the expected status and optional body substring."""

    type: Literal["http"]
    port: Port
    path: str = Field(default="/", pattern=r"^/")
    expect: int = Field(default=200, ge=100, le=599, strict=True)
    body: str | None = None
    timeout_s: Duration | None = Field(default=None, alias="timeout")


class CommandCheck(_Strict):
    """A local command; `{address}` and `{instance}` are substituted; exit 0 means healthy."""

    type: Literal["command"]
    argv: tuple[str, ...] = Field(min_length=1)
    timeout_s: Duration | None = Field(default=None, alias="timeout")


Check = Annotated[Ec2Check | TcpCheck | HttpCheck | CommandCheck, Field(discriminator="type")]


class Member(_Strict):
    """One instance of a group; `address` overrides the probe target (its private IP)."""

    instance_id: InstanceId = Field(alias="instance")
    address: str | None = None

    @field_validator("address")
    @classmethod
    def _address_is_ip(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ipaddress.ip_address(value)
            except ValueError:
                raise ValueError(f"{value!r} is not an IP address") from None
        return value


def _member_shorthand(value: Any) -> Any:
    if isinstance(value, str):
        return {"instance": value}
    if not isinstance(value, Mapping | Member):
        raise ValueError(
            f"{_show(value)} is neither an instance id nor a mapping "
            "{instance: i-..., address: ...}"
        )
    return value


class _GroupFile(_Overrides):
    """A group as written in the file: policy keys are optional overrides of `defaults`."""

    name: GroupName
    mode: Mode
    eni: EniId | None = None
    device_index: int | None = Field(default=None, strict=True)
    ip: str | None = None
    eip: AllocationId | None = None
    members: tuple[Annotated[Member, BeforeValidator(_member_shorthand)], ...]
    checks: tuple[Check, ...] = (Ec2Check(type="ec2"),)
    after_move: AfterMove | None = None

    @field_validator("ip")
    @classmethod
    def _ip_is_ipv4(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ipaddress.IPv4Address(value)
            except ValueError:
                raise ValueError(f"{value!r} is not an IPv4 address") from None
        return value

    @model_validator(mode="after")
    def _mode_fields(self) -> _GroupFile:
        problems: list[tuple[str, str]] = []
        if len(self.members) < 2:
            problems.append(
                (
                    "members",
                    f"a group needs at least two members (a primary and a standby), "
                    f"got {len(self.members)}",
                )
            )
        first_seen: dict[str, int] = {}
        for index, member in enumerate(self.members):
            if (earlier := first_seen.setdefault(member.instance_id, index)) != index:
                problems.append(
                    (f"members[{index}]", f"{member.instance_id} is already members[{earlier}]")
                )
        mode = self.mode.value
        if self.mode is Mode.ENI:
            if self.eni is None:
                problems.append(("eni", "required in mode eni"))
            if self.device_index is not None and self.device_index < 1:
                problems.append(
                    (
                        "device_index",
                        f"{self.device_index} is not 1 or more: the primary interface "
                        "(eth0, index 0) can never be detached",
                    )
                )
            problems.extend(
                (key, "not allowed in mode eni (the ENI's addresses travel with it)")
                for key in ("ip", "eip")
                if getattr(self, key) is not None
            )
        else:
            problems.extend(
                (key, f"not allowed in mode {mode} (only mode eni moves an ENI)")
                for key in ("eni", "device_index")
                if getattr(self, key) is not None
            )
            if self.mode is Mode.SECONDARY_IP and self.ip is None:
                problems.append(("ip", "required in mode secondary-ip"))
            if self.mode is Mode.EIP:
                if self.eip is None:
                    problems.append(("eip", "required in mode eip"))
                if self.ip is not None:
                    problems.append(
                        ("ip", "not allowed in mode eip (the EIP goes to the target's primary IP)")
                    )
        if problems:
            raise _Problems(problems)
        return self

    @property
    def resources(self) -> tuple[tuple[str, str], ...]:
        """(key, id) of every floating resource this group claims."""
        return tuple(
            (key, value)
            for key in ("eni", "ip", "eip")
            if (value := getattr(self, key)) is not None
        )


class _ConfigFile(_Strict):
    aws: AwsSettings = AwsSettings()
    state: StateSettings = StateSettings()
    metrics: MetricsSettings = MetricsSettings()
    notify: NotifySettings = NotifySettings()
    defaults: _Overrides = _Overrides()
    groups: tuple[_GroupFile, ...]

    @field_validator("groups", mode="before")
    @classmethod
    def _some_groups(cls, value: Any) -> Any:
        # Checked before the items: pydantic's min_length counts only the items that
        # validated, so one bad group would also report "no groups".
        if isinstance(value, list | tuple) and not value:
            raise ValueError("at least one group is needed")
        return value

    @model_validator(mode="after")
    def _unique(self) -> _ConfigFile:
        problems: list[tuple[str, str]] = []
        names: dict[str, int] = {}
        owners: dict[str, int] = {}
        for index, group in enumerate(self.groups):
            if (earlier := names.setdefault(group.name, index)) != index:
                problems.append(
                    (f"groups[{index}].name", f"{group.name!r} is already groups[{earlier}]")
                )
            for key, resource in group.resources:
                if (owner := owners.setdefault(resource, index)) != index:
                    problems.append(
                        (
                            f"groups[{index}].{key}",
                            f"{resource} already belongs to group "
                            f"{self.groups[owner].name} (groups[{owner}])",
                        )
                    )
        if problems:
            raise _Problems(problems)
        return self


@dataclass(frozen=True)
class Group:
    """A resolved group: its floating resource, members in preference order, checks and policy."""

    name: str
    mode: Mode
    members: tuple[Member, ...]
    checks: tuple[Ec2Check | TcpCheck | HttpCheck | CommandCheck, ...]
    policy: Policy
    eni: str | None = None
    device_index: int = 1
    ip: str | None = None
    eip: str | None = None
    after_move: AfterMove | None = None

    @property
    def resource(self) -> str:
        """The floating resource's id, as the operator wrote it."""
        return self.eni or self.ip or self.eip or ""

    @property
    def instance_ids(self) -> tuple[str, ...]:
        return tuple(m.instance_id for m in self.members)

    def member(self, instance_id: str) -> Member | None:
        return next((m for m in self.members if m.instance_id == instance_id), None)


@dataclass(frozen=True)
class Settings:
    """The whole validated configuration."""

    aws: AwsSettings
    state: StateSettings
    defaults: Policy
    groups: tuple[Group, ...]
    source: str = "config.yaml"
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    notify: NotifySettings = field(default_factory=NotifySettings)

    def group(self, name: str) -> Group:
        for group in self.groups:
            if group.name == name:
                return group
        known = ", ".join(g.name for g in self.groups)
        raise ConfigError(f"no group named {name!r} in {self.source} (groups: {known})")


def _show(value: object, limit: int = 60) -> str:
    """A short repr of a user's value for a one-line message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _join(base: str, key: str) -> str:
    """`base.key`, `base[0]`, or whichever of the two is not empty."""
    if not base or not key:
        return base or key
    return f"{base}{key}" if key.startswith("[") else f"{base}.{key}"


def _where(loc: Sequence[int | str], data: object) -> str:
    """`groups[0].checks[1].port` for a pydantic loc, walking the input document.

    pydantic puts parts into `loc` that the user never wrote (a tagged union's tag,
    a validator's name); only the parts that are keys or indexes of the document,
    plus a final missing key, are kept.
    """
    out, node = "", data
    for position, part in enumerate(loc):
        last = position == len(loc) - 1
        if position >= 2 and loc[position - 2] == "checks" and isinstance(loc[position - 1], int):
            continue  # the check's discriminator tag, which pydantic adds before its keys
        if isinstance(node, list | tuple) and isinstance(part, int):
            out += f"[{part}]"
            node = node[part] if -len(node) <= part < len(node) else None
        elif isinstance(node, Mapping) and part in node:
            out = _join(out, str(part))
            node = node[part]
        elif last and isinstance(node, Mapping):
            out = _join(out, str(part))  # a missing key
            node = None
    return out


def _describe(error: Mapping[str, Any]) -> str:
    """One pydantic error in the operator's words, without pydantic's vocabulary."""
    kind, msg = error["type"], str(error["msg"])
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    value = error.get("input")
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern", ""))
        hint = next((h for p, h in _ID_HINTS.items() if pattern.startswith(p)), "the expected form")
        return f"{_show(value)} is not {hint}"
    if kind in {"value_error", "assertion_error"}:
        return msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind == "union_tag_invalid":
        tag = value.get("type") if isinstance(value, Mapping) else ctx.get("tag")
        return f"unknown check type {_show(tag)} (expected {_CHECK_TYPES})"
    if kind == "union_tag_not_found":
        return f"a check needs `type` ({_CHECK_TYPES})"
    if kind in {"model_type", "model_attributes_type", "dict_type"}:
        return f"must be a mapping, not {_show(value)}"
    if kind in {"tuple_type", "list_type"}:
        return f"must be a list, not {_show(value)}"
    if kind == "too_short":
        return f"needs at least {ctx.get('min_length')} item(s)"
    if kind in {"enum", "literal_error"}:
        return f"must be {ctx.get('expected')}, not {_show(value)}"
    if kind in {"int_type", "int_parsing", "int_from_float"}:
        return f"must be a whole number, not {_show(value)}"
    if kind in {"string_type", "string_sub_type"}:
        return f"must be a string, not {_show(value)}"
    if kind == "greater_than_equal":
        return f"must be at least {ctx.get('ge')}, not {_show(value)}"
    if kind == "less_than_equal":
        return f"must be at most {ctx.get('le')}, not {_show(value)}"
    return f"{msg[:1].lower() + msg[1:]} (got {_show(value)})"


def _problems(error: ValidationError, data: object, base: str = "") -> list[str]:
    """Each pydantic error as `where: what`, expanding located validator problems."""
    out: list[str] = []
    for e in error.errors():
        where = _join(base, _where(e["loc"], data))
        found = (e.get("ctx") or {}).get("error")
        if isinstance(found, _Problems):
            out.extend(f"{_join(where, key)}: {text}" for key, text in found.problems)
        else:
            out.append(f"{where or '(top level)'}: {_describe(e)}")
    return out


def _fail(source: str, problems: Sequence[str]) -> ConfigError:
    # One line, whatever a value or a YAML message held: the CLI prints it as is.
    text = f"invalid config {source}: " + "; ".join(problems)
    return ConfigError(" ".join(text.split()))


def parse(data: object, source: str = "config.yaml") -> Settings:
    """Validate an already-parsed YAML document; raises ConfigError (one line) on any problem."""
    if not isinstance(data, dict):
        raise _fail(source, [f"the top level must be a mapping with `groups`, not {_show(data)}"])
    try:
        raw = _ConfigFile.model_validate(data)
    except ValidationError as exc:
        raise _fail(source, _problems(exc, data)) from None
    problems: list[str] = []
    try:
        defaults = Policy.model_validate(raw.defaults.given())
    except ValidationError as exc:
        # Every group inherits these; their own resolution would repeat the same problem.
        raise _fail(source, _problems(exc, {}, "defaults")) from None
    groups = []
    for index, g in enumerate(raw.groups):
        where = f"groups[{index}]"
        try:
            policy = Policy.model_validate({**raw.defaults.given(), **g.given()})
        except ValidationError as exc:
            problems.extend(_problems(exc, {}, where))
            continue
        for number, check in enumerate(g.checks):
            timeout = getattr(check, "timeout_s", None)
            if timeout is not None and timeout > policy.interval_s:
                problems.append(
                    f"{where}.checks[{number}].timeout: {format_duration(timeout)} exceeds "
                    f"the group's interval {format_duration(policy.interval_s)}"
                )
        groups.append(
            Group(
                name=g.name,
                mode=g.mode,
                members=g.members,
                checks=g.checks,
                policy=policy,
                eni=g.eni,
                device_index=g.device_index or 1,
                ip=g.ip,
                eip=g.eip,
                after_move=g.after_move,
            )
        )
    if problems:
        raise _fail(source, problems)
    return Settings(
        aws=raw.aws,
        state=raw.state,
        defaults=defaults,
        groups=tuple(groups),
        source=source,
        metrics=raw.metrics,
        notify=raw.notify,
    )


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key written twice in one mapping (PyYAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, Hashable):
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {_show(key)} is written twice", key_node.start_mark
                    )
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def default_path() -> Path:
    """`$FAILOVER_CONFIG`, else ./config.yaml."""
    return Path(os.environ.get("FAILOVER_CONFIG", "config.yaml"))


def load(path: Path) -> Settings:
    """Read and validate `path`; every problem becomes one ConfigError line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"cannot read config {path}: not UTF-8 text ({exc.reason})") from None
    try:
        data = yaml.load(
            text, Loader=_UniqueKeyLoader
        )  # a SafeLoader subclass: no arbitrary objects
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "(top level)"
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise _fail(str(path), [f"{where}: {problem}"]) from None
    return parse(data, str(path))
