"""Real upstream charts through the pipeline, judged by the pinned helm.

The charts are the ones ``lab/upstream-charts.json`` declares (NVIDIA's GPU operator, Kueue,
node-feature-discovery), fetched from the Go module proxy at recorded versions and sums by
:func:`lab.upstream_charts.fetch` into ``.cache/upstream-charts`` (once per machine). They are
added to a copy of our catalog as components every recipe uses (chart defaults as values).

- every render of them is byte-equal to ``helm template`` of the pinned helm binary;
- ``lock --no-resolve`` and ``reproduce`` pass on that catalog, and discovery finds the images the
  GPU operator names in its ClusterPolicy (``repository``/``image``/``version`` triples) and in
  the ``*_IMAGE`` env of its Deployment;
- the two engines (in-process SDK and the helm binary) record the same render digests.

Needs ``go`` and the Go module proxy (skipped without them, failing under ``CI=true``), and the
pinned helm (``nox -s tools``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lab.upstream_charts import UpstreamChartError, catalog_with, declared, fetch
from pipeline.render.job import run_job
from tests.catalog_render import _job, compose_all
from tests.needs import missing
from tests.render.test_helm_parity import helm_template, parity_report
from tests.tools import tool, tools_dir

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.tools, pytest.mark.slow, pytest.mark.upstream]

UPSTREAM = [chart.name for chart in declared()]


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        charts = fetch(ROOT / ".cache" / "upstream-charts")
    except UpstreamChartError as exc:
        missing(f"upstream charts could not be fetched: {exc}", ci="CI must have go and reach the Go module proxy")
    return catalog_with(ROOT / "recipes", tmp_path_factory.mktemp("upstream") / "catalog", charts)


def _pipeline(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PIPELINE_TOOLS_DIR": str(tools_dir())}
    return subprocess.run([sys.executable, "-m", "pipeline", *argv], capture_output=True, text=True, cwd=ROOT,
                          env=env, check=False, timeout=600)


def _lock(catalog: Path, work: Path, *extra: str) -> dict[str, dict[str, Any]]:
    proc = _pipeline("lock", "--no-resolve", "--catalog", str(catalog), "--lockdir", str(work / "locks"),
                     "--cache", str(work / "cache"), *extra)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {path.name: json.loads(path.read_text()) for path in sorted((work / "locks").glob("*.lock.json"))}


def test_every_upstream_render_equals_helm_template(catalog: Path, tmp_path: Path) -> None:
    tool("helm")
    seen: dict[str, dict[str, str]] = {}
    for recipe in compose_all(catalog):
        for name in UPSTREAM:
            job = _job(recipe, name, manifests_only=False)
            assert job is not None
            assert job.chart is not None
            if job.key() in seen:
                continue
            ours = run_job(job)
            helm = helm_template(job, tmp_path / f"{recipe.name}-{name}")
            seen[job.key()] = parity_report(ours, helm)
            assert ours.stream == helm, f"{recipe.name}/{name}: {seen[job.key()]}"
            assert len(ours.stream) > 10_000, f"{name}: a real chart renders more than a stub"
    assert len(seen) >= len(UPSTREAM)
    assert {verdict for report in seen.values() for verdict in report.values()} == {"equal"}


def test_lock_and_reproduce_real_charts_and_find_the_operator_cr_images(catalog: Path, tmp_path: Path) -> None:
    locks = _lock(catalog, tmp_path)
    assert len(locks) == 3
    for lock in locks.values():
        assert set(UPSTREAM) <= set(lock["components"])
    components = locks["h100-kind-inference.lock.json"]["components"]
    found = {image["ref"]: image["foundAt"] for image in components["gpu-operator"]["images"]}
    assert any(site.startswith("ClusterPolicy/cluster-policy spec.driver.{repository,image,version}")
               for site in found["nvcr.io/nvidia/driver:580.82.07"]), found
    manager = found["nvcr.io/nvidia/cloud-native/k8s-driver-manager:v0.8.1"]
    assert any("env[DRIVER_MANAGER_IMAGE]" in site for site in manager), manager
    assert "registry.k8s.io/nfd/node-feature-discovery:v0.18.3" in {
        image["ref"] for image in components["node-feature-discovery"]["images"]}
    assert {image["ref"] for image in components["kueue"]["images"]} == {
        "us-central1-docker.pkg.dev/k8s-staging-images/kueue/kueue:release-0.17"}
    proc = _pipeline("reproduce", "--catalog", str(catalog), "--lockdir", str(tmp_path / "locks"),
                     "--cache", str(tmp_path / "cache"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3/3 recipes reproduced" in proc.stdout


def test_both_engines_record_the_same_renders_of_real_charts(catalog: Path, tmp_path: Path) -> None:
    tool("helm")
    sdk = _lock(catalog, tmp_path / "sdk")
    cli = _lock(catalog, tmp_path / "cli", "--engine", "helm-cli")
    assert set(sdk) == set(cli)
    for name, lock in sdk.items():
        assert lock["engine"]["name"] == "helm-python-sdk"
        assert cli[name]["engine"]["name"] == "helm-cli"
        for component, entry in lock["components"].items():
            assert entry["render"] == cli[name]["components"][component]["render"], f"{name}: {component}"
            assert entry["images"] == cli[name]["components"][component]["images"], f"{name}: {component}"
