"""Socket and command probes: run one pass of checks against members, concurrently.

`run_probes` takes ProbeTargets (one check of one member, with its resolved timeout)
and returns ProbeResults in the same order. A probe that cannot decide is a failure.
"""

from failover.probes.command import command_argv
from failover.probes.runner import concurrency_limit, raise_fd_limit, run_probes
from failover.probes.target import (
    ProbeResult,
    ProbeTarget,
    SocketOrCommandCheck,
    check_name,
    probe_targets,
)

__all__ = [
    "ProbeResult",
    "ProbeTarget",
    "SocketOrCommandCheck",
    "check_name",
    "command_argv",
    "concurrency_limit",
    "probe_targets",
    "raise_fd_limit",
    "run_probes",
]
