"""Pushing to an OCI distribution registry: blobs (monolithic upload) and manifests.

Contract of :class:`Pusher` (one target registry, over a :class:`~pipeline.registry.client.RegistryClient`
whose transport, retries and credentials it shares):

- ``host`` is the target registry (``host[:port]``); it is reached over plain HTTP only when it
  is a loopback host or listed as insecure in the client's configuration, else HTTPS;
- ``has_blob`` / ``has_manifest``: ``HEAD`` (200 → present, 404 → absent);
- ``push_blob(repository, data, digest)``: the caller's ``digest`` must be the sha256 of ``data``
  (checked again here, before a byte is sent); ``POST /v2/<name>/blobs/uploads/`` then one
  ``PUT <location>&digest=<digest>`` with the whole body (the spec's monolithic upload); the
  registry must answer 201 with the same ``Docker-Content-Digest`` (when it sends one);
- ``push_manifest(repository, reference, body, media_type)``: ``PUT /v2/<name>/manifests/<reference>``
  (a tag or the digest of ``body``) with the manifest's media type; the registry's
  ``Docker-Content-Digest`` must equal the sha256 of ``body``;
- authentication: the client's (Docker config credentials, bearer tokens, basic auth), asking for
  ``pull,push`` scopes;
- errors: :class:`~pipeline.errors.ResolveError` naming the registry, repository and what was
  pushed, with the registry's own error code and message (credentials removed);
  :class:`~pipeline.registry.interface.TamperingError` when bytes do not match their digest.
"""

from __future__ import annotations

import httpx

from ..errors import ResolveError
from ..vocabulary.digest import Digest, sha256
from ..vocabulary.hosts import api_host
from ..vocabulary.reference import ImageRef
from .client import Endpoint, RegistryClient, _registry_error
from .interface import TamperingError
from .transport import HttpReply

__all__ = ["Pusher"]

_PUSH = "pull,push"


class Pusher:
    """Uploads to the registry ``host`` through ``client`` (the caller owns and closes the client)."""

    def __init__(self, client: RegistryClient, *, host: str) -> None:
        self.client = client
        self.host = host
        scheme = "http" if client.config.plain_http(host) else "https"
        self.endpoint = Endpoint(host=host, base=f"{scheme}://{api_host(host)}")

    def _ref(self, repository: str) -> ImageRef:
        return ImageRef(registry=self.host, repository=repository, tag="latest")

    def _call(self, repository: str, method: str, url: str, *, what: str, content: bytes | None = None,
              content_type: str | None = None, accept: str | None = None) -> HttpReply:
        return self.client.call_url(self.endpoint, self._ref(repository), method, url, what=what, accept=accept,
                                    actions=_PUSH, content=content, content_type=content_type,
                                    max_bytes=1024 * 1024)

    def _url(self, repository: str, suffix: str) -> str:
        return f"{self.endpoint.base}/v2/{repository}{suffix}"

    def _refused(self, repository: str, reply: HttpReply, *, what: str) -> ResolveError:
        detail = _registry_error(reply)
        status = f"HTTP {reply.status}{': ' + detail if detail else ''}"
        if reply.status in (401, 403):
            return ResolveError(
                f"registry {self.host!r} refused to let us push {what} to {repository!r} ({status})",
                hint=f"log in with push rights for {self.host!r} (docker login stores them in the Docker config "
                "that DOCKER_CONFIG or ~/.docker names) and check the repository prefix",
            )
        return ResolveError(f"registry {self.host!r}: unexpected {status} while pushing {what} to {repository!r}",
                            hint="check that the target is a working OCI distribution registry that accepts pushes")

    def has_blob(self, repository: str, digest: Digest) -> bool:
        """Whether the registry already has blob ``digest`` in ``repository``."""
        what = f"blob {digest}"
        reply = self._call(repository, "HEAD", self._url(repository, f"/blobs/{digest}"), what=what)
        if reply.status in (200, 404):
            return reply.status == 200
        raise self._refused(repository, reply, what=what)

    def has_manifest(self, repository: str, reference: str, *, accept: str) -> bool:
        """Whether the registry has a manifest under ``reference`` (tag or digest) in ``repository``."""
        what = f"manifest {reference}"
        reply = self._call(repository, "HEAD", self._url(repository, f"/manifests/{reference}"), what=what,
                           accept=accept)
        if reply.status in (200, 404):
            return reply.status == 200
        raise self._refused(repository, reply, what=what)

    def push_blob(self, repository: str, data: bytes, digest: Digest) -> None:
        """Upload ``data`` as blob ``digest`` (checked to be its sha256 first)."""
        actual = sha256(data)
        if actual != digest:
            raise TamperingError(f"blob {digest} for {self.host}/{repository} hashes to {actual}; not pushed",
                                 hint="the source of these bytes is corrupt: do not use it")
        what = f"blob {digest}"
        start = self._call(repository, "POST", self._url(repository, "/blobs/uploads/"), what=what, content=b"")
        location = start.headers.get("location")
        if start.status != 202 or not location:
            raise self._refused(repository, start, what=what)
        url = httpx.URL(self.endpoint.base).join(location)
        url = url.copy_merge_params({"digest": digest})
        if (url.scheme, url.host, url.port) != (httpx.URL(self.endpoint.base).scheme,
                                                httpx.URL(self.endpoint.base).host,
                                                httpx.URL(self.endpoint.base).port):
            raise ResolveError(f"registry {self.host!r} sent the upload of {what} to another host; refused",
                               hint="uploads stay on the registry that was asked; check the target")
        done = self._call(repository, "PUT", str(url), what=what, content=data,
                          content_type="application/octet-stream")
        if done.status != 201:
            raise self._refused(repository, done, what=what)
        claimed = done.headers.get("docker-content-digest")
        if claimed is not None and claimed.strip() != digest:
            raise TamperingError(f"registry {self.host!r} stored blob {digest} of {repository!r} as {claimed.strip()}",
                                 hint="the registry or a proxy in between alters uploads: do not use it")

    def push_manifest(self, repository: str, reference: str, body: bytes, media_type: str) -> Digest:
        """``PUT`` ``body`` under ``reference`` (a tag, or its own digest); the registry must agree on its digest."""
        digest = sha256(body)
        if reference.startswith("sha256:") and reference != digest:
            raise TamperingError(f"manifest {reference} for {self.host}/{repository} hashes to {digest}; not pushed",
                                 hint="the source of these bytes is corrupt: do not use it")
        what = f"manifest {reference}"
        reply = self._call(repository, "PUT", self._url(repository, f"/manifests/{reference}"), what=what,
                           content=body, content_type=media_type)
        if reply.status not in (200, 201):
            raise self._refused(repository, reply, what=what)
        claimed = reply.headers.get("docker-content-digest")
        if claimed is not None and claimed.strip() != digest:
            raise TamperingError(
                f"registry {self.host!r} stored manifest {reference} of {repository!r} as {claimed.strip()}, "
                f"not {digest}", hint="the registry rewrote the manifest: its digest would not match the lock")
        return digest
