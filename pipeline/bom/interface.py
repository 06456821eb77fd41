"""What every BOM-stage output is: one pure function from locked recipes to bytes, and the stage's error.

The locked recipes come from :func:`~pipeline.locked.locked_recipes` (a typed, verified view of
lockfiles in the lock layer, re-exported here); each output (CycloneDX BOM, inventory document,
mirror list) is an :class:`Output`. :class:`Exemption` is what the BOM carries next to an image the
gates let through without a digest.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Protocol

from ..locked import (
    ORIGINS,
    BomError,
    LockedChart,
    LockedComponent,
    LockedImage,
    LockedRecipe,
    locked_recipes,
)
from ..vocabulary.reference import ImageRef

__all__ = [
    "ORIGINS",
    "BomError",
    "Exemption",
    "LockedChart",
    "LockedComponent",
    "LockedImage",
    "LockedRecipe",
    "Output",
    "exempted",
    "locked_recipes",
]


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


class Output(abc.ABC):
    """One artifact built from locked recipes: a pure function to bytes, no clock, no I/O."""

    #: Short name for messages and the CLI (``cyclonedx``, ``inventory``, ``text``, ``hauler``…).
    name: str

    @abc.abstractmethod
    def render(self, recipes: Sequence[LockedRecipe]) -> bytes:
        """The artifact's bytes for ``recipes`` (sorted by name by :func:`locked_recipes`)."""
