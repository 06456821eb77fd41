"""Lockfiles for the provenance tests: tiny ones built by hand, and our catalog's with real digests.

:func:`lockfile` seals a minimal lock body (only what the provenance stage reads is meaningful).
:func:`catalog_lockfiles` locks our real catalog (real renders) and fills each image's digest and
platforms with the digests ``recipes/images.yaml`` builds (what ``nox -s registry`` serves), as a
lock made with registry resolution would record them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lab.images import build_image, load_image_specs
from pipeline.lock import LOCK_VERSION, Lockfile, read_lockfile
from pipeline.stages import Workspace, lock_catalog
from pipeline.vocabulary.digest import canonical_json, sha256
from pipeline.vocabulary.reference import ImageRef

CATALOG = Path(__file__).resolve().parents[2] / "recipes"


def fake_digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def seal(body: Mapping[str, Any]) -> dict[str, Any]:
    unsigned = {k: v for k, v in body.items() if k != "digest"}
    return {**unsigned, "digest": sha256(canonical_json(unsigned))}


def lockfile(recipe: str, components: Mapping[str, Sequence[str]], *, digests: bool = True,
             origin: str = "chart-default", platforms: bool = True,
             pinned: Mapping[str, str] | None = None) -> Lockfile:
    """A sealed lock of ``components`` (name → image references); digests derive from the references
    unless ``pinned`` gives a reference its real digest."""
    given = dict(pinned or {})
    body: dict[str, Any] = {
        "lockVersion": LOCK_VERSION, "recipe": {"name": recipe}, "inputs": {}, "engine": {}, "volatile": [],
        "components": {
            name: {"images": [
                {"ref": ref, "digest": given.get(ref, fake_digest(ref)) if digests else None, "origin": origin,
                 "source": "registry" if digests else None, "foundAt": [],
                 **({"platforms": {"linux/amd64": fake_digest(ref + " amd64")}}
                    if digests and platforms and ref not in given else {})}
                for ref in refs
            ]}
            for name, refs in components.items()
        },
    }
    return Lockfile(recipe=recipe, body=seal(body))


def write_lockfiles(directory: Path, locks: Sequence[Lockfile]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for lock in locks:
        (directory / f"{lock.recipe}.lock.json").write_bytes(lock.to_bytes())
    return directory


def catalog_lockfiles(tmp: Path) -> tuple[Lockfile, ...]:
    """Our catalog locked for real, with the digests of the images recipes/images.yaml builds."""
    locks = tmp / "locks"
    # Resolved offline: the digests come from the images recipes/images.yaml builds (below).
    lock_catalog(Workspace(catalog=CATALOG, lockdir=locks, cache=tmp / "cache", workers=2, resolve=False))
    built = {str(spec.ref): build_image(spec) for spec in load_image_specs(CATALOG / "images.yaml")}
    out = []
    for path in sorted(locks.glob("*.lock.json")):
        body = dict(read_lockfile(path).body)
        for component in body["components"].values():
            for entry in component["images"]:
                ref = ImageRef.parse(entry["ref"])
                image = built.get(str(ImageRef(registry=ref.registry, repository=ref.repository, tag=ref.tag)))
                if image is not None:
                    entry.update(digest=image.digest, source="registry", mediaType=image.media_type,
                                 platforms=dict(image.platforms))
                elif entry["digest"] is None:
                    raise AssertionError(f"{entry['ref']} is not built by recipes/images.yaml: no real digest")
        sealed = seal(body)
        path.write_bytes(canonical_json(sealed))
        out.append(read_lockfile(path))
    return tuple(out)
