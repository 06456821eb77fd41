"""Keyless, offline, as far as it goes here: the verifier against the real staging-signed Sigstore
bundles in ../shared/sigstore, and the signer up to where it needs an OIDC token.

Those bundles are message signatures over blobs, not DSSE attestations: sigstore's ``verify_dsse``
runs the certificate chain to the staging Fulcio roots, the SCT, the Rekor inclusion proof and the
identity policy first, and only then finds there is no envelope. So a real bundle failing with "no
DSSE envelope" for its own identity proves every check before the envelope passed offline; the wrong
identity fails earlier. Not exercised here (no OIDC token, no Fulcio or Rekor reachable): keyless
signing itself, and a keyless DSSE bundle of ours; CI's lock workflow is where they first run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.attest import AttestationMismatch, AttestError, Instance, KeylessSigner, KeylessVerifier
from tests.attest.conftest import Signed, run

GITHUB = "https://github.com/login/oauth"


def _verifier(identity: str = "william@yossarian.net", issuer: str = GITHUB) -> KeylessVerifier:
    return KeylessVerifier(identity=identity, issuer=issuer, instance=Instance.STAGING)


@pytest.mark.shared
def test_a_real_bundle_passes_chain_log_and_identity_then_is_refused_as_no_attestation(sigstore_assets: Path) -> None:
    bundle = (sigstore_assets / "bundle_v3.txt.sigstore").read_bytes()
    with pytest.raises(AttestationMismatch) as caught:
        _verifier().verify(bundle, name="bundle_v3.txt.sigstore")
    assert str(caught.value) == (
        "bundle_v3.txt.sigstore: does not verify for identity 'william@yossarian.net' issued by "
        "'https://github.com/login/oauth' (Sigstore staging): cannot perform DSSE verification on a bundle "
        "without a DSSE envelope")


@pytest.mark.shared
def test_the_wrong_identity_or_issuer_fails_before_the_envelope(sigstore_assets: Path) -> None:
    bundle = (sigstore_assets / "bundle.txt.sigstore").read_bytes()
    with pytest.raises(AttestationMismatch, match=r"Certificate's SANs do not match william@yossarian\.net"):
        _verifier().verify(bundle, name="b")
    v3 = (sigstore_assets / "bundle_v3.txt.sigstore").read_bytes()
    with pytest.raises(AttestationMismatch, match=r"accounts\.google\.com"):
        _verifier(issuer="https://accounts.google.com").verify(v3, name="b")


@pytest.mark.shared
def test_the_production_root_does_not_trust_a_staging_bundle(sigstore_assets: Path) -> None:
    bundle = (sigstore_assets / "bundle_v3.txt.sigstore").read_bytes()
    verifier = KeylessVerifier(identity="william@yossarian.net", issuer=GITHUB)
    with pytest.raises(AttestationMismatch) as caught:
        verifier.verify(bundle, name="b")
    assert "without a DSSE envelope" not in str(caught.value)


@pytest.mark.shared
def test_a_corrupted_bundle_is_unreadable(sigstore_assets: Path) -> None:
    bundle = (sigstore_assets / "bundle_v3.txt.sigstore").read_bytes()
    with pytest.raises(AttestationMismatch, match=r"^b: not a readable Sigstore bundle"):
        _verifier().verify(bundle[: len(bundle) // 2], name="b")


@pytest.mark.shared
def test_the_cli_verifies_keyless_and_refuses_a_keyless_bundle_given_a_key(
        signed: Signed, sigstore_assets: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bundle = str(sigstore_assets / "bundle_v3.txt.sigstore")
    capsys.readouterr()
    assert run(signed.root, "verify-attestation", "--attestation", bundle, "--certificate-identity",
               "william@yossarian.net", "--certificate-oidc-issuer", GITHUB, "--sigstore-staging") == 1
    assert "without a DSSE envelope" in capsys.readouterr().err
    assert run(signed.root, "verify-attestation", "--attestation", bundle, "--key", str(signed.pub)) == 1
    err = capsys.readouterr().err
    assert "this Sigstore bundle is not signed with a key (it carries a certificate)" in err
    assert "hint: verify it with --certificate-identity and --certificate-oidc-issuer" in err


def test_our_key_bundle_is_refused_by_the_keyless_verifier(signed: Signed) -> None:
    data = (signed.out / "attestation.sigstore.json").read_bytes()
    with pytest.raises(AttestationMismatch, match="not a readable Sigstore bundle"):
        _verifier().verify(data, name="b")


def test_no_token_no_signer() -> None:
    with pytest.raises(AttestError) as caught:
        KeylessSigner(None)
    assert caught.value.exit_code == 2
    assert caught.value.message == "no ambient OIDC token: keyless signing is possible only where one exists (CI)"
