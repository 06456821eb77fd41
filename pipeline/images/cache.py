"""A discovery cache kept across runs: what :func:`~pipeline.images.discover` found in a render, by content.

Contract:

- key: sha256 of ``{job: the render job's content key, stream: the masked stream's digest, code: the
  images package's own source}``. Discovery reads only the stream, the job's component (name,
  values, in-tree manifest paths: all in the job key) and the chart's annotation (chart bytes: in
  the job key), so the key determines the result; a change to discovery code never hits an old entry;
- value: the :class:`~pipeline.images.model.Discovery` as canonical JSON, one self-verifying file
  per key (:func:`~pipeline.vocabulary.store.write_entry`: re-hashed on every read); anything
  unreadable is a miss;
- it is a mapping: :func:`pipeline.build.build` takes it where it takes its in-run dict, so ``lock``
  rediscovers only renders it has not seen.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

from ..vocabulary.digest import Digest, canonical_json, sha256, source_digest
from ..vocabulary.reference import ImageRef
from ..vocabulary.store import read_entry, write_entry
from .model import Discovery, FoundImage, Origin, Rejected, RejectReason, Resource, Via

__all__ = ["DiscoveryCache"]

_Key = tuple[Digest, Digest]


class DiscoveryCache(MutableMapping[_Key, Discovery]):
    """Discoveries under ``root``, one file per key; ``hits`` counts reads served from disk."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._memory: dict[_Key, Discovery] = {}
        self.hits = 0

    def _entry(self, key: _Key) -> Path:
        job, stream = key
        digest = sha256(canonical_json({"job": job, "stream": stream, "code": _images_code()}))
        return self._root / digest.removeprefix("sha256:")

    def get(self, key: _Key, default: Any = None) -> Any:
        if key in self._memory:
            return self._memory[key]
        try:
            data = read_entry(self._entry(key))
            found = _from_json(json.loads(data)) if data is not None else None
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            found = None
        if found is None:
            return default
        self.hits += 1
        self._memory[key] = found
        return found

    def __getitem__(self, key: _Key) -> Discovery:
        found: Discovery | None = self.get(key)
        if found is None:
            raise KeyError(key)
        return found

    def __setitem__(self, key: _Key, value: Discovery) -> None:
        self._memory[key] = value
        write_entry(self._entry(key), canonical_json(_to_json(value)))

    def __delitem__(self, key: _Key) -> None:
        self._memory.pop(key, None)
        self._entry(key).unlink(missing_ok=True)

    def __iter__(self) -> Iterator[_Key]:
        return iter(self._memory)

    def __len__(self) -> int:
        return len(self._memory)


def _place(item: FoundImage | Rejected) -> dict[str, Any]:
    return {"written": item.written, "via": item.via.value, "recipe": item.recipe, "component": item.component,
            "file": item.file, "resource": [item.resource.kind, item.resource.namespace, item.resource.name],
            "field": item.field, "parts": [list(p) for p in item.parts]}


def _to_json(found: Discovery) -> dict[str, Any]:
    return {
        "images": [{**_place(i), "ref": str(i.ref), "origin": i.origin.value, "setBy": [list(p) for p in i.set_by]}
                   for i in found.images],
        "rejected": [{**_place(r), "reason": r.reason.value, "detail": r.detail} for r in found.rejected],
    }


def _common(data: dict[str, Any]) -> dict[str, Any]:
    kind, namespace, name = data["resource"]
    return {"written": str(data["written"]), "via": Via(data["via"]), "recipe": str(data["recipe"]),
            "component": str(data["component"]), "file": str(data["file"]),
            "resource": Resource(kind=str(kind), namespace=str(namespace), name=str(name)),
            "field": str(data["field"]), "parts": tuple((str(a), str(b)) for a, b in data["parts"])}


def _from_json(data: dict[str, Any]) -> Discovery:
    images = []
    for item in data["images"]:
        ref = ImageRef.parse(item["ref"])
        if str(ref) != item["ref"]:  # not a reference this cache wrote: do not trust it
            raise ValueError(item["ref"])
        images.append(FoundImage(ref=ref, origin=Origin(item["origin"]),
                                 set_by=tuple(tuple(k if isinstance(k, int) else str(k) for k in path)
                                              for path in item["setBy"]), **_common(item)))
    rejected = [Rejected(reason=RejectReason(item["reason"]), detail=str(item["detail"]), **_common(item))
                for item in data["rejected"]]
    return Discovery(images=tuple(images), rejected=tuple(rejected))


@functools.cache
def _images_code() -> Digest:
    """Digest of the images package's source (and the reference parser it classifies with)."""
    here = Path(__file__).parent
    return source_digest(here.parent, [*here.glob("*.py"), here.parent / "vocabulary" / "reference.py"])
