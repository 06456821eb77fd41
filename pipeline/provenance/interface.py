"""Where signatures and attestations are read from: one small abstract class and its records.

Contract of an :class:`ArtifactSource` (the three distribution-API reads signature discovery needs):

- ``referrers(repository, digest)``: the descriptors of ``GET /v2/<name>/referrers/<digest>``
  (OCI distribution 1.1), or ``None`` when the registry has no referrers API (it answers 404,
  as distribution 2.8 does);
- ``manifest(repository, reference)``: the manifest or index stored under a tag or digest, its
  bytes verified against its digest, or ``None`` when the registry does not have it (404);
- ``blob(repository, digest)``: the blob's bytes, verified against the digest;
- errors: :class:`ArtifactTampered` when bytes do not match the digest they were asked for and
  :class:`ArtifactMissing` when a named blob is not there (the verifier records either against the
  artifact and goes on); :class:`~pipeline.errors.ResolveError`
  when the registry cannot be reached or refuses (the run stops: "not checked" is not "absent").

``repository`` is an :class:`~pipeline.vocabulary.reference.ImageRef` without tag or digest.
Implementations: :class:`~pipeline.provenance.registry.RegistryArtifactSource` (over the
project's :class:`~pipeline.registry.RegistryClient`).
"""

from __future__ import annotations

import abc
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .._closing import Closing
from ..errors import ResolveError
from ..vocabulary.digest import Digest, check_sha256, parse_digest
from ..vocabulary.reference import ImageRef

__all__ = ["ArtifactMissing", "ArtifactSource", "ArtifactTampered", "Descriptor", "RawManifest"]


class ArtifactTampered(ResolveError):
    """Bytes served for a manifest or blob do not hash to the digest they were asked for."""


class ArtifactMissing(ResolveError):
    """A blob that a signature or attestation manifest names is not in the registry (HTTP 404)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Descriptor:
    """An OCI content descriptor (of a referrer, a layer or a config)."""

    media_type: str
    digest: Digest
    size: int | None = None
    artifact_type: str | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Any) -> Descriptor:
        """Parse a descriptor object; :class:`ValueError` says what is malformed."""
        if not isinstance(data, Mapping):
            raise ValueError("a descriptor is not a JSON object")  # noqa: TRY004 - callers catch ValueError for bad data
        size = data.get("size")
        raw = data.get("annotations")
        annotations = raw if isinstance(raw, Mapping) else {}
        artifact_type = data.get("artifactType")
        return cls(
            media_type=str(data.get("mediaType") or ""),
            digest=parse_digest(str(data.get("digest"))),
            size=size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None,
            artifact_type=artifact_type if isinstance(artifact_type, str) and artifact_type else None,
            annotations={str(k): str(v) for k, v in annotations.items() if isinstance(v, str)},
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RawManifest:
    """Manifest bytes as served: ``digest`` is their sha256 (checked when built)."""

    digest: Digest
    media_type: str
    body: bytes = field(repr=False)

    def __post_init__(self) -> None:
        check_sha256(self.body, self.digest, what="RawManifest.digest")

    def json(self) -> dict[str, Any]:
        """The manifest as a JSON object; :class:`ValueError` when it is not one."""
        data: Any = json.loads(self.body)
        if not isinstance(data, dict):
            raise ValueError("the manifest is not a JSON object")  # noqa: TRY004 - callers catch ValueError for bad data
        return data


class ArtifactSource(Closing, abc.ABC):
    """Read-only access to the signature and attestation artifacts of images (see the module contract)."""

    @abc.abstractmethod
    def referrers(self, repository: ImageRef, digest: Digest) -> tuple[Descriptor, ...] | None:
        """Descriptors of the manifests whose ``subject`` is ``digest``; ``None``: no referrers API."""

    @abc.abstractmethod
    def manifest(self, repository: ImageRef, reference: str) -> RawManifest | None:
        """The manifest under tag or digest ``reference``; ``None`` when the registry does not have it."""

    @abc.abstractmethod
    def blob(self, repository: ImageRef, digest: Digest, *, size: int | None = None) -> bytes:
        """The verified bytes of blob ``digest`` (:class:`ArtifactMissing` when the registry lacks it)."""


