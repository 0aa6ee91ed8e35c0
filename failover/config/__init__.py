"""The configuration: its schema, its loader and the operator-facing messages of both.

`load(path) -> Settings` is the one way in; every problem is one ConfigError line (exit 2).
"""

from failover.config.load import default_path, load, parse
from failover.config.ops import AfterMove, MetricsSettings, NotifySettings
from failover.config.schema import (
    AwsSettings,
    CommandCheck,
    Ec2Check,
    Group,
    HttpCheck,
    Member,
    Policy,
    Settings,
    StateSettings,
    TcpCheck,
)

__all__ = [
    "AfterMove",
    "AwsSettings",
    "CommandCheck",
    "Ec2Check",
    "Group",
    "HttpCheck",
    "Member",
    "MetricsSettings",
    "NotifySettings",
    "Policy",
    "Settings",
    "StateSettings",
    "TcpCheck",
    "default_path",
    "load",
    "parse",
]
