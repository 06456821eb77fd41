"""recipes/provenance.yaml: loading with file/line errors, and the qualify gate over the lockfiles."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import GateError, RecipeError
from pipeline.provenance import (
    Facet,
    Mitigation,
    ProvenanceFormat,
    SbomFormat,
    SigningMode,
    SigstoreInstance,
    check,
    load_matrix,
    problems,
)
from pipeline.vocabulary.reference import ImageRef
from tests.locks import images_lock
from tests.provenance.cosign import generate_key
from tests.provenance.locks import CATALOG

HEADER = "apiVersion: pipeline.recipes.dev/v1\nkind: ProvenanceMatrix\nspec:\n  components:\n"
UNSIGNED = """\
    app:
      publisher: tests
      signing: {mode: none}
      provenance: none
      sbom: none
      gaps:
        - {facet: signature, owner: sec, tracking: "#1", mitigation: digest-allowlist}
        - {facet: provenance, owner: sec, tracking: "https://example.com/i/2", mitigation: digest-allowlist}
        - {facet: sbom, owner: sec, tracking: "#3", mitigation: digest-allowlist}
"""


def write(root: Path, body: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "provenance.yaml").write_text(HEADER + body)
    return root


def test_our_catalog_covers_every_component_with_owned_mitigated_gaps() -> None:
    matrix = load_matrix(CATALOG)
    assert sorted(matrix.components) == ["accel-operator", "dra-driver", "fabric-operator", "gpu-cdi-config",
                                         "node-tuning", "telemetry-exporter", "training-runtime"]
    for entry in matrix.components.values():
        profile = entry.profile
        assert profile.signing.mode is SigningMode.NONE
        assert profile.missing() == (Facet.SIGNATURE, Facet.PROVENANCE, Facet.SBOM)
        assert all(g.owner and g.tracking and g.mitigation is Mitigation.DIGEST_ALLOWLIST for g in profile.gaps)


def test_a_full_profile_with_key_keyless_and_overrides_loads(tmp_path: Path) -> None:
    key = generate_key("ecdsa-p256")
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "app.pub").write_text(key.public_pem)
    inline = "\n".join("              " + line for line in generate_key("ed25519").public_pem.splitlines())
    write(tmp_path, f"""\
    app:
      publisher: tests
      signing: {{mode: key, keyFile: keys/app.pub, tlog: false}}
      provenance: slsa-v1
      sbom: cyclonedx
      overrides:
        - images: registry.k8s.io/nfd/*
          publisher: kubernetes-sigs
          signing: {{mode: keyless, identity: krel-trust@k8s-releng-prod.iam.gserviceaccount.com,
                     issuer: "https://accounts.google.com"}}
          provenance: slsa-v0.2
          sbom: spdx
        - images: example.com/*
          publisher: example
          signing:
            mode: key
            publicKey: |
{inline}
          provenance: none
          sbom: none
          gaps:
            - {{facet: provenance, owner: a, tracking: "#1", mitigation: signature-verification}}
            - {{facet: sbom, owner: a, tracking: "#1", mitigation: signature-verification}}
""")
    entry = load_matrix(tmp_path).components["app"]
    assert entry.profile.signing.key is not None and entry.profile.signing.key_file == "keys/app.pub"
    assert not entry.profile.signing.tlog
    assert (entry.profile.provenance, entry.profile.sbom) == (ProvenanceFormat.SLSA_V1, SbomFormat.CYCLONEDX)
    nfd = entry.profile_for(ImageRef.parse("registry.k8s.io/nfd/node-feature-discovery:v0.18.3"))
    assert nfd.label == "app [registry.k8s.io/nfd/*]"
    assert nfd.signing.mode is SigningMode.KEYLESS and nfd.signing.instance is SigstoreInstance.PRODUCTION
    assert entry.profile_for(ImageRef.parse("example.com/x:1")).signing.key is not None
    assert entry.profile_for(ImageRef.parse("busybox")) is entry.profile
    assert problems(load_matrix(tmp_path), []) == ()


BAD = [
    ("    app: []\n", 5, "component 'app' must be a mapping, not a list"),
    ("    app:\n      publisher: x\n      signing: {mode: none}\n      provenance: none\n      sbom: none\n"
     "      colour: red\n", 10, "unknown key 'colour' in component 'app'"),
    ("    app:\n      publisher: x\n      signing: {mode: nope}\n      provenance: none\n      sbom: none\n", 7,
     "component 'app' signing: mode 'nope' is not one of keyless, key, none (did you mean 'none'?)"),
    ("    app:\n      publisher: x\n      signing: {mode: none}\n      provenance: slsa\n      sbom: none\n", 8,
     "component 'app': provenance 'slsa' is not one of slsa-v0.2, slsa-v1, none"),
    ("    app:\n      publisher: x\n      signing: {mode: none, identity: me}\n      provenance: none\n"
     "      sbom: none\n", 7, "component 'app' signing: 'identity' does not apply to mode 'none'"),
    ("    app:\n      publisher: x\n      signing: {mode: keyless, identity: me, issuer: accounts.google.com}\n"
     "      provenance: none\n      sbom: none\n", 7,
     "component 'app' signing: issuer 'accounts.google.com' is not an https:// OIDC issuer URL"),
    ("    app:\n      publisher: x\n      signing: {mode: key, keyFile: ../cosign.pub}\n      provenance: none\n"
     "      sbom: none\n", 7, "component 'app' signing: keyFile '../cosign.pub' is not a path under keys/"),
    ("    app:\n      publisher: x\n      signing: {mode: key, keyFile: keys/missing.pub}\n      provenance: none\n"
     "      sbom: none\n", 7, "component 'app' signing: cannot read keyFile 'keys/missing.pub'"),
    ("    app:\n      publisher: x\n      signing: {mode: key, publicKey: nope}\n      provenance: none\n"
     "      sbom: none\n", 7, "component 'app' signing: not a PEM public key"),
    ("    app:\n      publisher: x\n      signing: {mode: key}\n      provenance: none\n      sbom: none\n", 7,
     "component 'app' signing: give exactly one of 'keyFile' and 'publicKey'"),
    ("    app:\n      publisher: x\n      signing: {mode: none}\n      provenance: none\n", 6,
     "component 'app': 'sbom' is missing"),
    ("    app:\n      publisher: x\n      signing: {mode: none}\n      provenance: none\n      sbom: none\n"
     "      gaps:\n        - {facet: sbom, tracking: JIRA-12}\n", 11,
     "component 'app' gap: tracking 'JIRA-12' is not a link"),
    ("    app:\n      publisher: x\n      signing: {mode: none}\n      provenance: none\n      sbom: none\n"
     "      gaps:\n        - {facet: sbom}\n        - {facet: sbom}\n", 12,
     "component 'app': gap 'sbom' is listed twice"),
    ("    app:\n      publisher: x\n      signing: {mode: none}\n      provenance: none\n      sbom: none\n"
     "      overrides:\n        - {images: 'Docker.io/X:1', publisher: y}\n", 11,
     "component 'app' override #1: 'images' 'Docker.io/X:1' is not a glob over registry/repository"),
]


@pytest.mark.parametrize(("body", "line", "message"), BAD)
def test_malformed_entries_are_refused_with_file_line_and_hint(tmp_path: Path, body: str, line: int,
                                                               message: str) -> None:
    write(tmp_path, body)
    with pytest.raises(RecipeError) as caught:
        load_matrix(tmp_path)
    assert caught.value.message.startswith(message), caught.value.message
    assert (str(caught.value.path), caught.value.line) == ("provenance.yaml", line)
    assert caught.value.hint


def test_a_missing_file_and_a_wrong_kind_say_what_to_write(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match=r"provenance\.yaml does not exist") as caught:
        load_matrix(tmp_path)
    assert caught.value.hint is not None and "kind ProvenanceMatrix" in caught.value.hint
    (tmp_path / "provenance.yaml").write_text("apiVersion: pipeline.recipes.dev/v1\nkind: VolatileFields\n")
    with pytest.raises(RecipeError, match="kind 'VolatileFields' is not 'ProvenanceMatrix'"):
        load_matrix(tmp_path)


# ---- the qualify gate ------------------------------------------------------------------------


def test_the_gate_passes_for_our_catalog_and_fails_when_an_entry_is_removed(tmp_path: Path) -> None:
    locks = [images_lock("eks", {"accel-operator": ["localhost:5001/recipe-lab/accel-operator:v1.4.2"],
                              "dra-driver": ["localhost:5001/recipe-lab/dra-driver:v25.8.1"]})]
    check(load_matrix(CATALOG), locks)
    copy = tmp_path / "catalog"
    copy.mkdir()
    text = (CATALOG / "provenance.yaml").read_text()
    start = text.index("    dra-driver:\n")
    end = text.index("    fabric-operator:\n")
    (copy / "provenance.yaml").write_text(text[:start] + text[end:])
    with pytest.raises(GateError) as caught:
        check(load_matrix(copy), locks)
    error = caught.value
    assert error.exit_code == 1
    assert error.message == "provenance matrix: component 'dra-driver' (locked by eks) has no entry"
    assert (str(error.path), error.line) == ("provenance.yaml", 20)
    assert error.hint is not None and error.hint.startswith("add 'dra-driver:' under spec.components")


def test_every_gap_problem_is_listed_with_its_line(tmp_path: Path) -> None:
    write(tmp_path, """\
    app:
      publisher: tests
      signing: {mode: none}
      provenance: none
      sbom: cyclonedx
      gaps:
        - {facet: signature, tracking: "#1"}
        - {facet: sbom, owner: a, tracking: "#1", mitigation: digest-allowlist}
    web:
      publisher: tests
      signing: {mode: none}
      provenance: none
      sbom: none
      gaps:
        - {facet: signature, owner: a, tracking: "#1", mitigation: signature-verification}
        - {facet: provenance, owner: a, tracking: "#1", mitigation: digest-allowlist}
        - {facet: sbom, owner: a, tracking: "#1", mitigation: digest-allowlist}
""")
    found = [str(p) for p in problems(load_matrix(tmp_path), [])]
    assert found == [
        "provenance.yaml:11: app: gap 'signature' has no owner and no mitigation",
        "provenance.yaml:6: app: the provenance gap is not recorded (provenance is 'none')",
        "provenance.yaml:12: app: gap 'sbom' is stale: the sbom is published (cyclonedx)",
        "provenance.yaml:19: web: gap 'signature' claims mitigation 'signature-verification' but the images are "
        "not signed",
    ]
    with pytest.raises(GateError) as caught:
        check(load_matrix(tmp_path), [])
    assert caught.value.message.startswith("provenance matrix: 4 problems; first: app: gap 'signature' has no owner")
    assert "\n  provenance.yaml:12: app: gap 'sbom' is stale" in caught.value.message


def test_one_repository_claimed_by_two_signers_is_a_problem(tmp_path: Path) -> None:
    key = generate_key("ecdsa-p256")
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "a.pub").write_text(key.public_pem)
    write(tmp_path, UNSIGNED + """\
    web:
      publisher: tests
      signing: {mode: key, keyFile: keys/a.pub}
      provenance: none
      sbom: none
      gaps:
        - {facet: provenance, owner: a, tracking: "#1", mitigation: signature-verification}
        - {facet: sbom, owner: a, tracking: "#1", mitigation: signature-verification}
""")
    locks = [images_lock("r", {"app": ["example.com/lab/busybox:1.36"], "web": ["example.com/lab/busybox:1.36"]})]
    (found,) = problems(load_matrix(tmp_path), locks)
    assert found.message.startswith("repository 'example.com/lab/busybox' is claimed by 'app' (not signed) and by "
                                    "'web' (ECDSA P-256 key sha256:")



def test_qualify_over_our_real_locks_passes_then_names_a_removed_component(tmp_path: Path) -> None:
    from pipeline.provenance import check_provenance
    from tests.provenance.locks import catalog_lockfiles

    locks = catalog_lockfiles(tmp_path)
    check_provenance(CATALOG, locks)
    trimmed = tmp_path / "trimmed"
    trimmed.mkdir()
    text = (CATALOG / "provenance.yaml").read_text()
    start, end = text.index("    training-runtime:\n"), len(text)
    (trimmed / "provenance.yaml").write_text(text[:start] + text[end:])
    with pytest.raises(GateError) as caught:
        check_provenance(trimmed, locks)
    assert caught.value.message == ("provenance matrix: component 'training-runtime' (locked by "
                                    "h100-eks-ubuntu-training-kubeflow) has no entry")
    assert caught.value.diagnostics().startswith("provenance.yaml:20: provenance matrix: component 'training-runtime'")
