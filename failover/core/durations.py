"""Parse durations written as `500ms`, `5s`, `5m`, `1h` (or a bare number of seconds).

Every accepted duration is finite and longer than zero, and `format_duration` spells
a parsed value so that parsing it again gives the same number of seconds.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from decimal import Decimal

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$")
_HINT = "is not a duration (write 500ms, 5s, 5m or 1h)"


def parse_duration(value: object) -> float:
    """Seconds in `value`; raises ValueError with a message fit for the user."""
    # bool is an int to Python, but `interval: yes` in YAML is a typo, not one second.
    if isinstance(value, bool):
        raise ValueError(f"{value!r} {_HINT}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _PATTERN.match(value)):
        number, unit = match.groups()
        # Divide for ms: 300 / 1000 rounds once, 300 * 0.001 can round twice.
        seconds = float(number) / 1000 if unit == "ms" else float(number) * _UNITS[unit]
    else:
        raise ValueError(f"{_short(value)} {_HINT}")
    # NaN compares false with everything, so it would pass a plain `<= 0` test.
    if not math.isfinite(seconds):
        raise ValueError(f"{_short(value)} {_HINT}")
    if seconds <= 0:
        raise ValueError(f"{_short(value)} must be longer than zero")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest spelling of `seconds` in the config's units that parses back to it."""
    for unit, size in (("h", 3600.0), ("m", 60.0), ("s", 1.0)):
        if seconds >= size and (seconds / size).is_integer():
            return f"{int(seconds / size)}{unit}"
    # Whole milliseconds only if parsing them gives back exactly these seconds.
    if round(seconds * 1000) / 1000 == seconds:
        return f"{round(seconds * 1000)}ms"
    # repr is the shortest text that reads back as the same float; Decimal drops its exponent.
    return f"{Decimal(repr(seconds)):f}s"


def _short(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def when(epoch: float | None) -> str:
    """An ISO-8601 UTC timestamp, or '-'."""
    if epoch is None:
        return "-"
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
