"""The lock cache: a recipe's lock kept across runs, keyed by everything a cold ``lock`` reads for it.

What makes ``lock`` incremental at the recipe level (the render cache works per render job).

Contract:

- key: sha256 of the canonical JSON of the recipe as composed (name, criteria, overlay chain,
  mixins, component order), every input file's digest and the engine options (what the lock's
  ``inputs`` records: registry, overlays, mixins, values, manifests, local chart files, the
  render-relevant parts of ``pipeline.yaml``, the volatile declarations), the charts as fetched **in
  this run** (repository, served version, archive and tree digests, who served them: remote charts
  are still asked, as a cold lock asks), the volatile fields, the engine's identity (as the render
  cache keys it) and the digest of the pipeline package's own source (a change to composition,
  discovery or lock assembly never serves an entry made by the old code);
- value: the lock as ``lock --no-resolve`` writes it (canonical bytes), one file per key whose first
  line is the bytes' sha256, re-hashed on every read (a corrupt or torn entry is a miss; entries
  are written without fsync for that reason). Registry answers are never cached here: the caller
  completes the lock with this run's answers, so tags are asked again on every run;
- a hit skips rendering, discovery and assembly for that recipe; its bytes are exactly what the
  miss path wrote for the same key (the relock tests compare a relock with a cold lock, byte for byte).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .recipes.model import Recipe
from .vocabulary.digest import Digest, canonical_json, sha256, sha256_of_entries
from .vocabulary.store import read_entry, write_entry

__all__ = ["LockCache"]


class LockCache:
    """Unresolved lock bytes under ``root``, one self-verifying file per key."""

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

    def get(self, key: Digest) -> bytes | None:
        """The cached lock bytes, or ``None``."""
        return read_entry(self._root / key.removeprefix("sha256:"))

    def put(self, key: Digest, raw: bytes) -> None:
        write_entry(self._root / key.removeprefix("sha256:"), raw)


@functools.cache
def _pipeline_code() -> Digest:
    """Digest of every module of the pipeline package (what turns inputs into lock bytes)."""
    root = Path(__file__).parent
    return sha256_of_entries((p.relative_to(root).as_posix(), p.read_bytes()) for p in sorted(root.rglob("*.py")))
