"""One acting orchestrator per SQLite state file: a lock beside it, released by the OS on death.

The daemon holds it for its life; `failover check` takes it for one pass, so a cron check
and a daemon on the same state never judge and move the same groups at once. (With the
DynamoDB backend, leases do this per group instead.)
"""

from __future__ import annotations

from pathlib import Path

from filelock import FileLock, Timeout

from failover.core.errors import ConfigError, FailoverError


class AlreadyRunningError(FailoverError):
    """Another failover process acts on this state file."""

    exit_code = 3


def lock_path(state_path: str) -> Path:
    """`<state.path>.lock`."""
    path = Path(state_path)
    return path.with_name(path.name + ".lock")


def claim(lock: FileLock, state_path: str, who: str) -> None:
    """Take `lock` now or refuse with exit 3, naming the lock file."""
    try:
        lock.acquire(timeout=0)
    except Timeout:  # a TimeoutError, so an OSError: catch it first
        raise AlreadyRunningError(
            f"{who} holds {lock_path(state_path)}: one acting failover per state file"
        ) from None
    except OSError as exc:
        raise ConfigError(f"state.path {state_path}: cannot take its lock: {exc}") from None


def state_lock(state_path: str) -> FileLock:
    """The lock for `state_path` (not yet taken); its directory is made if missing."""
    path = lock_path(state_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path))
