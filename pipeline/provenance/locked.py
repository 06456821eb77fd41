"""The images the lockfiles pin, as records the provenance stage works on.

Contract of :func:`locked_images`:

- input: parsed :class:`~pipeline.lock.Lockfile` records (``components.<name>.images[]`` entries:
  ``ref``, ``digest`` (``sha256:…`` or ``null`` when not resolved), ``origin``, ``platforms``);
- output: one :class:`LockedImage` per (component, reference as written, digest), sorted, with the
  recipes that lock it; the same image locked by several recipes is one record;
- errors: :class:`~pipeline.errors.LockError` naming the lockfile, component and entry when an
  entry is malformed (a reference that does not parse, a digest that is not ``sha256:<hex>``).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import LockError
from ..lock import Lockfile
from ..vocabulary.digest import Digest, parse_digest
from ..vocabulary.reference import ImageRef, ImageRefError

__all__ = ["ImageOrigin", "LockedImage", "locked_components", "locked_images"]


class ImageOrigin(enum.StrEnum):
    """Where the reference came from: our own manifests and values, or a chart's defaults."""

    IN_TREE = "in-tree"
    CHART_DEFAULT = "chart-default"


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class LockedImage:
    """One image a lock pins: ``ref`` as written (parsed), ``digest`` as locked (``None``: unresolved)."""

    component: str
    ref: ImageRef
    digest: Digest | None
    origin: ImageOrigin
    platforms: tuple[tuple[str, Digest], ...] = ()
    recipes: tuple[str, ...] = ()

    @property
    def repository(self) -> ImageRef:
        """``registry/repository`` without tag or digest: what signatures and policies key on."""
        return ImageRef(registry=self.ref.registry, repository=self.ref.repository)

    @property
    def pinned(self) -> ImageRef:
        """``registry/repository@digest`` (the reference a reviewer verifies); requires a digest."""
        if self.digest is None:
            raise ValueError(f"{self.ref} has no locked digest")
        return ImageRef(registry=self.ref.registry, repository=self.ref.repository, digest=self.digest)

    @property
    def digests(self) -> tuple[Digest, ...]:
        """The locked digest and the per-platform manifest digests under it."""
        if self.digest is None:
            return ()
        return (self.digest, *sorted({d for _, d in self.platforms} - {self.digest}))


def locked_components(lockfiles: Iterable[Lockfile]) -> dict[str, tuple[str, ...]]:
    """Every component named in ``lockfiles`` → the recipes that lock it (sorted)."""
    out: dict[str, set[str]] = {}
    for lockfile in lockfiles:
        for name in lockfile.components:
            out.setdefault(str(name), set()).add(lockfile.recipe)
    return {name: tuple(sorted(recipes)) for name, recipes in sorted(out.items())}


def locked_images(lockfiles: Sequence[Lockfile]) -> tuple[LockedImage, ...]:
    """Every image of every component of ``lockfiles`` (see the module contract)."""
    merged: dict[tuple[str, str, str | None], tuple[LockedImage, set[str]]] = {}
    for lockfile in lockfiles:
        for component, entry in sorted(lockfile.components.items()):
            images = entry.get("images") if isinstance(entry, Mapping) else None
            if images is None:
                continue
            if not isinstance(images, list):
                raise LockError(f"lockfile of recipe {lockfile.recipe!r}: component {component!r} has an "
                                "'images' value that is not a list", hint="regenerate it with 'nox -s lock'")
            for item in images:
                image = _image(lockfile.recipe, str(component), item)
                key = (image.component, str(image.ref), image.digest)
                known = merged.get(key)
                if known is None:
                    merged[key] = (image, {lockfile.recipe})
                else:
                    known[1].add(lockfile.recipe)
    out = [
        LockedImage(component=image.component, ref=image.ref, digest=image.digest, origin=image.origin,
                    platforms=image.platforms, recipes=tuple(sorted(recipes)))
        for image, recipes in merged.values()
    ]
    return tuple(sorted(out, key=lambda i: (i.component, str(i.ref), i.digest or "")))


def _image(recipe: str, component: str, item: Any) -> LockedImage:
    where = f"lockfile of recipe {recipe!r}: component {component!r}"
    hint = "regenerate the lockfile with 'nox -s lock' (never edit it by hand)"
    if not isinstance(item, Mapping) or not isinstance(item.get("ref"), str):
        raise LockError(f"{where}: an image entry has no 'ref' string", hint=hint)
    text = item["ref"]
    try:
        ref = ImageRef.parse(text)
    except ImageRefError as exc:
        raise LockError(f"{where}: image {text!r}: {exc}", hint=hint) from exc
    raw_digest = item.get("digest")
    try:
        digest = parse_digest(raw_digest) if raw_digest is not None else None
        platforms = tuple(sorted((str(p), parse_digest(str(d))) for p, d in (item.get("platforms") or {}).items()))
    except (ValueError, AttributeError) as exc:
        raise LockError(f"{where}: image {text!r}: {exc}", hint=hint) from exc
    try:
        origin = ImageOrigin(item.get("origin", ImageOrigin.CHART_DEFAULT.value))
    except ValueError as exc:
        raise LockError(f"{where}: image {text!r} has origin {item.get('origin')!r} "
                        f"(expected {', '.join(o.value for o in ImageOrigin)})", hint=hint) from exc
    return LockedImage(component=component, ref=ref, digest=digest, origin=origin, platforms=platforms)
