"""OCI chart source: Helm charts stored in an OCI registry, via the registry client.

Contract:

- input: a :class:`~pipeline.recipes.model.ChartRef` whose repository is ``oci://host[:port]/path``;
  the chart lives at ``host/path/<name>`` under the tag ``<version>`` (``+`` written as ``_``, as
  Helm does, since tags cannot hold ``+``);
- ``fetch``, through :class:`~pipeline.registry.client.RegistryClient`:

  1. the manifest by tag (:meth:`~pipeline.registry.client.RegistryClient.fetch_manifest`: HEAD and
     GET with the full Accept list, the bytes hashed and checked against the digest the registry
     claims; a registry that keeps lying is refused as tampering);
  2. require an OCI/Docker image manifest whose config is Helm's
     (``application/vnd.cncf.helm.config.v1+json``) and pick the one layer with media type
     ``application/vnd.cncf.helm.chart.content.v1.tar+gzip`` (or Helm 3.0's legacy
     ``application/tar+gzip``);
  3. the blob (:meth:`~pipeline.registry.client.RegistryClient.fetch_blob`), checked against the
     layer's digest and size; a redirect to object storage never carries the registry's
     credentials;

- version rules (Helm's ``ValidateReference``): a pinned version is the tag itself, verbatim
  (``v1.2.3`` asks for the tag ``v1.2.3``, never ``1.2.3``; :mod:`pipeline.charts.versions`); a tag
  the registry does not have fails with the nearest versions it does have;
- ``versions``: every tag of ``host/path/<name>`` (all ``Link`` pages), with ``_`` turned back
  into ``+``;
- transport and authentication are the registry client's: plain HTTP only for loopback hosts
  (``localhost``, 127.0.0.0/8, ``::1``), HTTPS otherwise; ``docker.io`` is served by
  ``registry-1.docker.io``; bearer tokens (anonymous, or with the credentials of the client's
  Docker config) and basic auth; tokens cached per repository for the source's lifetime;
- errors: :class:`~pipeline.errors.ChartError` (the registry client's message, prefixed with the
  chart) for unreachable registries (after retries), missing tags, artifacts that are not Helm
  charts, and digest mismatches.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from ..errors import ChartError, ChartVersionError, ResolveError
from ..recipes.model import ChartRef
from ..registry.client import RegistryClient
from ..registry.interface import NotFoundError
from ..registry.transport import Transport, redact_url
from ..vocabulary.digest import is_sha256
from ..vocabulary.hosts import api_host, is_loopback, normalize_registry_host
from ..vocabulary.media_types import HELM_CHART_LAYER, HELM_CONFIG, INDEX_MEDIA_TYPES, MANIFEST_ACCEPT
from ..vocabulary.reference import ImageRef
from .interface import ChartSource
from .versions import nearest_versions, oci_tag, parse_semver

__all__ = [
    "CHART_LAYER_MEDIA_TYPE",
    "HELM_CONFIG_MEDIA_TYPE",
    "MANIFEST_ACCEPT",
    "OciChartSource",
    "OciLocation",
]

HELM_CONFIG_MEDIA_TYPE = HELM_CONFIG
CHART_LAYER_MEDIA_TYPE = HELM_CHART_LAYER
#: Helm 3.0's chart layer type, read only here.
_LEGACY_CHART_LAYER_MEDIA_TYPE = "application/tar+gzip"

_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")


@dataclass(frozen=True, slots=True, kw_only=True)
class OciLocation:
    """Where a chart lives in a registry: ``base`` (scheme://host[:port]), repository path and tag."""

    base: str
    repository: str
    tag: str

    @classmethod
    def from_ref(cls, ref: ChartRef, *, tagged: bool = True) -> OciLocation:
        """Parse the repository ``oci://host[:port]/path``, the name and (if ``tagged``) the version.

        Raises ChartError when any of them is malformed.
        """
        rest = ref.repository.removeprefix("oci://").rstrip("/")
        host, _, path = rest.partition("/")
        host = host.rpartition("@")[2]  # credentials are not supported: never send them
        if not host or "?" in rest or "#" in rest:
            raise ChartError(
                f"chart {ref.name!r}: OCI repository {redact_url(ref.repository)!r} is malformed",
                hint="write it as 'oci://host[:port]/path' (without the chart name or a tag)",
            )
        repository = f"{path}/{ref.name}" if path else ref.name
        if repository != repository.lower():
            raise ChartError(
                f"chart {ref.name!r}: OCI repository path {repository!r} has upper-case letters",
                hint="OCI repository names are lower-case",
            )
        tag = oci_tag(ref.version) if tagged else ""
        if tagged and not _TAG.fullmatch(tag):
            raise ChartError(
                f"chart {ref.name!r}: version {ref.version!r} cannot be an OCI tag",
                hint="OCI tags are 1-128 characters of letters, digits, '_', '.' and '-' (Helm writes '+' "
                "as '_'), not starting with '.' or '-'",
            )
        scheme = "http" if is_loopback(host) else "https"
        base = f"{scheme}://{api_host(host)}"
        return cls(base=base, repository=repository, tag=tag)

    @property
    def image(self) -> ImageRef:
        """The location as an image reference (what the registry client takes)."""
        host = normalize_registry_host(self.base.split("://", 1)[1])
        return ImageRef(registry=host, repository=self.repository, tag=self.tag or None)

    @property
    def display(self) -> str:
        """``host/path/name:tag`` (without ``:tag`` for an untagged location)."""
        return f"{self.base.split('://', 1)[1]}/{self.repository}" + (f":{self.tag}" if self.tag else "")


class OciChartSource(ChartSource):
    """Charts from OCI registries, pulled through one :class:`~pipeline.registry.client.RegistryClient`.

    Pass ``client`` to share the run's registry client (credentials, retries, connection pool);
    otherwise one is made over ``transport`` (or a default transport), and closed with the source.
    """

    def __init__(self, *, transport: Transport | None = None, client: RegistryClient | None = None) -> None:
        self._transport = (transport or Transport()) if client is None else None
        self._client = client or RegistryClient(transport=self._transport)

    def fetch(self, ref: ChartRef) -> bytes:
        loc = OciLocation.from_ref(ref)
        what = f"chart {ref.name!r} version {ref.version!r} ({loc.display})"
        try:
            manifest = self._client.fetch_manifest(loc.image)
        except NotFoundError as exc:
            raise self._missing(ref, what, exc) from exc
        except ResolveError as exc:
            raise _chart_error(f"manifest of {what}", exc) from exc
        layer = _chart_layer(manifest.body, what)
        try:
            return self._client.fetch_blob(loc.image, layer["digest"], size=layer["size"])
        except ResolveError as exc:
            raise _chart_error(f"chart layer of {what}", exc) from exc

    def _missing(self, ref: ChartRef, what: str, exc: NotFoundError) -> ChartError:
        """The chart's tag is missing: say so with the nearest versions the registry has."""
        try:
            offered = self.versions(ref)
        except ChartError:
            return _chart_error(f"manifest of {what}", exc)
        nearest = ", ".join(repr(v) for v in nearest_versions(ref.version, offered)) or "none"
        hint = "pin a version the registry has"
        wanted = parse_semver(ref.version)
        same = [v for v in offered if wanted is not None and (p := parse_semver(v)) is not None
                and p.compare(wanted) == 0]
        if same:
            hint = (f"Helm uses a pinned version as the OCI tag verbatim, so {ref.version!r} does not find "
                    f"{same[0]!r}: pin {same[0]!r}")
        return ChartVersionError(f"{what}: the registry has no tag {oci_tag(ref.version)!r} "
                          f"(it has {len(offered)} versions; nearest: {nearest})", hint=hint)

    def versions(self, ref: ChartRef) -> tuple[str, ...]:
        loc = OciLocation.from_ref(ref, tagged=False)
        try:
            tags = self._client.tags(loc.image)
        except ResolveError as exc:
            raise _chart_error(f"tags of {loc.display}", exc) from exc
        return tuple(sorted({t.replace("_", "+") for t in tags}))

    def close(self) -> None:
        if self._transport is not None:  # the source made the client: close it and its transport
            self._client.close()
            self._transport.close()


def _chart_error(what: str, exc: ResolveError) -> ChartError:
    return ChartError(f"{what}: {exc.message}", hint=exc.hint)


def _chart_layer(body: bytes, what: str) -> dict[str, Any]:
    """The Helm chart layer descriptor of a manifest (``digest`` and ``size`` validated)."""
    not_chart = "the reference is not a Helm chart pushed with 'helm push' (check the repository path)"
    try:
        manifest: Any = json.loads(body)
    except ValueError as exc:
        raise ChartError(f"manifest of {what} is not JSON", hint=not_chart) from exc
    if not isinstance(manifest, dict):
        raise ChartError(f"manifest of {what} is not a JSON object", hint=not_chart)
    media_type = manifest.get("mediaType")
    if media_type in INDEX_MEDIA_TYPES or "manifests" in manifest:
        raise ChartError(f"manifest of {what} is an image index ({media_type!r}), not a chart manifest",
                         hint=not_chart)
    config = manifest.get("config")
    config_type = config.get("mediaType") if isinstance(config, dict) else None
    if config_type != HELM_CONFIG_MEDIA_TYPE:
        raise ChartError(
            f"manifest of {what} has config media type {config_type!r}, not {HELM_CONFIG_MEDIA_TYPE!r}",
            hint=not_chart,
        )
    layers = manifest.get("layers")
    candidates = [
        layer for layer in (layers if isinstance(layers, list) else [])
        if isinstance(layer, dict) and layer.get("mediaType") in (CHART_LAYER_MEDIA_TYPE,
                                                                   _LEGACY_CHART_LAYER_MEDIA_TYPE)
    ]
    if len(candidates) != 1:
        raise ChartError(
            f"manifest of {what} has {len(candidates)} layers of type {CHART_LAYER_MEDIA_TYPE!r}, "
            "expected exactly one",
            hint=not_chart,
        )
    layer = candidates[0]
    digest, size = layer.get("digest"), layer.get("size")
    if not is_sha256(digest):
        raise ChartError(f"manifest of {what}: chart layer digest {digest!r} is not 'sha256:<64 hex>'",
                         hint=not_chart)
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ChartError(f"manifest of {what}: chart layer size {size!r} is not a byte count", hint=not_chart)
    return layer
