"""The bundle's vocabulary: its errors, the annotations of ``index.json`` entries, and where each
entry goes in a target registry.

Every root of the layout's ``index.json`` is one of :class:`EntryKind`: a locked ``image`` (by the
digest of its index or manifest, under the reference the lock wrote), a locked ``chart`` (an OCI
artifact with Helm's media types whose one layer is the locked archive), a ``signature`` or
``attestation`` (cosign's ``sha256-<hex>.sig`` / ``.att`` tags), a ``referrers`` index (the OCI
referrers tag schema ``sha256-<hex>``) or ``referrer`` (a manifest whose ``subject`` is an image),
and the ``metadata`` artifact (lockfiles, BOMs, policies, Sigstore trusted roots, and
``bundle.json``, the bundle's own table of contents).

Target names (:func:`image_repository`, :func:`chart_repository`): an image of registry ``R`` and
repository ``P`` goes to ``<prefix>/<R with ':' as '_'>/<P>``; a chart to
``<prefix>/charts/<source>/<name>`` (``source`` is ``local`` for a chart of the catalog, else the
repository URL's host and path) under the tag ``version`` (``+`` written ``_``, as Helm does).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from ..errors import GateError, PipelineError

__all__ = [
    "ANNOTATION_KIND",
    "ANNOTATION_PLATFORMS",
    "ANNOTATION_REPOSITORY",
    "ANNOTATION_SUBJECT",
    "ANNOTATION_TAG",
    "ANNOTATION_TITLE",
    "ANNOTATION_UPSTREAM",
    "BUNDLE_ARTIFACT",
    "BUNDLE_CONFIG",
    "REF_NAME",
    "BundleError",
    "BundleInvalid",
    "EntryKind",
    "Problem",
    "chart_repository",
    "chart_tag",
    "image_repository",
    "registry_dir",
]

REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_TITLE = "org.opencontainers.image.title"
ANNOTATION_KIND = "dev.recipe-pipeline.bundle.kind"
#: the reference as the lock wrote it (image), ``repository name version`` (chart), or the upstream tag
ANNOTATION_UPSTREAM = "dev.recipe-pipeline.bundle.upstream"
#: ``registry/repository`` upstream (images and their artifacts); the target path for charts
ANNOTATION_REPOSITORY = "dev.recipe-pipeline.bundle.repository"
ANNOTATION_TAG = "dev.recipe-pipeline.bundle.tag"
#: the image digest a signature, attestation or referrer is about
ANNOTATION_SUBJECT = "dev.recipe-pipeline.bundle.subject"
#: ``all`` or the comma-separated platforms whose manifests the bundle holds
ANNOTATION_PLATFORMS = "dev.recipe-pipeline.bundle.platforms"
BUNDLE_ARTIFACT = "application/vnd.recipe-pipeline.bundle.v1"
BUNDLE_CONFIG = "application/vnd.recipe-pipeline.bundle.config.v1+json"
ALL_PLATFORMS = "all"

_TAG_SAFE = re.compile(r"[^A-Za-z0-9_.-]")
_PATH_SAFE = re.compile(r"[^a-z0-9._/-]+")


class BundleError(PipelineError):
    """A bundle cannot be written, read or imported (bad input, bytes that do not match, a refusing target)."""


class BundleInvalid(GateError):
    """``bundle verify`` found differences (exit 1); the message lists every one."""


class EntryKind(enum.StrEnum):
    IMAGE = "image"
    CHART = "chart"
    SIGNATURE = "signature"
    ATTESTATION = "attestation"
    REFERRERS = "referrers"
    REFERRER = "referrer"
    METADATA = "metadata"


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    """One difference ``bundle verify`` found: ``where`` (an entry, a blob, a lock) and ``what``."""

    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


def registry_dir(registry: str) -> str:
    """The repository path component that stands for upstream ``registry`` (``host:port`` → ``host_port``)."""
    return registry.lower().replace(":", "_")


def image_repository(registry: str, repository: str, *, prefix: str) -> str:
    """Where an upstream image's repository lives in the target registry."""
    return "/".join(p for p in (prefix.strip("/"), registry_dir(registry), repository) if p)


def chart_source_dir(repository: str) -> str:
    """``local`` for a catalog chart (``./charts``), else the URL's host and path, made a repository path."""
    if "://" not in repository:
        return "local"
    rest = repository.split("://", 1)[1].rstrip("/").lower()
    return _PATH_SAFE.sub("_", rest.replace(":", "_")).strip("/_") or "charts"


def chart_repository(repository: str, name: str, *, prefix: str) -> str:
    """Where a locked chart lives in the target registry (``oci://<target>/<this>`` with ``helm pull``)."""
    return "/".join(p for p in (prefix.strip("/"), "charts", chart_source_dir(repository), name) if p)


def chart_tag(version: str) -> str:
    """The OCI tag of a chart version (Helm writes ``+`` as ``_``)."""
    return _TAG_SAFE.sub("_", version.replace("+", "_"))
