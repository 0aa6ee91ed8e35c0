"""What every store backend shares besides the Store port: `with store:` closes it."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class Closing:
    """Use a store as a context manager that calls its `close()` on exit."""

    def close(self) -> None:
        """Release the backend; each backend defines it."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        """The store itself."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the store."""
        self.close()
