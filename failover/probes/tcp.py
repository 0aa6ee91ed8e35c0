"""The TCP probe: healthy when a connection to (address, port) opens within the timeout.

The timeout is a Deadline: it charges the member only for time the event loop was free.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket

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
    """Connect, then close cleanly (FIN, not RST); (ok, reason).

    A bare non-blocking socket and `sock_connect`, not a stream: a probe only needs the
    handshake, and a transport, a protocol and two stream objects per probe were most of
    the event loop's work in a pass over 10,000 members (bench/RESULTS.md).
    """
    deadline = Deadline(target.timeout_s, lag)
    try:
        async with deadline:
            await _connect(target.address, check.port)
    except TimeoutError:
        return False, deadline.reason
    except OSError as exc:
        return False, os_error_reason(exc)
    return True, "connected"


async def _connect(host: str, port: int) -> None:
    """Open a TCP connection to the first address of `host` that takes it, and close it."""
    loop = asyncio.get_running_loop()
    literal = host.strip("[]")
    family = _family(literal)
    if family is not None:
        addresses = [(family, (literal, port))]
    else:  # a name, not an address: resolve it (off the loop)
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = [(f, (str(a[0]), int(a[1]))) for f, _, _, _, a in infos]
    error: OSError = OSError(errno.EADDRNOTAVAIL, f"{host} resolves to no address")
    for family, sockaddr in addresses:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            await loop.sock_connect(sock, sockaddr)
            return
        except OSError as exc:
            error = exc
        finally:
            sock.close()  # no unread data, no SO_LINGER: the kernel sends a FIN
    raise error


def _family(host: str) -> socket.AddressFamily | None:
    """The family of an IP address literal; None for a name."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except OSError:
            continue
        return family
    return None
