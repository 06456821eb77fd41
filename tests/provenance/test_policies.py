"""Admission policies from the lockfiles and the matrix, checked against the real CRD schemas.

Every generated resource is validated with jsonschema against the openAPIV3Schema of its served
version in ../shared/schemas *and* walked for fields the API server would prune silently (CRDs do
not forbid unknown fields). The Kyverno allow-list rule is also evaluated here with a port of the
two Kyverno pieces it relies on (``image_normalize`` and the ``AnyIn``/``AnyNotIn`` wildcard
operators), to pin what it admits and refuses.
"""

from __future__ import annotations

import copy
import fnmatch
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.errors import GateError, LockError, RecipeError
from pipeline.provenance import (
    ALLOWLIST_POLICY,
    VERIFY_POLICY,
    check_policies,
    load_crd,
    load_matrix,
    locked_images,
    policies,
    render_policies,
    schema_errors,
    unknown_fields,
    validate_files,
    validate_resources,
    write_policies,
)
from pipeline.provenance.crd import Crd
from pipeline.provenance.policies import KyvernoApi
from pipeline.provenance.stage import CRD_FILES
from pipeline.vocabulary.reference import ImageRef
from tests.locks import fake_digest, images_lock
from tests.provenance.cosign import generate_key
from tests.provenance.locks import CATALOG, catalog_lockfiles

KEYLESS_ID = "https://github.com/example/exporter/.github/workflows/release.yaml@refs/tags/v2.0.0"
MATRIX = f"""\
apiVersion: pipeline.recipes.dev/v1
kind: ProvenanceMatrix
spec:
  components:
    operator:
      publisher: example
      signing: {{mode: key, keyFile: keys/operator.pub}}
      provenance: slsa-v1
      sbom: cyclonedx
      overrides:
        - images: example.com/third/*
          publisher: a third party
          signing: {{mode: none}}
          provenance: none
          sbom: none
          gaps: &gaps
            - {{facet: signature, owner: sec, tracking: "#7", mitigation: digest-allowlist}}
            - {{facet: provenance, owner: sec, tracking: "#7", mitigation: digest-allowlist}}
            - {{facet: sbom, owner: sec, tracking: "#7", mitigation: digest-allowlist}}
    exporter:
      publisher: example
      signing: {{mode: keyless, identity: "{KEYLESS_ID}", issuer: "https://token.actions.githubusercontent.com"}}
      provenance: slsa-v0.2
      sbom: spdx
    tools:
      publisher: Docker Official Images
      signing: {{mode: none}}
      provenance: none
      sbom: none
      gaps: *gaps
"""


@pytest.fixture
def crds(shared_schemas: Path) -> list[Crd]:
    return [load_crd(shared_schemas / rel) for rel in CRD_FILES]


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    root = tmp_path / "catalog"
    (root / "keys").mkdir(parents=True)
    (root / "keys" / "operator.pub").write_text(generate_key("ecdsa-p256").public_pem)
    (root / "provenance.yaml").write_text(MATRIX)
    return root


LOCKS = [
    images_lock("eks", {"operator": ["example.com/lab/operator:v1", "example.com/third/helper:2"],
                     "exporter": ["example.com/lab/exporter:v2"], "tools": ["docker.io/library/busybox:1.36"]}),
    images_lock("kind", {"operator": ["example.com/lab/operator:v1.1"], "tools": ["docker.io/library/busybox:1.36"]}),
]


def docs(files: Mapping[str, bytes]) -> dict[str, dict[str, Any]]:
    return {rel: yaml.safe_load(data) for rel, data in files.items()}


# ---- a port of what Kyverno evaluates, to pin the allow-list's meaning -------------------------


def image_normalize(text: str) -> str:
    """Kyverno's image_normalize: registry/path@digest when a digest is present, else registry/path:tag."""
    ref = ImageRef.parse(text)
    return f"{ref.name}@{ref.digest}" if ref.digest else f"{ref.name}:{ref.tag or 'latest'}"


