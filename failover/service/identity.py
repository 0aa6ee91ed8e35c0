"""Who acts, for the audit trail: STS asked once per process, off the move's path.

A move never waits for STS: in a private subnet without an STS endpoint, GetCallerIdentity
hangs until its timeouts and then fails, and a move's time to ownership must not pay for
it. So the question is sent on a thread of its own once the move's first mutating call is
made (or the move ended without one); a move journaled before the answer came keeps an
empty caller until then, and the answer is written into its journal row when it arrives.
`settle` lets a one-shot process wait a bounded time for those writes before it exits.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from failover.core.errors import FailoverError

log = logging.getLogger(__name__)

# How long a one-shot command waits, after its moves, for STS to name the caller of a move
# it journaled before the answer came (then the history keeps the caller unknown).
CALLER_GRACE_S = 2.0
# The name of the thread that asks STS (a test joins it before its mock of AWS stops).
THREAD_NAME = "caller-identity"


class CallerIdentity:
    """The caller's identity, fetched once on a background thread; thread-safe."""

    def __init__(self, fetch: Callable[[], str]) -> None:
        """`fetch` asks STS and returns the ARN, or a text saying why it is unknown."""
        self._fetch = fetch
        self._lock = threading.Lock()
        self._answered = threading.Event()
        self._value: str | None = None
        self._thread: threading.Thread | None = None
        self._waiting: list[Callable[[str], None]] = []
        # Held while the waiters run: once `settle` has returned, none runs (the store closes).
        self._running = threading.Lock()
        self._closed = False

    def known(self) -> str | None:
        """The identity if STS has answered, else None (never waits)."""
        with self._lock:
            return self._value

    def start(self) -> None:
        """Send the question if it was not sent yet (never waits for the answer)."""
        with self._lock:
            if self._thread is not None or self._value is not None:
                return
            self._thread = threading.Thread(target=self._ask, name=THREAD_NAME, daemon=True)
        self._thread.start()

    def get(self) -> str:
        """The identity, asking STS now and waiting for its answer if need be."""
        self.start()
        self._answered.wait()
        value = self.known()
        assert value is not None
        return value

    def when_known(self, then: Callable[[str], None]) -> None:
        """Call `then(identity)` once it is known: now if it is, else on the answering thread."""
        with self._lock:
            value = self._value
            if value is None:
                if not self._closed:
                    self._waiting.append(then)
                return
        then(value)

    def settle(self, timeout_s: float) -> None:
        """Wait up to `timeout_s` for the answer if the question is out; then drop the waiters
        (their journal rows keep the caller unknown) and run none from then on."""
        with self._lock:
            asked = self._thread is not None
        if asked:
            self._answered.wait(timeout_s)
        with self._running, self._lock:
            self._closed = True
            dropped, self._waiting = self._waiting, []
        if dropped:
            log.warning(
                "STS did not name the caller within %.0fs of the move: the history keeps it "
                "unknown",
                timeout_s,
            )

    def _ask(self) -> None:
        value = "unknown (STS was not asked)"
        try:
            value = self._fetch()
        finally:
            with self._running:
                with self._lock:
                    self._value = value
                    waiting, self._waiting = self._waiting, []
                    closed = self._closed
                for then in [] if closed else waiting:
                    try:
                        then(value)
                    except (FailoverError, KeyError) as exc:
                        log.warning("could not record the caller %s in the journal: %s", value, exc)
            self._answered.set()
