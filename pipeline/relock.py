"""The lock cache: which lock a recipe's inputs made, kept across runs in one index file.

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
  Under it: the sha256 of the lockfile's bytes. Tags are asked on every run; a moved tag is another key;
- a hit (:meth:`LockCache.get`) is the lockfile **on disk** whose bytes hash to what the index
  records for the lock key: the lockfile is the cached value, so the cache holds no second copy,
  and a lockfile that was edited, deleted or written by other inputs is a miss. A hit skips
  rendering, discovery and assembly for that recipe; a miss assembles the lock as a cold lock does
  (``tests/test_relock.py`` compares relocks with cold locks, byte for byte);
- storage: one self-verifying file, ``index`` (its first line is the sha256 of the rest, re-hashed
  on read; a corrupt or torn index is empty, so every recipe misses), written once per run
  (:meth:`LockCache.save`, without fsync for that reason). Entries used or made by the last
  :data:`KEEP_RUNS` runs are kept, so switching between branches stays warm; older ones are dropped.
  The first index written in a cache removes the files of the earlier layout (one file per key).
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .images import ImageRef
from .recipes.model import Recipe
from .registry import ResolvedImage
from .vocabulary.digest import Digest, canonical_json, sha256, source_digest
from .vocabulary.store import read_entry, write_entry

__all__ = ["KEEP_RUNS", "LockCache"]

#: index entries not used by this many consecutive runs are dropped
KEEP_RUNS = 8

_FORMAT = "recipe-pipeline/lock-cache/v2"


class LockCache:
    """Image references by recipe key and lockfile digests by lock key, in one index under ``root``."""

    def __init__(self, root: Path, *, engine: Mapping[str, str]) -> None:
        self._path = root / "index"
        self._engine = dict(sorted(engine.items()))
        self._run, self._refs, self._locks = _read_index(self._path)
        self._changed = False
        #: no index yet: files of the earlier one-file-per-entry layout may be lying there
        self._first = self._run == 1

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
        entry = self._refs.get(key)
        if entry is None:
            return None
        try:
            out = [ImageRef.parse(text) for text in entry[1]]
        except ValueError:
            return None
        if [str(r) for r in out] != entry[1]:
            return None
        self._touch(self._refs, key)
        return out

    def put_refs(self, key: Digest, refs: Sequence[ImageRef]) -> None:
        self._refs[key] = (self._run, [str(r) for r in refs])
        self._changed = True

    @staticmethod
    def answered(key: Digest, answers: Mapping[ImageRef, ResolvedImage | None]) -> Digest:
        """The lock key: the recipe key with the registry's answer (or none) for each of its references."""
        return sha256(canonical_json({"recipe": key, "answers": {str(ref): None if a is None else {
            "digest": a.digest, "mediaType": a.media_type, "platforms": dict(sorted(a.platforms.items())),
            "servedBy": a.served_by} for ref, a in sorted(answers.items(), key=lambda item: str(item[0]))}}))

    def get(self, key: Digest, lockfile: Path) -> bytes | None:
        """The bytes of ``lockfile`` when the index says the lock key made exactly them, else ``None``."""
        entry = self._locks.get(key)
        if entry is None:
            return None
        try:
            raw = lockfile.read_bytes()
        except OSError:
            return None
        if sha256(raw) != entry[1]:
            return None
        self._touch(self._locks, key)
        return raw

    def put(self, key: Digest, raw: bytes) -> None:
        """Record that the lock key made the lockfile ``raw`` (written to the lockdir by the caller)."""
        self._locks[key] = (self._run, sha256(raw))
        self._changed = True

    def save(self) -> None:
        """Write the index once (entries of the last :data:`KEEP_RUNS` runs), when this run changed it."""
        if not self._changed:
            return
        oldest = self._run - KEEP_RUNS + 1
        write_entry(self._path, json.dumps({
            "format": _FORMAT, "run": self._run,
            "refs": {k: {"run": run, "refs": refs} for k, (run, refs) in sorted(self._refs.items()) if run >= oldest},
            "locks": {k: {"run": run, "sha256": d} for k, (run, d) in sorted(self._locks.items()) if run >= oldest},
        }, sort_keys=True).encode())
        self._changed = False
        if self._first:
            _remove_old_entries(self._path.parent)
            self._first = False

    def _touch(self, table: dict[Digest, tuple[int, Any]], key: Digest) -> None:
        run, value = table[key]
        if run != self._run:
            table[key] = (self._run, value)
            self._changed = True


def _read_index(path: Path) -> tuple[int, dict[Digest, tuple[int, list[str]]], dict[Digest, tuple[int, Digest]]]:
    """``(this run's number, refs, locks)`` from the index; an absent, corrupt or foreign index is empty."""
    data = read_entry(path)
    try:
        doc = json.loads(data) if data is not None else None
        if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
            return 1, {}, {}
        refs = {Digest(k): (int(v["run"]), [str(r) for r in v["refs"]]) for k, v in doc["refs"].items()}
        locks = {Digest(k): (int(v["run"]), Digest(str(v["sha256"]))) for k, v in doc["locks"].items()}
        return int(doc["run"]) + 1, refs, locks
    except (ValueError, TypeError, KeyError, AttributeError):
        return 1, {}, {}


def _remove_old_entries(root: Path) -> None:
    """Remove the entries of the earlier layout (``<hex>`` and ``<hex>.refs``, one file per key)."""
    for path in root.iterdir():
        name = path.name.removesuffix(".refs")
        if len(name) == 64 and all(c in "0123456789abcdef" for c in name) and path.is_file():
            with contextlib.suppress(OSError):
                path.unlink()


@functools.cache
def _pipeline_code() -> Digest:
    """Digest of every module of the pipeline package (what turns inputs into lock bytes)."""
    root = Path(__file__).parent
    return source_digest(root, root.rglob("*.py"))
