"""Sign images in a real registry the way cosign lays signatures out, with keys the tests generate.

No cosign binary exists here (see ../shared/notes/toolchain-facts.md §6), so this module does
what ``cosign sign --key`` / ``cosign attest --key`` write, byte for byte in structure:

- :func:`simple_signing_payload`: cosign's payload, compact JSON in Go's struct field order;
- :func:`push_signature`: a manifest whose layer is the payload (media type
  ``application/vnd.dev.cosign.simplesigning.v1+json``) with the base64 signature in the
  ``dev.cosignproject.cosign/signature`` annotation, pushed as tag ``sha256-<hex>.sig`` (cosign's
  default), as an OCI 1.1 referrer (``subject`` + ``artifactType``) listed under the referrers
  tag schema ``sha256-<hex>``, or as a referrer announced to a :class:`FakeReferrersGate`;
- :func:`push_attestation`: an in-toto statement in a DSSE envelope (``.att`` tag);
- :func:`push_bundle`: a Sigstore bundle as an OCI 1.1 referrer (cosign v3's layout).

:class:`FakeReferrersGate` stands in front of the real registry and answers the referrers API
(``GET /v2/<name>/referrers/<digest>``), which distribution 2.8 lacks, from the referrers the test
announced; every other request goes to the real registry. It is a fake because no registry with
the referrers API can run here; it implements the API's response format (an OCI index).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from pipeline._closing import Closing
from pipeline.provenance.verify import DSSE_ENVELOPE, SIGSTORE_BUNDLE, SIMPLE_SIGNING
from tests.servers import LoopbackServer, QuietHandler, Registry, Served, serve_in_thread

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
COSIGN_SIG_ARTIFACT = "application/vnd.dev.cosign.artifact.sig.v1+json"
IN_TOTO = "application/vnd.in-toto+json"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _compact(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


# ------------------------------------------------------------------------------------------------
# keys


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A signing key the test generated, and its public half as PEM (what provenance.yaml holds)."""

    kind: str
    private: Any = field(repr=False)

    @property
    def public_pem(self) -> str:
        pem: bytes = self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        return pem.decode()

    def sign(self, data: bytes) -> bytes:
        """Sign as cosign does for this key type: ECDSA/SHA-256 DER, RSA PKCS#1 v1.5/SHA-256, Ed25519."""
        match self.kind:
            case "ecdsa-p256":
                signature: bytes = self.private.sign(data, ec.ECDSA(hashes.SHA256()))
            case "rsa":
                signature = self.private.sign(data, padding.PKCS1v15(), hashes.SHA256())
            case "ed25519":
                signature = self.private.sign(data)
            case _:
                raise ValueError(self.kind)
        return signature


def generate_key(kind: str) -> KeyPair:
    match kind:
        case "ecdsa-p256":
            return KeyPair(kind, ec.generate_private_key(ec.SECP256R1()))
        case "rsa":
            return KeyPair(kind, rsa.generate_private_key(public_exponent=65537, key_size=2048))
        case "ed25519":
            return KeyPair(kind, ed25519.Ed25519PrivateKey.generate())
    raise ValueError(kind)


# ------------------------------------------------------------------------------------------------
# payloads


def simple_signing_payload(repository: str, digest: str) -> bytes:
    """cosign's simple-signing payload (Go struct order: critical{identity, image, type}, optional)."""
    return _compact({
        "critical": {"identity": {"docker-reference": repository},
                     "image": {"docker-manifest-digest": digest},
                     "type": "cosign container image signature"},
        "optional": None,
    })


def statement(predicate_type: str, subjects: Mapping[str, str], predicate: Any | None = None,
              *, statement_type: str = "https://in-toto.io/Statement/v1") -> bytes:
    """An in-toto statement about ``subjects`` (name → sha256 digest)."""
    return _compact({
        "_type": statement_type,
        "subject": [{"name": name, "digest": {"sha256": digest.removeprefix("sha256:")}}
                    for name, digest in subjects.items()],
        "predicateType": predicate_type,
        "predicate": predicate if predicate is not None else {},
    })