def _any_in(key: str, values: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(key, v) or fnmatch.fnmatchcase(v, key) for v in values)


def kyverno_denies(rule: Mapping[str, Any], image: str) -> bool:
    (each,) = rule["validate"]["foreach"]
    conditions = each["deny"]["conditions"]["all"]
    assert [c["key"] for c in conditions] == ["{{ image_normalize(element.image) }}"] * 2
    key = image_normalize(image)
    results = []
    for condition in conditions:
        inside = _any_in(key, condition["value"])
        results.append(inside if condition["operator"] == "AnyIn" else not inside)
    return all(results)


# ---- the tests -------------------------------------------------------------------------------


@pytest.mark.shared
def test_every_generated_policy_validates_against_the_crds(catalog: Path, crds: list[Crd]) -> None:
    files = render_policies(load_matrix(catalog), locked_images(LOCKS))
    assert sorted(files) == [
        "kyverno/recipe-digest-allowlist.yaml", "kyverno/recipe-verify-images.yaml",
        "policy-controller/recipe-exporter-attestations.yaml", "policy-controller/recipe-exporter.yaml",
        "policy-controller/recipe-operator-attestations.yaml", "policy-controller/recipe-operator.yaml",
        "policy-controller/recipe-unsigned-operator-1.yaml", "policy-controller/recipe-unsigned-tools.yaml",
    ]
    parsed = docs(files)
    validate_resources(list(parsed.items()), crds)
    for doc in parsed.values():
        crd = next(c for c in crds if c.kind == doc["kind"])
        assert schema_errors(doc, crd) == []
        assert unknown_fields(doc, crd) == []


@pytest.mark.shared
def test_renaming_one_field_is_caught_by_the_unknown_field_check_not_by_the_schema(catalog: Path,
                                                                                  crds: list[Crd]) -> None:
    verify = docs(render_policies(load_matrix(catalog), locked_images(LOCKS)))["kyverno/recipe-verify-images.yaml"]
    edited = copy.deepcopy(verify)
    rule = edited["spec"]["rules"][0]["verifyImages"][0]
    rule["verifyDigests"] = rule.pop("verifyDigest")
    kyverno = next(c for c in crds if c.kind == "ClusterPolicy")
    assert schema_errors(edited, kyverno) == []  # the CRD does not forbid unknown fields ...
    assert unknown_fields(edited, kyverno) == [".spec.rules[0].verifyImages[0].verifyDigests"]  # ... the walk does
    with pytest.raises(GateError) as caught:
        validate_resources([("kyverno/recipe-verify-images.yaml", edited)], crds)
    assert caught.value.message == (
        "1 problem(s) in generated policies against the CRD schemas:\n  kyverno/recipe-verify-images.yaml: "
        "ClusterPolicy/recipe-verify-images: .spec.rules[0].verifyImages[0].verifyDigests: unknown field (the API "
        "server would drop it silently)")


@pytest.mark.shared
def test_a_wrong_type_or_enum_is_a_schema_error(catalog: Path, crds: list[Crd]) -> None:
    parsed = docs(render_policies(load_matrix(catalog), locked_images(LOCKS)))
    verify = copy.deepcopy(parsed["kyverno/recipe-verify-images.yaml"])
    verify["spec"]["rules"][0]["verifyImages"][0]["verifyDigest"] = "yes"
    verify["spec"]["rules"][0]["verifyImages"][0]["type"] = "cosign"
    kyverno = next(c for c in crds if c.kind == "ClusterPolicy")
    assert schema_errors(verify, kyverno) == [
        ".spec.rules[0].verifyImages[0].type: 'cosign' is not one of ['Cosign', 'SigstoreBundle', 'Notary']",
        ".spec.rules[0].verifyImages[0].verifyDigest: 'yes' is not of type 'boolean'",
    ]
    pc = copy.deepcopy(parsed["policy-controller/recipe-operator.yaml"])
    pc["apiVersion"] = "policy.sigstore.dev/v1"
    policy_controller = next(c for c in crds if c.kind == "ClusterImagePolicy")
    assert schema_errors(pc, policy_controller) == [
        "apiVersion: 'policy.sigstore.dev/v1' is not served by the ClusterImagePolicy CRD (served: "
        "policy.sigstore.dev/v1alpha1, policy.sigstore.dev/v1beta1)"]


