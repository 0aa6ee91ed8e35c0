"""The building blocks of the config models: durations, AWS id patterns, strict models.

Shared by config.py (the file's main sections) and config_ops.py (metrics, notify,
after_move), so both speak the same types and report problems the same way.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from failover.core.durations import format_duration, parse_duration

DAY_S = 86_400.0
HOUR_S = 3_600.0
MINUTE_S = 60.0


def _at_most(limit_s: float) -> Callable[[object], float]:
    """A duration parser that also refuses values longer than `limit_s`.

    Every duration has a ceiling: beyond it the value is a typo, and an unbounded one
    (`99999999999999999999h`) would overflow the scheduler's timedelta at run time.
    """

    def parse(value: object) -> float:
        seconds = parse_duration(value)
        if seconds > limit_s:
            shown = repr(value)
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            raise ValueError(f"{shown} is longer than the {format_duration(limit_s)} maximum")
        return seconds

    return parse


# A duration of at most a day (intervals, cooldowns); the shorter kinds say their own ceiling.
Duration = Annotated[float, BeforeValidator(_at_most(DAY_S))]
HourDuration = Annotated[float, BeforeValidator(_at_most(HOUR_S))]
MinuteDuration = Annotated[float, BeforeValidator(_at_most(MINUTE_S))]
InstanceId = Annotated[str, Field(pattern=r"^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$")]
EniId = Annotated[str, Field(pattern=r"^eni-(?:[0-9a-f]{8}|[0-9a-f]{17})$")]
AllocationId = Annotated[str, Field(pattern=r"^eipalloc-(?:[0-9a-f]{8}|[0-9a-f]{17})$")]
RouteTableId = Annotated[str, Field(pattern=r"^rtb-(?:[0-9a-f]{8}|[0-9a-f]{17})$")]
GroupName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")]
# strict: YAML reads `yes` as True and pydantic would otherwise take it for 1.
Port = Annotated[int, Field(ge=1, le=65535, strict=True)]
Count = Annotated[int, Field(ge=1, le=100, strict=True)]
MovesPerHour = Annotated[int, Field(ge=1, le=1000, strict=True)]
# No instance type takes anywhere near this many interfaces (AWS refuses an index past the
# type's own limit at attach time); a bigger number is a typo, and AWS's DeviceIndex is 32-bit.
MAX_DEVICE_INDEX = 127
DeviceIndex = Annotated[int, Field(le=MAX_DEVICE_INDEX, strict=True)]
Failback = Literal["manual", "auto"]


def _ipv4_cidr(value: str) -> str:
    """An IPv4 CIDR as EC2 writes it in DescribeRouteTables (`address/prefix`, no host bits)."""
    if "/" not in value:
        raise ValueError(f"{value!r} is not a CIDR: write address/prefix, e.g. {value}/32")
    try:
        network = ipaddress.IPv4Network(value)
    except ipaddress.NetmaskValueError:
        raise ValueError(f"{value!r} is not a CIDR: the prefix is not 0-32") from None
    except ValueError as exc:
        if "has host bits set" in str(exc):
            raise ValueError(f"{value!r} is not a CIDR: it has host bits set") from None
        raise ValueError(f"{value!r} is not an IPv4 CIDR") from None
    return network.with_prefixlen


Cidr = Annotated[str, AfterValidator(_ipv4_cidr)]


class _Problems(ValueError):
    """Problems found by a model validator, each at a key relative to the model's location.

    pydantic can only place a validator's error at the model itself; carrying the keys
    lets the message point at `groups[0].eni` rather than at `groups[0]`.
    """

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(f"{key}: {text}" for key, text in self.problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
