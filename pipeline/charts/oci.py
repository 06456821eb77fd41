"""OCI chart source: Helm charts stored in an OCI registry, via the distribution API.

Contract:

- input: a :class:`~pipeline.recipes.model.ChartRef` whose repository is ``oci://host[:port]/path``;
  the chart lives at ``host/path/<name>`` under the tag ``<version>`` (``+`` written as ``_``, as
  Helm does, since tags cannot hold ``+``);
- ``fetch``:

  1. GET ``/v2/<path>/<name>/manifests/<tag>`` sending the full Accept list (OCI index, OCI
     manifest, Docker manifest list, Docker v2: distribution answers 404 when the stored type is
     not listed);
  2. when the registry sends ``Docker-Content-Digest``, check it equals sha256 of the manifest bytes;
  3. require an OCI/Docker image manifest whose config is Helm's
     (``application/vnd.cncf.helm.config.v1+json``) and pick the one layer with media type
     ``application/vnd.cncf.helm.chart.content.v1.tar+gzip`` (or Helm 3.0's legacy
     ``application/tar+gzip``);
  4. GET the blob and check its sha256 (and size) against the layer descriptor;

- ``versions``: ``/v2/<path>/<name>/tags/list``, following ``Link: <…>; rel="next"`` pages, with
  ``_`` turned back into ``+``;
- transport: plain HTTP only for loopback hosts (``localhost``, 127.0.0.0/8, ``::1``), HTTPS
  otherwise; ``docker.io`` is served by ``registry-1.docker.io``. Anonymous bearer tokens are
  supported (``401`` with ``WWW-Authenticate: Bearer realm=…,service=…,scope=…`` → GET the token
  from the realm without credentials → retry), which public registries (ghcr.io, registry.k8s.io)
  require even for public pulls; tokens are cached per repository for the source's lifetime.
  Credentials are a later issue;
- errors: :class:`~pipeline.errors.ChartError` for unreachable registries (after retries), missing
  tags, artifacts that are not Helm charts, and digest mismatches.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from .._digest import sha256
from ..errors import ChartError
from ..recipes.model import ChartRef
from .http import HttpReply, Transport, redact_text, redact_url
from .interface import ChartSource

__all__ = [
    "CHART_LAYER_MEDIA_TYPE",
    "HELM_CONFIG_MEDIA_TYPE",
    "MANIFEST_ACCEPT",
    "OciChartSource",
    "OciLocation",
]

HELM_CONFIG_MEDIA_TYPE = "application/vnd.cncf.helm.config.v1+json"
CHART_LAYER_MEDIA_TYPE = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
_LEGACY_CHART_LAYER_MEDIA_TYPE = "application/tar+gzip"
_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_ACCEPT = ", ".join((_OCI_INDEX, _OCI_MANIFEST, _DOCKER_LIST, _DOCKER_MANIFEST))

_MAX_TAG_PAGES = 100
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
_CHALLENGE_PARAM = re.compile(r'(\w+)\s*=\s*(?:"([^"]*)"|([^\s,]+))')
_NEXT_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')
_HOST_ALIASES = {"docker.io": "registry-1.docker.io", "index.docker.io": "registry-1.docker.io"}


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
        tag = ref.version.replace("+", "_") if tagged else ""
        if tagged and not _TAG.fullmatch(tag):
            raise ChartError(
                f"chart {ref.name!r}: version {ref.version!r} cannot be an OCI tag",
                hint="OCI tags are 1-128 characters of letters, digits, '_', '.' and '-' (Helm writes '+' "
                "as '_'), not starting with '.' or '-'",
            )
        scheme = "http" if _is_loopback(host) else "https"
        base = f"{scheme}://{_HOST_ALIASES.get(host, host)}"
        return cls(base=base, repository=repository, tag=tag)

    @property
    def display(self) -> str:
        """``host/path/name:tag`` (without ``:tag`` for an untagged location)."""
        return f"{self.base.split('://', 1)[1]}/{self.repository}" + (f":{self.tag}" if self.tag else "")


class OciChartSource(ChartSource):
    """Charts from OCI registries, pulled with the distribution API over one HTTP client."""

    def __init__(self, *, transport: Transport | None = None) -> None:
        self._transport = transport or Transport()
        self._tokens: dict[tuple[str, str], str] = {}

    def fetch(self, ref: ChartRef) -> bytes:
        loc = OciLocation.from_ref(ref)
        what = f"chart {ref.name!r} version {ref.version!r} ({loc.display})"
        # 1. the manifest, by tag, with every manifest type accepted
        reply = self._get(loc, f"/manifests/{loc.tag}", what=f"manifest of {what}", accept=MANIFEST_ACCEPT)
        self._transport.expect_ok(
            reply, what=f"manifest of {what}",
            not_found_hint="check the chart name and version; OCI tags are the chart version with '+' "
            "written as '_'",
        )
        # 2. the manifest bytes against the registry's digest
        announced = reply.headers.get("docker-content-digest")
        actual = sha256(reply.body)
        if announced is not None and announced.startswith("sha256:") and announced != actual:
            raise ChartError(
                f"manifest of {what}: bytes differ from the registry's Docker-Content-Digest "
                f"(header says {announced!r}, bytes are {actual!r})",
                hint="the registry or a proxy in between serves corrupted or tampered data: retry, and "
                "report it to the registry owner if it persists",
            )
        # 3. the chart layer
        layer = _chart_layer(reply.body, what)
        digest, size = layer["digest"], layer["size"]
        # 4. the blob against the layer's digest
        blob = self._get(loc, f"/blobs/{digest}", what=f"chart layer of {what}")
        self._transport.expect_ok(blob, what=f"chart layer of {what}",
                                  not_found_hint="the manifest names a layer the registry does not have: "
                                  "the registry or mirror is incomplete")
        got = sha256(blob.body)
        if got != digest or len(blob.body) != size:
            raise ChartError(
                f"chart layer of {what}: bytes differ from the manifest's layer digest (manifest says "
                f"{digest!r}, {size} bytes; received {got!r}, {len(blob.body)} bytes)",
                hint="the registry or a proxy in between serves corrupted or tampered data: retry, and "
                "report it to the registry owner if it persists",
            )
        return blob.body

    def versions(self, ref: ChartRef) -> tuple[str, ...]:
        loc = OciLocation.from_ref(ref, tagged=False)
        what = f"tags of {loc.display}"
        tags: set[str] = set()
        path = "/tags/list"
        for _ in range(_MAX_TAG_PAGES):
            reply = self._get(loc, path, what=what)
            self._transport.expect_ok(reply, what=what, not_found_hint="check the repository and chart name")
            try:
                data: Any = json.loads(reply.body)
            except ValueError as exc:
                raise ChartError(f"{what}: the registry answered with invalid JSON",
                                 hint="the server is not an OCI registry") from exc
            page = data.get("tags") if isinstance(data, dict) else None
            tags.update(t.replace("_", "+") for t in page or () if isinstance(t, str))
            link = _NEXT_LINK.search(reply.headers.get("link", ""))
            if link is None:
                break
            target = link.group(1)
            path = target.split(f"/v2/{loc.repository}", 1)[1] if f"/v2/{loc.repository}" in target else ""
            if not path.startswith("/tags/list"):
                break
        return tuple(sorted(tags))

    def close(self) -> None:
        self._transport.close()

    # ----------------------------------------------------------------------------------------

    def _get(self, loc: OciLocation, suffix: str, *, what: str, accept: str | None = None) -> HttpReply:
        """GET ``/v2/<repository><suffix>``, doing the anonymous bearer-token dance once if asked."""
        url = f"{loc.base}/v2/{loc.repository}{suffix}"
        key = (loc.base, loc.repository)
        reply = self._transport.get(url, what=what, headers=self._headers(key, accept))
        if reply.status != 401:
            return reply
        challenge = reply.headers.get("www-authenticate", "")
        if not challenge.lower().startswith("bearer "):
            return reply
        self._tokens[key] = self._token(challenge, loc, what)
        return self._transport.get(url, what=what, headers=self._headers(key, accept))

    def _headers(self, key: tuple[str, str], accept: str | None) -> Mapping[str, str]:
        headers: dict[str, str] = {}
        if accept is not None:
            headers["Accept"] = accept
        token = self._tokens.get(key)
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def _token(self, challenge: str, loc: OciLocation, what: str) -> str:
        params = {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
                  for m in _CHALLENGE_PARAM.finditer(challenge[len("bearer "):])}
        realm = params.get("realm", "")
        if not realm.startswith(("https://", "http://")):
            raise ChartError(
                f"{what}: the registry asks for a bearer token but names no usable realm "
                f"({redact_text(challenge)!r})",
                hint="the registry's authentication is misconfigured; use a mirror",
            )
        query = {"scope": params.get("scope") or f"repository:{loc.repository}:pull"}
        if params.get("service"):
            query["service"] = params["service"]
        token_url = str(httpx.URL(realm).copy_merge_params(sorted(query.items())))
        misconfigured = "the registry's token service is misconfigured; use a mirror"
        reply = self._transport.get(token_url, what=f"anonymous token for {what}")
        self._transport.expect_ok(reply, what=f"anonymous token for {what}", not_found_hint=misconfigured)
        try:
            data: Any = json.loads(reply.body)
        except ValueError as exc:
            raise ChartError(f"anonymous token for {what}: the token service answered with invalid JSON",
                             hint=misconfigured) from exc
        token = (data.get("token") or data.get("access_token")) if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise ChartError(f"anonymous token for {what}: the token service answered without a token",
                             hint=misconfigured)
        return token


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
    if media_type in (_OCI_INDEX, _DOCKER_LIST) or "manifests" in manifest:
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
    if not isinstance(digest, str) or not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
        raise ChartError(f"manifest of {what}: chart layer digest {digest!r} is not 'sha256:<64 hex>'",
                         hint=not_chart)
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ChartError(f"manifest of {what}: chart layer size {size!r} is not a byte count", hint=not_chart)
    return layer


def _is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host[1:].split("]", 1)[0]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
