"""Moto's threaded server on a free loopback port, so a subprocess can talk to the sandbox."""

from __future__ import annotations

import urllib.request
from types import TracebackType

from moto.server import ThreadedMotoServer


class SandboxServer:
    """moto's server on 127.0.0.1 (a free port); an installed StrictLayer applies to it too."""

    def __init__(self) -> None:
        """Prepare the server; `start` (or `with`) runs it."""
        self._server: ThreadedMotoServer | None = None
        self.url = ""

    def start(self) -> SandboxServer:
        """Start serving on a port the OS picks; `url` is set when this returns."""
        if self._server is None:
            server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            server.start()
            host, port = server.get_host_and_port()
            self._server = server
            self.url = f"http://{host}:{port}"
        return self

    def reset(self) -> None:
        """Wipe every moto backend, as a new `mock_aws` would."""
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10) as reply:
            reply.read()

    def stop(self) -> None:
        """Stop serving; idempotent."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> SandboxServer:
        """Start the server for the `with` block."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server."""
        self.stop()
