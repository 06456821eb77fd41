"""The images the lockfiles pin, gathered across recipes: the records the provenance stage works on.

Contract of :func:`locked_images`:

- input: verified :class:`~pipeline.lockfile.Lockfile` records (the model has parsed every
  reference and digest already);
- output: one :class:`LockedImage` per (component, reference as written, digest), sorted, with the
  recipes that lock it; the same image locked by several recipes is one record.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..images import ImageRef, Origin
from ..lockfile import Lockfile
from ..vocabulary.digest import Digest

__all__ = ["LockedImage", "locked_components", "locked_images"]


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class LockedImage:
    """One image a lock pins: ``ref`` as written (parsed), ``digest`` as locked (``None``: unresolved)."""

    component: str
    ref: ImageRef
    digest: Digest | None
    origin: Origin
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
            out.setdefault(str(name), set()).add(lockfile.name)
    return {name: tuple(sorted(recipes)) for name, recipes in sorted(out.items())}


def locked_images(lockfiles: Sequence[Lockfile]) -> tuple[LockedImage, ...]:
    """Every image of every component of ``lockfiles`` (see the module contract)."""
    merged: dict[tuple[str, str, str | None], tuple[LockedImage, set[str]]] = {}
    for lockfile in lockfiles:
        for component, entry in lockfile.images():
            image = LockedImage(component=component.name, ref=entry.image, digest=entry.digest,
                                origin=entry.origin, platforms=entry.platforms or ())
            key = (image.component, str(image.ref), image.digest)
            known = merged.get(key)
            if known is None:
                merged[key] = (image, {lockfile.name})
            else:
                known[1].add(lockfile.name)
    out = [
        LockedImage(component=image.component, ref=image.ref, digest=image.digest, origin=image.origin,
                    platforms=image.platforms, recipes=tuple(sorted(recipes)))
        for image, recipes in merged.values()
    ]
    return tuple(sorted(out, key=lambda i: (i.component, str(i.ref), i.digest or "")))
