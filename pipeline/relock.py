"""The lock cache: a recipe's lock kept across runs, keyed by everything a cold ``lock`` reads for it.

What makes ``lock`` incremental at the recipe level (the render cache works per render job).

Contract:

- recipe key (:meth:`LockCache.key`): sha256 of the canonical JSON of the recipe as composed (name,
  criteria, overlay chain, mixins, component order), every input file's digest and the engine
  options (what the lock's ``inputs`` records: registry, overlays, mixins, values, manifests, local
  chart files, the render-relevant parts of ``pipeline.yaml``, the volatile declarations, the
  digest-field table and exemptions), the charts as fetched **in this run** (repository, served
  version, archive and tree digests, who served them: remote charts are still asked, as a cold lock
  asks), the volatile fields, the engine's identity (as the render cache keys it) and the digest of
  the pipeline package's own source (a change to composition, discovery, pinning or lock assembly
  never serves an entry made by the old code). Under it: the recipe's image references (what
  discovery found), so a relock knows what to resolve without rendering;
- lock key (:meth:`LockCache.answered`): the recipe key with **this run's** registry answer for each
  of those references (digest, media type, platforms, who served it; none with ``--no-resolve``).
  Under it: the lockfile's bytes. Tags are asked on every run; a moved tag is another key;
- entries are one file each whose first line is the sha256 of the rest, re-hashed on every read (a
  corrupt or torn entry is a miss; written without fsync for that reason);
- a hit skips rendering, discovery and assembly for that recipe; a miss assembles the lock as a
  cold lock does and stores it (``tests/test_relock.py`` compares relocks with cold locks, byte for byte).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .images import ImageRef
from .recipes.model import Recipe
from .registry import ResolvedImage
from .vocabulary.digest import Digest, canonical_json, sha256, source_digest
from .vocabulary.store import read_entry, write_entry

__all__ = ["LockCache"]


class LockCache:
    """Image references by recipe key and lock bytes by lock key under ``root``, one self-verifying file each."""

    def __init__(self, root: Path, *, engine: Mapping[str, str]) -> None:
        self._root = root
        self._engine = dict(sorted(engine.items()))

    def key(self, recipe: Recipe, *, inputs: Mapping[str, Digest], charts: Mapping[str, Any],
            volatile: Sequence[Mapping[str, Any]]) -> Digest:
        """The key of ``recipe``'s lock: ``charts`` are the fetched charts' lock records (JSON), by component."""
        return sha256(canonical_json({
            "recipe": {"name": recipe.name, "criteria": recipe.criteria.as_dict(), "overlays": list(recipe.overlays),
                       "mixins": list(recipe.mixins), "order": [c.name for c in recipe.components]},
            "inputs": dict(inputs),
            "options": {"kubeVersion": recipe.kube_version, "apiVersions": list(recipe.api_versions)},
            "charts": dict(sorted(charts.items())),
            "volatile": list(volatile),
            "engine": self._engine,
            "code": _pipeline_code(),
        }))

    def refs(self, key: Digest) -> list[ImageRef] | None:
        """The image references recorded under a recipe key, or ``None``."""
        data = read_entry(self._root / f"{key.removeprefix('sha256:')}.refs")
        if data is None:
            return None
        try:
            out = [ImageRef.parse(line) for line in data.decode().splitlines()]
        except (UnicodeDecodeError, ValueError):
            return None
        return out if [str(r) for r in out] == data.decode().splitlines() else None

    def put_refs(self, key: Digest, refs: Sequence[ImageRef]) -> None:
        write_entry(self._root / f"{key.removeprefix('sha256:')}.refs", "".join(f"{r}\n" for r in refs).encode())

    @staticmethod
    def answered(key: Digest, answers: Mapping[ImageRef, ResolvedImage | None]) -> Digest:
        """The lock key: the recipe key with the registry's answer (or none) for each of its references."""
        return sha256(canonical_json({"recipe": key, "answers": {str(ref): None if a is None else {
            "digest": a.digest, "mediaType": a.media_type, "platforms": dict(sorted(a.platforms.items())),
            "servedBy": a.served_by} for ref, a in sorted(answers.items(), key=lambda item: str(item[0]))}}))

    def get(self, key: Digest) -> bytes | None:
        """The cached lock bytes under a lock key, or ``None``."""
        return read_entry(self._root / key.removeprefix("sha256:"))

    def put(self, key: Digest, raw: bytes) -> None:
        write_entry(self._root / key.removeprefix("sha256:"), raw)


@functools.cache
def _pipeline_code() -> Digest:
    """Digest of every module of the pipeline package (what turns inputs into lock bytes)."""
    root = Path(__file__).parent
    return source_digest(root, root.rglob("*.py"))