def test_verify_rules_come_from_the_matrix_and_never_mutate(catalog: Path) -> None:
    matrix = load_matrix(catalog)
    verify = docs(render_policies(matrix, locked_images(LOCKS)))["kyverno/recipe-verify-images.yaml"]
    assert verify["metadata"]["name"] == VERIFY_POLICY
    assert verify["spec"]["background"] is False
    rules = {r["name"]: r["verifyImages"][0] for r in verify["spec"]["rules"]}
    assert sorted(rules) == ["verify-exporter", "verify-operator"]
    operator = rules["verify-operator"]
    assert operator["imageReferences"] == ["example.com/lab/operator:*", "example.com/lab/operator@*"]
    assert (operator["verifyDigest"], operator["mutateDigest"], operator["required"]) == (True, False, True)
    assert operator["failureAction"] == "Enforce"
    key = matrix.components["operator"].profile.signing.key
    assert key is not None
    assert operator["attestors"] == [{"count": 1, "entries": [{"keys": {"publicKeys": key.pem}}]}]
    assert [a["type"] for a in operator["attestations"]] == ["https://cyclonedx.org/bom",
                                                             "https://slsa.dev/provenance/v1"]
    exporter = rules["verify-exporter"]
    assert exporter["attestors"] == [{"count": 1, "entries": [{"keyless": {
        "subject": KEYLESS_ID, "issuer": "https://token.actions.githubusercontent.com",
        "rekor": {"url": "https://rekor.sigstore.dev"}}}]}]


def test_the_allowlist_admits_locked_digests_only(catalog: Path) -> None:
    # The ClusterPolicy form (--kyverno-api clusterpolicy), checked against a port of Kyverno's
    # image_normalize; the default ImageValidatingPolicy runs in the real kyverno CLI
    # (tests/test_pinned_render.py).
    files = render_policies(load_matrix(catalog), locked_images(LOCKS), kyverno=KyvernoApi.CLUSTER_POLICY)
    allow = docs(files)["kyverno/recipe-digest-allowlist.yaml"]
    assert allow["metadata"]["name"] == ALLOWLIST_POLICY
    rules = {r["name"]: r for r in allow["spec"]["rules"]}
    # chart defaults of every component, unsigned ones too; the keyless exporter is chart-default as well
    assert sorted(rules) == ["allow-docker-io-library-busybox", "allow-example-com-lab-exporter",
                             "allow-example-com-lab-operator", "allow-example-com-third-helper"]
    busybox = rules["allow-docker-io-library-busybox"]
    assert busybox["validate"]["failureAction"] == "Enforce"
    assert busybox["validate"]["foreach"][0]["list"] == (
        "request.object.spec.[ephemeralContainers, initContainers, containers][]")
    locked = fake_digest("docker.io/library/busybox:1.36")
    platform = fake_digest("docker.io/library/busybox:1.36 amd64")
    assert not kyverno_denies(busybox, f"busybox@{locked}")
    assert not kyverno_denies(busybox, f"docker.io/library/busybox:1.36@{locked}")
    assert not kyverno_denies(busybox, f"busybox@{platform}")
    assert kyverno_denies(busybox, "busybox:1.36")
    assert kyverno_denies(busybox, "docker.io/library/busybox:1.36")
    assert kyverno_denies(busybox, f"busybox@{fake_digest('other')}")
    assert not kyverno_denies(busybox, "example.com/lab/operator:v1")  # another repository: not this rule's
    assert not kyverno_denies(busybox, "busyboxes:1")
    operator = rules["allow-example-com-lab-operator"]
    for ref in ("example.com/lab/operator:v1", "example.com/lab/operator:v1.1"):
        assert not kyverno_denies(operator, f"example.com/lab/operator@{fake_digest(ref)}")


