"""Locking a chart pinned in Helm's spelling: ``v1.2.3`` against an index of ``1.2.3`` and the reverse.

Helm finds the exact string first, then the same semantic version (pipeline/charts/versions.py);
the lock records the version string the repository served. A pin the index lacks fails with exit 2,
naming the file and line of the pin and the nearest versions offered.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.__main__ import main
from tests import factories
from tests.servers import HttpRepo, write_index

pytestmark = pytest.mark.http_repo


def _catalog(root: Path, repo: HttpRepo, *, published: list[str], pin: str) -> Path:
    archives = []
    for version in published:
        path = repo.directory / f"app-{version}.tgz"
        path.write_bytes(factories.chart_archive("app", version))
        archives.append(path)
    write_index(repo.directory, archives)
    return factories.catalog(root / "catalog", repository=repo.url, version=f'"{pin}"')


def _lock(root: Path) -> int:
    return main(["lock", "--catalog", str(root / "catalog"), "--lockdir", str(root / "locks"), "--cache",
                 str(root / "cache"), "--workers", "1", "--no-resolve"])


@pytest.mark.parametrize(("published", "pin", "served"), [
    (["1.2.3", "1.2.4"], "v1.2.3", "1.2.3"),
    (["v1.2.3", "1.2.4"], "1.2.3", "v1.2.3"),
])
def test_a_pin_in_either_spelling_locks_the_served_version(http_repo: HttpRepo, tmp_path: Path,
                                                           published: list[str], pin: str, served: str) -> None:
    _catalog(tmp_path, http_repo, published=published, pin=pin)
    assert _lock(tmp_path) == 0
    locks = sorted((tmp_path / "locks").glob("*.lock.json"))
    assert locks
    for path in locks:
        chart = json.loads(path.read_text())["components"]["app"]["chart"]
        assert (chart["name"], chart["version"]) == ("app", served)
    # and it reproduces from the lock (the store serves the locked archive)
    assert main(["reproduce", "--catalog", str(tmp_path / "catalog"), "--lockdir", str(tmp_path / "locks"),
                 "--cache", str(tmp_path / "cache"), "--workers", "1"]) == 0


def test_a_missing_version_names_the_pin_and_the_nearest_versions(http_repo: HttpRepo, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    _catalog(tmp_path, http_repo, published=["1.0.0", "1.2.2", "1.2.4", "2.0.0"], pin="1.2.3")
    assert _lock(tmp_path) == 2
    err = capsys.readouterr().err
    assert (f"registry.yaml:9: recipe 'eks': component 'app': chart 'app' version '1.2.3' is not in the "
            f"repository index {http_repo.url}/index.yaml (it has 4 versions; nearest: '1.0.0', '1.2.2', "
            "'1.2.4', '2.0.0')") in err
    assert "hint: pin a version the repository offers; Helm matches the exact string first" in err
    assert not (tmp_path / "locks").exists() or not list((tmp_path / "locks").glob("*.lock.json"))


def test_a_missing_version_pinned_in_an_overlay_names_the_overlay(http_repo: HttpRepo, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    catalog = _catalog(tmp_path, http_repo, published=["1.2.4"], pin="1.2.4")
    overlay = catalog / "overlays" / "eks.yaml"
    overlay.write_text(overlay.read_text().replace("    - name: app\n      type: Helm\n",
                                                   "    - name: app\n      type: Helm\n      version: v1.2.5\n"))
    assert _lock(tmp_path) == 2
    err = capsys.readouterr().err
    assert (f"overlays/eks.yaml:12: recipe 'eks': component 'app': chart 'app' version 'v1.2.5' is not in the "
            f"repository index {http_repo.url}/index.yaml (it has 1 versions; nearest: '1.2.4')") in err
