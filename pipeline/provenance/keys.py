"""Public keys of key-based (``cosign sign --key``) signers, and the one signature primitive over them.

Contract:

- input: a PEM ``SubjectPublicKeyInfo`` (what ``cosign generate-key-pair`` writes as ``cosign.pub``
  and what ``cosign public-key`` prints) for ECDSA (P-256, P-384, P-521), RSA (2048 bits or more)
  or Ed25519;
- :meth:`PublicKey.verify` answers whether ``signature`` is a valid signature of the exact bytes
  ``data`` under the key, with the schemes cosign and sigstore-go use: ECDSA with SHA-256 over
  DER-encoded ``(r, s)``; RSA PKCS#1 v1.5 with SHA-256 (and RSA-PSS with SHA-256, which sigstore
  also accepts); pure Ed25519 over the message;
- guarantees: nothing is re-serialised: the caller passes the original signed bytes; a key is
  identified by the sha256 of its DER ``SubjectPublicKeyInfo`` (``fingerprint``), stable across
  PEM line wrapping;
- errors: :meth:`PublicKey.from_pem` raises :class:`ValueError` saying why the text is not a
  supported public key (the caller adds file and line).
"""

from __future__ import annotations

import base64
import enum
import hashlib
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

__all__ = ["MIN_RSA_BITS", "KeyAlgorithm", "PublicKey", "decode_signature"]

MIN_RSA_BITS = 2048
_CURVES = {"secp256r1": "ecdsa-p256", "secp384r1": "ecdsa-p384", "secp521r1": "ecdsa-p521"}


class KeyAlgorithm(enum.StrEnum):
    """The public-key algorithms cosign signs with."""

    ECDSA_P256 = "ecdsa-p256"
    ECDSA_P384 = "ecdsa-p384"
    ECDSA_P521 = "ecdsa-p521"
    RSA = "rsa"
    ED25519 = "ed25519"

    @property
    def label(self) -> str:
        """How reviewers name it (``ECDSA P-256``, ``RSA``, ``Ed25519``)."""
        match self:
            case KeyAlgorithm.ECDSA_P256:
                return "ECDSA P-256"
            case KeyAlgorithm.ECDSA_P384:
                return "ECDSA P-384"
            case KeyAlgorithm.ECDSA_P521:
                return "ECDSA P-521"
            case KeyAlgorithm.RSA:
                return "RSA"
            case KeyAlgorithm.ED25519:
                return "Ed25519"


@dataclass(frozen=True, slots=True, kw_only=True)
class PublicKey:
    """A parsed public key; ``pem`` is the normalised PEM text that policies embed."""

    pem: str
    algorithm: KeyAlgorithm
    bits: int
    fingerprint: str
    _key: Any = field(repr=False, compare=False)

    @classmethod
    def from_pem(cls, text: str | bytes) -> PublicKey:
        """Parse ``text``; :class:`ValueError` says why it is not a supported public key."""
        data = text.encode() if isinstance(text, str) else text
        if b"PRIVATE KEY" in data:
            raise ValueError("this is a PRIVATE key: never commit it; give the public key (cosign.pub) instead")
        try:
            key = serialization.load_pem_public_key(data.strip() + b"\n")
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise ValueError(f"not a PEM public key ({exc})") from exc
        match key:
            case ec.EllipticCurvePublicKey():
                name = _CURVES.get(key.curve.name)
                if name is None:
                    raise ValueError(f"ECDSA curve {key.curve.name!r} is not supported (use P-256, P-384 or P-521)")
                algorithm, bits = KeyAlgorithm(name), key.curve.key_size
            case rsa.RSAPublicKey():
                if key.key_size < MIN_RSA_BITS:
                    raise ValueError(f"RSA key of {key.key_size} bits is too weak (at least {MIN_RSA_BITS})")
                algorithm, bits = KeyAlgorithm.RSA, key.key_size
            case ed25519.Ed25519PublicKey():
                algorithm, bits = KeyAlgorithm.ED25519, 256
            case _:
                raise ValueError(f"{type(key).__name__} keys are not supported (use ECDSA, RSA or Ed25519)")
        der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        return cls(pem=pem.decode(), algorithm=algorithm, bits=bits,
                   fingerprint="sha256:" + hashlib.sha256(der).hexdigest(), _key=key)

    @property
    def description(self) -> str:
        """``ECDSA P-256 key sha256:0123abcd…`` for messages and the matrix."""
        return f"{self.algorithm.label} key {self.fingerprint[:19]}…"

    def verify(self, signature: bytes, data: bytes) -> bool:
        """Whether ``signature`` signs exactly ``data`` under this key (see the module contract)."""
        key = self._key
        try:
            match self.algorithm:
                case KeyAlgorithm.ECDSA_P256 | KeyAlgorithm.ECDSA_P384 | KeyAlgorithm.ECDSA_P521:
                    key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
                case KeyAlgorithm.ED25519:
                    key.verify(signature, data)
                case KeyAlgorithm.RSA:
                    try:
                        key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
                    except InvalidSignature:
                        key.verify(signature, data, padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                                                                salt_length=padding.PSS.AUTO), hashes.SHA256())
        except InvalidSignature:
            return False
        return True


def decode_signature(text: str) -> bytes:
    """Standard base64 (cosign's annotation and DSSE ``sig`` encoding); :class:`ValueError` if it is not."""
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"signature is not base64 ({exc})") from exc
