"""The resolve axis: one small abstract class (:class:`Resolver`), its record and its errors.

Contract of a :class:`Resolver`:

- input: an :class:`~pipeline.vocabulary.reference.ImageRef` as written (canonical upstream name);
- ``resolve`` returns a :class:`ResolvedImage`: the digest of the manifest or index *bytes the
  resolver received and hashed itself*, the media type and size, the per-platform manifest
  digests of an index, the config digest of each manifest, attestation manifests kept apart, and
  ``served_by``, the registry host that actually answered (the upstream, or a mirror); ``ref``
  is always the reference as written, never rewritten to a mirror's name;
- errors: :class:`~pipeline.errors.ResolveError` (exit code 2) saying what, where (registry host,
  reference) and why, with the fix in ``hint``; :class:`NotFoundError` when the registry does not
  have the image, :class:`TamperingError` when bytes do not match the digest claimed for them.

Implementations: :class:`~pipeline.registry.client.RegistryClient` (OCI distribution API).
"""

from __future__ import annotations

import abc
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .._closing import Closing
from ..errors import ResolveError
from ..vocabulary.digest import Digest, is_sha256
from ..vocabulary.media_types import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    INDEX_MEDIA_TYPES,
    MANIFEST_ACCEPT,
    MANIFEST_MEDIA_TYPES,
    OCI_INDEX,
    OCI_MANIFEST,
)
from ..vocabulary.reference import ImageRef

__all__ = [
    "DOCKER_MANIFEST",
    "DOCKER_MANIFEST_LIST",
    "INDEX_MEDIA_TYPES",
    "MANIFEST_ACCEPT",
    "MANIFEST_MEDIA_TYPES",
    "OCI_INDEX",
    "OCI_MANIFEST",
    "NotFoundError",
    "ResolveError",
    "ResolvedImage",
    "Resolver",
    "TamperingError",
]

_PLATFORM = re.compile(r"^[a-z0-9._-]+/[a-z0-9._-]+(/[a-z0-9._-]+)?( \([^()]+\))?$")


class NotFoundError(ResolveError):
    """The registry answered that it does not have the manifest, tag, blob or repository (HTTP 404)."""


class TamperingError(ResolveError):
    """Bytes that do not hash to the digest claimed for them (by the registry or by the reference)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ResolvedImage:
    """An image reference resolved against a registry.

    - ``ref``: the reference as written (canonical upstream name, tag and/or digest);
    - ``digest``: sha256 of the manifest or index bytes received (equal to ``ref.digest`` when the
      reference carries a sha256 digest);
    - ``media_type``, ``size``: of those bytes;
    - ``platforms``: for an index, ``os/arch[/variant]`` → manifest digest (empty for a manifest);
    - ``configs``: platform (``""`` for a single manifest) → config blob digest;
    - ``attestations``: index entries that are not runnable platforms (``unknown/unknown``
      attestation manifests, entries without a platform): digest → the digest of the manifest
      they describe (``""`` when they do not say);
    - ``served_by``: the registry host that answered (upstream or mirror), never with credentials.
    """

    ref: ImageRef
    digest: Digest
    media_type: str
    size: int
    platforms: Mapping[str, Digest] = field(default_factory=dict)
    configs: Mapping[str, Digest] = field(default_factory=dict)
    attestations: Mapping[str, str] = field(default_factory=dict)
    served_by: str

    def __post_init__(self) -> None:
        if not is_sha256(self.digest):
            raise ValueError(f"ResolvedImage.digest {self.digest!r} is not sha256:<64 hex>")
        if self.ref.pinned and self.ref.digest != self.digest:
            raise ValueError(f"ResolvedImage.digest {self.digest!r} differs from the reference's {self.ref.digest!r}")
        if self.media_type not in INDEX_MEDIA_TYPES | MANIFEST_MEDIA_TYPES:
            raise ValueError(f"ResolvedImage.media_type {self.media_type!r} is not a manifest or index type")
        if self.size < 0:
            raise ValueError("ResolvedImage.size must be >= 0")
        if self.platforms and self.media_type not in INDEX_MEDIA_TYPES:
            raise ValueError("ResolvedImage.platforms is only for an index")
        for key, value in (*self.platforms.items(), *self.configs.items()):
            if not is_sha256(value):
                raise ValueError(f"ResolvedImage: digest {value!r} of {key!r} is not sha256:<64 hex>")
        for key in self.platforms:
            if not _PLATFORM.match(key):
                raise ValueError(f"ResolvedImage: platform {key!r} is not os/arch[/variant]")
        if not self.served_by or "@" in self.served_by or "/" in self.served_by:
            raise ValueError(f"ResolvedImage.served_by {self.served_by!r} is not a registry host")

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_MEDIA_TYPES

    @property
    def pinned(self) -> ImageRef:
        """``ref`` with the resolved digest (tag kept): what a manifest can deploy."""
        return self.ref.with_digest(self.digest)

    def as_json(self) -> dict[str, Any]:
        """The record as JSON data with sorted keys (``ref`` as its canonical string)."""
        return {
            "ref": str(self.ref),
            "digest": self.digest,
            "mediaType": self.media_type,
            "size": self.size,
            "platforms": dict(sorted(self.platforms.items())),
            "configs": dict(sorted(self.configs.items())),
            "attestations": dict(sorted(self.attestations.items())),
            "servedBy": self.served_by,
        }


class Resolver(Closing, abc.ABC):
    """Turns image references into digests (and per-platform digests) from registries."""

    @abc.abstractmethod
    def resolve(self, ref: ImageRef) -> ResolvedImage:
        """Resolve ``ref``; :class:`~pipeline.errors.ResolveError` when it cannot."""


