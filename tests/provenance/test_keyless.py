"""Keyless verification, offline, with the real staging-signed bundles in ../shared/sigstore.

Those bundles sign blobs, not images: an image signature in the bundle format is the same check over
the image's payload, so they exercise :class:`KeylessVerifier` honestly with no network. What they
cannot exercise: Rekor online lookups, a TUF refresh of the trusted root, and a keyless signature
that cosign attached to a real image.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from pipeline.errors import SignatureError
from pipeline.provenance import KeylessVerifier, SigstoreInstance
from pipeline.provenance.keyless import bundled_trusted_root
from pipeline.vocabulary.digest import Digest

GITHUB = "https://github.com/login/oauth"
BUNDLES = [("bundle_v3.txt", "william@yossarian.net"), ("bundle.txt", "a@tny.town")]


@pytest.mark.shared
@pytest.mark.parametrize(("artifact", "identity"), BUNDLES)
def test_a_real_bundle_verifies_for_its_identity_and_issuer(sigstore_assets: Path, artifact: str,
                                                            identity: str) -> None:
    data = (sigstore_assets / artifact).read_bytes()
    bundle = (sigstore_assets / f"{artifact}.sigstore").read_bytes()
    verifier = KeylessVerifier()
    verifier.verify_artifact(data, bundle, identity=identity, issuer=GITHUB, instance=SigstoreInstance.STAGING)
    digest = Digest("sha256:" + hashlib.sha256(data).hexdigest())
    verifier.verify_artifact(digest, bundle, identity=identity, issuer=GITHUB, instance=SigstoreInstance.STAGING)


@pytest.mark.shared
def test_the_wrong_identity_fails_with_the_certificate_names(sigstore_assets: Path) -> None:
    data = (sigstore_assets / "bundle.txt").read_bytes()
    bundle = (sigstore_assets / "bundle.txt.sigstore").read_bytes()
    with pytest.raises(SignatureError) as caught:
        KeylessVerifier().verify_artifact(data, bundle, identity="william@yossarian.net", issuer=GITHUB,
                                          instance=SigstoreInstance.STAGING)
    assert caught.value.message == ("Certificate's SANs do not match william@yossarian.net; "
                                    "actual SANs: {'a@tny.town'}")
    assert caught.value.hint is not None and "identity and issuer" in caught.value.hint
    assert caught.value.exit_code == 1


@pytest.mark.shared
def test_the_wrong_issuer_fails(sigstore_assets: Path) -> None:
    data = (sigstore_assets / "bundle_v3.txt").read_bytes()
    bundle = (sigstore_assets / "bundle_v3.txt.sigstore").read_bytes()
    with pytest.raises(SignatureError, match=r"accounts\.google\.com"):
        KeylessVerifier().verify_artifact(data, bundle, identity="william@yossarian.net",
                                          issuer="https://accounts.google.com", instance=SigstoreInstance.STAGING)


@pytest.mark.shared
def test_one_byte_more_in_the_artifact_fails(sigstore_assets: Path) -> None:
    data = (sigstore_assets / "bundle_v3.txt").read_bytes() + b"\n"
    bundle = (sigstore_assets / "bundle_v3.txt.sigstore").read_bytes()
    with pytest.raises(SignatureError, match=r"^Bundle message digest mismatch$"):
        KeylessVerifier().verify_artifact(data, bundle, identity="william@yossarian.net", issuer=GITHUB,
                                          instance=SigstoreInstance.STAGING)


@pytest.mark.shared
def test_a_staging_bundle_does_not_chain_to_the_production_roots(sigstore_assets: Path) -> None:
    data = (sigstore_assets / "bundle_v3.txt").read_bytes()
    bundle = (sigstore_assets / "bundle_v3.txt.sigstore").read_bytes()
    with pytest.raises(SignatureError):
        KeylessVerifier().verify_artifact(data, bundle, identity="william@yossarian.net", issuer=GITHUB,
                                          instance=SigstoreInstance.PRODUCTION)


@pytest.mark.shared
def test_a_reviewed_trusted_root_file_can_replace_the_bundled_one(sigstore_assets: Path, tmp_path: Path) -> None:
    root = tmp_path / "staging-trusted-root.json"
    root.write_bytes(bundled_trusted_root(SigstoreInstance.STAGING))
    verifier = KeylessVerifier(trusted_roots={SigstoreInstance.PRODUCTION: root})
    data = (sigstore_assets / "bundle_v3.txt").read_bytes()
    bundle = (sigstore_assets / "bundle_v3.txt.sigstore").read_bytes()
    verifier.verify_artifact(data, bundle, identity="william@yossarian.net", issuer=GITHUB)


def test_a_broken_bundle_is_refused_with_a_reason() -> None:
    with pytest.raises(SignatureError, match=r"^not a readable Sigstore bundle \("):
        KeylessVerifier().verify_artifact(b"x", b'{"mediaType": "nope"}', identity="a", issuer=GITHUB)


def test_verification_neither_reads_nor_writes_the_user_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    with pytest.raises(SignatureError):
        KeylessVerifier().verify_artifact(b"x", b"{}", identity="a", issuer=GITHUB)
    KeylessVerifier()._verifier(SigstoreInstance.PRODUCTION)
    assert list(tmp_path.iterdir()) == []


def test_the_bundled_trusted_roots_are_the_wheels() -> None:
    for instance in SigstoreInstance:
        root = json.loads(bundled_trusted_root(instance))
        assert root["mediaType"].startswith("application/vnd.dev.sigstore.trustedroot")
