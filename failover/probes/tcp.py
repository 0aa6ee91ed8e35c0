"""The TCP probe: healthy when a connection to (address, port) opens within the timeout.

The timeout is a Deadline: it charges the member only for time the event loop was free.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno

from failover.config import TcpCheck
from failover.probes.deadline import Deadline, LoopLag
from failover.probes.target import ProbeTarget

_ERRNO_REASONS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.ETIMEDOUT: "timed out (by the kernel)",
    errno.EADDRNOTAVAIL: "address not available",
}


def os_error_reason(exc: OSError) -> str:
    """A short human reason for a socket error: "connection refused", "host unreachable"..."""
    if exc.errno in _ERRNO_REASONS:
        return _ERRNO_REASONS[exc.errno]
    return (exc.strerror or str(exc) or type(exc).__name__).lower()


async def close_writer(writer: asyncio.StreamWriter) -> None:
    """Close a stream and wait for its socket to be released (no ResourceWarning later)."""
    writer.close()
    # The peer may already have reset the connection; the socket is closed either way.
    with contextlib.suppress(OSError):
        await writer.wait_closed()


async def probe_tcp(target: ProbeTarget, check: TcpCheck, lag: LoopLag) -> tuple[bool, str]:
    """Connect, then close cleanly (FIN, not RST); (ok, reason)."""
    deadline = Deadline(target.timeout_s, lag)
    try:
        async with deadline:
            _, writer = await asyncio.open_connection(target.address, check.port)
    except TimeoutError:
        return False, deadline.reason
    except OSError as exc:
        return False, os_error_reason(exc)
    await close_writer(writer)
    return True, "connected"
