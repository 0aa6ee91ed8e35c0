"""What the engine asks before every mutating call: does this process still hold the group?"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from failover.coord.handover import take
from failover.core.errors import FailoverError, LeaseLostError
from failover.core.ports import Lease


class Fence:
    """Which groups this process holds, with their tokens; `guard` is the engine's check.

    The engine calls `guard(group)` before every mutating AWS call and journals
    `token(group)` with every move it begins. A group is *pinned* while the guarded path
    acts on it (`pin`): the lease rounds give back only unpinned groups
    (`release_unpinned`), so a round never pulls a group from under a move of its own
    process. Thread-safe: the daemon's lease rounds replace the tokens while passes run.
    """

    def __init__(self, lease: Lease, resources: Mapping[str, str] | None = None) -> None:
        """Fence for `lease`; `resources` (group -> resource) only words the errors."""
        self._lease = lease
        self._resources = dict(resources or {})
        self._tokens: dict[str, int] = {}
        self._pinned: set[str] = set()
        self._lock = threading.Lock()

    @property
    def lease(self) -> Lease:
        """The lease the tokens come from."""
        return self._lease

    def hold(self, tokens: Mapping[str, int]) -> None:
        """Replace what we hold with `tokens` (a rebalance round's result)."""
        with self._lock:
            self._tokens = dict(tokens)

    def add(self, group: str, token: int) -> None:
        """Hold `group` with `token`."""
        with self._lock:
            self._tokens[group] = token

    def tokens(self) -> dict[str, int]:
        """Every group held, with its token."""
        with self._lock:
            return dict(self._tokens)

    def token(self, group: str) -> int | None:
        """The token `group` is held with, None if it is not."""
        with self._lock:
            return self._tokens.get(group)

    def holds(self, group: str) -> bool:
        """True while the lease says we may act on `group` (no call)."""
        token = self.token(group)
        return token is not None and self._lease.check(group, token)

    def pin(self, group: str) -> bool:
        """Hold on to `group` until `unpin` if it is ours now; False (nothing pinned) if not."""
        with self._lock:
            token = self._tokens.get(group)
            if token is None or group in self._pinned or not self._lease.check(group, token):
                return False
            self._pinned.add(group)
            return True

    def unpin(self, group: str) -> None:
        """A lease round may give `group` back again."""
        with self._lock:
            self._pinned.discard(group)

    def pinned(self) -> set[str]:
        """The groups being acted on now."""
        with self._lock:
            return set(self._pinned)

    def release_unpinned(self, groups: Iterable[str]) -> dict[str, int]:
        """Stop holding those of `groups` not pinned, at once (the caller gives their leases
        back); their tokens. A pinned group stays held until its move is over."""
        with self._lock:
            return {
                g: self._tokens.pop(g)
                for g in groups
                if g in self._tokens and g not in self._pinned
            }

    def guard(self, group: str) -> None:
        """Raise LeaseLostError unless we may act on `group` now."""
        if not self.holds(group):
            raise LeaseLostError(
                group,
                self._resources.get(group, "?"),
                f"this orchestrator no longer holds the lease of group {group}; abandoning "
                "the move (the new holder finishes it from the journal)",
            )

    def release_all(self) -> None:
        """Give back every lease held; a release that fails leaves them to lapse."""
        with self._lock:
            tokens, self._tokens = self._tokens, {}
        if tokens:
            with contextlib.suppress(FailoverError):
                self._lease.release(tokens)


class Keeper:
    """The one heartbeat of a process holding leases (daemon or one-shot command): at start,
    then every `renew_every_s` in a thread of its own; `close` gives every lease back."""

    def __init__(self, fence: Fence) -> None:
        """Keep `fence`'s leases alive until `close`."""
        self._fence = fence
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)

    def start(self) -> Keeper:
        """Heartbeat now (a failure is retried on schedule), then every renew interval."""
        with contextlib.suppress(FailoverError):
            self._fence.lease.heartbeat()
        self._thread.start()
        return self

    def _run(self) -> None:
        lease = self._fence.lease
        while not self._stop.wait(lease.renew_every_s):
            with contextlib.suppress(FailoverError):
                lease.heartbeat()  # a failure: `check` counts the session down

    def close(self) -> None:
        """Stop heartbeating and give back every lease held (a lost release lapses)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self._fence.release_all()


@contextlib.contextmanager
def holding(
    fence: Fence,
    groups: Sequence[str],
    sleep: Callable[[float], None],
    *,
    handover: bool = False,
    wait_s: float | None = None,
    on_ask: Callable[[str, str], None] | None = None,
) -> Iterator[dict[str, str]]:
    """Take `groups`' leases (failover/coord/handover.py; `handover`: ask daemons for them)
    and keep them alive for the block.

    Yields the groups another live orchestrator holds (refused), each with who holds it;
    gives back what was taken.
    """
    keeper = Keeper(fence).start()
    try:
        taken = take(fence.lease, groups, sleep, handover=handover, wait_s=wait_s, on_ask=on_ask)
        for group, token in taken.tokens.items():
            fence.add(group, token)
        yield taken.refused
    finally:
        keeper.close()
