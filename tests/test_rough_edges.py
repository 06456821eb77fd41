"""Rough edges of using the pipeline on another catalog: ``bom --recipe``, the inventory's default
place (beside the catalog) and the lock directory it names, hints that name the catalog in use, and
``qualify`` grouping the "no digest" findings of ``lock --no-resolve`` locks."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.__main__ import main
from tests import factories


def _where(root: Path) -> list[str]:
    return ["--catalog", str(root / "cat"), "--lockdir", str(root / "my-locks"), "--cache", str(root / "cache"),
            "--workers", "1"]


@pytest.fixture
def locked(tmp_path: Path) -> Path:
    factories.catalog(tmp_path / "cat")
    assert main(["lock", *_where(tmp_path), "--no-resolve"]) == 0
    return tmp_path


def test_bom_without_docs_writes_the_inventory_beside_the_catalog_naming_the_lockdir(
        locked: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = locked / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["bom", *_where(locked), "--out", str(locked / "bom"), "--allow-unpinned"]) == 0
    assert not (elsewhere / "docs").exists()
    text = (locked / "docs/container-images.md").read_text()
    assert f"as recorded in `{locked / 'my-locks'}/`" in text
    assert f"<!-- Generated from {locked / 'my-locks'}/ by 'python -m pipeline bom'" in text
    assert main(["bom", *_where(locked), "--out", str(locked / "bom"), "--allow-unpinned", "--check"]) == 0


def test_bom_recipe_writes_only_that_recipes_bom(locked: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bom", *_where(locked), "--out", str(locked / "bom"), "--allow-unpinned", "--recipe", "eks"]) == 0
    assert sorted(p.relative_to(locked / "bom").as_posix() for p in (locked / "bom").rglob("*.json")) == [
        "recipes/eks.cdx.json"]
    assert not (locked / "docs").exists()
    assert "wrote" in capsys.readouterr().out
    assert main(["bom", *_where(locked), "--out", str(locked / "bom"), "--allow-unpinned", "--recipe", "eks",
                 "--check"]) == 0


def test_hints_name_the_command_for_the_catalog_in_use(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    factories.catalog(tmp_path / "cat")
    assert main(["bom", *_where(tmp_path), "--out", str(tmp_path / "bom")]) == 2
    err = capsys.readouterr().err
    assert f"hint: run 'python -m pipeline lock --catalog {tmp_path / 'cat'} --lockdir {tmp_path / 'my-locks'}'" in err
    assert "nox -s" not in err


def test_qualify_groups_images_without_a_digest_summary_first(locked: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["qualify", *_where(locked), "--recipe", "eks"]) == 1
    out = capsys.readouterr().out
    gates = out[out.index("pinning gates:"):]
    lines = gates.splitlines()
    assert lines[0].startswith("pinning gates: ")
    assert "locked image(s) without a digest in 1 lock(s)" in lines[0]
    assert "images without a digest, by component and registry (" in gates
    assert "  app " in gates and "ghcr.io" in gates
    assert gates.count("hint: run 'python -m pipeline lock") == 1
