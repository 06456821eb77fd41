"""The one factory for test lockfiles: full-shape bodies, sealed and parsed by the real model.

Every lock made here went through :meth:`pipeline.lockfile.Lockfile.from_bytes`: its body has
every field, its digest is computed over the canonical body, and the model accepted it. A lock
that the model would refuse cannot be built here (the factory raises the model's error), and a
tampered lock cannot exist in memory: :func:`tampered` gives the *bytes* a hand edit would leave,
for a test to write to a file and have :func:`pipeline.lockfile.load` refuse.

- :func:`image`, :func:`component`, :func:`chart`, :func:`lock_body`: JSON pieces in the shape the
  lock stage writes. An image with a digest is *resolved* by default (``mediaType``, ``platforms``
  (``{}`` for a single-platform manifest), ``servedBy`` (default: the image's registry host)); an
  image without one has none of the three, as ``lock --no-resolve`` writes it.
- :func:`seal`, :func:`edited`, :func:`tampered`, :func:`write_lock`, :func:`write_locks`.
- :func:`images_lock`: a lock whose components only carry images; :func:`unpin`: an image entry
  made what ``lock --no-resolve`` writes for a tag. (The BOM's fixtures are in tests/bom/locks.py.)

Digests are derived from names (:func:`fake_digest`), so fixtures are stable without a registry.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pipeline.images import ImageRef
from pipeline.lockfile import Lockfile, load, lock_path
from pipeline.vocabulary.digest import canonical_json, sha256

INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
AUTO = "auto"


def fake_digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def display(recipe: str) -> str:
    """How messages name the lock of ``recipe``: its path under lockfiles/."""
    return f"lockfiles/{recipe}.lock.json"


# ---- JSON pieces ---------------------------------------------------------------------------------


def image(ref: str, *, origin: str = "chart-default", found_at: Sequence[str] = (), digest: str | None = AUTO,
          source: str | None = AUTO, resolved: bool | None = None,
          platforms: Sequence[str] | Mapping[str, str] = (), media_type: str | None = None,
          served_by: str | None = None) -> dict[str, Any]:
    """An image entry; ``ref`` must be in normal form, as the lock stage writes it.

    ``digest='auto'`` derives one from the name and tag (or takes the reference's own);
    ``source='auto'`` is ``reference`` for a reference with a digest, ``registry`` otherwise (``None``
    without a digest). ``resolved`` (default: the image has a digest) adds ``mediaType`` (an index
    when there are platforms), ``platforms`` (names get derived digests; a mapping is kept) and
    ``servedBy`` (default: the registry host of ``ref``).
    """
    parsed = ImageRef.parse(ref)
    if digest == AUTO:
        digest = parsed.digest or fake_digest(f"{parsed.name}:{parsed.tag}")
    if source == AUTO:
        source = None if digest is None else "reference" if parsed.digest else "registry"
    entry: dict[str, Any] = {
        "ref": ref, "digest": digest, "source": source, "origin": origin,
        "foundAt": list(found_at) or [f"Deployment/demo/app spec.template.spec.containers[0].image ({ref})"],
    }
    if resolved is None:
        resolved = digest is not None
    if not resolved:
        if platforms or media_type is not None or served_by is not None:
            raise ValueError(f"{ref}: an unresolved image has no mediaType, platforms or servedBy")
        return entry
    by_platform = dict(platforms) if isinstance(platforms, Mapping) else {
        p: fake_digest(f"{digest}/{p}") for p in platforms}
    entry.update(mediaType=media_type or (INDEX if by_platform else MANIFEST), platforms=by_platform,
                 servedBy=served_by or parsed.registry)
    return entry


def component(name: str, *, namespace: str | None, chart: Mapping[str, str] | None,
              images: Sequence[Mapping[str, Any]] = (), manifests: tuple[list[str], list[str]] = ([], []),
              kind: str = "Helm") -> dict[str, Any]:
    """A component entry; its images sorted by reference, as the lock stage writes them."""
    return {
        "type": kind, "release": name, "namespace": namespace, "chart": dict(chart) if chart else None,
        "values": fake_digest(f"values/{name}"), "valuesFiles": [f"components/{name}/values.yaml"],
        "manifests": {"pre": manifests[0], "post": manifests[1]},
        "render": {"files": {f"{name}/templates/x.yaml": fake_digest(f"file/{name}")},
                   "stream": fake_digest(f"stream/{name}"), "root": fake_digest(f"root/{name}")},
        "images": sorted((dict(i) for i in images), key=lambda i: str(i["ref"])),
    }


def chart(repository: str, name: str, version: str, *, archive: str | None = None,
          tree: str | None = None) -> dict[str, str]:
    """A chart entry; its digests derived from where it is pinned unless given."""
    return {"repository": repository, "name": name, "version": version,
            "archive": archive or fake_digest(f"archive/{repository}/{name}/{version}"),
            "tree": tree or fake_digest(f"tree/{repository}/{name}/{version}")}


def lock_body(name: str, components: Mapping[str, Mapping[str, Any]], *,
              volatile: Sequence[Mapping[str, str]] = (), criteria: Mapping[str, str] | None = None,
              ) -> dict[str, Any]:
    """A whole lock body without its ``digest``; the order is the components' order as given.

    ``inputs.digest`` is the digest of the inputs block's files and options, and the engine's
    options are the inputs' options, as the lock stage writes them.
    """
    options = {"kubeVersion": "1.33.0", "apiVersions": ["resource.k8s.io/v1"]}
    files = {"registry.yaml": fake_digest("registry")}
    return {
        "lockVersion": 1,
        "recipe": {"name": name, "criteria": dict(criteria or {"accelerator": "h100", "service": "eks"}),
                   "overlays": ["base", name], "mixins": [], "order": list(components)},
        "inputs": {"digest": sha256(canonical_json({"files": files, "options": options})), "files": files,
                   "options": options},
        "engine": {"name": "helm-python-sdk", "version": "0.2.2", "helm": "v4.2.3",
                   "library": fake_digest("libhelm"), **options},
        "components": {n: dict(c) for n, c in components.items()},
        "volatile": [dict(v) for v in volatile],
    }


# ---- sealing, editing, writing ---------------------------------------------------------------------


def sealed_bytes(body: Mapping[str, Any]) -> bytes:
    """The canonical bytes of ``body`` with its ``digest`` computed over the rest."""
    unsigned = {k: v for k, v in body.items() if k != "digest"}
    return canonical_json({**unsigned, "digest": sha256(canonical_json(unsigned))})


def seal(body: Mapping[str, Any]) -> Lockfile:
    """``body`` sealed and parsed by the model (which raises its own error for a bad body)."""
    return Lockfile.from_bytes(sealed_bytes(body), display=display(str(body["recipe"]["name"])))


def edited(lock: Lockfile, edit: Callable[[dict[str, Any]], None]) -> Lockfile:
    """A copy of ``lock`` changed by ``edit`` (on its JSON body), then sealed again."""
    body = copy.deepcopy(lock.body())
    edit(body)
    return seal(body)


def tampered(lock: Lockfile, edit: Callable[[dict[str, Any]], None]) -> bytes:
    """The bytes of ``lock`` changed by ``edit`` and *not* sealed again (its old digest kept)."""
    body = copy.deepcopy(lock.body())
    edit(body)
    return canonical_json({**body, "digest": lock.digest})


def write_lock(lockdir: Path, lock: Lockfile) -> Path:
    """Write ``lock`` where the lock stage would; the real reader gives it back unchanged."""
    path = lock_path(lockdir, lock.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(lock.dumps())
    assert load(path) == lock
    return path


def write_locks(lockdir: Path, locks: Sequence[Lockfile]) -> Path:
    for lock in locks:
        write_lock(lockdir, lock)
    return lockdir


# ---- fixtures --------------------------------------------------------------------------------------


def unpin(entry: dict[str, Any]) -> None:
    """Make an image entry what ``lock --no-resolve`` writes for a tag: no digest, not resolved."""
    entry.update(digest=None, source=None)
    for key in ("mediaType", "platforms", "servedBy"):
        entry.pop(key, None)


def images_lock(recipe: str, components: Mapping[str, Sequence[str]], *, digests: bool = True,
                origin: str = "chart-default", platforms: bool = True,
                pinned: Mapping[str, str] | None = None) -> Lockfile:
    """A lock of chart-less ``components`` (name → image references) where only the images matter.

    Each image's digest is ``fake_digest(ref)`` (with one ``linux/amd64`` platform unless
    ``platforms`` is false) unless ``pinned`` gives the reference its real digest (single platform);
    ``digests=False`` locks every image without a digest.
    """
    given = dict(pinned or {})

    def entry(ref: str) -> dict[str, Any]:
        if not digests:
            return image(ref, origin=origin, digest=None)
        if ref in given:
            return image(ref, origin=origin, digest=given[ref], source="registry")
        return image(ref, origin=origin, digest=fake_digest(ref), source="registry",
                     platforms={"linux/amd64": fake_digest(ref + " amd64")} if platforms else {})

    return seal(lock_body(recipe, {name: component(name, namespace=name, chart=None,
                                                   images=[entry(r) for r in refs])
                                   for name, refs in components.items()}))