def test_policy_controller_policies_separate_signature_attestations_and_unsigned(catalog: Path) -> None:
    parsed = docs(render_policies(load_matrix(catalog), locked_images(LOCKS)))
    operator = parsed["policy-controller/recipe-operator.yaml"]["spec"]
    assert operator["images"] == [{"glob": "example.com/lab/operator*"}]
    assert [sorted(a) for a in operator["authorities"]] == [["ctlog", "key", "name"]]
    attestations = parsed["policy-controller/recipe-operator-attestations.yaml"]["spec"]["authorities"][0]
    # SLSA v1 is not a predicate type policy-controller accepts: Kyverno checks it alone.
    assert attestations["attestations"] == [{"name": "cyclonedx", "predicateType": "cyclonedx"}]
    exporter = parsed["policy-controller/recipe-exporter.yaml"]["spec"]["authorities"][0]
    assert exporter["keyless"] == {"url": "https://fulcio.sigstore.dev",
                                   "identities": [{"issuer": "https://token.actions.githubusercontent.com",
                                                   "subject": KEYLESS_ID}]}
    exporter_att = parsed["policy-controller/recipe-exporter-attestations.yaml"]["spec"]["authorities"][0]
    assert [a["predicateType"] for a in exporter_att["attestations"]] == ["slsaprovenance", "spdxjson"]
    tools = parsed["policy-controller/recipe-unsigned-tools.yaml"]["spec"]
    assert tools == {"images": [{"glob": "index.docker.io/library/busybox*"}],
                     "authorities": [{"name": "digest-allowlist", "static": {"action": "pass"}}], "mode": "enforce"}


def test_output_is_deterministic_and_pem_is_a_block_literal(catalog: Path) -> None:
    first = render_policies(load_matrix(catalog), locked_images(LOCKS))
    assert render_policies(load_matrix(catalog), locked_images(list(reversed(LOCKS)))) == first
    text = first["kyverno/recipe-verify-images.yaml"].decode()
    assert text.startswith("# Generated by 'python -m pipeline policies'")
    assert "publicKeys: |\n" in text and "-----BEGIN PUBLIC KEY-----\n" in text
    assert "&id" not in text and "*id" not in text  # no YAML anchors: every rule spells its match out


def test_images_without_a_locked_digest_cannot_be_admitted(catalog: Path) -> None:
    locks = [images_lock("eks", {"tools": ["docker.io/library/busybox:1.36"]}, digests=False)]
    with pytest.raises(LockError) as caught:
        render_policies(load_matrix(catalog), locked_images(locks))
    assert caught.value.message == ("1 locked image(s) have no digest, so no policy can admit them at their locked "
                                    "digest; first: docker.io/library/busybox:1.36 of component 'tools' (recipes eks)")
    assert caught.value.hint is not None and "registry resolution" in caught.value.hint


def test_a_glob_that_would_catch_a_repository_of_another_signer_is_refused(catalog: Path) -> None:
    locks = [images_lock("eks", {"operator": ["example.com/lab/operator:v1"],
                                 "tools": ["example.com/lab/operator-x:1"]})]
    with pytest.raises(RecipeError, match=r"glob 'example.com/lab/operator\*' for 'operator' also matches "
                                          r"repository 'example.com/lab/operator-x' of 'tools'"):
        render_policies(load_matrix(catalog), locked_images(locks))


def test_writing_is_atomic_idempotent_and_removes_stale_generated_files(catalog: Path, tmp_path: Path) -> None:
    out = tmp_path / "policies"
    files = render_policies(load_matrix(catalog), locked_images(LOCKS))
    first = write_policies(out, files)
    assert len(first.written) == len(files) and first.unchanged == () and first.removed == ()
    (out / "kyverno" / "handwritten.yaml").write_text("kind: ClusterPolicy\n")
    fewer = render_policies(load_matrix(catalog), locked_images([LOCKS[1]]))
    second = write_policies(out, fewer)
    assert [p.name for p in second.removed] == ["recipe-exporter-attestations.yaml", "recipe-exporter.yaml",
                                                "recipe-unsigned-operator-1.yaml"]
    assert (out / "kyverno" / "handwritten.yaml").is_file()  # not ours: kept
    assert write_policies(out, fewer).written == ()


