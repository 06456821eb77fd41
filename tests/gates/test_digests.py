"""Gate 2: every in-tree image carries an @sha256 digest, or a justified, live exemption."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pipeline.gates import Finding, GateName, run_gates
from tests import factories
from tests.catalog_render import compose_all, discover_catalog
from tests.recipes.catalogs import line_of

SHA = "sha256:" + "a" * 64
SHA512 = "sha512:" + "b" * 128

WORKLOAD = textwrap.dedent(f"""\
    apiVersion: apps/v1
    kind: DaemonSet
    metadata:
      name: agent
      namespace: {{{{ .Release.Namespace }}}}
    spec:
      template:
        spec:
          initContainers:
            - name: init
              image: busybox:1.36
          containers:
            - name: agent
              image: ghcr.io/example/agent:2.0@{SHA512}
            - name: pinned
              image: ghcr.io/example/pinned:1.0@{SHA}
    ---
    apiVersion: skyhook.nvidia.com/v1alpha1
    kind: Skyhook
    metadata:
      name: tuning
    spec:
      packages:
        tuning:
          image: ghcr.io/example/tuning
          version: "1.0.0"
          containerSHA: ""
    """)
MANIFEST = "components/extras/manifests/config.yaml"
VALUES = "components/app/values.yaml"
VALUES_TEXT = 'image:\n  tag: "1.1"\n'


def _catalog(root: Path, exemptions: str | None = None) -> Path:
    extra = {MANIFEST: WORKLOAD, VALUES: VALUES_TEXT}
    if exemptions is not None:
        extra["exemptions.yaml"] = exemptions
    return factories.catalog(root, extra=extra)


def _gate(root: Path) -> list[Finding]:
    recipes = compose_all(root)
    images = {name: d.images for name, d in discover_catalog(recipes).items()}
    return [f for f in run_gates(root, recipes=recipes, images=images) if f.gate is GateName.IN_TREE_DIGESTS]


EXEMPTION_HINT = ("or list it under imagePins in exemptions.yaml with a reason and a tracking link (an https:// "
                  "issue URL)")
RESOLVE = "(python -m pipeline lock, or 'skopeo inspect', gives the digest)"


def test_in_tree_images_without_sha256_digest_fail_with_file_line_and_fix(tmp_path: Path) -> None:
    root = _catalog(tmp_path)
    pod = "spec.template.spec"
    assert _gate(root) == [
        Finding(gate=GateName.IN_TREE_DIGESTS, file=VALUES, line=2,
                message="in-tree image 'ghcr.io/example/app:1.1' has no sha256 digest (Deployment/app-system/app "
                        f"{pod}.containers[0].image; recipes: eks)",
                hint=f"our values choose this image (image.tag): pin it there by digest (a tag value may carry it, "
                     f"'<tag>@sha256:<digest>', or use the chart's digest value) {RESOLVE}, {EXEMPTION_HINT}"),
        Finding(gate=GateName.IN_TREE_DIGESTS, file=MANIFEST, line=line_of(WORKLOAD, "busybox:1.36"),
                message="in-tree image 'busybox:1.36' (docker.io/library/busybox:1.36) has no sha256 digest "
                        f"(DaemonSet/extras/agent {pod}.initContainers[0].image; recipes: eks)",
                hint=f"write it as 'busybox:1.36@sha256:<digest>' {RESOLVE}, {EXEMPTION_HINT}"),
        Finding(gate=GateName.IN_TREE_DIGESTS, file=MANIFEST, line=line_of(WORKLOAD, "agent:2.0"),
                message=f"in-tree image 'ghcr.io/example/agent:2.0@{SHA512}' is pinned with a sha512 digest; only "
                        f"sha256 is accepted (DaemonSet/extras/agent {pod}.containers[0].image; recipes: eks)",
                hint="replace the sha512 digest by the image's sha256 digest ('skopeo inspect' prints it)"),
        Finding(gate=GateName.IN_TREE_DIGESTS, file=MANIFEST, line=line_of(WORKLOAD, "containerSHA"),
                message="in-tree image 'ghcr.io/example/tuning:1.0.0' has no sha256 digest (Skyhook/tuning "
                        "spec.packages.tuning.{image,version,containerSHA}; recipes: eks)",
                hint=f"set 'containerSHA: sha256:<digest>' {RESOLVE}, {EXEMPTION_HINT}"),
    ]


def _exemptions(*entries: str) -> str:
    head = "apiVersion: pipeline.recipes.dev/v1\nkind: PinExemptions\nimagePins:\n"
    return head + "".join(textwrap.indent(textwrap.dedent(e), "  ") for e in entries)


BUSYBOX = """\
- image: busybox:1.36
  reason: the init step runs before the mirror is reachable
  tracking: https://github.com/example/catalog/issues/7
