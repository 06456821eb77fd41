"""Signature and attestation checks against a real docker-registry, with keys the tests generate.

Each failure mode has its own message, pinned here: tampered payload, payload for another
digest, wrong key, missing signature, and more. Signatures are laid out as cosign writes them
(tests/provenance/cosign.py); the referrers API, which distribution 2.8 lacks, is served by a fake
gate in front of the real registry.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from pipeline.errors import SignatureError
from pipeline.provenance import (
    ArtifactSource,
    KeylessVerifier,
    Profile,
    ProvenanceFormat,
    PublicKey,
    SbomFormat,
    Signer,
    SigningMode,
    Status,
    require_verified,
    verify_image,
)
from pipeline.provenance.matrix import SigstoreInstance
from pipeline.provenance.verify import Channel, EvidenceKind, ImageVerification
from tests.provenance.conftest import Pushed, push_image
from tests.provenance.cosign import (
    KeyPair,
    dsse_envelope,
    generate_key,
    push_attestation,
    push_bundle,
    push_signature,
    simple_signing_payload,
    start_referrers_gate,
    statement,
)
from tests.servers import Registry, tamper_blob

SLSA_V1 = "https://slsa.dev/provenance/v1"
CYCLONEDX = "https://cyclonedx.org/bom"


def key_profile(key: KeyPair, *, provenance: ProvenanceFormat = ProvenanceFormat.NONE,
                sbom: SbomFormat = SbomFormat.NONE) -> Profile:
    signer = Signer(mode=SigningMode.KEY, key=PublicKey.from_pem(key.public_pem), tlog=False)
    return Profile(label="app", publisher="tests", signing=signer, provenance=provenance, sbom=sbom)


def keyless_profile(identity: str = "william@yossarian.net") -> Profile:
    signer = Signer(mode=SigningMode.KEYLESS, identity=identity, issuer="https://github.com/login/oauth",
                    instance=SigstoreInstance.STAGING)
    return Profile(label="app", publisher="tests", signing=signer, provenance=ProvenanceFormat.NONE,
                   sbom=SbomFormat.NONE)


def check(pushed: Pushed, profile: Profile, source: ArtifactSource) -> ImageVerification:
    return verify_image(pushed.locked, profile, source=source, keyless=KeylessVerifier())


def sign(pushed: Pushed, key: KeyPair, *, layout: str = "tag", payload: bytes | None = None) -> str:
    body = payload if payload is not None else simple_signing_payload(pushed.name, pushed.subject.digest)
    return push_signature(pushed.registry, pushed.subject, body, key.sign(body), layout=layout)


# ---- valid signatures ------------------------------------------------------------------------


@pytest.mark.registry
@pytest.mark.parametrize(("kind", "label"), [("ecdsa-p256", "ECDSA P-256"), ("rsa", "RSA"), ("ed25519", "Ed25519")])
def test_a_key_signature_over_the_locked_digest_verifies(pushed: Pushed, source: ArtifactSource, kind: str,
                                                         label: str) -> None:
    key = generate_key(kind)
    sign(pushed, key)
    result = check(pushed, key_profile(key), source)
    assert result.signature.status is Status.VERIFIED, result.signature.reason
    assert result.signature.reason.startswith(f"signed by {label} key sha256:")
    assert "(cosign tag)" in result.signature.reason
    assert result.provenance.status is Status.ABSENT
    require_verified([result])


@pytest.mark.registry
def test_a_signature_found_through_the_referrers_tag_schema_verifies(pushed: Pushed, source: ArtifactSource) -> None:
    key = generate_key("ecdsa-p256")
    sign(pushed, key, layout="referrers-tag")
    result = check(pushed, key_profile(key), source)
    assert result.signature.status is Status.VERIFIED, result.signature.reason
    assert [e.channel for e in result.evidence] == [Channel.REFERRERS_TAG]
    assert "referrers API: not supported (HTTP 404)" in result.lookups


@pytest.mark.registry
def test_a_signature_found_through_the_referrers_api_verifies(registry: Registry, source: ArtifactSource) -> None:
    gate = start_referrers_gate(registry)
    try:
        pushed = push_image(registry, host=gate.host)
        key = generate_key("ed25519")
        body = simple_signing_payload(pushed.name, pushed.subject.digest)
        push_signature(registry, pushed.subject, body, key.sign(body), layout="referrers-api", gate=gate)
        result = check(pushed, key_profile(key), source)
    finally:
        gate.stop()
    assert result.signature.status is Status.VERIFIED, result.signature.reason
    assert [e.channel for e in result.evidence] == [Channel.REFERRERS_API]
    assert result.lookups[0] == "referrers API: 1 artifact(s)"
    assert f"GET /v2/recipe-lab/app/referrers/{pushed.subject.digest}" in gate.requests


# ---- each failure, with its own message ------------------------------------------------------


@pytest.mark.registry
def test_a_tampered_payload_is_reported_as_altered_in_the_registry(pushed: Pushed, source: ArtifactSource) -> None:
    key = generate_key("ecdsa-p256")
    payload = simple_signing_payload(pushed.name, pushed.subject.digest)
    sign(pushed, key, payload=payload)
    from tests.provenance.cosign import sha256
    tamper_blob(pushed.registry, sha256(payload), lambda data: data.replace(b"cosign container", b"cosign CONTAINER"))
    result = check(pushed, key_profile(key), source)
    assert result.signature.status is Status.PRESENT
    assert result.signature.reason.startswith(f"signature payload {sha256(payload)} was altered in the registry: ")
    assert "do not match the digest" in result.signature.reason


@pytest.mark.registry
def test_a_tampered_signature_manifest_is_present_not_absent(pushed: Pushed, source: ArtifactSource) -> None:
    key = generate_key("ecdsa-p256")
    manifest = sign(pushed, key)
    tamper_blob(pushed.registry, manifest, lambda data: data.replace(b"dev.cosignproject", b"dev.COSIGNproject"))
    result = check(pushed, key_profile(key), source)
    short = pushed.subject.digest.removeprefix("sha256:")[:12]
    assert result.signature.status is Status.PRESENT
    assert result.signature.reason.startswith(f"cosign tag sha256-{short}….sig was altered in the registry: ")
    assert f"cosign tag sha256-{short}….sig: altered in the registry" in result.lookups


@pytest.mark.registry
def test_an_edited_payload_pushed_with_the_old_signature_does_not_verify(pushed: Pushed,
                                                                          source: ArtifactSource) -> None:
    key = generate_key("ecdsa-p256")
    payload = simple_signing_payload(pushed.name, pushed.subject.digest)
    edited = payload.replace(b'"optional":null', b'"optional":{"by":"mallory"}')
    push_signature(pushed.registry, pushed.subject, edited, key.sign(payload))
    result = check(pushed, key_profile(key), source)
    assert result.signature.status is Status.PRESENT
    assert result.signature.reason == (
        f"signature does not verify over the payload with the declared {PublicKey.from_pem(key.public_pem).description}"
        ": the payload was changed after signing, or another key signed it")


@pytest.mark.registry
def test_a_payload_for_another_digest_is_refused_even_with_a_good_signature(pushed: Pushed,
                                                                             source: ArtifactSource) -> None:
    key = generate_key("rsa")
    other = "sha256:" + "ab" * 32
    sign(pushed, key, payload=simple_signing_payload(pushed.name, other))
    result = check(pushed, key_profile(key), source)
    assert result.signature.status is Status.PRESENT
    assert result.signature.reason == (f"the signed payload names digest {other}, not the locked digest "
                                       f"{pushed.subject.digest}: this signature is for another image")


@pytest.mark.registry
def test_a_signature_by_another_key_does_not_verify(pushed: Pushed, source: ArtifactSource) -> None:
    declared, other = generate_key("ecdsa-p256"), generate_key("ecdsa-p256")
    sign(pushed, other)
    result = check(pushed, key_profile(declared), source)
    assert result.signature.status is Status.PRESENT
    assert "does not verify over the payload with the declared ECDSA P-256 key sha256:" in result.signature.reason
    with pytest.raises(SignatureError, match=r"signature present: signature does not verify") as caught:
        require_verified([result])
    assert caught.value.exit_code == 1
    assert caught.value.hint is not None and "do not deploy these digests" in caught.value.hint


@pytest.mark.registry
def test_a_missing_signature_is_absent_and_says_where_it_looked(pushed: Pushed, source: ArtifactSource) -> None:
    result = check(pushed, key_profile(generate_key("ed25519")), source)
    hexpart = pushed.subject.digest.removeprefix("sha256:")[:12]
    assert result.signature.status is Status.ABSENT
    assert result.signature.reason == (
        f"no signature found (referrers API: not supported (HTTP 404); referrers tag sha256-{hexpart}…: none; "
        f"cosign tag sha256-{hexpart}….sig: none; cosign tag sha256-{hexpart}….att: none)")
    with pytest.raises(SignatureError, match=r"app: .*: signature absent: no signature found"):
        require_verified([result])


@pytest.mark.registry
def test_a_payload_naming_another_repository_is_refused(pushed: Pushed, source: ArtifactSource) -> None:
    key = generate_key("ecdsa-p256")
    sign(pushed, key, payload=simple_signing_payload("example.com/someone/else", pushed.subject.digest))
    result = check(pushed, key_profile(key), source)
    assert result.signature.reason == (f"the signed payload names repository 'example.com/someone/else', "
                                       f"not {pushed.name!r}")


@pytest.mark.registry
def test_a_signature_layer_without_its_annotation_is_reported(pushed: Pushed, source: ArtifactSource) -> None:
    payload = simple_signing_payload(pushed.name, pushed.subject.digest)
    push_signature(pushed.registry, pushed.subject, payload, None)
    result = check(pushed, key_profile(generate_key("ecdsa-p256")), source)
    assert result.signature.reason.endswith("has no 'dev.cosignproject.cosign/signature' annotation")


@pytest.mark.registry
def test_a_signature_on_an_image_declared_unsigned_is_present_not_verified(pushed: Pushed,
                                                                           source: ArtifactSource) -> None:
    sign(pushed, generate_key("ecdsa-p256"))
    unsigned = Profile(label="app", publisher="tests", signing=Signer(mode=SigningMode.NONE),
                       provenance=ProvenanceFormat.NONE, sbom=SbomFormat.NONE)
    result = check(pushed, unsigned, source)
    assert result.signature.status is Status.PRESENT
    assert result.signature.reason == ("found, but app declares signing: none; record its signer in the "
                                       "provenance matrix to verify it")
    require_verified([result])  # nothing declared, nothing required


@pytest.mark.registry
def test_an_image_without_a_locked_digest_is_not_looked_up(pushed: Pushed, source: ArtifactSource) -> None:
    from dataclasses import replace
    result = check(replace(pushed, locked=replace(pushed.locked, digest=None)), key_profile(generate_key("rsa")),
                   source)
    assert result.signature.status is Status.ABSENT
    assert "has no locked digest: nothing to verify" in result.signature.reason
    assert result.evidence == ()


# ---- attestations ----------------------------------------------------------------------------


@pytest.mark.registry
def test_slsa_provenance_and_cyclonedx_attestations_are_recognised_and_verified(pushed: Pushed,
                                                                                source: ArtifactSource) -> None:
    key = generate_key("ecdsa-p256")
    sign(pushed, key)
    subjects = {pushed.name: pushed.subject.digest}
    push_attestation(pushed.registry, pushed.subject, dsse_envelope(statement(SLSA_V1, subjects), key), SLSA_V1)
    profile = key_profile(key, provenance=ProvenanceFormat.SLSA_V1, sbom=SbomFormat.CYCLONEDX)
    result = check(pushed, profile, source)
    assert result.signature.status is Status.VERIFIED
    assert result.provenance.status is Status.VERIFIED, result.provenance.reason
    assert result.provenance.reason.startswith(f"{SLSA_V1} attestation signed by ECDSA P-256 key")
    assert result.sbom.status is Status.ABSENT
    with pytest.raises(SignatureError, match=r"SBOM absent: no sbom found"):
        require_verified([result])


@pytest.mark.registry
def test_provenance_in_another_format_than_declared_is_present_not_verified(pushed: Pushed,
                                                                            source: ArtifactSource) -> None:
    key = generate_key("ecdsa-p256")
    v02 = "https://slsa.dev/provenance/v0.2"
    push_attestation(pushed.registry, pushed.subject,
                     dsse_envelope(statement(v02, {pushed.name: pushed.subject.digest}), key), v02)
    result = check(pushed, key_profile(key, provenance=ProvenanceFormat.SLSA_V1), source)
    assert result.provenance.status is Status.PRESENT
    assert result.provenance.reason.endswith(f"but the provenance matrix declares {SLSA_V1}")


@pytest.mark.registry
def test_an_sbom_attestation_found_as_a_referrer_verifies(pushed: Pushed, source: ArtifactSource) -> None:
    key = generate_key("ed25519")
    envelope = dsse_envelope(statement("https://spdx.dev/Document", {pushed.name: pushed.subject.digest},
                                       statement_type="https://in-toto.io/Statement/v0.1"), key)
    push_attestation(pushed.registry, pushed.subject, envelope, "https://spdx.dev/Document", layout="referrers-tag")
    result = check(pushed, key_profile(key, sbom=SbomFormat.SPDX), source)
    assert result.sbom.status is Status.VERIFIED, result.sbom.reason
    assert [e.kind for e in result.evidence] == [EvidenceKind.SBOM]


@pytest.mark.registry
def test_an_attestation_about_another_digest_is_refused(pushed: Pushed, source: ArtifactSource) -> None:
    key = generate_key("ecdsa-p256")
    other = "sha256:" + "cd" * 32
    push_attestation(pushed.registry, pushed.subject, dsse_envelope(statement(SLSA_V1, {pushed.name: other}), key),
                     SLSA_V1)
    result = check(pushed, key_profile(key, provenance=ProvenanceFormat.SLSA_V1), source)
    assert result.provenance.status is Status.PRESENT
    assert result.provenance.reason == (f"the attestation is about {other}, not the locked digest "
                                        f"{pushed.subject.digest}: it is for another image")


@pytest.mark.registry
def test_an_attestation_signed_by_another_key_does_not_verify(pushed: Pushed, source: ArtifactSource) -> None:
    declared, other = generate_key("rsa"), generate_key("rsa")
    envelope = dsse_envelope(statement(CYCLONEDX, {pushed.name: pushed.subject.digest}), other)
    push_attestation(pushed.registry, pushed.subject, envelope, CYCLONEDX)
    result = check(pushed, key_profile(declared, sbom=SbomFormat.CYCLONEDX), source)
    assert result.sbom.status is Status.PRESENT
    assert result.sbom.reason.startswith("no signature of the attestation verifies with the declared RSA key")


@pytest.mark.registry
def test_an_unrecognised_predicate_counts_as_neither_provenance_nor_sbom(pushed: Pushed,
                                                                         source: ArtifactSource) -> None:
    key = generate_key("ecdsa-p256")
    vuln = "https://cosign.sigstore.dev/attestation/vuln/v1"
    push_attestation(pushed.registry, pushed.subject,
                     dsse_envelope(statement(vuln, {pushed.name: pushed.subject.digest}), key), vuln)
    result = check(pushed, key_profile(key), source)
    assert (result.provenance.status, result.sbom.status) == (Status.ABSENT, Status.ABSENT)
    assert [(e.kind, e.verified) for e in result.evidence] == [(EvidenceKind.OTHER, False)]
    assert result.evidence[0].detail == f"predicate type {vuln!r} is neither SLSA provenance nor an SBOM"


# ---- keyless bundles in the registry ---------------------------------------------------------


@pytest.mark.registry
@pytest.mark.shared
def test_a_keyless_bundle_over_other_bytes_is_found_and_refused(pushed: Pushed, source: ArtifactSource,
                                                                 sigstore_assets: Path) -> None:
    """A real staging bundle, attached as a referrer: sigstore checks it offline and finds that it signs
    another artifact than this image's manifest (no real keyless *image* signature exists offline)."""
    bundle = (sigstore_assets / "bundle_v3.txt.sigstore").read_bytes()
    push_bundle(pushed.registry, pushed.subject, bundle)
    result = check(pushed, keyless_profile(), source)
    assert result.signature.status is Status.PRESENT
    assert result.signature.reason == ("Sigstore bundle does not verify for keyless william@yossarian.net "
                                       "(https://github.com/login/oauth): Bundle message digest mismatch")


@pytest.mark.registry
def test_a_key_signature_on_a_keyless_signer_is_present_with_the_reason(pushed: Pushed,
                                                                        source: ArtifactSource) -> None:
    sign(pushed, generate_key("ecdsa-p256"))
    result = check(pushed, keyless_profile(), source)
    assert result.signature.status is Status.PRESENT
    assert result.signature.reason.startswith("found in a key-signed layout, which sigstore-python cannot verify")


def test_base64_of_the_signature_is_checked() -> None:
    from pipeline.provenance.keys import decode_signature
    assert decode_signature(base64.b64encode(b"xyz").decode()) == b"xyz"
    with pytest.raises(ValueError, match="signature is not base64"):
        decode_signature("not base64!")