@pytest.mark.shared
def test_the_qualify_check_finds_stale_or_invalid_policies(catalog: Path, tmp_path: Path,
                                                           shared_schemas: Path) -> None:
    out = tmp_path / "policies"
    with pytest.raises(GateError, match=r"not what the lockfiles and the matrix give \(Kyverno ImageValidatingPolicy, "
                                        r"provenance.yaml spec.policies.kyvernoApi\): kyverno/recipe-digest"):
        check_policies(catalog, LOCKS, out=out, schemas=shared_schemas)
    write_policies(out, render_policies(load_matrix(catalog), locked_images(LOCKS)))
    assert check_policies(catalog, LOCKS, out=out, schemas=shared_schemas) == 8
    (out / "policy-controller" / "recipe-operator.yaml").write_text("# edited\n")
    with pytest.raises(GateError, match=r"policy-controller/recipe-operator.yaml") as caught:
        check_policies(catalog, LOCKS, out=out, schemas=shared_schemas)
    assert caught.value.hint == "run 'python -m pipeline policies' and commit the result"


@pytest.mark.shared
def test_our_catalogs_policies_validate_and_pin_every_built_digest(tmp_path: Path, crds: list[Crd]) -> None:
    locks = catalog_lockfiles(tmp_path)
    images = locked_images(locks)
    files = render_policies(load_matrix(CATALOG), images)
    assert "kyverno/recipe-verify-images.yaml" not in files  # nothing in our catalog is signed (yet)
    out = tmp_path / "policies"
    write_policies(out, files)
    assert validate_files([out / rel for rel in files], crds, root=tmp_path) == len(files)
    ivp = docs(files)["kyverno/recipe-digest-allowlist.yaml"]  # the default: an ImageValidatingPolicy
    assert (ivp["apiVersion"], ivp["kind"]) == ("policies.kyverno.io/v1", "ImageValidatingPolicy")
    variables = {v["name"]: v["expression"] for v in ivp["spec"]["variables"]}
    assert all(f"'{image.ref.name}@{image.digest}'" in variables["allowed"] for image in images)
    assert variables["repositories"] == "[" + ", ".join(sorted({f"'{i.ref.name}'" for i in images})) + "]"
    assert ivp["spec"]["matchImageReferences"] == [{"glob": "*"}]  # every image: strangers are refused too
    assert "ImageValidatingPolicy" in {c.kind for c in crds}
    legacy = render_policies(load_matrix(CATALOG), images, kyverno=KyvernoApi.CLUSTER_POLICY)
    write_policies(tmp_path / "legacy", legacy)
    assert validate_files([tmp_path / "legacy" / rel for rel in legacy], crds, root=tmp_path) == len(legacy)
    allow = docs(legacy)["kyverno/recipe-digest-allowlist.yaml"]
    strangers = docs(legacy)["kyverno/recipe-locked-repositories.yaml"]  # what the IVP's first validation says
    assert strangers["kind"] == "ClusterPolicy"
    (deny,) = strangers["spec"]["rules"][0]["validate"]["foreach"]
    assert sorted(deny["deny"]["conditions"]["all"][0]["value"]) == sorted(
        f"{i.ref.name}{suffix}" for i in {i.ref.name: i for i in images}.values() for suffix in (":*", "@*"))
    rules = {r["name"]: r for r in allow["spec"]["rules"]}
    for image in images:
        rule = rules[f"allow-{image.ref.name.replace(':', '-').replace('/', '-').replace('.', '-')}"]
        assert image.digest is not None
        assert not kyverno_denies(rule, str(image.ref.with_digest(image.digest)))
        if image.ref.tag is not None:
            tag_only = ImageRef(registry=image.ref.registry, repository=image.ref.repository, tag=image.ref.tag)
            assert kyverno_denies(rule, str(tag_only))
    components = {i.component for i in images}
    assert {rel.removeprefix("policy-controller/recipe-unsigned-").removesuffix(".yaml")
            for rel in files if rel.startswith("policy-controller/")} == components


