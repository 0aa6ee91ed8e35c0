"""config.yaml -> validated, frozen Settings; every problem is reported at load, nothing repaired.

The file is validated by pydantic models with `extra="forbid"` (unknown keys are
errors), then resolved: each group's policy is `defaults` overlaid with the group's
own keys. `load` raises ConfigError whose message is a single line naming every
problem as `path.to.key: what is wrong`, so the CLI can print it and exit 2 before
any AWS call.
"""

from __future__ import annotations

import os
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from failover.config.messages import _fail, _problems, _show
from failover.config.schema import Group, Policy, Settings, _ConfigFile
from failover.core.durations import format_duration
from failover.core.errors import ConfigError


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
                cidr=g.cidr,
                route_tables=g.route_tables or (),
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
