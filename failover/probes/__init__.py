"""Socket and command probes: run one pass of checks against members, concurrently.

`failover.probes.runner.run_probes` takes ProbeTargets (one check of one member, with its
resolved timeout) and returns ProbeResults in the same order. A probe that cannot decide is
a failure. The package itself holds only what describes a probe: the runner and its event
loop (asyncio, ~25 ms to import) load when a pass first probes, after its read of AWS, so a
`failover check` sends its first call without waiting for them.
"""

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
    "probe_targets",
]
