"""systemd's sd_notify protocol, written by hand: one datagram to `$NOTIFY_SOCKET`, or nothing.

The protocol (sd_notify(3)) is a newline-separated `KEY=VALUE` datagram sent over an
AF_UNIX SOCK_DGRAM socket whose path is in `$NOTIFY_SOCKET`; a leading '@' names a
socket in Linux's abstract namespace. Without the variable (not started by systemd,
or `Type=simple`) every call is a no-op, so the daemon runs the same under a terminal.
A notification that cannot be delivered is logged, never raised: the service must not
die because its supervisor went away, and a missed WATCHDOG=1 is exactly what systemd
is there to act on.

`Watchdog` paces WATCHDOG=1 to the work: the daemon calls `alive()` when its loop makes
progress (each step of a move, the end of each pass), and it pings at most once per half
of systemd's WatchdogSec. Nothing pings on a timer, so a pass that stops making progress
stops the pings and systemd restarts the daemon, while a pass that is still moving
hundreds of groups, however long it lasts, keeps it alive.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping

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


class Watchdog:
    """WATCHDOG=1 on progress, at most once per half of `period_s`; no pings without a period."""

    def __init__(
        self,
        period_s: float | None,
        *,
        send: Callable[[], None] = watchdog,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        # sd_watchdog_enabled(3): ping at half the period, so one late ping is not a kill.
        self._gap_s = period_s / 2 if period_s else None
        self._send, self._monotonic = send, monotonic
        self._last: float | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str], pid: int, *, send: Callable[[], None] = watchdog
    ) -> Watchdog:
        """The watchdog systemd set for process `pid`: `$WATCHDOG_USEC`, when `$WATCHDOG_PID`
        is unset or names `pid` (as sd_watchdog_enabled(3) reads them)."""
        watched_pid = environ.get("WATCHDOG_PID", "")
        try:
            usec = int(environ.get("WATCHDOG_USEC", "0"))
        except ValueError:
            usec = 0
        if usec <= 0 or (watched_pid and watched_pid != str(pid)):
            return cls(None, send=send)
        return cls(usec / 1e6, send=send)

    @property
    def enabled(self) -> bool:
        """Whether systemd watches this process (so `alive` ever pings)."""
        return self._gap_s is not None

    def alive(self) -> None:
        """The loop made progress: ping, unless a ping went out less than half a period ago.

        Safe from any thread (moves run in parallel)."""
        if self._gap_s is None:
            return
        now = self._monotonic()
        with self._lock:
            if self._last is not None and now - self._last < self._gap_s:
                return
            self._last = now
        self._send()
