"""``lock`` resolves every image from real registries (digests, platforms, mirrors, faults); ``drift`` re-checks them.

Each test pushes small OCI images to a real ``docker-registry`` on 127.0.0.1, builds a tiny catalog
whose charts name those images, and runs ``python -m pipeline lock`` in-process.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipeline.__main__ import main
from tests import factories
from tests.servers import FaultProxy, ProxyFault, Registry, build_oci_image, push_oci_image

UPSTREAM_APP = "ghcr.io/example/app"
UPSTREAM_BUSYBOX = "docker.io/library/busybox"


def _catalog(root: Path, *, host: str | None, extra: dict[str, str] | None = None) -> Path:
    """The factory catalog, its images renamed to live on ``host`` (None: keep the upstream names)."""
    catalog = factories.catalog(root / "catalog", extra=extra)
    if host is not None:
        for path in catalog.rglob("*.yaml"):
            text = path.read_text()
            text = text.replace(UPSTREAM_APP, f"{host}/example/app").replace(UPSTREAM_BUSYBOX,
                                                                             f"{host}/library/busybox")
            path.write_text(text)
    return catalog


def _push_images(registry: Registry, prefix: str = "") -> dict[str, str]:
    app = build_oci_image("app-1.1")
    busybox = build_oci_image("busybox-1.36", platforms=("linux/amd64",))
    return {
        "app": push_oci_image(registry, f"{prefix}example/app", "1.1", app),
        "busybox": push_oci_image(registry, f"{prefix}library/busybox", "1.36", busybox),
    }


def _lock_args(root: Path, *extra: str) -> list[str]:
    return ["lock", "--catalog", str(root / "catalog"), "--lockdir", str(root / "locks"),
            "--cache", str(root / "cache"), "--workers", "1", *extra]


def _images(root: Path) -> dict[str, dict[str, Any]]:
    body = json.loads((root / "locks/eks.lock.json").read_text())
    return {i["ref"]: i for i in body["components"]["app"]["images"]}


@pytest.mark.registry
def test_every_image_is_resolved_with_its_platforms(tmp_path: Path, registry: Registry) -> None:
    digests = _push_images(registry)
    _catalog(tmp_path, host=registry.host)
    assert main(_lock_args(tmp_path)) == 0
    images = _images(tmp_path)
    app = images[f"{registry.host}/example/app:1.1"]
    assert app["digest"] == digests["app"]
    assert app["source"] == "registry"
    assert app["servedBy"] == registry.host
    assert sorted(app["platforms"]) == ["linux/amd64", "linux/arm64"]
    assert images[f"{registry.host}/library/busybox:1.36"]["digest"] == digests["busybox"]
    first = (tmp_path / "locks/eks.lock.json").read_bytes()
    assert main(_lock_args(tmp_path)) == 0
    assert (tmp_path / "locks/eks.lock.json").read_bytes() == first  # byte-stable across runs


@pytest.mark.registry
def test_mirror_serves_while_the_lock_keeps_the_upstream_name(tmp_path: Path, registry: Registry) -> None:
    digests = _push_images(registry, prefix="mirror/")
    config = ("apiVersion: pipeline.recipes.dev/v1\nkind: PipelineConfig\nspec:\n  registries:\n    mirrors:\n"
              f"      ghcr.io:\n        endpoints: [http://{registry.host}/mirror]\n        skipUpstream: true\n"
              f"      docker.io:\n        endpoints: [http://{registry.host}/mirror]\n        skipUpstream: true\n")
    _catalog(tmp_path, host=None, extra={"pipeline.yaml": config})
    assert main(_lock_args(tmp_path)) == 0
    app = _images(tmp_path)[f"{UPSTREAM_APP}:1.1"]
    assert app["digest"] == digests["app"]
    assert app["servedBy"] == registry.host  # who served the bytes is recorded, never hidden


@pytest.mark.registry
@pytest.mark.fault_proxy
def test_lying_registry_exits_2_and_leaves_the_old_lock(tmp_path: Path, registry: Registry, fault_proxy: FaultProxy,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    _push_images(registry)
    _catalog(tmp_path, host=fault_proxy.host)
    assert main(_lock_args(tmp_path)) == 0
    before = (tmp_path / "locks/eks.lock.json").read_bytes()
    # Change an input so a new lock would differ, then make the registry lie about a manifest.
    values = tmp_path / "catalog/components/app/values.yaml"
    values.write_text(values.read_text() + "replicas: 5\n")
    fault_proxy.faults.append(ProxyFault(kind="corrupt", method="GET", path=r"/manifests/", persistent=True))
    capsys.readouterr()
    assert main(_lock_args(tmp_path)) == 2
    err = capsys.readouterr().err
    assert f"{fault_proxy.host}/example/app" in err or f"{fault_proxy.host}/library/busybox" in err
    assert "digest" in err
    assert (tmp_path / "locks/eks.lock.json").read_bytes() == before


@pytest.mark.registry
@pytest.mark.fault_proxy
def test_transient_faults_are_survived_without_a_corrupt_lock(tmp_path: Path, registry: Registry,
                                                              fault_proxy: FaultProxy) -> None:
    digests = _push_images(registry)
    _catalog(tmp_path, host=fault_proxy.host)
    fault_proxy.faults.extend([
        ProxyFault(kind="status", status=503, path=r"/manifests/"),
        ProxyFault(kind="reset", path=r"/manifests/"),
        ProxyFault(kind="status", status=429, headers={"Retry-After": "0"}, path=r"/manifests/"),
        ProxyFault(kind="corrupt", method="GET", path=r"/manifests/"),
    ])
    assert main(_lock_args(tmp_path)) == 0
    survived = len(fault_proxy.injected)
    assert survived == 4
    images = _images(tmp_path)
    assert images[f"{fault_proxy.host}/example/app:1.1"]["digest"] == digests["app"]
    assert images[f"{fault_proxy.host}/library/busybox:1.36"]["digest"] == digests["busybox"]


@pytest.mark.registry
def test_retagged_image_is_reported_as_moved_by_drift(tmp_path: Path, registry: Registry,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    digests = _push_images(registry)
    _catalog(tmp_path, host=registry.host)
    assert main(_lock_args(tmp_path)) == 0
    drift = ["drift", "--catalog", str(tmp_path / "catalog"), "--lockdir", str(tmp_path / "locks"),
             "--cache", str(tmp_path / "cache"), "--json", str(tmp_path / "drift.json")]
    assert main([*drift, "--fail-on-drift"]) == 0
    moved = push_oci_image(registry, "example/app", "1.1", build_oci_image("app-1.1-rebuilt"))
    capsys.readouterr()
    assert main([*drift, "--fail-on-drift"]) == 1
    out = capsys.readouterr().out
    assert "tag-moved" in out
    assert digests["app"] in out and moved in out
    report = json.loads((tmp_path / "drift.json").read_text())
    (item,) = [i for i in report["items"] if i["status"] == "tag-moved"]
    assert (item["reference"], item["old"], item["new"]) == (f"{registry.host}/example/app:1.1", digests["app"], moved)
    assert main(drift) == 0  # without --fail-on-drift drift is reported, not a failure
