"""The pinned render, the Helm post-renderer, and the policies that admit exactly it.

- every recipe's ``render --pinned`` has no image reference without a digest except the
  ``unpinnedFields`` exemptions, and equals the lock's ``render.pinned``;
- ``helm template`` (the pinned helm) ``| python -m pipeline post-render`` gives the bytes of
  ``render --pinned`` for the component;
- the pinned ``kyverno`` CLI admits every Pod and pod template of every pinned render with the generated
  ``ImageValidatingPolicy``, denies the unpinned render's tag-only Pods with our message, and treats
  the exempted tags as declared. Kyverno fetches every matched image's manifest while evaluating an
  ``ImageValidatingPolicy`` (even with no attestors), so the catalog's images are served on
  127.0.0.1:5001, the registry their references name (``localhost:5001``).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.errors import PinError
from pipeline.images import Origin, Resource, Via
from pipeline.images.model import FoundImage
from pipeline.pin import DigestField, PinRules, pin_render, read_stream
from pipeline.provenance import ALLOWLIST_MESSAGE
from pipeline.render.job import assemble
from pipeline.stages import Workspace, pinned_recipe
from pipeline.vocabulary.digest import Digest, sha256
from pipeline.vocabulary.reference import ImageRef
from tests.catalog_render import _job, compose_all
from tests.render.test_helm_parity import helm_template
from tests.tools import run_tool, tool

ROOT = Path(__file__).resolve().parent.parent
CATALOG = ROOT / "recipes"
RECIPES = ("h100-any", "h100-eks-ubuntu-training-kubeflow", "h100-kind-inference")
WORKLOADS = {"Pod", "Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "Job", "CronJob"}
D1 = Digest("sha256:" + "1" * 64)


def _ws(tmp: Path) -> Workspace:
    return Workspace(catalog=CATALOG, lockdir=ROOT / "lockfiles", cache=tmp / "cache", workers=2)


@pytest.fixture(scope="module")
def pinned(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, bytes]]:
    tmp = tmp_path_factory.mktemp("pinned")
    return {name: {c: p.render.stream for c, p in pinned_recipe(_ws(tmp), name).components} for name in RECIPES}


# ---- the pinned render ------------------------------------------------------------------------------


@pytest.mark.slow
def test_every_pinned_render_pins_every_image_except_the_exemptions(pinned: dict[str, dict[str, bytes]]) -> None:
    from pipeline.images import discover
    from pipeline.lockfile import load

    for recipe, streams in pinned.items():
        lock = load(ROOT / "lockfiles" / f"{recipe}.lock.json")
        for component, stream in streams.items():
            assert sha256(stream) == lock.components[component].render.pinned, (recipe, component)
            bare = dataclasses.make_dataclass("C", [("name", str), ("values", dict), ("manifest_files", tuple),
                                                    ("pre_manifest_files", tuple)])(component, {}, (), ())
            for found in discover(stream, component=bare, recipe=recipe).images:
                if found.ref.digest is None:  # only the exempted FabricPolicy operands stay by tag
                    assert (component, found.resource.kind, found.via) == ("fabric-operator", "FabricPolicy",
                                                                            Via.FIELDS), found.found_at


def _found(field: str, written: str, via: Via, *, kind: str = "Deployment", parts: tuple[tuple[str, str], ...] = ()
           ) -> FoundImage:
    return FoundImage(ref=ImageRef.parse(written), written=written, origin=Origin.CHART_DEFAULT, via=via, recipe="r",
                      component="app", file="app/templates/x.yaml", resource=Resource(kind=kind, namespace="",
                                                                                       name="x"),
                      field=field, parts=parts)


def test_pin_render_splices_only_the_reference_and_keeps_every_other_byte() -> None:
    doc = ("kind: Deployment\nmetadata:\n  name: x  # a comment stays\nspec:\n  template:\n    spec:\n"
           "      containers:\n        - image: 'reg.example/app:1.0'\n"
           "          args: [\"--x\", --image=reg.example/app:1.0]\n"
           "          env:\n            - name: RELATED_IMAGE_APP\n              value: reg.example/app:1.0\n")
    other = "kind: ConfigMap\nmetadata:\n  name:   spaced\n"
    render = assemble([("app/templates/x.yaml", doc), ("app/templates/cm.yaml", other)])
    images = [
        _found("spec.template.spec.containers[0].image", "reg.example/app:1.0", Via.CONTAINER),
        _found("spec.template.spec.containers[0].args[1]", "reg.example/app:1.0", Via.ARG),
        _found("spec.template.spec.containers[0].env[RELATED_IMAGE_APP].value", "reg.example/app:1.0", Via.ENV),
    ]
    out = pin_render(render, images, digests={ImageRef.parse("reg.example/app:1.0"): D1}, component="app",
                     rules=PinRules(fields={}))
    text = out.render.stream.decode()
    pinned = f"reg.example/app:1.0@{D1}"
    assert f"- image: '{pinned}'" in text  # single quotes kept
    assert f'args: ["--x", --image={pinned}]' in text  # plain in a flow sequence: no flow indicator in it
    assert f"value: {pinned}\n" in text  # plain kept
    assert "# a comment stays" in text and "name:   spaced" in text
    assert len(out.rewritten) == 3 and out.unpinned == ()


def _cr(version: str) -> bytes:
    body = ("kind: Policy\nmetadata:\n  name: p\nspec:\n  op:\n    repository: reg.example\n    image: op\n"
            f"    version: {version}\n")
    return assemble([("app/templates/p.yaml", body)]).stream


def _pin_cr(rules: PinRules) -> bytes:
    found = dataclasses.replace(_found("spec.op.{repository,image,version}", "reg.example/op:v1", Via.FIELDS,
                                       kind="Policy"), resource=Resource(kind="Policy", namespace="", name="p"),
                                file="app/templates/p.yaml")
    render = assemble([("app/templates/p.yaml", _cr("v1").decode().split("\n", 2)[2])])
    return pin_render(render, [found], digests={ImageRef.parse("reg.example/op:v1"): D1}, component="app",
                      rules=rules).render.stream


def test_sibling_fields_take_the_digest_in_the_field_the_table_names() -> None:
    rules = PinRules(fields={"Policy": DigestField(kind="Policy", field="version", reason="r", line=1)})
    assert _pin_cr(rules) == _cr(D1)


@pytest.mark.parametrize(("rules", "message"), [
    (PinRules(fields={}), "splits image 'reg.example/op:v1' into sibling fields, and digest-fields.yaml has no "
                          "entry for kind 'Policy'"),
    (PinRules(fields={"Policy": DigestField(kind="Policy", field=None, reason="the CRD refuses it", line=1)}),
     "cannot carry a digest (the CRD refuses it) and exemptions.yaml has no unpinnedFields entry for it"),
])
def test_what_cannot_be_pinned_silently_is_an_error(rules: PinRules, message: str) -> None:
    with pytest.raises(PinError, match=None) as caught:
        _pin_cr(rules)
    assert message in caught.value.message


def test_an_image_without_a_locked_digest_is_refused() -> None:
    found = _found("spec.template.spec.containers[0].image", "reg.example/app:1.0", Via.CONTAINER)
    with pytest.raises(PinError) as caught:
        pin_render(assemble([("app/templates/x.yaml", "kind: Deployment\n")]), [found], digests={}, component="app",
                   rules=PinRules(fields={}))
    assert "has no locked digest" in caught.value.message


# ---- the Helm post-renderer ------------------------------------------------------------------------


def _post_render(manifests: bytes, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "pipeline", "post-render", *args], input=manifests,
                          capture_output=True, cwd=ROOT, check=False, timeout=120)


@pytest.mark.tools
@pytest.mark.slow
def test_helm_template_piped_through_post_render_equals_render_pinned(
        pinned: dict[str, dict[str, bytes]], tmp_path: Path) -> None:
    recipe = next(r for r in compose_all(CATALOG) if r.name == "h100-eks-ubuntu-training-kubeflow")
    job = _job(recipe, "accel-operator", manifests_only=False)
    assert job is not None and not job.manifests and not job.pre_manifests
    helm = helm_template(job, tmp_path / "helm")
    result = _post_render(helm, "--lock", f"lockfiles/{recipe.name}.lock.json", "--component", "accel-operator")
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == pinned[recipe.name]["accel-operator"]
    # nothing normalised: the same lines, and every changed line is an image reference given its digest
    before, after = helm.decode().splitlines(), result.stdout.decode().splitlines()
    assert len(before) == len(after)
    changed = [(b, a) for b, a in zip(before, after, strict=True) if b != a]
    assert changed and all("sha256:" in a and "sha256:" not in b for b, a in changed), changed


def test_post_render_keeps_what_helm_prints_outside_documents_and_refuses_other_text() -> None:
    assert read_stream(b"\n") == (b"\n", assemble([]))  # Helm's output for a chart with nothing to render
    stream = b"---\n# Source: c/templates/a.yaml\nkind: ConfigMap\n"
    assert read_stream(stream) == (b"", assemble([("c/templates/a.yaml", "kind: ConfigMap\n")]))
    for bad, message in ((b"kind: Pod\n", "have no '# Source:' headers"),
                         (b"oops\n" + stream, "have text outside '# Source:' documents"),
                         (b"\xff" + stream, "not UTF-8 text")):
        with pytest.raises(PinError, match=message):
            read_stream(bad)


def test_post_render_refuses_an_image_the_lock_does_not_know() -> None:
    manifests = (b"---\n# Source: accel-operator/templates/x.yaml\napiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n"
                 b"spec:\n  containers:\n    - name: x\n      image: localhost:5001/recipe-lab/evil:1.0\n")
    result = _post_render(manifests, "--lock", "lockfiles/h100-any.lock.json", "--component", "accel-operator")
    assert result.returncode == 2
    assert result.stdout == b""
    assert ("error: image 'localhost:5001/recipe-lab/evil:1.0' at Pod/x spec.containers[0].image "
            "(accel-operator/templates/x.yaml) is not in the lock of component 'accel-operator' "
            "(lockfiles/h100-any.lock.json)") in result.stderr.decode()


# ---- Kyverno: the policies admit exactly the pinned render ------------------------------------------


def _workloads(streams: dict[str, bytes]) -> list[dict[str, object]]:
    docs = [d for stream in streams.values() for d in yaml.safe_load_all(stream) if isinstance(d, dict)]
    return [d for d in docs if d.get("kind") in WORKLOADS]


def _kyverno(resources: list[dict[str, object]], tmp: Path) -> dict[str, tuple[str, str]]:
    """``kind/name`` → (result, message) of ``kyverno apply`` of the generated policy."""
    for index, resource in enumerate(resources):  # unique names: several recipes share resources
        meta = resource.setdefault("metadata", {})
        assert isinstance(meta, dict)
        meta["name"] = f"{meta.get('name')}-{index}"
        meta.setdefault("namespace", "default")
    path = tmp / "resources.yaml"
    path.write_text(yaml.safe_dump_all(resources))
    proc = run_tool("kyverno", ["apply", str(ROOT / "policies/kyverno/recipe-digest-allowlist.yaml"),
                                "--resource", str(path), "-p", "--output-format", "json"],
                    env={"PATH": "/usr/bin:/bin", "HOME": str(tmp), "NO_PROXY": "*"}, check=False, timeout=300)
    report = json.loads(proc.stdout[proc.stdout.index(b"{"):])
    out: dict[str, tuple[str, str]] = {}
    for result in report.get("results", []):
        for resource in result["resources"]:
            out[f"{resource['kind']}/{resource['name']}"] = (result["result"], result.get("message", ""))
    names = {f"{r['kind']}/{r['metadata']['name']}" for r in resources}  # type: ignore[index]
    assert set(out) == names, (sorted(names - set(out)), proc.stderr.decode()[-2000:])  # every one evaluated
    return out


@pytest.mark.tools
@pytest.mark.slow
def test_kyverno_admits_every_pinned_pod_and_pod_template(pinned: dict[str, dict[str, bytes]], lab_registry: None,
                                                           tmp_path: Path) -> None:
    tool("kyverno")
    resources = [r for streams in pinned.values() for r in _workloads(streams)]
    assert len(resources) >= 10
    results = _kyverno(resources, tmp_path)
    assert {name: r for name, r in results.items() if r[0] != "pass"} == {}


@pytest.mark.tools
@pytest.mark.slow
def test_kyverno_denies_the_unpinned_renders_tag_only_pods_with_our_message(
        lab_registry: None, tmp_path: Path) -> None:
    tool("kyverno")
    from pipeline.stages import render_recipe

    ws = _ws(tmp_path)
    resources = []
    for name in RECIPES:
        built = render_recipe(ws, name)
        resources += _workloads({c: r.stream for c, r in built.renders.items()})
    expected = {}
    for index, resource in enumerate(resources):
        text = yaml.safe_dump(resource)
        images = [line.split("image:", 1)[1].strip().strip("'\"") for line in text.splitlines()
                  if line.strip().startswith(("image:", "- image:"))]
        expected[f"{resource['kind']}/{resource['metadata']['name']}-{index}"] = (  # type: ignore[index]
            "pass" if all("@sha256:" in i for i in images) else "fail")
    results = _kyverno(resources, tmp_path)
    assert {n: r[0] for n, r in results.items()} == expected
    assert "fail" in expected.values()  # every workload of our catalog has a chart-default tag
    assert {r[1] for r in results.values() if r[0] == "fail"} == {ALLOWLIST_MESSAGE}


@pytest.mark.tools
@pytest.mark.slow
def test_kyverno_admits_an_exempted_image_at_its_locked_tag_only(lab_registry: None, tmp_path: Path) -> None:
    tool("kyverno")

    def pod(name: str, image: str) -> dict[str, object]:
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                "spec": {"containers": [{"name": "c", "image": image}]}}

    results = _kyverno([
        pod("exempt-tag", "localhost:5001/recipe-lab/doca-driver:doca3.2.0-25.10-1.2.8.0-2"),  # FabricPolicy operand
        pod("other-tag", "localhost:5001/recipe-lab/busybox:1.36.1-1"),  # a locked tag, not exempted
    ], tmp_path)
    assert results["Pod/exempt-tag-0"][0] == "pass"
    assert results["Pod/other-tag-1"] == ("fail", ALLOWLIST_MESSAGE)