def dsse_envelope(payload: bytes, key: KeyPair, *, payload_type: str = IN_TOTO) -> bytes:
    pae = b"DSSEv1 %d %s %d %s" % (len(payload_type), payload_type.encode(), len(payload), payload)
    return _compact({
        "payloadType": payload_type,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [{"keyid": "", "sig": base64.b64encode(key.sign(pae)).decode()}],
    })


# ------------------------------------------------------------------------------------------------
# pushing


class Pusher(Closing):
    """Blob and manifest uploads to a real registry through the distribution API."""

    def __init__(self, registry: Registry) -> None:
        self.client = httpx.Client(base_url=registry.url, timeout=10.0, trust_env=False, auth=registry.push_auth())

    def close(self) -> None:
        self.client.close()

    def blob(self, repository: str, data: bytes) -> dict[str, Any]:
        digest = sha256(data)
        if self.client.head(f"/v2/{repository}/blobs/{digest}").status_code != 200:
            started = self.client.post(f"/v2/{repository}/blobs/uploads/")
            assert started.status_code == 202, started.text
            location = started.headers["location"]
            separator = "&" if "?" in location else "?"
            done = self.client.put(f"{location}{separator}digest={digest}", content=data,
                                   headers={"Content-Type": "application/octet-stream"})
            assert done.status_code == 201, done.text
        return {"digest": digest, "size": len(data)}

    def manifest(self, repository: str, reference: str, document: Mapping[str, Any]) -> tuple[str, bytes]:
        body = _compact(document)
        media_type = str(document.get("mediaType", OCI_MANIFEST))
        response = self.client.put(f"/v2/{repository}/manifests/{reference}", content=body,
                                   headers={"Content-Type": media_type})
        assert response.status_code == 201, response.text
        assert response.headers["docker-content-digest"] == sha256(body)
        return sha256(body), body


def _config(pusher: Pusher, repository: str, layer: bytes, *, referrer: bool) -> dict[str, Any]:
    if referrer:
        return {"mediaType": OCI_EMPTY, **pusher.blob(repository, b"{}")}
    config = _compact({"architecture": "", "config": {}, "created": "0001-01-01T00:00:00Z",
                       "history": [{"created": "0001-01-01T00:00:00Z"}], "os": "",
                       "rootfs": {"type": "layers", "diff_ids": [sha256(layer)]}})
    return {"mediaType": OCI_CONFIG, **pusher.blob(repository, config)}


@dataclass(frozen=True, slots=True, kw_only=True)
class Subject:
    """The image being signed: repository (in the registry), digest, media type and size of its top manifest."""

    repository: str
    digest: str
    media_type: str
    size: int


def _push_artifact(pusher: Pusher, subject: Subject, layer: bytes, media_type: str, annotations: Mapping[str, str],
                   *, layout: str, suffix: str, artifact_type: str, gate: FakeReferrersGate | None) -> str:
    referrer = layout != "tag"
    manifest: dict[str, Any] = {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": _config(pusher, subject.repository, layer, referrer=referrer),
        "layers": [{"mediaType": media_type, **pusher.blob(subject.repository, layer),
                    "annotations": dict(annotations)}],
    }
    hexpart = subject.digest.removeprefix("sha256:")
    if not referrer:
        digest, _ = pusher.manifest(subject.repository, f"sha256-{hexpart}.{suffix}", manifest)
        return digest
    manifest["artifactType"] = artifact_type
    manifest["subject"] = {"mediaType": subject.media_type, "digest": subject.digest, "size": subject.size}
    digest = sha256(_compact(manifest))
    _, body = pusher.manifest(subject.repository, digest, manifest)
    descriptor = {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(body), "artifactType": artifact_type}
    match layout:
        case "referrers-api":
            assert gate is not None, "the referrers-api layout needs a FakeReferrersGate"
            gate.announce(subject.repository, subject.digest, descriptor)
        case "referrers-tag":
            tag = f"sha256-{hexpart}"
            index = pusher.client.get(f"/v2/{subject.repository}/manifests/{tag}", headers={"Accept": OCI_INDEX})
            manifests = index.json()["manifests"] if index.status_code == 200 else []
            pusher.manifest(subject.repository, tag, {"schemaVersion": 2, "mediaType": OCI_INDEX,
                                                      "manifests": [*manifests, descriptor]})
        case _:
            raise ValueError(layout)
    return digest


