"""Public keys of key-based signers: the algorithms cosign signs with, and the refusals."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa

from pipeline.provenance import KeyAlgorithm, PublicKey
from tests.provenance.cosign import generate_key


@pytest.mark.parametrize(("kind", "algorithm", "bits"), [
    ("ecdsa-p256", KeyAlgorithm.ECDSA_P256, 256), ("rsa", KeyAlgorithm.RSA, 2048),
    ("ed25519", KeyAlgorithm.ED25519, 256),
])
def test_keys_parse_and_verify_exactly_the_signed_bytes(kind: str, algorithm: KeyAlgorithm, bits: int) -> None:
    pair = generate_key(kind)
    key = PublicKey.from_pem(pair.public_pem)
    assert (key.algorithm, key.bits) == (algorithm, bits)
    assert key.fingerprint.startswith("sha256:") and len(key.fingerprint) == 71
    assert key.verify(pair.sign(b"payload"), b"payload")
    assert not key.verify(pair.sign(b"payload"), b"payload ")
    assert not key.verify(b"\x00" * 64, b"payload")


def test_the_fingerprint_does_not_depend_on_pem_wrapping() -> None:
    pem = generate_key("ecdsa-p256").public_pem
    assert PublicKey.from_pem(pem).fingerprint == PublicKey.from_pem("\n\n" + pem + "\n").fingerprint


def test_rsa_pss_signatures_are_accepted_too() -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    signature = private.sign(b"data", padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())
    assert PublicKey.from_pem(pem).verify(signature, b"data")


def _pem(key: Any) -> bytes:
    pem: bytes = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem


@pytest.mark.parametrize(("text", "message"), [
    (b"not a key", "not a PEM public key"),
    (b"-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n", "this is a PRIVATE key: never commit it"),
    (_pem(rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()),
     "RSA key of 1024 bits is too weak (at least 2048)"),
    (_pem(ec.generate_private_key(ec.SECP256K1()).public_key()),
     "ECDSA curve 'secp256k1' is not supported (use P-256, P-384 or P-521)"),
    (_pem(dsa.generate_private_key(key_size=2048).public_key()), "DSAPublicKey keys are not supported"),
])
def test_unsupported_keys_are_refused_with_the_reason(text: bytes, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        PublicKey.from_pem(text)
