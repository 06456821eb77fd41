"""Every claim a lock makes is re-checked: by reproduce where a render can confirm it, by drift where
only a registry can (issue 17: 7 of 11 fields, edited with the self-digest recomputed, used to pass).

The reproduce cases edit a copy of our committed locks; the drift cases lock a tiny catalog against a
real ``docker-registry`` on loopback (the test starts it), then edit the lock and re-seal it.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pipeline.drift import DriftStatus, check_drift
from pipeline.registry import RegistryClient
from pipeline.stages import Workspace, fresh_locks, lock_catalog, qualify_catalog, reproduce_catalog
from pipeline.vocabulary.digest import canonical_json, sha256
from tests import factories
from tests.servers import Registry, build_oci_image, push_oci_image

ROOT = Path(__file__).resolve().parents[1]
RECIPE = "h100-any"
Edit = Callable[[dict[str, Any]], None]


def _reseal(path: Path, edit: Edit) -> None:
    """Edit a lockfile's body and recompute its self-digest, as a careful forger would."""
    body = json.loads(path.read_bytes())
    edit(body)
    unsigned = {k: v for k, v in body.items() if k != "digest"}
    path.write_bytes(canonical_json({**unsigned, "digest": sha256(canonical_json(unsigned))}))


def _operator(body: dict[str, Any]) -> dict[str, Any]:
    component: dict[str, Any] = body["components"]["accel-operator"]
    return component


def _first_image(body: dict[str, Any]) -> dict[str, Any]:
    image: dict[str, Any] = _operator(body)["images"][0]
    return image


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    shutil.copytree(ROOT / "lockfiles", tmp_path / "lockfiles")
    return Workspace(catalog=ROOT / "recipes", lockdir=tmp_path / "lockfiles", cache=tmp_path / "cache", workers=2)


@pytest.mark.parametrize(("edit", "check", "says"), [
    (lambda b: _operator(b)["chart"].update(tree="sha256:" + "1" * 64), "render = lock",
     "the lock claims chart.tree = 'sha256:1111"),
    (lambda b: _operator(b)["chart"].update(archive="sha256:" + "2" * 64), "render = lock",
     "the lock claims chart.archive = 'sha256:2222"),
    (lambda b: _first_image(b).update(origin="in-tree"), "images = lock",
     "].origin = 'in-tree', but this render gives 'chart-default'"),
    (lambda b: _first_image(b)["foundAt"].append("Pod/x/y spec.containers[0].image (forged.yaml)"),
     "images = lock", "].foundAt also lists ['Pod/x/y spec.containers[0].image (forged.yaml)'], unlike this render"),
], ids=["chart-tree", "chart-archive", "origin", "foundAt"])
def test_reproduce_catches_a_forged_claim_a_render_can_confirm(workspace: Workspace, edit: Edit, check: str,
                                                              says: str) -> None:
    _reseal(workspace.lockdir / f"{RECIPE}.lock.json", edit)
    result = reproduce_catalog(workspace, [RECIPE])
    (outcome,) = result.outcomes
    assert outcome.checks["lock integrity"] == "ok"  # the forgery is well-formed and sealed
    assert outcome.checks[check] == "FAIL"
    assert any(says in d.summary for d in outcome.divergences), [d.summary for d in outcome.divergences]


def test_a_ghost_lockfile_fails_qualify(workspace: Workspace) -> None:
    shutil.copy(workspace.lockdir / f"{RECIPE}.lock.json", workspace.lockdir / "no-such-recipe.lock.json")
    result = qualify_catalog(workspace)
    ghosts = [f for f in result.findings if f.file.endswith("no-such-recipe.lock.json")]
    assert len(ghosts) == 1 and not result.ok
    assert ghosts[0].message == ("this lockfile belongs to no recipe of the catalog (copied, or left by a "
                                 "removed recipe)")


@pytest.fixture
def locked_against_registry(tmp_path: Path, registry: Registry) -> tuple[Workspace, Path, str]:
    """A tiny catalog locked against a real registry: its app image is a two-platform index."""
    push_oci_image(registry, "example/app", "1.1", build_oci_image("app-1.1", platforms=("linux/amd64",
                                                                                         "linux/arm64")))
    push_oci_image(registry, "library/busybox", "1.36", build_oci_image("busybox", platforms=("linux/amd64",)))
    catalog = factories.images_on(factories.catalog(tmp_path / "catalog"), registry.host)
    ws = Workspace(catalog=catalog, lockdir=tmp_path / "locks", cache=tmp_path / "cache", workers=1)
    lock_catalog(ws)
    (path,) = ws.lockdir.glob("*.lock.json")
    return ws, path, f"{registry.host}/example/app:1.1"


def _app(body: dict[str, Any], ref: str) -> dict[str, Any]:
    image: dict[str, Any] = next(i for c in body["components"].values() for i in c["images"] if i["ref"] == ref)
    return image


@pytest.mark.registry
@pytest.mark.parametrize(("edit", "status", "says"), [
    (lambda i: i.update(digest="sha256:" + "3" * 64), DriftStatus.TAG_MOVED, "points to another manifest"),
    (lambda i: i["platforms"].update({"linux/arm64": "sha256:" + "4" * 64}), DriftStatus.LOCK_MISMATCH,
     "the lock claims linux/arm64 is sha256:4444"),
    (lambda i: i.update(mediaType="application/vnd.docker.distribution.manifest.list.v2+json"),
     DriftStatus.LOCK_MISMATCH,
     "the lock claims media type 'application/vnd.docker.distribution.manifest.list.v2+json'"),
], ids=["image-digest", "platform-digest", "mediaType"])
def test_drift_catches_a_forged_claim_only_a_registry_can_confirm(
        locked_against_registry: tuple[Workspace, Path, str], registry: Registry,
        edit: Callable[[dict[str, Any]], None], status: DriftStatus, says: str) -> None:
    ws, path, ref = locked_against_registry
    _reseal(path, lambda body: edit(_app(body, ref)))
    result = reproduce_catalog(ws)
    if status is DriftStatus.TAG_MOVED:
        # the image digest is written into the pinned render, whose recorded digest no longer agrees:
        # the render sees a forger who left render.pinned alone (one who recomputes it is drift's)
        assert not result.ok
        assert any("render.pinned" in d.summary for o in result.outcomes for d in o.divergences), result.outcomes
    else:
        assert result.ok  # a render cannot see it: only the registry can
    with RegistryClient() as client:
        report = check_drift(fresh_locks(ws), client=client, catalog=ws.catalog)
    item = next(i for i in report.items if i.reference == ref)
    assert item.status is status and says in item.detail, (item.status, item.detail)


@pytest.mark.registry
def test_drift_names_a_served_by_that_differs_from_who_serves_now(
        locked_against_registry: tuple[Workspace, Path, str]) -> None:
    ws, path, ref = locked_against_registry
    _reseal(path, lambda body: _app(body, ref).update(servedBy="mirror.example.com:5000"))
    with RegistryClient() as client:
        report = check_drift(fresh_locks(ws), client=client, catalog=ws.catalog)
    item = next(i for i in report.items if i.reference == ref)
    # servedBy records who answered when the lock was made (a mirror is environment, not input): the
    # digests are verified against bytes either way, so a different host is reported, not failed.
    assert item.status is DriftStatus.UNCHANGED
    assert "locked from 'mirror.example.com:5000'" in item.detail
