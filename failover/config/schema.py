"""The config's shape: pydantic models of config.yaml (unknown keys forbidden) and the resolved Group and Settings."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    field_validator,
    model_validator,
)

from failover.config.base import (
    AllocationId,
    Cidr,
    Count,
    DeviceIndex,
    Duration,
    EniId,
    Failback,
    GroupName,
    HourDuration,
    InstanceId,
    MovesPerHour,
    Port,
    RouteTableId,
    _Problems,
    _Strict,
)
from failover.config.messages import _show
from failover.config.ops import AfterMove, MetricsSettings, NotifySettings
from failover.core.durations import format_duration
from failover.core.errors import ConfigError
from failover.core.model import Mode


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
    lease_ttl_s: HourDuration = Field(default=15.0, alias="lease_ttl")

    @model_validator(mode="after")
    def _table_for_dynamodb(self) -> StateSettings:
        if self.backend == "dynamodb" and not self.table:
            raise _Problems([("table", "required when backend is dynamodb")])
        return self


class Policy(_Strict):
    """The timing and safety knobs every group inherits from `defaults` and may override."""

    interval_s: Duration = Field(default=2.0, alias="interval")
    timeout_s: HourDuration = Field(default=1.0, alias="timeout")
    fall: Count = 3
    rise: Count = 2
    cooldown_s: Duration = Field(default=300.0, alias="cooldown")
    max_moves_per_hour: MovesPerHour = 3
    failback: Failback = "manual"
    detach_timeout_s: HourDuration = Field(default=15.0, alias="detach_timeout")
    move_timeout_s: HourDuration = Field(default=60.0, alias="move_timeout")

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
    timeout: HourDuration | None = None
    fall: Count | None = None
    rise: Count | None = None
    cooldown: Duration | None = None
    max_moves_per_hour: MovesPerHour | None = None
    failback: Failback | None = None
    detach_timeout: HourDuration | None = None
    move_timeout: HourDuration | None = None

    def given(self) -> dict[str, Any]:
        """The policy keys this mapping sets, by their config names."""
        return {
            key: getattr(self, key)
            for key in _Overrides.model_fields
            if key in self.model_fields_set and getattr(self, key) is not None
        }


class Ec2Check(_Strict):
    """Instance state plus EC2 system and instance status checks, batched for all members and
    read every pass (DescribeInstanceStatus carries the state too, so it has no interval)."""

    type: Literal["ec2"]


class TcpCheck(_Strict):
    """A TCP connect to the member's address."""

    type: Literal["tcp"]
    port: Port
    timeout_s: HourDuration | None = Field(default=None, alias="timeout")


class HttpCheck(_Strict):
    """An HTTP GET to the member's address: the expected status and optional body substring."""

    type: Literal["http"]
    port: Port
    path: str = Field(default="/", pattern=r"^/")
    expect: int = Field(default=200, ge=100, le=599, strict=True)
    body: str | None = None
    timeout_s: HourDuration | None = Field(default=None, alias="timeout")


class CommandCheck(_Strict):
    """A local command; `{address}` and `{instance}` are substituted; exit 0 means healthy."""

    type: Literal["command"]
    argv: tuple[str, ...] = Field(min_length=1)
    timeout_s: HourDuration | None = Field(default=None, alias="timeout")


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
    device_index: DeviceIndex | None = None
    ip: str | None = None
    eip: AllocationId | None = None
    cidr: Cidr | None = None
    route_tables: tuple[RouteTableId, ...] | None = None
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
        if self.mode is Mode.ROUTE:
            problems.extend(_route_problems(self.cidr, self.route_tables))
            problems.extend(
                (key, "not allowed in mode route (it moves a route, not an address)")
                for key in ("ip", "eip")
                if getattr(self, key) is not None
            )
        else:
            problems.extend(
                (key, f"not allowed in mode {mode} (only mode route moves a route)")
                for key in ("cidr", "route_tables")
                if getattr(self, key) is not None
            )
        if self.mode is not Mode.ENI:
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
            for key in ("eni", "ip", "eip", "cidr")
            if (value := getattr(self, key)) is not None
        )


def _route_problems(cidr: str | None, tables: tuple[str, ...] | None) -> list[tuple[str, str]]:
    problems = []
    if cidr is None:
        problems.append(("cidr", "required in mode route (the overlay address, e.g. x.y.z.w/32)"))
    if not tables:
        problems.append(("route_tables", "required in mode route: one or more rtb- ids"))
    elif len(set(tables)) != len(tables):
        problems.append(("route_tables", "a table is listed twice"))
    return problems


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
    cidr: str | None = None
    route_tables: tuple[str, ...] = ()

    @property
    def resource(self) -> str:
        """The floating resource's id, as the operator wrote it (a route group's: its CIDR)."""
        return self.eni or self.ip or self.eip or self.cidr or ""

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
