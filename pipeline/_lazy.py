"""Package exports imported on first use (PEP 562), for packages whose modules are costly to import.

A package lists where each exported name is defined and binds what :func:`lazy_exports` returns to
its ``__getattr__`` and ``__dir__``; its ``TYPE_CHECKING`` imports keep the names typed. A name is
imported from its module the first time it is asked for, then kept in the package's namespace.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, namespace: MutableMapping[str, Any], sources: Mapping[str, str],
                 exported: Iterable[str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: ``sources`` maps each name to the module (relative to
    ``package``) that defines it; ``namespace`` is the package's ``globals()``."""
    names = tuple(exported)

    def getattr_(name: str) -> object:
        source = sources.get(name)
        if source is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(source, package), name)
        namespace[name] = value  # later look-ups do not come back here
        return value

    def dir_() -> list[str]:
        return sorted({*namespace, *names})

    return getattr_, dir_
