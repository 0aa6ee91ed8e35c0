"""The process fixtures of tests/cli (moto's server behind the strict layer), shared here."""

from __future__ import annotations

from ..cli.conftest import Sandbox, moto_server, sandbox

__all__ = ["Sandbox", "moto_server", "sandbox"]
