"""One base for things that hold network clients: ``close()`` them, or use them in ``with``."""

from __future__ import annotations

from types import TracebackType
from typing import Self

__all__ = ["Closing"]


class Closing:
    """``with obj:`` closes ``obj`` on the way out; ``close()`` releases resources (none by default)."""

    def close(self) -> None:
        """Release what this object holds; the default holds nothing."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
