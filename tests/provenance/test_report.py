"""docs/provenance-matrix.md: the table, the gaps, and the commands a reviewer runs, offline and checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.images import Origin
from pipeline.provenance import (
    ArtifactSource,
    LockedImage,
    Profile,
    ProvenanceFormat,
    PublicKey,
    SbomFormat,
    Signer,
    SigningMode,
    SigstoreInstance,
    cosign_commands,
    load_matrix,
    locked_images,
    provenance,
    render_matrix,
)
from pipeline.vocabulary.reference import ImageRef
from tests.locks import fake_digest, images_lock
from tests.provenance.conftest import push_image
from tests.provenance.cosign import generate_key, push_signature, simple_signing_payload
from tests.provenance.locks import CATALOG
from tests.servers import Registry

DIGEST = fake_digest("x")


def image(ref: str, digest: str | None = DIGEST) -> LockedImage:
    from pipeline.vocabulary.digest import Digest
    return LockedImage(component="app", ref=ImageRef.parse(ref), digest=Digest(digest) if digest else None,
                       origin=Origin.CHART_DEFAULT, recipes=("r",))


def profile(signer: Signer, *, provenance: ProvenanceFormat = ProvenanceFormat.NONE,
            sbom: SbomFormat = SbomFormat.NONE) -> Profile:
    return Profile(label="app", publisher="p", signing=signer, provenance=provenance, sbom=sbom)


def test_commands_for_each_kind_of_signer() -> None:
    key = PublicKey.from_pem(generate_key("ecdsa-p256").public_pem)
    by_file = profile(Signer(mode=SigningMode.KEY, key=key, key_file="keys/app.pub", tlog=False),
                      provenance=ProvenanceFormat.SLSA_V1, sbom=SbomFormat.SPDX)
    assert cosign_commands(image("ghcr.io/org/app:v1"), by_file) == [
        f"cosign verify --key recipes/keys/app.pub --insecure-ignore-tlog=true ghcr.io/org/app@{DIGEST}",
        f"cosign verify-attestation --type slsaprovenance1 --key recipes/keys/app.pub --insecure-ignore-tlog=true "
        f"ghcr.io/org/app@{DIGEST}",
        f"cosign verify-attestation --type spdxjson --key recipes/keys/app.pub --insecure-ignore-tlog=true "
        f"ghcr.io/org/app@{DIGEST}",
    ]
    keyless = profile(Signer(mode=SigningMode.KEYLESS, identity="https://github.com/o/r/.github/workflows/r.yaml@refs/"
                             "tags/v1", issuer="https://token.actions.githubusercontent.com"))
    assert cosign_commands(image("busybox:1.36"), keyless) == [
        "cosign verify --certificate-identity https://github.com/o/r/.github/workflows/r.yaml@refs/tags/v1 "
        f"--certificate-oidc-issuer https://token.actions.githubusercontent.com docker.io/library/busybox@{DIGEST}"]
    unsigned = profile(Signer(mode=SigningMode.NONE))
    assert cosign_commands(image("localhost:5001/recipe-lab/busybox:1.36"), unsigned) == [
        f"cosign tree --allow-http-registry localhost:5001/recipe-lab/busybox@{DIGEST}"
        "  # signing: none; expect no signature: admitted by digest only"]
    assert cosign_commands(image("busybox:1.36", None), unsigned) == [
        "# docker.io/library/busybox:1.36: not locked to a digest yet: nothing to verify"]


def test_our_catalogs_matrix_offline_lists_every_component_gap_and_policy() -> None:
    locks = [images_lock("eks", {"accel-operator": ["localhost:5001/recipe-lab/accel-operator:v1.4.2"],
                              "node-tuning": []})]
    text = render_matrix(load_matrix(CATALOG), locked_images(locks), None).decode()
    assert "Signature status: **not checked** in this run" in text
    assert ("| accel-operator | recipe-lab (this project; images built from recipes/images.yaml) | 1 | none declared "
            "| not signed | none (gap: #6) | none (gap: #6) | Kyverno recipe-digest-allowlist; policy-controller "
            "recipe-unsigned-accel-operator (static pass) |") in text
    assert "| node-tuning | recipe-lab (this project; images built from recipes/images.yaml) | 0 |" in text
    assert "none needed (no locked images)" in text
    assert ("| accel-operator | signature | recipe-lab platform maintainers | #6 | admitted only at locked digests "
            "by the generated Kyverno digest-allowlist policy (recipe-digest-allowlist) |") in text
    assert (f"cosign tree --allow-http-registry localhost:5001/recipe-lab/accel-operator@"
            f"{fake_digest('localhost:5001/recipe-lab/accel-operator:v1.4.2')}") in text
    assert render_matrix(load_matrix(CATALOG), locked_images(locks), None).decode() == text


@pytest.mark.registry
def test_the_stage_checks_the_registry_and_writes_the_document(registry: Registry, source: ArtifactSource,
                                                               tmp_path: Path) -> None:
    key = generate_key("ed25519")
    catalog = tmp_path / "catalog"
    (catalog / "keys").mkdir(parents=True)
    (catalog / "keys" / "app.pub").write_text(key.public_pem)
    (catalog / "provenance.yaml").write_text(
        "apiVersion: pipeline.recipes.dev/v1\nkind: ProvenanceMatrix\nspec:\n  components:\n    app:\n"
        "      publisher: tests\n      signing: {mode: key, keyFile: keys/app.pub, tlog: false}\n"
        "      provenance: none\n      sbom: none\n      gaps:\n"
        "        - {facet: provenance, owner: a, tracking: '#1', mitigation: signature-verification}\n"
        "        - {facet: sbom, owner: a, tracking: '#1', mitigation: signature-verification}\n")
    signed = push_image(registry, "signed", repository="recipe-lab/signed")
    unsigned = push_image(registry, "unsigned", repository="recipe-lab/unsigned")
    payload = simple_signing_payload(signed.name, signed.subject.digest)
    push_signature(registry, signed.subject, payload, key.sign(payload))
    refs = {str(signed.locked.ref): signed.subject.digest, str(unsigned.locked.ref): unsigned.subject.digest}
    locks = [images_lock("r", {"app": list(refs)}, pinned=refs)]
    document = tmp_path / "docs" / "provenance-matrix.md"
    result = provenance(catalog, locks, document=document, source=source)
    assert result.written and result.results is not None
    text = document.read_text()
    assert "Signature status: **checked against the registries** in this run" in text
    assert "| app | tests | 2 | verified 1, absent 1 |" in text
    assert f"- `{unsigned.locked.ref}`: signature absent: no signature found (referrers API" in text
    again = provenance(catalog, locks, document=document, source=source)
    assert not again.written


def test_staging_keyless_signers_are_described_with_their_instance() -> None:
    signer = Signer(mode=SigningMode.KEYLESS, identity="a@b", issuer="https://github.com/login/oauth",
                    instance=SigstoreInstance.STAGING)
    assert signer.describe() == "keyless: a@b (issuer https://github.com/login/oauth, Sigstore staging)"
