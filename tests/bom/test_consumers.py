"""Independent consumers read our BOMs: lib4sbom, the JavaScript CycloneDX validator, syft.

Each reads the BOMs of the demo fixture and of a small generated catalog (tests/bom/locks.py).
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath
from subprocess import CompletedProcess
from typing import Any

import pytest

from pipeline.bom import bom_files
from pipeline.lockfile import Lockfile
from tests.bom import locks as f
from tests.bom.conftest import Run


def _boms(tmp_path: Path, locks: list[Lockfile]) -> dict[PurePosixPath, Path]:
    out = {}
    for rel, data in bom_files(locks, exemptions=f.DEMO_EXEMPTIONS).items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        out[rel] = path
    return out


def _locks() -> list[Lockfile]:
    return [f.demo_lock(), f.demo_lock(name="other"), *f.catalog_locks(60, recipes=3)]


def expected_images(locks: list[Lockfile], recipe: str | None = None) -> set[tuple[str, str]]:
    """(registry/repository, digest) of every image the locks pin (for one recipe, or all)."""
    from pipeline.bom import locked_recipes

    return {(i.image.name, str(i.digest)) for r in locked_recipes(locks) if recipe in (None, r.name)
            for _, i in r.images()}


def lib4sbom_read(path: Path) -> tuple[list[dict[str, Any]], set[tuple[str, str]]]:
    """Packages and (source bom-ref, target bom-ref) edges as lib4sbom sees them."""
    from lib4sbom.parser import SBOMParser

    parser = SBOMParser()
    parser.parse_file(str(path))
    packages: list[dict[str, Any]] = parser.get_packages()
    edges = {(str(r["source_id"]), str(r["target_id"])) for r in parser.get_relationships()}
    del parser
    gc.collect()  # lib4sbom leaves license data files open: close them inside the test
    return packages, edges


# lib4sbom 0.10.4 opens its SPDX license lists without closing them.
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_lib4sbom_finds_every_image_and_every_edge(tmp_path: Path) -> None:
    locks = _locks()
    for rel, path in _boms(tmp_path, locks).items():
        packages, edges = lib4sbom_read(path)
        recipe = None if rel.name == "catalog.cdx.json" else rel.name.removesuffix(".cdx.json")
        containers = {(p["name"], p["version"]) for p in packages if p["type"] == "CONTAINER"}
        assert containers == expected_images(locks, recipe), rel
        doc = json.loads(path.read_bytes())
        written = {(d["ref"], t) for d in doc["dependencies"] for t in d.get("dependsOn", [])}
        assert edges == written, rel
        assert all(p.get("checksum") for p in packages if p["type"] == "CONTAINER")
        platforms = {n for p in packages for n, _ in p.get("property", []) if n.startswith("recipe-pipeline:platform:")}
        assert platforms == {"recipe-pipeline:platform:linux/amd64", "recipe-pipeline:platform:linux/arm64"} or \
            platforms == {"recipe-pipeline:platform:linux/amd64"}


@pytest.mark.node
def test_javascript_strict_validator_accepts_every_bom(tmp_path: Path, node_validator: Run) -> None:
    paths = _boms(tmp_path, _locks())
    result = node_validator(sorted(paths.values()))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("valid ") == len(paths)


@pytest.mark.node
def test_javascript_strict_validator_rejects_a_broken_bom(tmp_path: Path, node_validator: Run) -> None:
    path = _boms(tmp_path, [f.demo_lock()])[PurePosixPath("recipes/demo.cdx.json")]
    doc = json.loads(path.read_bytes())
    doc["components"][0]["type"] = "not-a-type"
    path.write_text(json.dumps(doc))
    result = node_validator([path])
    assert result.returncode == 1
    assert "must be equal to one of the allowed values" in result.stdout


@pytest.mark.syft
def test_syft_reads_every_bom(tmp_path: Path, syft: Callable[[Path, Path], CompletedProcess[str]]) -> None:
    for rel, path in _boms(tmp_path, [f.demo_lock(), f.demo_lock(name="other")]).items():
        out = tmp_path / "syft" / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        result = syft(path, out)
        assert result.returncode == 0, f"{rel}: {result.stderr}"
        converted: Mapping[str, Any] = json.loads(out.read_bytes())
        # syft keeps package-type components only (not containers, not our properties): check the charts.
        purls = {c.get("purl") for c in converted.get("components", [])}
        assert {"pkg:helm/app@1.2.3?repository_url=https://charts.example.com/stable",
                "pkg:helm/agent@v2.0.0"} <= purls, rel
