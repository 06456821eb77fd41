"""A typed, verified view of lockfiles, shared by the publishers (BOM, inventory, mirror list) and drift.

Input: :class:`~pipeline.lock.Lockfile` objects (from :func:`~pipeline.lock.read_lockfile`, which
refuses a tampered or non-canonical file; staleness against the catalog is the caller's check).
Output: :class:`LockedRecipe` records, parsed once at this edge so no publisher touches raw lock
JSON. Guarantees: the lock's recorded digest matches its body (checked again here, so an
in-memory lock edited after it was sealed is refused too); every image reference parses
(:class:`~pipeline.vocabulary.ImageRef`); every digest is ``sha256:<64 hex>``; collections are
sorted. Errors: :class:`BomError` (bad input, exit 2) naming recipe, component and field, with a
hint; :class:`~pipeline.errors.IntegrityError` for a body that does not match its digest (exit 1).
Optional keys of the lock (``mediaType``, ``platforms``, ``servedBy``, ``source``) are tolerated
when absent.

It lives in the lock layer, below the publishers, so that drift reads locks without importing the
BOM stage; the typed lockfile model (``pipeline.lockfile``) is meant to replace it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import IntegrityError, PipelineError
from .lock import Lockfile
from .recipes.model import ChartRef
from .vocabulary.digest import Digest, canonical_json, parse_digest, sha256
from .vocabulary.reference import ImageRef, ImageRefError
from .volatile import VolatileField

__all__ = [
    "ORIGINS",
    "BomError",
    "LockedChart",
    "LockedComponent",
    "LockedImage",
    "LockedRecipe",
    "locked_recipes",
]

#: The closed set of image origins a lock records (see pipeline.images.Origin).
ORIGINS = ("chart-default", "in-tree")
_LOCK_HINT = "regenerate the lock with 'nox -s lock' and commit lockfiles/"


class BomError(PipelineError):
    """A lock that cannot become a BOM, inventory or mirror list (unpinned image, malformed entry)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LockedImage:
    """One image entry of a component's lock, parsed."""

    ref: str
    image: ImageRef
    digest: Digest | None
    origin: str
    found_at: tuple[str, ...]
    source: str | None = None
    media_type: str | None = None
    platforms: tuple[tuple[str, Digest], ...] = ()
    served_by: str | None = None

    @property
    def pinned(self) -> ImageRef:
        """The image by digest (tag kept); only for images with a digest."""
        assert self.digest is not None
        return self.image.with_digest(self.digest)


@dataclass(frozen=True, slots=True, kw_only=True)
class LockedChart:
    """A component's chart as locked: where it is pinned, and its content digests."""

    repository: str
    name: str
    version: str
    archive: Digest
    tree: Digest | None = None

    @property
    def ref(self) -> ChartRef:
        """Where the chart is pinned, as the catalog writes it."""
        return ChartRef(repository=self.repository, name=self.name, version=self.version)

    @property
    def is_oci(self) -> bool:
        return self.ref.is_oci

    @property
    def is_local(self) -> bool:
        """A chart in the catalog itself (``./charts``): its repository is a catalog-relative path."""
        return self.ref.is_local


