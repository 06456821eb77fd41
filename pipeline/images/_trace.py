"""Which of our values went into an image reference (origin tracing without a second render).

Input: a component's merged values as the catalog sets them (``Component.values``: values files
and overrides, never the chart's own defaults). For one found reference, :meth:`ValueTracer.trace`
returns the paths of the leaf strings that contributed to it:

- a leaf equal to the whole reference (any key: ``image: nvcr.io/nvidia/driver:580``);
- a leaf under a name-like key (``image``, ``repository``, ``registry``, ``<word>Image`` …) equal
  to the reference's name or one of its ``/``-prefixes or suffixes (``nvcr.io/nvidia``,
  ``driver``);
- a leaf under a tag-like key (``tag``, ``version``, ``imageTag``, ``<word>Tag``) equal to the
  tag, and a leaf equal to the digest (any key);

and only when the leaf's image-field siblings agree with the reference: ``{image: toolkit,
version: 1.17}`` does not contribute ``1.17`` to a ``driver:1.17`` image. This is render
independent, linear in the size of the values, and errs on the side of ``in-tree`` (a value that
merely equals a part of a chart default is counted), which is the safe side for a digest gate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..vocabulary.reference import ImageRef
from .model import ValuePath, format_path

__all__ = ["ValueTracer"]

_NAME, _TAG, _DIGEST, _FULL = "name", "tag", "digest", "full"
_NAME_KEYS = frozenset({"image", "repository", "registry", "imageName", "imageRepository", "imageRegistry"})
_TAG_KEYS = frozenset({"tag", "version", "imageTag", "imageVersion"})
_DIGEST_KEYS = frozenset({"digest", "containerSHA", "sha", "imageDigest"})


def _role(key: str | int | None) -> str | None:
    if not isinstance(key, str):
        return None
    if key in _NAME_KEYS or key.endswith(("Image", "Repository", "Registry")):
        return _NAME
    if key in _TAG_KEYS or key.endswith("Tag"):
        return _TAG
    if key in _DIGEST_KEYS or key.endswith("Digest"):
        return _DIGEST
    return None


@dataclass(frozen=True, slots=True)
class _Leaf:
    path: ValuePath
    siblings: Mapping[str, Any] | None


class ValueTracer:
    """Index of a values tree's leaf strings, for :meth:`trace`."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._leaves: dict[str, list[_Leaf]] = {}
        self._index(values, (), None)

    def _index(self, node: Any, path: ValuePath, parent: Mapping[str, Any] | None) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                self._index(value, (*path, str(key)), node)
        elif isinstance(node, list):
            for index, value in enumerate(node):
                self._index(value, (*path, index), None)
        elif isinstance(node, str) and node.strip():
            self._leaves.setdefault(node, []).append(_Leaf(path, parent))

    def trace(self, written: str, ref: ImageRef, parts: Iterable[tuple[str, str]] = ()) -> tuple[ValuePath, ...]:
        """Paths of the leaves that contributed to ``ref`` (written ``written``), sorted."""
        if not self._leaves:
            return ()
        pieces = _pieces(written, ref, parts)
        found: set[ValuePath] = set()
        for text, roles in pieces.items():
            for leaf in self._leaves.get(text, ()):
                role = _role(leaf.path[-1] if leaf.path else None)
                if (_FULL in roles or _DIGEST in roles or role in roles) and _agrees(leaf, pieces):
                    found.add(leaf.path)
        return tuple(sorted(found, key=format_path))


def _pieces(written: str, ref: ImageRef, parts: Iterable[tuple[str, str]]) -> dict[str, set[str]]:
    """Each substring of the reference a value could have supplied, with the role it plays."""
    pieces: dict[str, set[str]] = {}

    def add(text: str | None, role: str) -> None:
        if text:
            pieces.setdefault(text, set()).add(role)

    for full in (written, str(ref), ref.familiar()):
        add(full, _FULL)
    name = written.split("@", 1)[0]
    head, _, tail = name.rpartition(":")
    if head and "/" not in tail:
        name = head
    for spelled in {name, ref.name, ref.repository}:
        segments = spelled.split("/")
        for cut in range(1, len(segments) + 1):
            add("/".join(segments[:cut]), _NAME)
            add("/".join(segments[-cut:]), _NAME)
    add(ref.tag, _TAG)
    add(ref.digest, _DIGEST)
    for key, value in parts:
        role = _role(key)
        if role is not None and value:
            add(value, _DIGEST if key == "version" and value == ref.digest else role)
    return pieces


def _agrees(leaf: _Leaf, pieces: Mapping[str, set[str]]) -> bool:
    """Whether the image fields next to ``leaf`` describe the same reference."""
    if leaf.siblings is None:
        return True
    own = leaf.path[-1]
    for key, value in leaf.siblings.items():
        if key == own or not isinstance(value, str) or not value.strip():
            continue
        role = _role(key)
        if role is None:
            continue
        roles = pieces.get(value, set())
        if not roles & {role, _FULL, _DIGEST if role == _TAG else role}:
            return False
    return True
