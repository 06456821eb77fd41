"""DSSE envelopes signed with an ECDSA P-256 key, and the Sigstore bundle (v0.3) that carries one.

Contract:

- :func:`pae` is the DSSE v1 pre-authentication encoding, exactly as the DSSE protocol defines it:
  ``"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body``, ``LEN`` the ASCII decimal byte length
  without leading zeros, the type UTF-8 encoded;
- :class:`KeySigner` signs ``pae(application/vnd.in-toto+json, statement)`` with ECDSA P-256 over
  SHA-256 (DER-encoded signature, base64 in the envelope), and writes two files holding the same
  signature: ``attestation.dsse.json`` (the plain DSSE JSON envelope, which in-toto tools and
  ``cosign verify-blob-attestation --signature`` read) and ``attestation.sigstore.json`` (a Sigstore
  bundle v0.3 with the envelope and a public-key hint, no transparency-log entry, which
  ``cosign verify-blob-attestation --bundle --key --insecure-ignore-tlog=true`` reads). The key id
  is the sha256 of the public key's DER ``SubjectPublicKeyInfo`` (an unauthenticated hint: never
  used to decide anything): the envelope's ``keyid``, and in the bundle the public-key ``hint``
  (its signature carries no keyid: cosign v3 skips a signature whose keyid is not its verifier's,
  which is empty for a key). ECDSA is randomised: two signatures of the same bytes differ;
- :class:`KeyVerifier` reads either file, accepts standard or URL-safe base64 (as the DSSE protocol
  requires of verifiers) and returns the payload only when one signature verifies with the key
  over the PAE of the payload type and payload, and the payload type is the in-toto one;
- errors: a private key that is not an unencrypted ECDSA P-256 PEM key, or a public key that is not
  an ECDSA P-256 PEM key, is an :class:`~pipeline.attest.interface.AttestError` (exit 2); an
  envelope that cannot be read or does not verify is an
  :class:`~pipeline.attest.interface.AttestationMismatch` (exit 1).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ..vocabulary.digest import canonical_json
from .interface import IN_TOTO_PAYLOAD_TYPE, AttestationMismatch, AttestError, Signed, Signer, Verifier

__all__ = [
    "BUNDLE_FILE",
    "BUNDLE_MEDIA_TYPE",
    "ENVELOPE_FILE",
    "Envelope",
    "KeySigner",
    "KeyVerifier",
    "key_id",
    "load_private_key",
    "load_public_key",
    "pae",
]

ENVELOPE_FILE = "attestation.dsse.json"
BUNDLE_FILE = "attestation.sigstore.json"
BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
_BUNDLE_MEDIA_PREFIX = "application/vnd.dev.sigstore.bundle"
_KEY_HINT = ("give an unencrypted ECDSA P-256 private key in PEM (PKCS#8 or SEC 1), e.g. "
             "'openssl ecparam -name prime256v1 -genkey -noout | openssl pkcs8 -topk8 -nocrypt'")


def pae(payload_type: str, body: bytes) -> bytes:
    """The DSSE v1 pre-authentication encoding of ``payload_type`` and ``body`` (the signed bytes)."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(body), body)


def key_id(public: ec.EllipticCurvePublicKey) -> str:
    """``sha256:<hex>`` of the DER ``SubjectPublicKeyInfo`` of ``public`` (stable across PEM wrapping)."""
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(der).hexdigest()


def _b64decode(text: Any, *, what: str, name: str) -> bytes:
    if not isinstance(text, str):
        raise AttestationMismatch(f"{name}: {what} is not a base64 string")
    padded = text + "=" * (-len(text) % 4)
    try:
        if "-" in text or "_" in text:
            return base64.urlsafe_b64decode(padded.encode())
        return base64.b64decode(padded.encode(), validate=True)
    except (ValueError, binascii.Error) as exc:
        raise AttestationMismatch(f"{name}: {what} is not base64 ({exc})") from exc


@dataclass(frozen=True, slots=True, kw_only=True)
class Envelope:
    """A DSSE envelope: the payload bytes, their type, and ``(keyid, signature)`` pairs."""

    payload_type: str
    payload: bytes
    signatures: tuple[tuple[str, bytes], ...]

    def as_json(self) -> dict[str, Any]:
        return {"payload": base64.b64encode(self.payload).decode(), "payloadType": self.payload_type,
                "signatures": [{"keyid": keyid, "sig": base64.b64encode(sig).decode()}
                               for keyid, sig in self.signatures]}

    @classmethod
    def from_json(cls, data: Any, *, name: str) -> Envelope:
        """Parse the JSON envelope object ``data`` (``name``: the file, for messages)."""
        if not isinstance(data, dict):
            raise AttestationMismatch(f"{name}: a DSSE envelope must be a JSON object")
        for key in ("payload", "payloadType", "signatures"):
            if key not in data:
                raise AttestationMismatch(f"{name}: the DSSE envelope has no {key!r}")
        if not isinstance(data["payloadType"], str):
            raise AttestationMismatch(f"{name}: the DSSE envelope's payloadType is not a string")
        if not isinstance(data["signatures"], list) or not data["signatures"]:
            raise AttestationMismatch(f"{name}: the DSSE envelope has no signature")
        signatures = []
        for index, entry in enumerate(data["signatures"]):
            if not isinstance(entry, dict) or "sig" not in entry:
                raise AttestationMismatch(f"{name}: signatures[{index}] has no 'sig'")
            keyid = entry.get("keyid") or ""
            signatures.append((str(keyid), _b64decode(entry["sig"], what=f"signatures[{index}].sig", name=name)))
        return cls(payload_type=data["payloadType"], payload=_b64decode(data["payload"], what="payload", name=name),
                   signatures=tuple(signatures))


