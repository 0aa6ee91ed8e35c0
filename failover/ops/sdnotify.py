"""systemd's sd_notify protocol, written by hand: one datagram to `$NOTIFY_SOCKET`, or nothing.

The protocol (sd_notify(3)) is a newline-separated `KEY=VALUE` datagram sent over an
AF_UNIX SOCK_DGRAM socket whose path is in `$NOTIFY_SOCKET`; a leading '@' names a
socket in Linux's abstract namespace. Without the variable (not started by systemd,
or `Type=simple`) every call is a no-op, so the daemon runs the same under a terminal.
A notification that cannot be delivered is logged, never raised: the service must not
die because its supervisor went away, and a missed WATCHDOG=1 is exactly what systemd
is there to act on.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


def _address(path: str) -> str | bytes:
    """The socket address for `path`: '@name' is '\\0name' in the abstract namespace."""
    if path.startswith("@"):
        return b"\0" + path[1:].encode()
    return path


def notify(message: str, *, socket_path: str | None = None) -> bool:
    """Send `message` to systemd; False (and nothing sent) when there is no notify socket.

    `socket_path` defaults to `$NOTIFY_SOCKET`, read at each call: systemd sets it once,
    and a test may point it anywhere.
    """
    path = socket_path if socket_path is not None else os.environ.get("NOTIFY_SOCKET", "")
    if not path:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(_address(path))
            sock.sendall(message.encode())
    except OSError as exc:
        log.warning("sd_notify %r to %s failed: %s", message, path, exc)
        return False
    return True


def ready() -> None:
    """READY=1: startup finished (for `Type=notify`, the unit is now active)."""
    notify("READY=1\nSTATUS=watching groups")


def watchdog() -> None:
    """WATCHDOG=1: the scheduler is alive; systemd restarts us if these stop for `WatchdogSec`."""
    notify("WATCHDOG=1")


def stopping() -> None:
    """STOPPING=1: the daemon is shutting down (sent as `serve` returns, its last pass done)."""
    notify("STOPPING=1\nSTATUS=stopping")
