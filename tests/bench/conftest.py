"""The bench package lives beside failover/, not inside it: put the repo root on the path."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


@pytest.fixture(autouse=True)
def _restore_environ() -> Iterator[None]:
    """The bench sets fake AWS variables process-wide (bench.harness.fake_aws_env): undo them."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)
