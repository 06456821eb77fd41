"""The OCI distribution client: image references to digests, manifests, tags and blobs.

Contract of :class:`RegistryClient` (a :class:`~pipeline.registry.interface.Resolver`):

- input: :class:`~pipeline.vocabulary.reference.ImageRef` (canonical upstream name as written); a
  :class:`~pipeline.registry_config.RegistryConfig` (mirrors, insecure hosts) and optionally a
  :class:`~pipeline.registry.auth.DockerConfig` with credentials;
- where it asks: the mirrors of the image's registry that have the needed capability
  (``resolve`` for a tag, ``pull`` for a digest), in order, then the upstream (``docker.io`` is
  served by ``registry-1.docker.io``). HTTPS, except loopback hosts and ``insecure`` ones;
- ``resolve`` of a tag, at each endpoint:

  1. HEAD ``/v2/<name>/manifests/<tag>`` with the full Accept list (OCI index, OCI manifest,
     Docker manifest list, Docker v2 manifest: distribution 2.8 answers 404 otherwise);
  2. GET the manifest by the digest the HEAD announced (by tag when the HEAD gave no digest),
     unless the client already holds those bytes (manifests by digest are immutable: a cache of
     verified bytes, by sha256, re-hashed when read);
  3. hash the bytes received: they must equal the digest asked for and the
     ``Docker-Content-Digest`` header, else the fetch is retried and, when the registry keeps
     lying, refused (:class:`~pipeline.registry.interface.TamperingError`);
  4. for an index, GET each platform manifest by digest (same checks, plus the descriptor's size)
     (or take it from the cache) and read its config digest; attestation entries
     (``unknown/unknown``) are recorded apart;

  a reference with a digest is fetched by digest (the tag is then only a label) and checked the
  same way. The record keeps ``ref`` as written and names the host that answered in ``served_by``;
- ``tags`` (all pages, following ``Link: <…>; rel="next"`` on the same host), ``manifest_exists``
  (HEAD), ``fetch_manifest`` and ``fetch_blob`` (verified against their digests);
- authentication: bearer tokens and basic auth (:mod:`pipeline.registry.auth`), tokens cached per
  (registry, scope) for the client's lifetime;
- deadlines: every request ends within the transport's deadline (``registries.requestDeadline``)
  and all requests for one image (``resolve``, ``fetch_manifest``, ``manifest_exists``, ``tags``:
  HEAD, GETs, tokens, retries, every endpoint tried) within ``image_deadline`` seconds
  (``registries.imageDeadline``, ``--registry-timeout``); the error names the registry and the deadline;
- faults: the shared :class:`~pipeline.registry.transport.Transport` retries timeouts, resets, 5xx
  and 429; when it gives up, a :class:`~pipeline.errors.ResolveError` names the registry, the
  reference, the last status or exception and the number of attempts;
- errors: :class:`~pipeline.errors.ResolveError` and its subclasses; credentials never appear in
  them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable, MutableMapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from ..errors import ResolveError
from ..registry_config import Capability, Mirror, RegistryConfig
from ..vocabulary.digest import Digest, check_sha256, parse_digest, sha256
from ..vocabulary.hosts import api_host
from ..vocabulary.reference import ImageRef
from .auth import Authenticator, DockerConfig
from .interface import (
    INDEX_MEDIA_TYPES,
    MANIFEST_ACCEPT,
    MANIFEST_MEDIA_TYPES,
    OCI_INDEX,
    OCI_MANIFEST,
    NotFoundError,
    ResolvedImage,
    Resolver,
    TamperingError,
)
from .transport import HttpReply, RetryPolicy, Transport, deadline_for, redact_text

__all__ = ["MAX_MANIFEST_BYTES", "Endpoint", "Manifest", "RegistryClient"]

#: Largest manifest accepted (the OCI distribution spec tells registries to accept at least 4 MiB).
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
_MAX_TAG_PAGES = 1000
_NEXT_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')
_HASHES = {"sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512}
_TAMPER_HINT = ("the registry, a mirror or a proxy in between serves corrupted or tampered data: do not use "
                "it; retry later, and report it to the registry's owner if it persists")
_log = logging.getLogger(__name__)
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    """A place to ask for an image: the upstream registry or one of its mirrors.

    ``host`` is what ``served_by`` records (``docker.io`` for Docker Hub, a mirror's ``host:port``);
    ``base`` is ``scheme://api-host``; ``prefix`` is the mirror's repository prefix.
    """

    host: str
    base: str
    prefix: str = ""
    capabilities: frozenset[Capability] = frozenset(Capability)
    mirror: bool = False

    def name(self, repository: str) -> str:
        """The repository name on this endpoint."""
        return f"{self.prefix}/{repository}" if self.prefix else repository

    def describe(self) -> str:
        return f"mirror {self.host!r}" if self.mirror else f"registry {self.host!r}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Manifest:
    """Manifest or index bytes as served, verified: ``digest`` is sha256 of ``body``."""

    ref: ImageRef
    digest: Digest
    media_type: str
    body: bytes = field(repr=False)
    served_by: str

    def __post_init__(self) -> None:
        check_sha256(self.body, self.digest, what="Manifest.digest")

    def json(self) -> dict[str, Any]:
        data: Any = json.loads(self.body)
        if not isinstance(data, dict):
            raise TypeError("manifest is not a JSON object")
        return data


class RegistryClient(Resolver):
    """A client of OCI distribution registries, shared by the threads of a run.

    Without ``transport`` the client makes its own (with ``retry``; and closes it); without
    ``credentials`` it reads ``config.docker_config`` when set, else works anonymously. ``clock``
    (monotonic seconds) decides when cached tokens expire. Manifests fetched by digest are kept
    in ``manifest_cache`` (sha256 → bytes; a fresh dict by default, ``cache_manifests=False`` for
    none): content-addressed, re-verified when read, so a HEAD whose digest is known needs no GET.
    """

    def __init__(
        self,
        *,
        config: RegistryConfig | None = None,
        transport: Transport | None = None,
        credentials: DockerConfig | None = None,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        manifest_cache: MutableMapping[str, bytes] | None = None,
        cache_manifests: bool = True,
        image_deadline: float | None = None,
    ) -> None:
        self.config = config or RegistryConfig()
        self._owns_transport = transport is None
        self.transport = transport or Transport(error=ResolveError, retry=retry,
                                                deadline=self.config.request_deadline)
        self.image_deadline = image_deadline if image_deadline is not None else self.config.image_deadline
        if credentials is None and self.config.docker_config is not None:
            credentials = DockerConfig.load(Path(self.config.docker_config).expanduser())
        self.auth = Authenticator(transport=self.transport, credentials=credentials,
                                  insecure=self.config.insecure, clock=clock)
        self._cache: MutableMapping[str, bytes] | None = (
            (manifest_cache if manifest_cache is not None else {}) if cache_manifests else None)
        self._cache_lock = threading.Lock()

    def close(self) -> None:
        if self._owns_transport:
            self.transport.close()

    # ---- endpoints -----------------------------------------------------------------------------

    def endpoints(self, ref: ImageRef, capability: Capability) -> tuple[Endpoint, ...]:
        """Where to ask for ``ref``, in order: capable mirrors, then the upstream (unless skipped)."""
        mirrors = self.config.mirrors_of(ref.registry)
        out = [self._mirror_endpoint(m) for m in mirrors.endpoints if m.can(capability)]
        if not mirrors.skip_upstream:
            api = api_host(ref.registry)
            scheme = "http" if self.config.plain_http(ref.registry) else "https"
            out.append(Endpoint(host=ref.registry, base=f"{scheme}://{api}"))
        if not out:
            raise ResolveError(
                f"cannot look up {str(ref)!r}: no mirror of registry {ref.registry!r} may {capability.value} "
                "and the upstream is skipped",
                hint=f"give a mirror of {ref.registry!r} the {capability.value!r} capability, or set "
                "skipUpstream: false",
            )
        return tuple(out)

    @staticmethod
    def _mirror_endpoint(mirror: Mirror) -> Endpoint:
        return Endpoint(host=mirror.host, base=f"{mirror.scheme}://{mirror.host}", prefix=mirror.prefix,
                        capabilities=mirror.capabilities, mirror=True)

    def _first_answer(self, ref: ImageRef, capability: Capability, attempt: Callable[[Endpoint], _T]) -> _T:
        """``attempt`` at each endpoint in order; mirror failures (except tampering) fall through."""
        endpoints = self.endpoints(ref, capability)
        skipped: list[str] = []
        for index, endpoint in enumerate(endpoints):
            last = index == len(endpoints) - 1
            try:
                return attempt(endpoint)
            except TamperingError:
                raise
            except ResolveError as exc:
                if last or not endpoint.mirror:
                    if skipped:
                        note = f" (mirrors tried first: {'; '.join(skipped)})"
                        raise type(exc)(exc.message + note, hint=exc.hint) from exc
                    raise
                reason = "does not have it" if isinstance(exc, NotFoundError) else "failed"
                _log.info("%s: mirror %s %s, trying the next endpoint: %s", ref, endpoint.host, reason, exc)
                skipped.append(f"{endpoint.host} {reason}")
        raise AssertionError("unreachable")  # pragma: no cover

    # ---- public API ----------------------------------------------------------------------------

    def _image_deadline(self, ref: ImageRef) -> AbstractContextManager[None]:
        return deadline_for(
            self.image_deadline, what=f"image {str(ref)!r}",
            hint="raise it with --registry-timeout SECONDS or registries.imageDeadline in pipeline.yaml "
            "if the registry is merely slow")

    def resolve(self, ref: ImageRef) -> ResolvedImage:
        """Resolve ``ref`` to digests (see the module docstring for the steps)."""
        capability = Capability.PULL if ref.digest is not None else Capability.RESOLVE
        with self._image_deadline(ref):
            return self._first_answer(ref, capability, lambda ep: self._resolve_at(ep, ref))

    def fetch_manifest(self, ref: ImageRef) -> Manifest:
        """The manifest or index of ``ref`` (by digest when it has one), verified."""
        capability = Capability.PULL if ref.digest is not None else Capability.RESOLVE
        with self._image_deadline(ref):
            return self._first_answer(ref, capability, lambda ep: self._manifest_at(ep, ref))

    def manifest_exists(self, ref: ImageRef) -> bool:
        """Whether some endpoint has ``ref``'s manifest (HEAD); ``False`` when all answer 404."""
        capability = Capability.PULL if ref.digest is not None else Capability.RESOLVE
        try:
            with self._image_deadline(ref):
                return self._first_answer(ref, capability, lambda ep: self._exists_at(ep, ref))
        except NotFoundError:
            return False

    def fetch_blob(self, ref: ImageRef, digest: str, *, max_bytes: int | None = None,
                   size: int | None = None) -> bytes:
        """The blob ``digest`` of ``ref``'s repository, verified against the digest (and ``size``)."""
        wanted = _parse_digest(digest, ref)
        return self._first_answer(ref, Capability.PULL,
                                  lambda ep: self._blob_at(ep, ref, wanted, max_bytes=max_bytes, size=size))

    def referrers(self, ref: ImageRef, digest: str) -> tuple[dict[str, Any], ...] | None:
        """The descriptors of ``GET /v2/<name>/referrers/<digest>`` (OCI distribution 1.1) at the
        first endpoint that has the API, all pages; ``None`` when every endpoint answers 404 (no
        referrers API, as in distribution 2.8: then look for the ``sha256-<hex>`` tag instead)."""
        wanted = _parse_digest(digest, ref)
        for ep in self.endpoints(ref, Capability.PULL):
            found = self._referrers_at(ep, ref, wanted)
            if found is not None:
                return found
        return None

    def tags(self, ref: ImageRef) -> tuple[str, ...]:
        """Every tag of ``ref``'s repository (tag and digest of ``ref`` ignored), sorted."""
        with self._image_deadline(ref):
            return self._first_answer(ref, Capability.RESOLVE, lambda ep: self._tags_at(ep, ref))

    # ---- one endpoint --------------------------------------------------------------------------

    def _resolve_at(self, ep: Endpoint, ref: ImageRef) -> ResolvedImage:
        manifest = self._manifest_at(ep, ref)
        data = _json_object(manifest.body, ep, ref)
        platforms: dict[str, Digest] = {}
        configs: dict[str, Digest] = {}
        attestations: dict[str, str] = {}
        if manifest.media_type in INDEX_MEDIA_TYPES:
            for entry in _index_entries(data, ep, ref):
                if entry.attestation:
                    attestations[entry.digest] = entry.describes
                    continue
                platforms[entry.platform] = entry.digest
                if entry.media_type in MANIFEST_MEDIA_TYPES:
                    child = self._by_digest(ep, ref, entry.digest, size=entry.size,
                                            what=f"{entry.platform} manifest of {str(ref)!r}")
                    configs[entry.platform] = _config_digest(_json_object(child, ep, ref), ep, ref)
        else:
            configs[""] = _config_digest(data, ep, ref)
        return ResolvedImage(
            ref=ref, digest=manifest.digest, media_type=manifest.media_type, size=len(manifest.body),
            platforms=dict(sorted(platforms.items())), configs=dict(sorted(configs.items())),
            attestations=dict(sorted(attestations.items())), served_by=ep.host,
        )

    def _manifest_at(self, ep: Endpoint, ref: ImageRef) -> Manifest:
        shown = str(ref)
        if ref.digest is not None:  # always asked (never from the cache): served_by must be true
            reply = self._get_manifest(ep, ref, _parse_digest(ref.digest, ref), what=f"manifest of {shown!r}")
            self._remember(reply.body)
            return Manifest(ref=ref, digest=sha256(reply.body), media_type=_media_type(reply, ep, ref),
                            body=reply.body, served_by=ep.host)
        tag = ref.tag or "latest"
        what = f"manifest of {shown!r}"
        head = self._call(ep, ref, "HEAD", f"/manifests/{tag}", what=what, accept=MANIFEST_ACCEPT)
        announced: Digest | None = None
        if head.status == 200:
            announced = _header_digest(head)
        elif head.status == 404:
            raise self._not_found(ep, ref, head, what=what)
        elif head.status in (401, 403) or _gave_up(head):
            raise self._status_error(ep, ref, head, what=what)
        if announced is None:  # no digest from HEAD (or HEAD not supported): GET by tag, hash ourselves
            _log.debug("%s: HEAD at %s gave no digest (HTTP %d); GET by tag", shown, ep.host, head.status)
            reply = self._get_manifest(ep, ref, tag, what=what)
            self._remember(reply.body)
            return Manifest(ref=ref, digest=sha256(reply.body), media_type=_media_type(reply, ep, ref),
                            body=reply.body, served_by=ep.host)
        try:
            body = self._by_digest(ep, ref, announced, what=what)
        except NotFoundError as exc:  # the digest HEAD announced is not served: compare with the tag's bytes
            reply = self._get_manifest(ep, ref, tag, what=what)
            actual = sha256(reply.body)
            if actual != announced:
                raise TamperingError(
                    f"{ep.describe()} announced {announced} for {shown!r} (Docker-Content-Digest of HEAD), but "
                    f"the manifest it serves for that tag hashes to {actual}; refused as tampering",
                    hint=_TAMPER_HINT,
                ) from exc
            raise
        return Manifest(ref=ref, digest=sha256(body), media_type=_media_type_of(body, "", ep, ref), body=body,
                        served_by=ep.host)

    def _by_digest(self, ep: Endpoint, ref: ImageRef, digest: Digest, *, what: str, size: int | None = None) -> bytes:
        """Manifest bytes by digest: from the content-addressed cache, else GET (verified) and cached."""
        cached = self._recall(digest)
        if cached is not None and (size is None or len(cached) == size):
            return cached
        reply = self._get_manifest(ep, ref, digest, what=what, size=size)
        _media_type(reply, ep, ref)  # refuse what is not a manifest before it is cached
        self._remember(reply.body)
        return reply.body

    def _recall(self, digest: str) -> bytes | None:
        if self._cache is None:
            return None
        with self._cache_lock:
            body = self._cache.get(digest)
        if body is None:
            return None
        if sha256(body) != digest:  # a persistent cache that rotted: never trust it
            with self._cache_lock:
                self._cache.pop(digest, None)
            return None
        return body

    def _remember(self, body: bytes) -> None:
        if self._cache is not None:
            with self._cache_lock:
                self._cache[sha256(body)] = body

    def _get_manifest(self, ep: Endpoint, ref: ImageRef, reference: str, *, what: str,
                      size: int | None = None) -> HttpReply:
        """GET a manifest by tag or digest; verify the bytes, retrying a lying answer, then refuse it."""
        return self._get_verified(ep, ref, f"/manifests/{reference}", what=what, accept=MANIFEST_ACCEPT,
                                  max_bytes=MAX_MANIFEST_BYTES, size=size,
                                  expected=reference if ":" in reference else None, header=True,
                                  served=f"a {what} whose bytes do not match the digest")

    def _get_verified(self, ep: Endpoint, ref: ImageRef, path: str, *, what: str, accept: str | None,
                      max_bytes: int | None, size: int | None, expected: str | None, header: bool,
                      served: str) -> HttpReply:
        """GET ``path`` and hash the bytes; a lying answer is retried, then refused as tampering."""
        attempts = self.transport.retry.attempts
        problem = ""
        for attempt in range(1, attempts + 1):
            reply = self._call(ep, ref, "GET", path, what=what, accept=accept, max_bytes=max_bytes)
            if reply.status != 200:
                if reply.status == 404:
                    raise self._not_found(ep, ref, reply, what=what)
                raise self._status_error(ep, ref, reply, what=what)
            problem = _digest_problem(reply, expected=expected, size=size, header=header)
            if not problem:
                return reply
            _log.warning("%s at %s: %s (attempt %d/%d)", what, reply.url, problem, attempt, attempts)
            if attempt < attempts:
                self.transport.pause(attempt)
        raise TamperingError(
            f"{ep.describe()} served {served}: {problem} "
            f"(in each of {attempts} attempts); refused as tampering",
            hint=_TAMPER_HINT,
        )

    def _exists_at(self, ep: Endpoint, ref: ImageRef) -> bool:
        reference = ref.digest or ref.tag or "latest"
        what = f"manifest of {str(ref)!r}"
        head = self._call(ep, ref, "HEAD", f"/manifests/{reference}", what=what, accept=MANIFEST_ACCEPT)
        if head.status == 200:
            return True
        if head.status == 404:
            raise self._not_found(ep, ref, head, what=what)
        raise self._status_error(ep, ref, head, what=what)

    def _blob_at(self, ep: Endpoint, ref: ImageRef, digest: Digest, *, max_bytes: int | None,
                 size: int | None) -> bytes:
        what = f"blob {digest} of {ref.name!r}"
        return self._get_verified(ep, ref, f"/blobs/{digest}", what=what, accept=None, max_bytes=max_bytes,
                                  size=size, expected=digest, header=False,
                                  served=f"{what} with bytes that do not match the digest").body

    def _referrers_at(self, ep: Endpoint, ref: ImageRef, digest: Digest) -> tuple[dict[str, Any], ...] | None:
        what = f"referrers of {ref.name}@{digest}"
        start = httpx.URL(f"{ep.base}/v2/{ep.name(ref.repository)}/referrers/{digest}")
        url = start
        out: list[dict[str, Any]] = []
        for _ in range(_MAX_TAG_PAGES):
            reply = self.call_url(ep, ref, "GET", str(url), what=what, accept=OCI_INDEX, max_bytes=MAX_MANIFEST_BYTES)
            if reply.status == 404:
                return None if not out else tuple(out)
            if reply.status != 200:
                raise self._status_error(ep, ref, reply, what=what)
            data = _json_object(reply.body, ep, ref)
            manifests = data.get("manifests") or []
            if not isinstance(manifests, list) or not all(isinstance(m, dict) for m in manifests):
                raise ResolveError(f"{ep.describe()}: the answer for {what} is not an OCI index",
                                   hint="the registry's referrers API is broken; report it to its owner")
            out.extend(manifests)
            link = _NEXT_LINK.search(reply.headers.get("link", ""))
            if link is None:
                return tuple(out)
            url = url.join(link.group(1))
            if (url.scheme, url.netloc) != (start.scheme, start.netloc):
                raise ResolveError(f"{ep.describe()}: the next page of {what} is on another host",
                                   hint="the registry's paging is broken; report it to its owner")
        raise ResolveError(f"{ep.describe()}: more than {_MAX_TAG_PAGES} pages of {what}",
                           hint="the registry's paging loops; report it to its owner")

    def _tags_at(self, ep: Endpoint, ref: ImageRef) -> tuple[str, ...]:
        name = ep.name(ref.repository)
        what = f"tags of {ref.name!r}"
        start = httpx.URL(f"{ep.base}/v2/{name}/tags/list")
        url = start
        tags: set[str] = set()
        for _ in range(_MAX_TAG_PAGES):
            reply = self.call_url(ep, ref, "GET", str(url), what=what, max_bytes=MAX_MANIFEST_BYTES * 4)
            if reply.status == 404:
                raise self._not_found(ep, ref, reply, what=what)
            if reply.status != 200:
                raise self._status_error(ep, ref, reply, what=what)
            try:
                data: Any = json.loads(reply.body)
            except ValueError:
                data = None
            page = data.get("tags") if isinstance(data, dict) else None
            if page is not None and not isinstance(page, list):
                page = None
            if page is None and not (isinstance(data, dict) and "tags" in data):
                raise ResolveError(f"{ep.describe()}: {what}: the answer is not a tag list",
                                   hint="the server is not an OCI distribution registry")
            tags.update(t for t in page or () if isinstance(t, str))
            link = _NEXT_LINK.search(reply.headers.get("link", ""))
            if link is None:
                return tuple(sorted(tags))
            url = url.join(link.group(1))
            if (url.scheme, url.netloc) != (start.scheme, start.netloc) or not url.path.startswith(start.path):
                raise ResolveError(f"{ep.describe()}: {what}: the next page link leaves the tag list",
                                   hint="the registry's paging is broken; report it to its owner")
        raise ResolveError(f"{ep.describe()}: {what}: more than {_MAX_TAG_PAGES} pages",
                           hint="the registry's paging loops; report it to its owner")

    # ---- HTTP with authentication --------------------------------------------------------------

    def _call(self, ep: Endpoint, ref: ImageRef, method: str, suffix: str, *, what: str,
              accept: str | None = None, max_bytes: int | None = None) -> HttpReply:
        url = f"{ep.base}/v2/{ep.name(ref.repository)}{suffix}"
        return self.call_url(ep, ref, method, url, what=what, accept=accept, max_bytes=max_bytes)

    def call_url(self, ep: Endpoint, ref: ImageRef, method: str, url: str, *, what: str,
                  accept: str | None = None, max_bytes: int | None = None, actions: str = "pull",
                  content: bytes | None = None, content_type: str | None = None) -> HttpReply:
        """``method`` ``url`` (an API URL of ``ep``) with cached credentials; on a 401 challenge,
        authenticate once and retry. Public for API calls this client does not wrap (referrers,
        and the uploads of :class:`~pipeline.registry.push.Pusher`: ``actions="pull,push"`` asks
        for a token that may push, ``content`` is the request body)."""
        scope = f"repository:{ep.name(ref.repository)}:{actions}"
        headers = {"Accept": accept} if accept else {}
        if content_type is not None:
            headers["Content-Type"] = content_type
        sent = self.auth.authorization(ep.host, scope)
        if sent is not None:
            headers["Authorization"] = sent
        reply = self.transport.request(method, url, what=f"{what} at {ep.describe()}", headers=headers,
                                       max_bytes=max_bytes, error=ResolveError, content=content)
        challenge = reply.headers.get("www-authenticate")
        if reply.status != 401 or not challenge:
            return reply
        answer = self.auth.authenticate(ep.host, scope, challenge, rejected=sent, what=what, base=ep.base)
        if answer is None or answer == sent:
            return reply
        headers["Authorization"] = answer
        return self.transport.request(method, url, what=f"{what} at {ep.describe()}", headers=headers,
                                      max_bytes=max_bytes, error=ResolveError, content=content)

    # ---- errors --------------------------------------------------------------------------------

    def _not_found(self, ep: Endpoint, ref: ImageRef, reply: HttpReply, *, what: str) -> NotFoundError:
        detail = _registry_error(reply)
        return NotFoundError(
            f"{ep.describe()} has no {what} (HTTP 404{': ' + detail if detail else ''})",
            hint="check the image name and tag; if a mirror should have it, sync the mirror",
        )

    def _status_error(self, ep: Endpoint, ref: ImageRef, reply: HttpReply, *, what: str) -> ResolveError:
        detail = _registry_error(reply)
        status = f"HTTP {reply.status}{': ' + detail if detail else ''}"
        if reply.status in (401, 403):
            creds = self.auth.credentials_for(ep.host)
            if creds is not None:
                source = self.auth_source()
                return ResolveError(
                    f"{ep.describe()} refused access to {what} for user {creds.username!r} ({status})",
                    hint=f"check the credentials stored for {ep.host!r} in {source} and that the user may "
                    "pull this repository",
                )
            return ResolveError(f"{ep.describe()} refused anonymous access to {what} ({status})",
                                hint=self.auth.missing_credentials_hint(ep.host))
        if _gave_up(reply):
            return ResolveError(
                f"{ep.describe()} kept failing for {what}: last answer {status} from {reply.url} "
                f"(gave up after {reply.attempts} attempts)",
                hint="the registry is overloaded or down: retry later, or serve the image from a mirror",
            )
        return ResolveError(f"{ep.describe()}: unexpected {status} for {what} from {reply.url}",
                            hint="the server is not a working OCI distribution registry; check the host")

    def auth_source(self) -> str:
        """Where the credentials came from, for hints."""
        return self.auth.config_path or "the Docker config"


# ---- helpers -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class _Entry:
    digest: Digest
    media_type: str
    size: int | None
    platform: str
    attestation: bool
    describes: str


def _gave_up(reply: HttpReply) -> bool:
    return reply.status == 429 or reply.status >= 500


def _header_digest(reply: HttpReply) -> Digest | None:
    value = reply.headers.get("docker-content-digest")
    if value is None:
        return None
    try:
        return parse_digest(value.strip())
    except ValueError:
        return None


def _parse_digest(text: str, ref: ImageRef) -> Digest:
    try:
        digest = parse_digest(text)
    except ValueError as exc:
        raise ResolveError(f"{str(ref)!r}: {exc}", hint="write the digest as sha256:<64 hex>") from exc
    if digest.split(":", 1)[0] not in _HASHES:
        raise ResolveError(f"{str(ref)!r}: digest algorithm of {digest!r} is not supported",
                           hint="use a sha256 digest")
    return digest


def _hash(data: bytes, algorithm: str) -> str:
    return f"{algorithm}:{_HASHES[algorithm](data).hexdigest()}"


def _digest_problem(reply: HttpReply, *, expected: str | None, size: int | None, header: bool = True) -> str:
    """Why ``reply``'s bytes are not the ones claimed (``''`` when they are)."""
    problems = []
    if expected is not None:
        algorithm = expected.split(":", 1)[0]
        actual = _hash(reply.body, algorithm) if algorithm in _HASHES else ""
        if actual != expected:
            problems.append(f"asked for {expected}, received bytes hash to {actual or sha256(reply.body)}")
    claimed = _header_digest(reply) if header else None
    if claimed is not None and claimed.split(":", 1)[0] in _HASHES:
        actual = _hash(reply.body, claimed.split(":", 1)[0])
        if actual != claimed and not problems:
            problems.append(f"Docker-Content-Digest says {claimed}, received bytes hash to {actual}")
    if size is not None and len(reply.body) != size:
        problems.append(f"expected {size} bytes, received {len(reply.body)}")
    return "; ".join(problems)


def _registry_error(reply: HttpReply) -> str:
    """``CODE: message`` of a distribution error body, or ``''``."""
    try:
        data: Any = json.loads(reply.body) if reply.body else None
    except ValueError:
        return ""
    errors = data.get("errors") if isinstance(data, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        code, message = errors[0].get("code"), errors[0].get("message")
        text = ": ".join(str(x) for x in (code, message) if isinstance(x, str) and x)
        return redact_text(text)[:200]
    return ""


def _json_object(body: bytes, ep: Endpoint, ref: ImageRef) -> dict[str, Any]:
    try:
        data: Any = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise ResolveError(f"{ep.describe()} served a manifest of {str(ref)!r} that is not a JSON object",
                           hint="the server is not a working OCI distribution registry")
    return data


def _media_type(reply: HttpReply, ep: Endpoint, ref: ImageRef) -> str:
    return _media_type_of(reply.body, reply.headers.get("content-type", ""), ep, ref)


def _media_type_of(body: bytes, content_type: str, ep: Endpoint, ref: ImageRef) -> str:
    """The manifest's own ``mediaType``, else the ``Content-Type`` header, else what its shape says."""
    data = _json_object(body, ep, ref)
    declared = data.get("mediaType")
    header = content_type.split(";", 1)[0].strip()
    if isinstance(declared, str) and declared:
        media_type = declared
    elif header in INDEX_MEDIA_TYPES | MANIFEST_MEDIA_TYPES:
        media_type = header
    elif "manifests" in data:
        media_type = OCI_INDEX
    else:
        media_type = OCI_MANIFEST
    if media_type not in INDEX_MEDIA_TYPES | MANIFEST_MEDIA_TYPES:
        raise ResolveError(
            f"{ep.describe()} served {str(ref)!r} as {media_type!r}, which is not an image manifest or index",
            hint="only OCI and Docker v2 manifests and indexes are supported (Docker schema 1 is obsolete)",
        )
    return media_type


def _index_entries(data: dict[str, Any], ep: Endpoint, ref: ImageRef) -> list[_Entry]:
    manifests = data.get("manifests")
    bad = f"{ep.describe()} served an index for {str(ref)!r} with a malformed 'manifests' list"
    if not isinstance(manifests, list):
        raise ResolveError(bad, hint="the index is broken upstream")
    entries: list[_Entry] = []
    seen: set[str] = set()
    for item in manifests:
        if not isinstance(item, dict):
            raise ResolveError(bad, hint="the index is broken upstream")
        try:
            digest = parse_digest(str(item.get("digest")))
        except ValueError as exc:
            raise ResolveError(f"{bad}: {exc}", hint="the index is broken upstream") from exc
        size = item.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            size = None
        media_type = str(item.get("mediaType") or "")
        raw_annotations = item.get("annotations")
        annotations: dict[str, Any] = raw_annotations if isinstance(raw_annotations, dict) else {}
        platform: dict[str, Any] | None = item.get("platform") if isinstance(item.get("platform"), dict) else None
        os_name = str(platform.get("os", "")) if platform is not None else ""
        arch = str(platform.get("architecture", "")) if platform is not None else ""
        attestation = (
            platform is None or (os_name, arch) == ("unknown", "unknown") or not os_name or not arch
            or annotations.get("vnd.docker.reference.type") == "attestation-manifest"
        )
        if attestation:
            describes = annotations.get("vnd.docker.reference.digest", "")
            entries.append(_Entry(digest=digest, media_type=media_type, size=size, platform="",
                                  attestation=True, describes=describes if isinstance(describes, str) else ""))
            continue
        assert platform is not None
        key = f"{os_name}/{arch}"
        variant = platform.get("variant")
        if isinstance(variant, str) and variant:
            key += f"/{variant}"
        key = key.lower()
        if key in seen:
            os_version = platform.get("os.version")
            if isinstance(os_version, str) and os_version and f"{key} ({os_version})" not in seen:
                key = f"{key} ({os_version})"
            else:
                raise ResolveError(f"{ep.describe()} served an index for {str(ref)!r} that lists platform "
                                   f"{key!r} twice", hint="the index is ambiguous; report it upstream")
        seen.add(key)
        entries.append(_Entry(digest=digest, media_type=media_type, size=size, platform=key,
                              attestation=False, describes=""))
    return entries


def _config_digest(manifest: dict[str, Any], ep: Endpoint, ref: ImageRef) -> Digest:
    config = manifest.get("config")
    digest = config.get("digest") if isinstance(config, dict) else None
    try:
        return parse_digest(str(digest))
    except ValueError as exc:
        raise ResolveError(f"{ep.describe()} served a manifest of {str(ref)!r} without a valid config digest",
                           hint="the manifest is broken upstream") from exc
