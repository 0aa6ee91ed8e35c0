"""config.yaml -> validated, frozen Settings; every problem is reported at load, nothing repaired.

The file is validated by pydantic models with `extra="forbid"` (unknown keys are
errors), then resolved: each group's policy is `defaults` overlaid with the group's
own keys, and relative paths (`state.path`, a command's program) are made relative to
the config file's directory, never to the shell's. `load` raises ConfigError whose
message is a single line naming every problem as `path.to.key: what is wrong`, so the
CLI can print it and exit 2 before any AWS call.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Hashable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import ValidationError

from failover.config.messages import _fail, _problems, _show
from failover.config.ops import AfterMove
from failover.config.schema import (
    CommandCheck,
    Ec2Check,
    Group,
    HttpCheck,
    Policy,
    Settings,
    StateSettings,
    TcpCheck,
    _ConfigFile,
)
from failover.core.durations import format_duration
from failover.core.errors import ConfigError

# A config is a few kilobytes; a file this big is not one (and is not read into memory).
MAX_CONFIG_BYTES = 1 << 20
# Values in the document once YAML aliases are expanded: a few thousand groups fit; an
# alias bomb (each level repeating the one before) or an alias to itself does not.
MAX_CONFIG_VALUES = 1_000_000


def parse(data: object, source: str = "config.yaml", base_dir: Path | None = None) -> Settings:
    """Validate an already-parsed YAML document; raises ConfigError (one line) on any problem.

    `base_dir` (the config file's directory) anchors the document's relative paths;
    without it they are left as written.
    """
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
                checks=tuple(_anchor_check(c, base_dir) for c in g.checks),
                policy=policy,
                eni=g.eni,
                device_index=g.device_index or 1,
                ip=g.ip,
                eip=g.eip,
                after_move=_anchor_after_move(g.after_move, base_dir),
                cidr=g.cidr,
                route_tables=g.route_tables or (),
            )
        )
    if problems:
        raise _fail(source, problems)
    return Settings(
        aws=raw.aws,
        state=_anchor_state(raw.state, base_dir),
        defaults=defaults,
        groups=tuple(groups),
        source=source,
        metrics=raw.metrics,
        notify=raw.notify,
    )


def _anchored(path: str, base_dir: Path | None) -> str:
    """`path` made relative to `base_dir` when it is a relative path (not a bare name)."""
    if base_dir is None or os.path.isabs(path):
        return path
    return str(base_dir / path)


def _anchor_state(state: StateSettings, base_dir: Path | None) -> StateSettings:
    if state.backend != "sqlite" or state.path == ":memory:":
        return state
    return state.model_copy(update={"path": _anchored(state.path, base_dir)})


def _anchor_argv(argv: tuple[str, ...], base_dir: Path | None) -> tuple[str, ...]:
    """A program written as a path (`./hooks/x`, `bin/check`) is the config's; a bare name is PATH's."""
    program = argv[0]
    if "/" not in program:
        return argv
    return (_anchored(program, base_dir), *argv[1:])


def _anchor_check(
    check: Ec2Check | TcpCheck | HttpCheck | CommandCheck, base_dir: Path | None
) -> Ec2Check | TcpCheck | HttpCheck | CommandCheck:
    if not isinstance(check, CommandCheck):
        return check
    return check.model_copy(update={"argv": _anchor_argv(check.argv, base_dir)})


def _anchor_after_move(after: AfterMove | None, base_dir: Path | None) -> AfterMove | None:
    if after is None or after.command is None:
        return after
    return after.model_copy(update={"command": _anchor_argv(after.command, base_dir)})


# libyaml's parser (PyYAML's C extension, when built) with PyYAML's safe constructor:
# the same documents and errors, a few times faster than the pure-Python parser.
if TYPE_CHECKING:
    _SafeLoader = yaml.SafeLoader
else:
    _SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _UniqueKeyLoader(_SafeLoader):
    """A safe loader that rejects a key written twice in one mapping (PyYAML keeps the last)."""

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


def _too_many_values(data: object, limit: int) -> bool:
    """Whether the document has more than `limit` values, aliases expanded (a walk that stops early)."""
    stack, seen = [data], 0
    while stack:
        node = stack.pop()
        seen += 1
        if seen > limit:
            return True
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list | tuple | set):
            stack.extend(node)
    return False


def read_text(path: Path) -> str:
    """The config file's text; ConfigError unless it is a regular, small, UTF-8 file.

    Opened without blocking and checked on the open descriptor: a FIFO or a device
    named as the config is refused at once instead of hanging or reading forever.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise ConfigError(f"cannot read config {path}: Is a directory")
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"cannot read config {path}: not a regular file")
        if info.st_size > MAX_CONFIG_BYTES:
            raise ConfigError(
                f"cannot read config {path}: {info.st_size} bytes is more than a config "
                f"({MAX_CONFIG_BYTES} at most)"
            )
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=True) as file:
            fd = -1
            raw = file.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from None
    finally:
        if fd >= 0:
            os.close(fd)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"cannot read config {path}: not UTF-8 text ({exc.reason})") from None


def load(path: Path) -> Settings:
    """Read and validate `path`; every problem becomes one ConfigError line."""
    text = read_text(path)
    try:
        data = yaml.load(
            text, Loader=_UniqueKeyLoader
        )  # a SafeLoader subclass: no arbitrary objects
    except yaml.YAMLError as exc:
        if "maximum nesting depth" in str(getattr(exc, "problem", "")):  # libyaml's own limit
            raise _fail(str(path), ["nested too deeply to be a config"]) from None
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "(top level)"
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise _fail(str(path), [f"{where}: {problem}"]) from None
    except RecursionError:
        raise _fail(str(path), ["nested too deeply to be a config"]) from None
    except (ValueError, TypeError, OverflowError) as exc:
        # PyYAML's constructors raise these for values its resolver accepted
        # (`2001-13-45` is a timestamp to the resolver, not to datetime).
        raise _fail(str(path), [f"not valid YAML: {exc}"]) from None
    if _too_many_values(data, MAX_CONFIG_VALUES):
        raise _fail(
            str(path),
            [
                f"more than {MAX_CONFIG_VALUES} values once its aliases are expanded (or an alias refers to itself)"
            ],
        )
    try:
        return parse(data, str(path), path.absolute().parent)
    except RecursionError:
        raise _fail(str(path), ["nested too deeply to be a config"]) from None
