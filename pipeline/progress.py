"""Progress reporting: the library reports, the CLI decides whether anyone sees it.

Stages take an optional :class:`Progress` and call ``task(label, total)`` once per long step, then
the returned ``advance()`` once per item (from any thread). :data:`SILENT` ignores everything; the
CLI passes a rich progress bar when stderr is a terminal, so CI logs stay line-oriented.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

__all__ = ["SILENT", "Progress"]


class Progress(Protocol):
    """Something that shows how far a long step has come."""

    def task(self, label: str, total: int) -> Callable[[], None]:
        """Start a step of ``total`` items; returns the function to call once per finished item."""
        ...


class _Silent:
    def task(self, label: str, total: int) -> Callable[[], None]:
        del label, total
        return _nothing


def _nothing() -> None:
    return None


#: The default: no output at all.
SILENT: Progress = _Silent()
