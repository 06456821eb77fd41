"""What every BOM-stage output reads, and the stage's error.

Input: verified, fresh :class:`~pipeline.lockfile.Lockfile` records (from
:func:`pipeline.stages.fresh_locks`: integrity, engine and staleness already checked; the model
guarantees every reference parses and every digest is ``sha256:<64 hex>``). The records
(:class:`~pipeline.lockfile.LockedComponent`, :class:`~pipeline.lockfile.LockedImage`,
:class:`~pipeline.lockfile.LockedChart`) are re-exported here for the output modules.
Errors: :class:`BomError` (bad input, exit 2) for a lock that cannot become an output (two locks of
one recipe, an unpinned image), with a hint.

Each output (CycloneDX BOM, inventory document, mirror list) is an :class:`Output`: one pure
function from locks to bytes. Images locked without a registry (``lock --no-resolve``) have no
``mediaType``, ``platforms`` or ``servedBy``.
"""

from __future__ import annotations

import abc
import itertools
from collections.abc import Iterable, Sequence
from typing import Protocol

from ..errors import PipelineError
from ..images import ImageRef
from ..lockfile import LockedChart, LockedComponent, LockedImage, Lockfile

__all__ = [
    "ORIGINS",
    "BomError",
    "Exemption",
    "LockedChart",
    "LockedComponent",
    "LockedImage",
    "Lockfile",
    "Output",
    "exempted",
    "locked_recipes",
]

#: The closed set of image origins a lock records (see pipeline.images.Origin).
ORIGINS = ("chart-default", "in-tree")


class BomError(PipelineError):
    """A lock that cannot become a BOM, inventory or mirror list (unpinned image, malformed entry)."""


class Exemption(Protocol):
    """A reviewed exemption from the digest-pinning rule: an image (with tag, without digest), why, where tracked.

    :class:`pipeline.gates.exemptions.ImageExemption` (the ``imagePins`` of ``exemptions.yaml``) fits;
    the gates own the file and decide whether an exemption is justified. The BOM only carries the
    reason next to every image it names.
    """

    @property
    def image(self) -> ImageRef: ...

    @property
    def reason(self) -> str: ...

    @property
    def tracking(self) -> str: ...


def exempted(image: ImageRef, exemptions: Sequence[Exemption]) -> list[Exemption]:
    """The exemptions that name ``image`` (compared without its digest, as the gates do)."""
    bare = ImageRef(registry=image.registry, repository=image.repository, tag=image.tag)
    return [e for e in exemptions if e.image == bare]


def locked_recipes(locks: Iterable[Lockfile]) -> list[Lockfile]:
    """The locks sorted by recipe name; two locks of one recipe are refused."""
    recipes = sorted(locks, key=lambda r: r.name)
    for first, second in itertools.pairwise(recipes):
        if first.name == second.name:
            raise BomError(f"two lockfiles describe recipe '{first.name}'",
                           hint="keep one lockfile per recipe in lockfiles/")
    return recipes


class Output(abc.ABC):
    """One artifact built from locked recipes: a pure function to bytes, no clock, no I/O."""

    #: Short name for messages and the CLI (``cyclonedx``, ``inventory``, ``text``, ``hauler``…).
    name: str

    @abc.abstractmethod
    def render(self, recipes: Sequence[Lockfile]) -> bytes:
        """The artifact's bytes for ``recipes`` (sorted by name by :func:`locked_recipes`)."""
