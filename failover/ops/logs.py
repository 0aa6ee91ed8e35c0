"""Logging setup: one JSON object per line for machines, or plain lines for people.

`configure` installs one stderr handler on the root logger (replacing any earlier one,
so calling it twice is harmless). JSON is chosen when asked for, or by default when
stderr is not a terminal (systemd's journal, a container runtime, a cron mail). Every
field given with `extra=` (group, member, resource, move_id, step...) and every field
bound with `log_context` becomes a key of the JSON object, or a `key=value` suffix
of the text line. stdlib logging only: nothing in the process has to change its calls.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
import logging
import sys
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import IO, Any, Literal

LogFormat = Literal["json", "text"]

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_RESERVED = frozenset(vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}

_context: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "failover_log_context", default=MappingProxyType({})
)


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add `fields` to every record logged in this thread (or task) inside the block."""
    token = _context.set({**_context.get(), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The record's own fields: those bound by `log_context`, then those passed as `extra=`."""
    fields = dict(getattr(record, "context", None) or {})
    fields.update(
        (key, value)
        for key, value in vars(record).items()
        if key not in _RESERVED and key != "context" and not key.startswith("_")
    )
    return fields


class _ContextFilter(logging.Filter):
    """Copies the bound `log_context` fields onto each record as it is handled."""

    def filter(self, record: logging.LogRecord) -> bool:
        if (bound := _context.get()) and not hasattr(record, "context"):
            record.context = dict(bound)
        return True


def _timestamp(record: logging.LogRecord) -> str:
    moment = dt.datetime.fromtimestamp(record.created, tz=dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, the extra fields, and exc if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in extra_fields(record).items():
            # An extra named like a base key must not overwrite it (a `msg` extra is a bug).
            entry[key if key not in entry else f"extra_{key}"] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # json.dumps escapes newlines in strings, so the object stays on one line;
        # default=str keeps an odd extra (a Path, an exception) from breaking the line; ASCII
        # escapes keep U+2028 and friends, which some readers split on, off the line too.
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """`2024-05-01 12:00:00,123 INFO failover.service.engine: msg [group=db move_id=ab12]`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = extra_fields(record)
        if not fields:
            return line
        suffix = " ".join(f"{key}={_show(value)}" for key, value in fields.items())
        head, newline, rest = line.partition("\n")  # keep a traceback below the fields
        return f"{head} [{suffix}]{newline}{rest}"


def _show(value: object) -> str:
    text = str(value)
    return json.dumps(text) if not text or any(c in text for c in ' "=[]\n') else text


def choose_format(fmt: LogFormat | None, stream: IO[str]) -> LogFormat:
    """`fmt` when given; else json unless `stream` is a terminal."""
    if fmt is not None:
        return fmt
    isatty = getattr(stream, "isatty", None)
    return "text" if callable(isatty) and isatty() else "json"


def configure(
    fmt: LogFormat | None = None, level: int | str = logging.INFO, *, stream: IO[str] | None = None
) -> logging.Handler:
    """Send the root logger to `stream` (stderr) in `fmt`; returns the installed handler."""
    out = stream if stream is not None else sys.stderr
    chosen = choose_format(fmt, out)
    if chosen not in ("json", "text"):
        raise ValueError(f"log format {chosen!r} is not json or text")
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter() if chosen == "json" else TextFormatter())
    handler.addFilter(_ContextFilter())
    handler.set_name("failover")
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    return handler
