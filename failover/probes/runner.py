"""run_probes: one pass of socket and command probes, all at once, on a private event loop.

A pass over thousands of members takes about one timeout, not their sum: every probe
runs concurrently on one asyncio loop, at most a pool of workers at once. The function is
synchronous and thread-safe: each call runs its own loop (asyncio.run), so it works
from an APScheduler worker thread, from two threads at once, and even from inside a
running loop (then the pass runs on a helper thread). It never raises for a probe:
whatever goes wrong inside one becomes a failed ProbeResult with a reason.

Local overload: a probe's timeout and its latency count only the time the loop was free
to serve it (probes/deadline.py): the loop's own lag, measured for the whole pass by one
LoopLag meter, is left out, so a burst of probes on a busy host does not read as a burst
of failed members. A probe the loop cannot serve within its timeout plus
`OVERLOAD_GRACE_S` still fails, with a reason that names the local overload.

File descriptors: a TCP or HTTP probe holds one socket, a command probe two temporary
files plus, while it is spawned, a pipe pair, so a probe is budgeted at
`FDS_PER_PROBE` descriptors. On first use the RLIMIT_NOFILE soft limit is raised to
the hard limit (once per process), and a pass's concurrency is capped so that its
probes fit in that limit with `RESERVED_FDS` left over for the rest of the process
(the state store, AWS connections, logs). Two passes running at once each get that
cap; with the default `max_concurrency` of 1024 they need 8,192 descriptors, well
inside a typical hard limit (Linux defaults to 1,048,576 hard; systemd units to 524,288).
"""

from __future__ import annotations

import asyncio
import resource
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from failover.config import CommandCheck, HttpCheck, TcpCheck
from failover.probes.command import probe_command
from failover.probes.deadline import OVERLOAD_GRACE_S, LoopLag
from failover.probes.http import probe_http
from failover.probes.target import ProbeResult, ProbeTarget, check_name, seconds
from failover.probes.tcp import probe_tcp

FDS_PER_PROBE = 4
"""Descriptors one in-flight probe may hold at worst (a command: two temp files, a pipe pair)."""

RESERVED_FDS = 256
"""Descriptors left for the rest of the process however many probes are in flight."""

_BACKSTOP_GRACE_S = 10.0
"""Extra time past a probe's own give-up time (timeout plus the overload grace) before the
runner gives up on it (a killed command that will not be reaped); the probes enforce
their timeouts themselves."""

_fd_lock = threading.Lock()
_fd_soft_limit: int | None = None


def raise_fd_limit() -> int:
    """Raise RLIMIT_NOFILE's soft limit to its hard limit, once per process; the soft limit."""
    global _fd_soft_limit
    with _fd_lock:
        if _fd_soft_limit is None:
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            if hard != resource.RLIM_INFINITY and soft != resource.RLIM_INFINITY and soft < hard:
                try:
                    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
                    soft = hard
                except (ValueError, OSError):
                    pass  # keep the current soft limit; the cap below respects it
            _fd_soft_limit = 1 << 20 if soft == resource.RLIM_INFINITY else soft
        return _fd_soft_limit


def concurrency_limit(max_concurrency: int) -> int:
    """How many probes one pass may run at once: `max_concurrency`, within the fd budget."""
    budget = (raise_fd_limit() - RESERVED_FDS) // FDS_PER_PROBE
    return max(1, min(max_concurrency, budget))


async def _probe(target: ProbeTarget, lag: LoopLag) -> tuple[bool, str]:
    if not target.address:
        return False, "no address to probe"
    check = target.check
    if isinstance(check, TcpCheck):
        return await probe_tcp(target, check, lag)
    if isinstance(check, HttpCheck):
        return await probe_http(target, check, lag)
    if isinstance(check, CommandCheck):
        return await probe_command(target, check, lag)
    return False, f"unsupported check type {type(check).__name__}"


async def _guarded(target: ProbeTarget, lag: LoopLag) -> ProbeResult:
    # Latency is measured from the probe's own start and without the loop's lag: it is the
    # member's, not the queue's or this host's.
    started = lag.mark()
    try:
        backstop_s = target.timeout_s + OVERLOAD_GRACE_S + _BACKSTOP_GRACE_S
        async with asyncio.timeout(backstop_s):
            ok, reason = await _probe(target, lag)
    except TimeoutError:
        ok, reason = False, f"timed out after {seconds(target.timeout_s)} (probe hung)"
    # A probe that cannot decide is a failure: whatever it raised is its reason, and
    # one broken probe must not take the rest of the pass down with it.
    except Exception as exc:
        ok, reason = False, f"probe error: {type(exc).__name__}: {exc}"[:300]
    latency_s = max(lag.charged(started), 0.0)
    return ProbeResult(
        group=target.group,
        instance_id=target.instance_id,
        check=check_name(target.check),
        ok=ok,
        reason=reason,
        latency_s=latency_s,
    )


async def _pass(targets: Sequence[ProbeTarget], limit: int) -> list[ProbeResult]:
    lag = LoopLag()
    # Created before the probes, so the meter is ticking before the first deadline starts.
    meter = asyncio.create_task(lag.meter())
    results: list[ProbeResult | None] = [None] * len(targets)
    queue = iter(enumerate(targets))

    async def worker() -> None:
        # `limit` workers share one queue: at most `limit` probes in flight, without a
        # semaphore whose release scans its thousands of waiters (quadratic in a big pass).
        for n, target in queue:
            results[n] = await _guarded(target, lag)

    try:
        await asyncio.gather(*(worker() for _ in range(min(limit, len(targets)))))
    finally:
        meter.cancel()
        await asyncio.wait([meter])  # unlike `await meter`, never mistakes its end for ours
    return [r for r in results if r is not None]


def run_probes(targets: Sequence[ProbeTarget], *, max_concurrency: int = 1024) -> list[ProbeResult]:
    """Probe every target concurrently and return one result per target, in target order."""
    if max_concurrency < 1:
        raise ValueError(f"max_concurrency must be at least 1, not {max_concurrency}")
    if not targets:
        return []
    limit = concurrency_limit(max_concurrency)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_pass(targets, limit))
    # Called from inside a running loop, where asyncio.run refuses to start another:
    # run the pass on its own loop in a helper thread and block, as a sync API must.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="failover-probes") as pool:
        return pool.submit(asyncio.run, _pass(targets, limit)).result()