"""


def test_an_exemption_with_reason_and_link_lets_an_image_stay_unpinned(tmp_path: Path) -> None:
    root = _catalog(tmp_path, _exemptions(BUSYBOX))
    assert "busybox" not in "".join(f.message for f in _gate(root))


def test_an_exemption_does_not_excuse_a_non_sha256_digest(tmp_path: Path) -> None:
    agent = BUSYBOX.replace("busybox:1.36", "ghcr.io/example/agent:2.0")
    findings = _gate(_catalog(tmp_path, _exemptions(agent)))
    assert any("sha512" in f.message for f in findings)
    assert any(f.message.startswith("stale imagePins entry for 'ghcr.io/example/agent:2.0'") for f in findings)


@pytest.mark.parametrize(("entry", "messages"), [
    (BUSYBOX, ["imagePins entry for 'busybox:1.36' is listed twice (first at line 4)"]),
    (BUSYBOX.replace("busybox:1.36", "ghcr.io/example/pinned:1.0"),
     ["stale imagePins entry for 'ghcr.io/example/pinned:1.0': no recipe has this image in-tree without a digest "
      "any more"]),
    (BUSYBOX.replace("busybox:1.36", "ghcr.io/example/gone:1"),
     ["stale imagePins entry for 'ghcr.io/example/gone:1': no recipe has this image in-tree without a digest any "
      "more"]),
    (BUSYBOX.replace("busybox:1.36", "ghcr.io/example/tuning:1.0.0").replace(
        "  reason: the init step runs before the mirror is reachable\n", ""),
     ["imagePins entry for 'ghcr.io/example/tuning:1.0.0' has no reason"]),
    (BUSYBOX.replace("busybox:1.36", "ghcr.io/example/tuning:1.0.0").replace("https://", "http://"),
     ["imagePins entry for 'ghcr.io/example/tuning:1.0.0' needs a tracking link "
      "('http://github.com/example/catalog/issues/7' is not an https:// URL)"]),
    (BUSYBOX.replace("busybox:1.36", "ghcr.io/example/tuning:1.0.0").replace(
        "  tracking: https://github.com/example/catalog/issues/7\n", ""),
     ["imagePins entry for 'ghcr.io/example/tuning:1.0.0' needs a tracking link (none is given)"]),
])
def test_exemption_findings(tmp_path: Path, entry: str, messages: list[str]) -> None:
    root = _catalog(tmp_path, _exemptions(BUSYBOX, entry))
    findings = [f for f in _gate(root) if f.file == "exemptions.yaml"]
    assert [(f.line, f.message) for f in findings] == [(7, m) for m in messages]


def test_exemption_for_a_digest_pinned_image_is_bad_input(tmp_path: Path) -> None:
    from pipeline.errors import RecipeError

    root = _catalog(tmp_path, _exemptions(BUSYBOX.replace("busybox:1.36", f"busybox:1.36@{SHA}")))
    with pytest.raises(RecipeError, match="has a digest: it needs no exemption"):
        run_gates(root)


def test_chart_defaults_are_not_this_gates_business(tmp_path: Path) -> None:
    # The chart's hook Job runs busybox:1.36 too (factories.HOOK_JOB): only the in-tree place fails.
    findings = _gate(_catalog(tmp_path))
    assert [f.file for f in findings if "busybox" in f.message] == [MANIFEST]
