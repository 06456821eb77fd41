"""``python -m pipeline attest`` and ``verify-attestation`` end to end, on a copy of this checkout, with
a key generated at test time: what is signed, that it verifies, and that every kind of tampering after
signing fails with exit 1 naming the file or entry."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest

from pipeline.attest import (
    BUILD_TYPE,
    BUNDLE_FILE,
    ENVELOPE_FILE,
    PREDICATE_TYPE,
    STATEMENT_FILE,
    STATEMENT_TYPE,
    KeySigner,
    load_private_key,
)
from pipeline.lockfile import load
from pipeline.vocabulary.digest import canonical_json, sha256
from tests.attest.conftest import Signed, copy_checkout, run, write_key


def _verify(signed: Signed, *extra: str, attestation: str = f"attestations/{BUNDLE_FILE}") -> int:
    return run(signed.root, "verify-attestation", "--key", str(signed.pub), "--attestation", attestation, *extra)


def _statement(signed: Signed) -> dict[str, object]:
    data = json.loads((signed.out / STATEMENT_FILE).read_bytes())
    assert isinstance(data, dict)
    return data


def test_the_statement_covers_every_lock_bom_policy_and_the_inventory(signed: Signed) -> None:
    statement = _statement(signed)
    assert statement["_type"] == STATEMENT_TYPE
    assert statement["predicateType"] == PREDICATE_TYPE
    root = signed.root
    expected = sorted([*(p.relative_to(root).as_posix() for p in (root / "lockfiles").glob("*.lock.json")),
                       *(p.relative_to(root).as_posix() for p in (root / "bom").rglob("*.cdx.json")),
                       *(p.relative_to(root).as_posix() for p in (root / "policies").rglob("*.yaml")),
                       "docs/container-images.md"])
    subjects = statement["subject"]
    assert isinstance(subjects, list)
    assert [s["name"] for s in subjects] == expected
    for subject in subjects:
        assert subject["digest"] == {"sha256": sha256((root / subject["name"]).read_bytes()).removeprefix("sha256:")}


def test_resolved_dependencies_are_every_chart_image_and_the_engine_of_the_locks(signed: Signed) -> None:
    predicate = _statement(signed)["predicate"]
    assert isinstance(predicate, dict)
    definition = predicate["buildDefinition"]
    assert definition["buildType"] == BUILD_TYPE
    locks = [load(p) for p in sorted((signed.root / "lockfiles").glob("*.lock.json"))]
    assert definition["externalParameters"] == {"catalog": "recipes", "lockdir": "lockfiles",
                                                "recipes": sorted(lock.name for lock in locks)}  # no git here
    deps = definition["resolvedDependencies"]
    charts = {(c.chart.name, c.chart.archive) for lock in locks for c in lock.components.values() if c.chart}
    images = {(i.ref, i.digest) for lock in locks for _, i in lock.images()}
    assert {(d["name"].rpartition("@")[0], "sha256:" + d["digest"]["sha256"]) for d in deps
            if d["uri"].startswith("pkg:helm/")} == charts
    assert {(d["name"], "sha256:" + d["digest"]["sha256"]) for d in deps if d["uri"].startswith("pkg:oci/")} == images
    (engine,) = [d for d in deps if d["uri"].startswith("pkg:pypi/")]
    assert engine["uri"] == f"pkg:pypi/{locks[0].engine.name}@{locks[0].engine.version}"
    assert "sha256:" + engine["digest"]["sha256"] == locks[0].engine.library
    assert len(deps) == len(charts) + len(images) + 1
    builder = predicate["runDetails"]["builder"]
    assert builder["id"] == "urn:recipe-pipeline:builder:local"
    assert builder["version"]["backend"] == "local"
    assert builder["builderDependencies"] == [engine]


def test_a_signed_checkout_verifies_with_our_cli(signed: Signed, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert _verify(signed) == 0
    assert _verify(signed, attestation=f"attestations/{ENVELOPE_FILE}") == 0
    out = capsys.readouterr().out
    assert "subjects match the files on disk; the locks of 3 recipes are fresh" in out


def test_two_runs_give_byte_identical_statements_and_differently_randomised_signatures(
        signed: Signed, capsys: pytest.CaptureFixture[str]) -> None:
    first = {name: (signed.out / name).read_bytes() for name in (STATEMENT_FILE, ENVELOPE_FILE, BUNDLE_FILE)}
    assert run(signed.root, "attest", "--key", str(signed.key)) == 0
    assert "unchanged attestations/attestation.intoto.json" in capsys.readouterr().out
    second = {name: (signed.out / name).read_bytes() for name in first}
    assert first[STATEMENT_FILE] == second[STATEMENT_FILE]
    one, two = (json.loads(files[ENVELOPE_FILE]) for files in (first, second))
    assert one["payload"] == two["payload"] and one["payloadType"] == two["payloadType"]
    assert base64.b64decode(one["payload"]) == first[STATEMENT_FILE]
    assert one["signatures"][0]["keyid"] == two["signatures"][0]["keyid"]
    assert one["signatures"][0]["sig"] != two["signatures"][0]["sig"]  # ECDSA draws a fresh nonce each time


def test_signing_from_an_environment_variable(signed: Signed, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.rmtree(signed.out)
    monkeypatch.setenv("ATTEST_TEST_KEY", signed.key.read_text())
    assert run(signed.root, "attest", "--key-env", "ATTEST_TEST_KEY") == 0
    assert _verify(signed) == 0


@pytest.mark.parametrize("victim", ["lockfiles/h100-any.lock.json", "bom/catalog.cdx.json",
                                    "bom/recipes/h100-kind-inference.cdx.json",
                                    "policies/kyverno/recipe-digest-allowlist.yaml", "docs/container-images.md"])
def test_a_subject_changed_after_signing_fails_naming_it(signed: Signed, victim: str,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    path = signed.root / victim
    path.write_bytes(path.read_bytes().replace(b"\n", b"\n ", 1) if victim.endswith(".md") else
                     path.read_bytes() + b"\n")
    capsys.readouterr()
    assert _verify(signed) == 1
    err = capsys.readouterr().err
    assert f"{victim}: sha256:" in err and "(changed after signing)" in err
    assert "hint: re-run 'python -m pipeline attest' only if every change listed is intended" in err


def test_a_lock_edited_after_signing_fails_naming_it_and_its_integrity(signed: Signed,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    path = signed.root / "lockfiles" / "h100-any.lock.json"
    path.write_text(path.read_text().replace('"release": "accel-operator"', '"release": "evil"', 1))
    capsys.readouterr()
    assert _verify(signed) == 1
    err = capsys.readouterr().err
    assert "lockfiles/h100-any.lock.json: sha256:" in err
    assert "the locks are not usable: lockfiles/h100-any.lock.json:" in err
    assert "lockfile lockfiles/h100-any.lock.json fails its integrity check" in err


def test_an_added_and_a_removed_subject_are_named(signed: Signed, capsys: pytest.CaptureFixture[str]) -> None:
    (signed.root / "policies" / "kyverno" / "extra.yaml").write_text("kind: ClusterPolicy\n")
    (signed.root / "bom" / "recipes" / "h100-any.cdx.json").unlink()
    capsys.readouterr()
    assert _verify(signed) == 1
    err = capsys.readouterr().err
    assert "policies/kyverno/extra.yaml: not covered by the attestation (added after signing)" in err
    assert "bom/recipes/h100-any.cdx.json: attested (sha256:" in err and "but missing" in err
    assert "(2 problems)" in err


def test_a_statement_changed_inside_the_envelope_fails_the_signature(signed: Signed,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    for name in (ENVELOPE_FILE, BUNDLE_FILE):
        path = signed.out / name
        document = json.loads(path.read_bytes())
        envelope = document.get("dsseEnvelope", document)
        payload = base64.b64decode(envelope["payload"]).replace(b"h100-any", b"h100-all", 1)
        envelope["payload"] = base64.b64encode(payload).decode()
        path.write_bytes(canonical_json(document))
        capsys.readouterr()
        assert _verify(signed, attestation=f"attestations/{name}") == 1
        err = capsys.readouterr().err
        assert err.startswith(f"error: attestations/{name}: the signature does not verify with ECDSA P-256 key sha256:")
        assert "(the statement was changed after signing, or another key signed it)" in err


def test_the_readable_statement_changed_after_signing_is_named(signed: Signed,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    path = signed.out / STATEMENT_FILE
    path.write_bytes(path.read_bytes().replace(b"h100-any", b"h100-all", 1))
    capsys.readouterr()
    assert _verify(signed) == 1
    assert ("attestations/attestation.intoto.json: differs from the statement the signature covers "
            "(changed after signing)") in capsys.readouterr().err


def test_another_key_does_not_verify(signed: Signed, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, other = write_key(tmp_path)
    capsys.readouterr()
    assert run(signed.root, "verify-attestation", "--key", str(other)) == 1
    assert "the signature does not verify with ECDSA P-256 key" in capsys.readouterr().err


def test_dependencies_and_recipes_that_differ_from_the_locks_are_named_entry_by_entry(
        signed: Signed, capsys: pytest.CaptureFixture[str]) -> None:
    # A statement signed by the right key whose dependencies are not what the locks give.
    statement = json.loads((signed.out / STATEMENT_FILE).read_bytes())
    deps = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    image = next(d for d in deps if d["uri"].startswith("pkg:oci/"))
    image["digest"]["sha256"] = "0" * 64
    dropped = next(d for d in deps if d["uri"].startswith("pkg:helm/"))
    deps.remove(dropped)
    statement["predicate"]["buildDefinition"]["externalParameters"]["recipes"].pop()
    payload = canonical_json(statement)
    signer = KeySigner(load_private_key(signed.key.read_bytes(), where="test"))
    for name, data in signer.sign(payload).files.items():
        (signed.out / name).write_bytes(data)
    (signed.out / STATEMENT_FILE).write_bytes(payload)
    capsys.readouterr()
    assert _verify(signed) == 1
    err = capsys.readouterr().err
    assert f"dependency {image['name']} ({image['uri']}): digest differ: the attestation says" in err
    assert f"dependency {dropped['name']} ({dropped['uri']}): in the locks but not in the attestation" in err
    assert "externalParameters.recipes: the attestation says ['h100-any', 'h100-eks-ubuntu-training-kubeflow'], the " \
           "locks are ['h100-any', 'h100-eks-ubuntu-training-kubeflow', 'h100-kind-inference']" in err


def test_a_stale_lock_fails_verification(signed: Signed, capsys: pytest.CaptureFixture[str]) -> None:
    values = next((signed.root / "recipes" / "components").rglob("values*.yaml"))
    values.write_text(values.read_text() + "\n# changed\n")
    capsys.readouterr()
    assert _verify(signed) == 1
    err = capsys.readouterr().err
    assert "the locks are not usable: " in err and "stale" in err


# ---- errors a user can meet (each message pinned) ------------------------------------------------


@pytest.mark.parametrize(("argv", "code", "message"), [
    (["verify-attestation"], 2, "error: verifying an attestation needs --key PUB, or both --certificate-identity and "
                                "--certificate-oidc-issuer"),
    (["verify-attestation", "--key", "k.pub", "--certificate-identity", "x"], 2,
     "error: give either --key or --certificate-identity with --certificate-oidc-issuer, not both"),
    (["verify-attestation", "--key", "missing.pub"], 2, "error: public key file missing.pub cannot be read"),
    (["attest", "--key", "missing.key"], 2, "error: key file missing.key cannot be read"),
    (["attest", "--key-env", "ATTEST_NOT_SET"], 2, "error: environment variable ATTEST_NOT_SET is not set or empty"),
])
def test_usage_errors(signed: Signed, argv: list[str], code: int, message: str,
                      capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ATTEST_NOT_SET", raising=False)
    capsys.readouterr()
    assert run(signed.root, *argv) == code
    assert capsys.readouterr().err.startswith(message)


def test_a_missing_attestation_is_bad_input(signed: Signed, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.rmtree(signed.out)
    capsys.readouterr()
    assert _verify(signed) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: attestation attestations/attestation.sigstore.json cannot be read (No such file")
    assert "hint: create it with 'python -m pipeline attest'" in err


def test_keys_that_are_not_unencrypted_p256_are_refused(signed: Signed, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    p384, p384_pub = write_key(tmp_path, ec.SECP384R1())
    key = ec.generate_private_key(ec.SECP256R1())
    encrypted = tmp_path / "encrypted.key"
    encrypted.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.BestAvailableEncryption(b"secret")))
    cases = [(["attest", "--key", str(p384)], f"error: {p384}: the key is secp384r1, not ECDSA P-256"),
             (["attest", "--key", str(encrypted)], f"error: {encrypted}: the private key is encrypted"),
             (["attest", "--key", str(signed.pub)], f"error: {signed.pub}: not a PEM private key"),
             (["verify-attestation", "--key", str(p384_pub)],
              f"error: {p384_pub}: the key is not an ECDSA P-256 key (attestations are signed with P-256)"),
             (["verify-attestation", "--key", str(signed.key)],
              f"error: {signed.key}: this is a PRIVATE key; verification needs only the public key")]
    for argv, message in cases:
        capsys.readouterr()
        assert run(signed.root, *argv) == 2, argv
        assert capsys.readouterr().err.startswith(message), argv


def test_keyless_signing_without_an_ambient_token_says_where_it_works(
        signed: Signed, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN", "SIGSTORE_ID_TOKEN",
                 "GOOGLE_SERVICE_ACCOUNT_NAME", "BUILDKITE", "GITLAB_CI", "CIRCLECI"):
        monkeypatch.delenv(name, raising=False)
    before = (signed.out / BUNDLE_FILE).read_bytes()
    capsys.readouterr()
    assert run(signed.root, "attest", "--keyless") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no ambient OIDC token: keyless signing is possible only where one exists (CI)")
    assert "hint: keyless signing needs an ambient OIDC token: run it in CI with 'permissions: id-token: write'" in err
    assert (signed.out / BUNDLE_FILE).read_bytes() == before  # nothing written


def test_stale_published_files_are_not_signed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = copy_checkout(tmp_path / "checkout")
    key, _ = write_key(tmp_path)
    bom = root / "bom" / "catalog.cdx.json"
    bom.write_bytes(bom.read_bytes() + b"\n")
    (root / "policies" / "kyverno" / "recipe-digest-allowlist.yaml").unlink()
    capsys.readouterr()
    assert run(root, "attest", "--key", str(key)) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: nothing was signed: what is published from the locks is stale:")
    assert "catalog.cdx.json" in err and "kyverno/recipe-digest-allowlist.yaml" in err
    assert not (root / "attestations").exists()
