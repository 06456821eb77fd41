"""The :class:`~pipeline.provenance.interface.ArtifactSource` over the project's registry client.

Manifests and blobs go through :class:`~pipeline.registry.RegistryClient` (mirrors, plain HTTP for
loopback and ``insecure`` hosts, bearer and basic auth, retries, and bytes verified against their
digests). The referrers API is one more GET the client does not offer yet: it is made here with
the client's authenticated call, at each endpoint in order, following ``Link: rel="next"`` pages.
This is the only module of the package that touches the network.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

from ..errors import ResolveError
from ..registry import Capability, NotFoundError, RegistryClient, TamperingError
from ..vocabulary.digest import Digest
from ..vocabulary.media_types import OCI_INDEX
from ..vocabulary.reference import ImageRef
from .interface import ArtifactMissing, ArtifactSource, ArtifactTampered, Descriptor, RawManifest

__all__ = ["RegistryArtifactSource"]

_MAX_PAGES = 100
_MAX_INDEX_BYTES = 4 * 1024 * 1024
_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


class RegistryArtifactSource(ArtifactSource):
    """Signature artifacts read through ``client`` (the caller owns and closes the client)."""

    def __init__(self, client: RegistryClient) -> None:
        self.client = client

    def referrers(self, repository: ImageRef, digest: Digest) -> tuple[Descriptor, ...] | None:
        ref = repository.with_digest(digest)
        for endpoint in self.client.endpoints(ref, Capability.PULL):
            found = self._referrers_at(endpoint, ref, digest)
            if found is not None:
                return found
        return None

    def _referrers_at(self, endpoint: Any, ref: ImageRef, digest: Digest) -> tuple[Descriptor, ...] | None:
        what = f"referrers of {str(ref)!r}"
        url = f"{endpoint.base}/v2/{endpoint.name(ref.repository)}/referrers/{digest}"
        out: list[Descriptor] = []
        for _ in range(_MAX_PAGES):
            # The client's authenticated call (bearer/basic challenge, retries): see the module docstring.
            reply = self.client.call_url(endpoint, ref, "GET", url, what=what, accept=OCI_INDEX,
                                          max_bytes=_MAX_INDEX_BYTES)
            if reply.status == 404:
                return None if not out else tuple(out)
            if reply.status != 200:
                raise ResolveError(f"{endpoint.describe()}: HTTP {reply.status} for {what}",
                                   hint="check that the registry is up and allows pulling this repository")
            try:
                data: Any = json.loads(reply.body)
                out.extend(Descriptor.from_json(d) for d in data.get("manifests") or ())
            except (ValueError, AttributeError, TypeError) as exc:
                raise ResolveError(f"{endpoint.describe()}: the answer for {what} is not an OCI index ({exc})",
                                   hint="the registry's referrers API is broken; report it to its owner") from exc
            link = _NEXT.search(reply.headers.get("link", ""))
            if link is None:
                return tuple(out)
            following = httpx.URL(url).join(link.group(1))
            if following.netloc != httpx.URL(url).netloc:
                raise ResolveError(f"{endpoint.describe()}: the next page of {what} is on another host",
                                   hint="the registry's paging is broken; report it to its owner")
            url = str(following)
        raise ResolveError(f"{endpoint.describe()}: more than {_MAX_PAGES} pages of {what}",
                           hint="the registry's paging loops; report it to its owner")

    def manifest(self, repository: ImageRef, reference: str) -> RawManifest | None:
        if reference.startswith("sha256:"):
            ref = repository.with_digest(reference)
        else:
            ref = ImageRef(registry=repository.registry, repository=repository.repository, tag=reference)
        try:
            found = self.client.fetch_manifest(ref)
        except NotFoundError:
            return None
        except TamperingError as exc:
            raise ArtifactTampered(exc.message, hint=exc.hint) from exc
        return RawManifest(digest=found.digest, media_type=found.media_type, body=found.body)

    def blob(self, repository: ImageRef, digest: Digest, *, size: int | None = None) -> bytes:
        try:
            return self.client.fetch_blob(repository, digest, size=size)
        except NotFoundError as exc:
            raise ArtifactMissing(exc.message, hint=exc.hint) from exc
        except TamperingError as exc:
            raise ArtifactTampered(exc.message, hint=exc.hint) from exc
