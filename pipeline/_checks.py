"""Small checkers for our YAML input files: each raises :class:`RecipeError` with path, line and hint.

Shared by every parser of a catalog file (registry, overlays, ``pipeline.yaml`` and its
``registries``, exemptions, images, provenance), so a typo gets the same message everywhere.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from ._yaml import YamlMap
from .errors import RecipeError

__all__ = ["check_keys", "line_of", "suggest", "type_name"]


def type_name(value: Any) -> str:
    """YAML-flavoured name of a parsed value's type, for messages."""
    match value:
        case None:
            return "null"
        case bool():
            return "boolean"
        case int() | float():
            return "number"
        case str():
            return "string"
        case dict():
            return "mapping"
        case list():
            return "list"
        case _:
            return type(value).__name__


def line_of(node: Any, key: str | None = None) -> int | None:
    """Line of ``node`` (or of ``key`` in it) when it came from YAML."""
    if isinstance(node, YamlMap):
        return node.line_of(key) if key is not None else node.line
    return None


def suggest(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or ``''``."""
    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_keys(node: Mapping[str, Any], allowed: Iterable[str], *, what: str, path: str) -> None:
    """Refuse keys of ``node`` outside ``allowed`` (typos would otherwise be ignored silently)."""
    known = tuple(allowed)
    for key in node:
        if key not in known:
            raise RecipeError(
                f"unknown key {str(key)!r} in {what}{suggest(str(key), known)}",
                path=path, line=line_of(node, str(key)),
                hint=f"{what} takes only: {', '.join(known)}",
            )
