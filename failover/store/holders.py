"""Which local processes hold a file open: the holder of a busy state database, when it can be known.

Linux only (/proc); elsewhere, or for processes of other users, nothing is known and
nothing is claimed.
"""

from __future__ import annotations

import os
from pathlib import Path

# A busy error names at most this many processes.
MAX_NAMED = 3


def holders(path: str) -> list[str]:
    """`pid N (command line)` of every other local process with `path` open, as far as /proc shows."""
    target = os.path.realpath(path)
    found: list[str] = []
    proc = Path("/proc")
    if not proc.is_dir():
        return found
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            opened = any(os.readlink(fd) == target for fd in (entry / "fd").iterdir())
        except OSError:  # gone, or not ours to look at
            continue
        if opened:
            found.append(f"pid {entry.name} ({_command(entry)})")
    return found


def describe(path: str) -> str:
    """`held open by pid 12 (failover run ...)`, or that the holder is not known."""
    named = holders(path)
    if not named:
        return "the holder is not known"
    more = f" and {len(named) - MAX_NAMED} more" if len(named) > MAX_NAMED else ""
    return "held open by " + ", ".join(named[:MAX_NAMED]) + more


def _command(entry: Path) -> str:
    try:
        raw = (entry / "cmdline").read_bytes()
    except OSError:
        return "?"
    words = [w.decode(errors="replace") for w in raw.split(b"\0") if w]
    text = " ".join(words) or "?"
    return text if len(text) <= 80 else text[:77] + "..."
