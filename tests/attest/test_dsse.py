"""The DSSE layer checked against the spec and two independent implementations: the DSSE protocol's
own test vector, sigstore-python's PAE and signer, and the pinned cosign v3.1.3 binary."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from pipeline.attest import (
    BUNDLE_FILE,
    ENVELOPE_FILE,
    IN_TOTO_PAYLOAD_TYPE,
    STATEMENT_FILE,
    AttestationMismatch,
    KeySigner,
    KeyVerifier,
    pae,
)
from tests.attest.conftest import Signed
from tests.tools import run_tool


def test_pae_is_the_dsse_protocol_s_test_vector() -> None:
    # secure-systems-lab/dsse protocol.md, "Test Vectors"
    expected = b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    assert pae("http://example.com/HelloWorld", b"hello world") == expected
    # ... and the vector's signature (ECDSA P-256, raw r||s) verifies over exactly these bytes.
    x = 46950820868899156662930047687818585632848591499744589407958293238635476079160
    y = 5640078356564379163099075877009565129882514886557779369047442380624545832820
    key = ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
    raw = base64.b64decode("A3JqsQGtVsJ2O2xqrI5IcnXip5GToJ3F+FnZ+O88SjtR6rDAajabZKciJTfUiHqJPcIAriEGAHTVeCUjW2JIZA==")
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    key.verify(der, pae("http://example.com/HelloWorld", b"hello world"), ec.ECDSA(hashes.SHA256()))


def test_pae_counts_bytes_not_characters() -> None:
    assert pae("t", "é".encode()) == b"DSSEv1 1 t 2 \xc3\xa9"
    assert pae("", b"") == b"DSSEv1 0  0 "


def test_our_statement_is_a_valid_in_toto_statement_for_sigstore_with_the_same_pae(signed: Signed) -> None:
    from sigstore import dsse

    statement = (signed.out / STATEMENT_FILE).read_bytes()
    parsed = dsse.Statement(statement)  # sigstore validates the in-toto Statement v1 layout
    assert parsed._pae() == pae(IN_TOTO_PAYLOAD_TYPE, statement)


def test_an_envelope_signed_by_sigstore_python_verifies_with_our_verifier(signed: Signed) -> None:
    from sigstore import dsse

    key = ec.generate_private_key(ec.SECP256R1())
    statement = (signed.out / STATEMENT_FILE).read_bytes()
    envelope = dsse._sign(key, dsse.Statement(statement))  # sigstore's own DSSE signer
    assert KeyVerifier(key.public_key()).verify(envelope.to_json().encode(), name="x") == statement


def test_url_safe_base64_is_accepted_as_the_protocol_requires() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    body = b'{"_type": "x"}' * 20
    files = KeySigner(key).sign(body).files
    envelope = json.loads(files[ENVELOPE_FILE])
    envelope["payload"] = base64.urlsafe_b64encode(body).decode().rstrip("=")
    sig = base64.b64decode(envelope["signatures"][0]["sig"])
    envelope["signatures"][0]["sig"] = base64.urlsafe_b64encode(sig).decode()
    assert KeyVerifier(key.public_key()).verify(json.dumps(envelope).encode(), name="x") == body


@pytest.mark.parametrize(("document", "message"), [
    (b"not json", "x: not JSON"),
    (b"[]", "x: a DSSE envelope must be a JSON object"),
    (b'{"payloadType": "t", "signatures": []}', "x: the DSSE envelope has no 'payload'"),
    (b'{"payload": "", "payloadType": "t", "signatures": []}', "x: the DSSE envelope has no signature"),
    (b'{"payload": "!!", "payloadType": "t", "signatures": [{"sig": "AA=="}]}', "x: payload is not base64"),
    (b'{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json", "dsseEnvelope": {}, '
     b'"verificationMaterial": {"certificate": {}}}',
     "x: this Sigstore bundle is not signed with a key (it carries a certificate)"),
    (b'{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json", "messageSignature": {}, '
     b'"verificationMaterial": {"publicKey": {}}}',
     "x: this Sigstore bundle holds a message signature, not a DSSE attestation"),
])
def test_malformed_envelopes_are_named(document: bytes, message: str) -> None:
    with pytest.raises(AttestationMismatch) as caught:
        KeyVerifier(ec.generate_private_key(ec.SECP256R1()).public_key()).verify(document, name="x")
    assert str(caught.value).startswith(message)
    assert caught.value.exit_code == 1


def test_a_signature_over_another_payload_type_is_refused() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    body = b"{}"
    sig = key.sign(pae("application/json", body), ec.ECDSA(hashes.SHA256()))
    envelope = {"payload": base64.b64encode(body).decode(), "payloadType": "application/json",
                "signatures": [{"sig": base64.b64encode(sig).decode()}]}
    with pytest.raises(AttestationMismatch, match=r"payload type 'application/json' is not 'application/vnd\.in-toto"):
        KeyVerifier(key.public_key()).verify(json.dumps(envelope).encode(), name="x")


# ---- the pinned cosign v3.1.3 --------------------------------------------------------------------


def _cosign(signed: Signed, tmp_path: Path, blob: Path, *how: str) -> tuple[int, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    proc = run_tool("cosign", ["verify-blob-attestation", "--key", str(signed.pub), "--insecure-ignore-tlog=true",
                               "--type", "slsaprovenance1", *how, str(blob)],
                    env={"PATH": "/usr/bin:/bin", "HOME": str(home)}, check=False)
    return proc.returncode, proc.stderr.decode(errors="replace")


@pytest.mark.tools
def test_cosign_verifies_the_bundle_and_the_envelope_for_every_subject(signed: Signed, tmp_path: Path) -> None:
    statement = json.loads((signed.out / STATEMENT_FILE).read_bytes())
    names = [s["name"] for s in statement["subject"]]
    assert len(names) >= 10
    for name in names:
        for how in (["--bundle", str(signed.out / BUNDLE_FILE)], ["--signature", str(signed.out / ENVELOPE_FILE)]):
            code, err = _cosign(signed, tmp_path, signed.root / name, *how)
            assert code == 0 and "Verified OK" in err, (name, how, err)


@pytest.mark.tools
def test_cosign_refuses_a_changed_subject_another_key_and_a_changed_statement(signed: Signed, tmp_path: Path) -> None:
    lock = signed.root / "lockfiles" / "h100-any.lock.json"
    bundle = ["--bundle", str(signed.out / BUNDLE_FILE)]
    changed = tmp_path / "changed.lock.json"
    changed.write_bytes(lock.read_bytes() + b"\n")
    code, err = _cosign(signed, tmp_path, changed, *bundle)
    assert code != 0 and "provided artifact digests do not match digests in statement" in err
    document = json.loads((signed.out / BUNDLE_FILE).read_bytes())
    payload = base64.b64decode(document["dsseEnvelope"]["payload"]).replace(b"h100-any", b"h100-all", 1)
    document["dsseEnvelope"]["payload"] = base64.b64encode(payload).decode()
    tampered = tmp_path / "tampered.sigstore.json"
    tampered.write_text(json.dumps(document))
    code, err = _cosign(signed, tmp_path, lock, "--bundle", str(tampered))
    assert code != 0 and "accepted signatures do not match threshold" in err
    other = ec.generate_private_key(ec.SECP256R1())
    forged = KeySigner(other).sign(base64.b64decode(json.loads((signed.out / ENVELOPE_FILE).read_bytes())["payload"]))
    (tmp_path / "forged.json").write_bytes(forged.files[BUNDLE_FILE])
    code, err = _cosign(signed, tmp_path, lock, "--bundle", str(tmp_path / "forged.json"))
    assert code != 0 and "accepted signatures do not match threshold" in err