def push_signature(registry: Registry, subject: Subject, payload: bytes, signature: bytes | None, *,
                   layout: str = "tag", gate: FakeReferrersGate | None = None,
                   annotations: Mapping[str, str] | None = None) -> str:
    """Push a cosign signature of ``subject``; ``signature=None`` leaves the annotation out."""
    notes = dict(annotations or {})
    if signature is not None:
        notes["dev.cosignproject.cosign/signature"] = base64.b64encode(signature).decode()
    with Pusher(registry) as pusher:
        return _push_artifact(pusher, subject, payload, SIMPLE_SIGNING, notes, layout=layout, suffix="sig",
                              artifact_type=COSIGN_SIG_ARTIFACT, gate=gate)


def push_attestation(registry: Registry, subject: Subject, envelope: bytes, predicate_type: str, *,
                     layout: str = "tag", gate: FakeReferrersGate | None = None) -> str:
    """Push a DSSE attestation the way ``cosign attest`` does (``.att`` tag, predicateType annotation)."""
    with Pusher(registry) as pusher:
        return _push_artifact(pusher, subject, envelope, DSSE_ENVELOPE,
                              {"dev.cosignproject.cosign/signature": "", "predicateType": predicate_type},
                              layout=layout, suffix="att", artifact_type=DSSE_ENVELOPE, gate=gate)


def push_bundle(registry: Registry, subject: Subject, bundle: bytes, *, layout: str = "referrers-tag",
                gate: FakeReferrersGate | None = None) -> str:
    """Push a Sigstore bundle as an OCI 1.1 referrer (cosign v3's --new-bundle-format layout)."""
    with Pusher(registry) as pusher:
        return _push_artifact(pusher, subject, bundle, SIGSTORE_BUNDLE, {}, layout=layout, suffix="sig",
                              artifact_type=SIGSTORE_BUNDLE, gate=gate)


# ------------------------------------------------------------------------------------------------
# fake referrers API in front of the real registry


class _GateServer(LoopbackServer):
    upstream: str
    client: httpx.Client
    referrers: dict[tuple[str, str], list[dict[str, Any]]]
    requests: list[str]
    lock: threading.Lock


class _GateHandler(QuietHandler):
    server: _GateServer

    def _serve(self, method: str) -> None:
        path = urlsplit(self.path).path
        with self.server.lock:
            self.server.requests.append(f"{method} {path}")
        if "/referrers/" in path:
            name, _, digest = path.removeprefix("/v2/").partition("/referrers/")
            with self.server.lock:
                found = list(self.server.referrers.get((name, digest), []))
            body = _compact({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": found})
            self.answer(200, body, {"Content-Type": OCI_INDEX})
            return
        upstream, passed = self.forward(self.server.client, self.server.upstream)
        self.answer(upstream.status_code, upstream.content, passed, length=len(upstream.content))

    def do_GET(self) -> None:
        self._serve("GET")

    def do_HEAD(self) -> None:
        self._serve("HEAD")



@dataclass(kw_only=True)
class FakeReferrersGate(Served):
    """A loopback front of a real registry that adds the referrers API (see the module docstring)."""

    host: str
    server: _GateServer

    @property
    def requests(self) -> list[str]:
        return self.server.requests

    def announce(self, repository: str, subject: str, descriptor: Mapping[str, Any]) -> None:
        with self.server.lock:
            self.server.referrers.setdefault((repository, subject), []).append(dict(descriptor))

    def stop(self) -> None:
        super().stop()
        self.server.client.close()


def start_referrers_gate(registry: Registry) -> FakeReferrersGate:
    server = _GateServer(("127.0.0.1", 0), _GateHandler)
    server.upstream = registry.url
    server.client = httpx.Client(timeout=10.0, trust_env=False)
    server.referrers = {}
    server.requests = []
    server.lock = threading.Lock()
    thread = serve_in_thread(server, "referrers-gate")
    return FakeReferrersGate(host=f"127.0.0.1:{server.server_address[1]}", server=server, thread=thread)
