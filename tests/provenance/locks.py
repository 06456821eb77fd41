"""Our catalog's lockfiles with real digests, for the provenance tests (tiny locks: tests/locks.py).

:func:`catalog_lockfiles` locks our real catalog (real renders, ``lock --no-resolve``) and fills
each image's digest, media type, platforms and serving host with what ``recipes/images.yaml``
builds (what ``nox -s registry`` serves), as a lock made with registry resolution would record
them; each lock is sealed again through the shared factory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lab.images import build_image, load_image_specs
from pipeline.lockfile import Lockfile, load
from pipeline.stages import Workspace, lock_catalog
from pipeline.vocabulary.media_types import INDEX_MEDIA_TYPES
from pipeline.vocabulary.reference import ImageRef
from tests.locks import edited

CATALOG = Path(__file__).resolve().parents[2] / "recipes"


def catalog_lockfiles(tmp: Path) -> tuple[Lockfile, ...]:
    """Our catalog locked for real, with the digests of the images recipes/images.yaml builds."""
    locks = tmp / "locks"
    # Resolved offline: the digests come from the images recipes/images.yaml builds (below).
    lock_catalog(Workspace(catalog=CATALOG, lockdir=locks, cache=tmp / "cache", workers=2, resolve=False))
    built = {str(spec.ref): build_image(spec) for spec in load_image_specs(CATALOG / "images.yaml")}

    def resolve(body: dict[str, Any]) -> None:
        for component in body["components"].values():
            for entry in component["images"]:
                ref = ImageRef.parse(entry["ref"])
                image = built.get(str(ImageRef(registry=ref.registry, repository=ref.repository, tag=ref.tag)))
                if image is None:
                    if entry["digest"] is None:
                        raise AssertionError(f"{entry['ref']} is not built by recipes/images.yaml: no real digest")
                    continue
                # A registry lists platforms for an index only (what the lock stage records).
                platforms = dict(image.platforms) if image.media_type in INDEX_MEDIA_TYPES else {}
                entry.update(digest=image.digest, source="reference" if ref.digest else "registry",
                             mediaType=image.media_type, platforms=platforms, servedBy=ref.registry)

    return tuple(edited(load(path), resolve) for path in sorted(locks.glob("*.lock.json")))