def load_private_key(pem: bytes, *, where: str) -> ec.EllipticCurvePrivateKey:
    """An ECDSA P-256 private key from unencrypted PEM ``pem`` (``where``: file or variable, for messages)."""
    if b"ENCRYPTED" in pem:
        raise AttestError(f"{where}: the private key is encrypted (cosign's or PKCS#8 encryption); "
                          "give an unencrypted key through a protected file or a CI secret", hint=_KEY_HINT)
    try:
        key = serialization.load_pem_private_key(pem.strip() + b"\n", password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise AttestError(f"{where}: not a PEM private key ({str(exc).splitlines()[0] if str(exc) else exc})",
                          hint=_KEY_HINT) from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        kind = key.curve.name if isinstance(key, ec.EllipticCurvePrivateKey) else type(key).__name__
        raise AttestError(f"{where}: the key is {kind}, not ECDSA P-256", hint=_KEY_HINT)
    return key


def load_public_key(pem: bytes, *, where: str) -> ec.EllipticCurvePublicKey:
    """An ECDSA P-256 public key from PEM ``pem`` (what ``cosign public-key`` prints)."""
    hint = "give the PEM public key of the signing key (openssl ec -pubout, or cosign public-key)"
    if b"PRIVATE KEY" in pem:
        raise AttestError(f"{where}: this is a PRIVATE key; verification needs only the public key", hint=hint)
    try:
        key = serialization.load_pem_public_key(pem.strip() + b"\n")
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise AttestError(f"{where}: not a PEM public key", hint=hint) from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise AttestError(f"{where}: the key is not an ECDSA P-256 key (attestations are signed with P-256)",
                          hint=hint)
    return key


class KeySigner(Signer):
    """Signs with an ECDSA P-256 private key: a DSSE envelope and a Sigstore bundle holding it."""

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        self._key = key
        self.key_id = key_id(key.public_key())

    def sign(self, statement: bytes) -> Signed:
        signature = self._key.sign(pae(IN_TOTO_PAYLOAD_TYPE, statement), ec.ECDSA(hashes.SHA256()))
        envelope = Envelope(payload_type=IN_TOTO_PAYLOAD_TYPE, payload=statement,
                            signatures=((self.key_id, signature),))
        # In the bundle the key id travels as the public-key hint and the signature carries none:
        # sigstore-go (cosign v3) skips a DSSE signature whose keyid differs from its verifier's (empty).
        inner = envelope.as_json()
        inner["signatures"] = [{"sig": s["sig"]} for s in inner["signatures"]]
        bundle = {"mediaType": BUNDLE_MEDIA_TYPE,
                  "verificationMaterial": {"publicKey": {"hint": self.key_id}},
                  "dsseEnvelope": inner}
        return Signed(files={ENVELOPE_FILE: canonical_json(envelope.as_json()), BUNDLE_FILE: canonical_json(bundle)},
                      signer=f"ECDSA P-256 key {self.key_id}")


class KeyVerifier(Verifier):
    """Checks a DSSE envelope, or a Sigstore bundle with a public-key hint, against one ECDSA P-256 key."""

    def __init__(self, key: ec.EllipticCurvePublicKey) -> None:
        self._key = key
        self.key_id = key_id(key)

    @property
    def description(self) -> str:
        return f"ECDSA P-256 key {self.key_id}"

    def verify(self, data: bytes, *, name: str) -> bytes:
        # 1. the file is JSON: a Sigstore bundle (with a public-key hint) or a plain DSSE envelope
        try:
            document = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise AttestationMismatch(f"{name}: not JSON ({exc})") from exc
        if isinstance(document, dict) and str(document.get("mediaType", "")).startswith(_BUNDLE_MEDIA_PREFIX):
            material = document.get("verificationMaterial")
            if not isinstance(material, dict) or "publicKey" not in material:
                raise AttestationMismatch(f"{name}: this Sigstore bundle is not signed with a key (it carries a "
                                          "certificate)",
                                          hint="verify it with --certificate-identity and --certificate-oidc-issuer")
            if "dsseEnvelope" not in document:
                raise AttestationMismatch(f"{name}: this Sigstore bundle holds a message signature, not a DSSE "
                                          "attestation")
            document = document["dsseEnvelope"]
        envelope = Envelope.from_json(document, name=name)
        # 2. one signature verifies over PAE(payloadType, payload) with the key (the key id is only a hint)
        message = pae(envelope.payload_type, envelope.payload)
        if not any(self._verifies(signature, message) for _, signature in envelope.signatures):
            raise AttestationMismatch(f"{name}: the signature does not verify with {self.description} (the "
                                      "statement was changed after signing, or another key signed it)")
        # 3. the payload is an in-toto statement
        if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE:
            raise AttestationMismatch(f"{name}: payload type {envelope.payload_type!r} is not "
                                      f"{IN_TOTO_PAYLOAD_TYPE!r}")
        return envelope.payload

    def _verifies(self, signature: bytes, message: bytes) -> bool:
        try:
            self._key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True
