"""Kyverno evaluates our generated admission policies (``policies/kyverno/``), with the pinned CLI.

Every recipe's rendered workloads, with each image at the digest its lock pins, are admitted; as
rendered (chart-default images by tag) they are refused. Hand-written Pods: a locked repository at
an unlocked tag or at a wrong digest is denied, the locked digest is admitted, and an image of no
locked repository is denied by ``recipe-locked-repositories`` with our message.

Kyverno asks the registry for every image an ``ImageValidatingPolicy`` matches, so these tests serve
our images on 127.0.0.1:5001 (the ``lab_registry`` fixture).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.lockfile import load
from pipeline.stages import Workspace, render_recipe
from pipeline.vocabulary.reference import ImageRef
from tests.kyverno import kyverno_apply
from tests.tools import run_tool

ROOT = Path(__file__).resolve().parents[2]
POLICIES = sorted((ROOT / "policies" / "kyverno").glob("*.yaml"))
WORKLOADS = {"Pod", "Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "Job", "CronJob"}

pytestmark = [pytest.mark.tools, pytest.mark.slow, pytest.mark.usefixtures("lab_registry")]


def _locked() -> dict[str, str]:
    """Every locked reference as written → the same reference at its locked digest."""
    out: dict[str, str] = {}
    for path in sorted((ROOT / "lockfiles").glob("*.lock.json")):
        for component in load(path).components.values():
            for image in component.images:
                if image.digest is not None:
                    ref = ImageRef.parse(image.ref)
                    out[str(image.ref)] = str(ref.with_digest(image.digest))
    return out


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc.get("spec") or {}
    if doc.get("kind") == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec") or {})
    if doc.get("kind") != "Pod":
        spec = ((spec.get("template") or {}).get("spec") or {})
    return [c for key in ("initContainers", "containers", "ephemeralContainers") for c in spec.get(key) or ()]


def _workloads(recipe: str, tmp: Path, *, pin: bool) -> tuple[Path, list[str]]:
    built = render_recipe(Workspace(catalog=ROOT / "recipes", lockdir=ROOT / "lockfiles", cache=tmp / "cache",
                                    workers=1), recipe)
    locked = _locked()
    docs: list[dict[str, Any]] = []
    for component in built.recipe.components:
        for doc in yaml.safe_load_all(built.renders[component.name].stream):
            if not isinstance(doc, dict) or doc.get("kind") not in WORKLOADS:
                continue
            doc.setdefault("metadata", {}).setdefault("namespace", component.namespace)
            for container in _containers(doc):
                if pin and container.get("image") in locked:
                    container["image"] = locked[container["image"]]
            docs.append(doc)
    path = tmp / f"{recipe}-{'pinned' if pin else 'rendered'}.yaml"
    path.write_text(yaml.safe_dump_all(docs, sort_keys=True), encoding="utf-8")
    names = [f"{d['kind']}/{d['metadata']['namespace']}/{d['metadata']['name']}" for d in docs]
    return path, names


@pytest.mark.parametrize("recipe", ["h100-any", "h100-eks-ubuntu-training-kubeflow", "h100-kind-inference"])
def test_every_workload_at_its_locked_digests_is_admitted_and_by_tag_refused(recipe: str, tmp_path: Path) -> None:
    pinned, names = _workloads(recipe, tmp_path, pin=True)
    assert len(names) >= 3, names
    applied = kyverno_apply(POLICIES, [pinned], home=tmp_path / "home")
    assert set(names) <= set(applied.verdicts), (names, applied.verdicts)
    assert {n: applied.verdicts[n] for n in names} == dict.fromkeys(names, "pass"), applied.messages
    rendered, _ = _workloads(recipe, tmp_path, pin=False)
    refused = kyverno_apply(POLICIES, [rendered], home=tmp_path / "home").verdicts
    assert "fail" in {refused[n] for n in names}, refused


def _pod(name: str, image: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "lab"},
            "spec": {"containers": [{"name": "c", "image": image}]}}


def _verdicts(tmp: Path, pods: list[dict[str, Any]]) -> tuple[dict[str, str], dict[str, list[str]]]:
    path = tmp / "pods.yaml"
    path.write_text(yaml.safe_dump_all(pods, sort_keys=True), encoding="utf-8")
    applied = kyverno_apply(POLICIES, [path], home=tmp / "home")
    return applied.verdicts, applied.messages


def test_locked_digest_admitted_unlocked_tag_and_wrong_digest_denied(tmp_path: Path) -> None:
    written, pinned = sorted(_locked().items())[0]
    ref = ImageRef.parse(written)
    repository = f"{ref.registry}/{ref.repository}"
    # a real image at a tag no lock records (a tag that moved, say): fetched by Kyverno, refused by us
    run_tool("crane", ["copy", "--insecure", pinned, f"{repository}:not-a-locked-tag"])
    verdicts, messages = _verdicts(tmp_path, [
        _pod("locked-digest", pinned),
        _pod("unlocked-tag", f"{repository}:not-a-locked-tag"),
        _pod("wrong-digest", f"{repository}@sha256:{'0' * 64}"),
    ])
    assert verdicts == {"Pod/lab/locked-digest": "pass", "Pod/lab/unlocked-tag": "fail",
                        "Pod/lab/wrong-digest": "fail"}, messages
    assert any("is admitted only at a locked digest" in m for m in messages["Pod/lab/unlocked-tag"]), messages
    # a digest the registry does not have is refused by Kyverno's fetch before our validation runs
    assert any("MANIFEST_UNKNOWN" in m or "manifest unknown" in m for m in messages["Pod/lab/wrong-digest"]), messages


def test_an_image_of_no_locked_repository_is_denied_with_our_message(tmp_path: Path) -> None:
    # a real image under a repository no lock names, on the registry Kyverno fetches from
    written, pinned = sorted(_locked().items())[0]
    digest = pinned.rsplit("@", 1)[1]
    stranger = "localhost:5001/not-locked/stranger:1.0"
    run_tool("crane", ["copy", "--insecure", f"{ImageRef.parse(written).name}@{digest}", stranger])
    verdicts, messages = _verdicts(tmp_path, [_pod("stranger", stranger), _pod("stranger-digest",
                                                                               f"localhost:5001/not-locked/stranger@{digest}"),
                                              _pod("unreachable", "docker.io/library/nginx:1.27")])
    assert verdicts == {"Pod/lab/stranger": "fail", "Pod/lab/stranger-digest": "fail",
                        "Pod/lab/unreachable": "fail"}, messages
    for name in ("stranger", "stranger-digest"):
        assert any("an image of a repository no lock in lockfiles/ names is refused" in m
                   for m in messages[f"Pod/lab/{name}"]), messages
    # an image Kyverno cannot fetch (no network here) is refused by error, not admitted
    assert any("index.docker.io" in m for m in messages["Pod/lab/unreachable"]), messages