@dataclass(frozen=True, slots=True, kw_only=True)
class LockedComponent:
    """One component (a Helm release, with or without a chart) of a locked recipe."""

    name: str
    namespace: str | None
    chart: LockedChart | None
    images: tuple[LockedImage, ...]
    manifests: tuple[str, ...] = ()
    values: Digest | None = None
    stream: Digest | None = None
    volatile: tuple[VolatileField, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class LockedRecipe:
    """A verified lock, parsed: the recipe, its components (in deployment order) and engine."""

    name: str
    digest: Digest
    inputs: Digest | None
    criteria: tuple[tuple[str, str], ...]
    overlays: tuple[str, ...]
    mixins: tuple[str, ...]
    components: tuple[LockedComponent, ...]
    engine: Mapping[str, str]

    @classmethod
    def from_lock(cls, lock: Lockfile) -> LockedRecipe:
        """Verify ``lock``'s digest against its body and parse it; see the module docstring."""
        body = lock.body
        recipe_block = body.get("recipe")
        name = str(recipe_block.get("name")) if isinstance(recipe_block, Mapping) else lock.recipe
        unsigned = {k: v for k, v in body.items() if k != "digest"}
        actual = sha256(canonical_json(unsigned))
        if actual != body.get("digest"):
            raise IntegrityError(
                f"lockfile of recipe '{name}' fails its integrity check: recorded digest {body.get('digest')} "
                f"but the body hashes to {actual} (edited after it was sealed)",
                hint="never edit lockfiles by hand: restore it (git checkout -- lockfiles/) or " + _LOCK_HINT,
            )
        where = f"lockfile of recipe '{name}'"
        if not isinstance(recipe_block, Mapping):
            raise BomError(f"{where} has no 'recipe' object", hint=_LOCK_HINT)
        components_block = body.get("components")
        if not isinstance(components_block, Mapping):
            raise BomError(f"{where} has no 'components' object", hint=_LOCK_HINT)
        volatile = tuple(_volatile(v, where=where) for v in body.get("volatile") or [])
        order = [str(c) for c in recipe_block.get("order") or []]
        names = [n for n in order if n in components_block] + sorted(set(components_block) - set(order))
        components = tuple(
            _component(n, components_block[n], where=where,
                       volatile=tuple(v for v in volatile if v.component == n))
            for n in names
        )
        engine_block = body.get("engine")
        engine = {str(k): str(v) for k, v in engine_block.items() if isinstance(v, str)} if isinstance(
            engine_block, Mapping) else {}
        inputs_block = body.get("inputs")
        inputs = inputs_block.get("digest") if isinstance(inputs_block, Mapping) else None
        criteria = recipe_block.get("criteria") or {}
        return cls(
            name=name,
            digest=_digest(body.get("digest"), where=f"{where}: 'digest'"),
            inputs=_digest(inputs, where=f"{where}: 'inputs.digest'") if inputs is not None else None,
            criteria=tuple(sorted((str(k), str(v)) for k, v in criteria.items())),
            overlays=tuple(str(o) for o in recipe_block.get("overlays") or []),
            mixins=tuple(str(m) for m in recipe_block.get("mixins") or []),
            components=components,
            engine=engine,
        )

    def unpinned(self) -> list[tuple[str, LockedImage]]:
        """``(component, image)`` for every image the lock holds without a digest."""
        return [(c.name, i) for c in self.components for i in c.images if i.digest is None]


def locked_recipes(locks: Iterable[Lockfile]) -> list[LockedRecipe]:
    """Parse every lock, sorted by recipe name; two locks of one recipe are refused."""
    recipes = sorted((LockedRecipe.from_lock(lock) for lock in locks), key=lambda r: r.name)
    for first, second in itertools.pairwise(recipes):
        if first.name == second.name:
            raise BomError(f"two lockfiles describe recipe '{first.name}'",
                           hint="keep one lockfile per recipe in lockfiles/")
    return recipes


# ---- parsing helpers -------------------------------------------------------------------------


def _digest(value: Any, *, where: str) -> Digest:
    if not isinstance(value, str):
        raise BomError(f"{where} is {value!r}, not a digest", hint=_LOCK_HINT)
    try:
        digest = parse_digest(value)
    except ValueError as exc:
        raise BomError(f"{where}: {exc}", hint=_LOCK_HINT) from exc
    if not digest.startswith("sha256:"):
        raise BomError(f"{where}: {value!r} is not a sha256 digest", hint=_LOCK_HINT)
    return digest


def _optional_str(entry: Mapping[str, Any], key: str, *, where: str) -> str | None:
    value = entry.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise BomError(f"{where}: '{key}' is {value!r}, not a non-empty string", hint=_LOCK_HINT)
    return value


def _volatile(entry: Any, *, where: str) -> VolatileField:
    if not isinstance(entry, Mapping) or not all(isinstance(entry.get(k), str) for k in
                                                 ("component", "path", "reason")):
        raise BomError(f"{where}: volatile entry {entry!r} lacks component, path or reason", hint=_LOCK_HINT)
    return VolatileField(
        component=entry["component"], path=entry["path"], reason=entry["reason"],
        kind=_optional_str(entry, "kind", where=where), name=_optional_str(entry, "name", where=where),
        namespace=_optional_str(entry, "namespace", where=where),
    )


def _chart(entry: Any, *, where: str) -> LockedChart | None:
    if entry is None:
        return None
    if not isinstance(entry, Mapping) or not all(isinstance(entry.get(k), str) and entry.get(k)
                                                 for k in ("repository", "name", "version")):
        raise BomError(f"{where}: 'chart' must hold repository, name and version", hint=_LOCK_HINT)
    return LockedChart(
        repository=entry["repository"], name=entry["name"], version=entry["version"],
        archive=_digest(entry.get("archive"), where=f"{where}: 'chart.archive'"),
        tree=_digest(entry["tree"], where=f"{where}: 'chart.tree'") if entry.get("tree") is not None else None,
    )


def _image(entry: Any, *, where: str) -> LockedImage:
    if not isinstance(entry, Mapping) or not isinstance(entry.get("ref"), str):
        raise BomError(f"{where}: image entry {entry!r} has no 'ref'", hint=_LOCK_HINT)
    ref = entry["ref"]
    here = f"{where}: image '{ref}'"
    try:
        image = ImageRef.parse(ref)
    except ImageRefError as exc:
        raise BomError(f"{here}: {exc}", hint=_LOCK_HINT) from exc
    origin = entry.get("origin")
    if origin not in ORIGINS:
        raise BomError(f"{here}: origin {origin!r} is not one of {', '.join(ORIGINS)}", hint=_LOCK_HINT)
    platforms = entry.get("platforms") or {}
    if not isinstance(platforms, Mapping):
        raise BomError(f"{here}: 'platforms' must map platform to digest", hint=_LOCK_HINT)
    found_at = entry.get("foundAt") or []
    if not isinstance(found_at, list) or not all(isinstance(f, str) for f in found_at):
        raise BomError(f"{here}: 'foundAt' must be a list of strings", hint=_LOCK_HINT)
    digest = entry.get("digest")
    return LockedImage(
        ref=ref, image=image,
        digest=_digest(digest, where=f"{here}: 'digest'") if digest is not None else None,
        origin=origin,
        found_at=tuple(sorted(set(found_at))),
        source=_optional_str(entry, "source", where=here),
        media_type=_optional_str(entry, "mediaType", where=here),
        platforms=tuple(sorted((str(p), _digest(d, where=f"{here}: platform '{p}'")) for p, d in platforms.items())),
        served_by=_optional_str(entry, "servedBy", where=here),
    )


def _component(name: str, entry: Any, *, where: str, volatile: tuple[VolatileField, ...]) -> LockedComponent:
    here = f"{where}: component '{name}'"
    if not isinstance(entry, Mapping):
        raise BomError(f"{here} is not an object", hint=_LOCK_HINT)
    images = entry.get("images")
    images = [] if images is None else images
    if not isinstance(images, list):
        raise BomError(f"{here}: 'images' must be a list", hint=_LOCK_HINT)
    manifests = entry.get("manifests") or {}
    files = [*(manifests.get("pre") or []), *(manifests.get("post") or [])] if isinstance(manifests, Mapping) else []
    render = entry.get("render") or {}
    stream = render.get("stream") if isinstance(render, Mapping) else None
    values = entry.get("values")
    return LockedComponent(
        name=name,
        namespace=_optional_str(entry, "namespace", where=here),
        chart=_chart(entry.get("chart"), where=here),
        images=tuple(sorted((_image(i, where=here) for i in images), key=lambda i: i.ref)),
        manifests=tuple(str(f) for f in files),
        values=_digest(values, where=f"{here}: 'values'") if values is not None else None,
        stream=_digest(stream, where=f"{here}: 'render.stream'") if stream is not None else None,
        volatile=volatile,
    )