@pytest.mark.shared
def test_a_renamed_field_of_the_image_validating_policy_is_caught_by_the_unknown_field_check(
        catalog: Path, crds: list[Crd]) -> None:
    ivp = docs(render_policies(load_matrix(catalog), locked_images(LOCKS)))["kyverno/recipe-digest-allowlist.yaml"]
    validate_resources([("kyverno/recipe-digest-allowlist.yaml", ivp)], crds)  # valid as generated
    config = ivp["spec"]["validationConfigurations"]
    config["mutateDigests"] = config.pop("mutateDigest")  # a typo the API server would silently prune
    with pytest.raises(GateError, match=r"spec\.validationConfigurations\.mutateDigests"):
        validate_resources([("kyverno/recipe-digest-allowlist.yaml", ivp)], crds)


def _cluster_policy_catalog(catalog: Path) -> Path:
    matrix = catalog / "provenance.yaml"
    matrix.write_text(matrix.read_text() + "  policies:\n    kyvernoApi: ClusterPolicy\n")
    return catalog


@pytest.mark.shared
def test_the_recorded_kyverno_api_is_what_every_writer_and_the_qualify_check_use(catalog: Path, tmp_path: Path,
                                                                                shared_schemas: Path) -> None:
    # spec.policies.kyvernoApi: ClusterPolicy — policies() without an explicit API (upgrade, 'nox -s
    # lock') writes that form, and the qualify check holds the files to it, not to the default.
    _cluster_policy_catalog(catalog)
    out = tmp_path / "policies"
    written = policies(catalog, LOCKS, out=out)
    assert {p.relative_to(out).as_posix() for p in written.written} >= {"kyverno/recipe-digest-allowlist.yaml",
                                                                        "kyverno/recipe-locked-repositories.yaml"}
    assert yaml.safe_load((out / "kyverno" / "recipe-digest-allowlist.yaml").read_text())["kind"] == "ClusterPolicy"
    assert check_policies(catalog, LOCKS, out=out, schemas=shared_schemas) == 9
    # the default form on disk (say, written by an explicit --kyverno-api run) is stale for this catalog
    policies(catalog, LOCKS, out=out, kyverno=KyvernoApi.IMAGE_VALIDATING)
    with pytest.raises(GateError, match=r"\(Kyverno ClusterPolicy, provenance.yaml spec.policies.kyvernoApi\): "
                                        r"kyverno/recipe-digest-allowlist.yaml, kyverno/recipe-locked-repositories"
                                        r".yaml$"):
        check_policies(catalog, LOCKS, out=out, schemas=shared_schemas)


@pytest.mark.parametrize(("block", "offset", "message"), [
    ("  policies:\n    kyvernoApi: clusterpolicy\n", 2, "spec.policies.kyvernoApi is 'clusterpolicy', which is not "
                                                       "a Kyverno kind the pipeline writes"),
    ("  policies:\n    kyverno: ClusterPolicy\n", 2, "unknown key 'kyverno'"),
    ("  policies: ClusterPolicy\n", 1, "'spec.policies' must be a mapping"),
])
def test_a_bad_kyverno_api_names_file_line_and_the_kinds(catalog: Path, block: str, offset: int, message: str) -> None:
    matrix = catalog / "provenance.yaml"
    text = matrix.read_text()
    matrix.write_text(text + block)
    with pytest.raises(RecipeError) as caught:
        load_matrix(catalog)
    assert message in caught.value.message
    assert (str(caught.value.path), caught.value.line) == ("provenance.yaml", len(text.splitlines()) + offset)
    if offset == 2 and "clusterpolicy" in block:
        assert caught.value.hint == ("use ImageValidatingPolicy (policies.kyverno.io/v1, Kyverno 1.17+) or "
                                     "ClusterPolicy (kyverno.io/v1, clusters before Kyverno 1.17)")
