"""Plain Python values <-> DynamoDB AttributeValues, as the DynamoDB adapter sends and reads them."""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any


def to_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """A plain item as DynamoDB attribute values."""
    return {name: to_attribute(value) for name, value in item.items()}


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """A DynamoDB item as plain values (numbers as Decimal)."""
    return {name: from_attribute(value) for name, value in item.items()}


def to_attribute(value: Any) -> dict[str, Any]:
    """A plain Python value as a DynamoDB AttributeValue (floats exactly, as their repr)."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, int):
        return {"N": str(value)}
    if isinstance(value, float | Decimal):
        if not math.isfinite(value):
            raise ValueError(f"DynamoDB cannot store {value!r}")
        return {"N": repr(float(value)) if isinstance(value, float) else str(value)}
    if isinstance(value, list | tuple):
        return {"L": [to_attribute(v) for v in value]}
    if isinstance(value, Mapping):
        return {"M": {str(k): to_attribute(v) for k, v in value.items()}}
    raise TypeError(f"cannot store a {type(value).__name__} in DynamoDB")


def from_attribute(attribute: Mapping[str, Any]) -> Any:
    """A DynamoDB AttributeValue as a plain Python value (numbers as Decimal)."""
    ((kind, value),) = attribute.items()
    if kind == "S":
        return value
    if kind == "N":
        return Decimal(value)
    if kind == "BOOL":
        return bool(value)
    if kind == "NULL":
        return None
    if kind == "L":
        return [from_attribute(v) for v in value]
    if kind == "M":
        return {k: from_attribute(v) for k, v in value.items()}
    raise TypeError(f"unsupported DynamoDB attribute type {kind}")
