"""Config problems in the operator's words: pydantic errors -> `path.to.key: what is wrong`, one line."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from failover.config.base import _Problems
from failover.core.errors import ConfigError

_ID_HINTS = {
    "^i-": "an instance id (i- and 8 or 17 hex digits)",
    "^eni-": "an ENI id (eni- and 8 or 17 hex digits)",
    "^eipalloc-": "an Elastic IP allocation id (eipalloc- and 8 or 17 hex digits)",
    "^[A-Za-z0-9]": "a group name (letters, digits, '_', '.', '-'; at most 63)",
    "^/": "a URL path starting with /",
    "^arn:": "an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)",
}
_CHECK_TYPES = "ec2, tcp, http or command"


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
