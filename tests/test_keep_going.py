"""Every missing chart at once: ``lock``, ``reproduce`` and ``qualify`` try every chart before they
stop and name them all in one table (chart, version, repository, component, the overlay file:line
that pins it, recipes);
``lock --keep-going`` locks the recipes whose charts are all there; ``charts`` lists what a catalog
needs before any fetch.

The three chart repositories are loopback ports nothing listens on (connection refused).
"""

from __future__ import annotations

import socket
import textwrap
from pathlib import Path

import pytest

from pipeline.__main__ import main
from tests import factories


def _dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/charts"


def _overlay(name: str, service: str, refs: str) -> str:
    return textwrap.dedent(f"""\
        kind: RecipeMetadata
        apiVersion: aicr.run/v1alpha2
        metadata:
          name: {name}
        spec:
          base: base
          criteria:
            service: {service}
          componentRefs:
        """) + textwrap.indent(textwrap.dedent(refs), "    ")


def _catalog(root: Path) -> tuple[Path, list[str]]:
    dead = [_dead_url() for _ in range(3)]
    registry = factories.registry_yaml(components="".join(
        f"  - name: {name}\n    displayName: {name}\n    helm:\n      defaultRepository: {url}\n"
        f"      defaultChart: {name}\n      defaultNamespace: {name}\n"
        for name, url in zip(("one", "two", "three"), dead, strict=True)))
    extra = {
        "registry.yaml": registry,
        # eks needs 'one'; gke needs 'two' and 'three'; aks needs nothing remote.
        "overlays/eks.yaml": _overlay("eks", "eks", """\
            - name: one
              type: Helm
              version: 1.0.0
            """),
        "overlays/gke.yaml": _overlay("gke", "gke", """\
            - name: two
              type: Helm
              version: 2.0.0
            - name: three
              type: Helm
              version: 3.0.0
            """),
        "overlays/aks.yaml": _overlay("aks", "aks", """\
            - name: app
              type: Helm
            """),
    }
    return factories.catalog(root / "catalog", extra=extra), dead


def _args(root: Path, *extra: str) -> list[str]:
    return ["lock", "--catalog", str(root / "catalog"), "--lockdir", str(root / "locks"), "--cache",
            str(root / "cache"), "--workers", "1", "--no-resolve", *extra]


def _table_rows(err: str) -> dict[str, list[str]]:
    """The rows of the one missing-chart table, by chart; the header is checked too."""
    lines = err.splitlines()
    header = next(line for line in lines if line.startswith("CHART "))
    assert header.split() == ["CHART", "VERSION", "REPOSITORY", "COMPONENT", "PINNED", "AT", "RECIPES", "PROBLEM"]
    assert sum(1 for line in lines if line.startswith("CHART ")) == 1  # one table, not one per chart
    return {line.split()[0]: line.split() for line in lines
            if line.split() and line.split()[0] in {"one", "two", "three"}}


def _assert_every_dead_chart_named(err: str, dead: list[str]) -> None:
    assert "error: 3 chart(s) could not be fetched, needed by 2 recipe(s):" in err
    rows = _table_rows(err)
    assert rows["one"][:6] == ["one", "1.0.0", dead[0], "one", "overlays/eks.yaml:12", "eks"]
    assert rows["two"][:6] == ["two", "2.0.0", dead[1], "two", "overlays/gke.yaml:12", "gke"]
    assert rows["three"][:6] == ["three", "3.0.0", dead[2], "three", "overlays/gke.yaml:15", "gke"]


def test_one_run_names_every_unreachable_chart_with_its_pin_and_recipes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, dead = _catalog(tmp_path)
    assert main(_args(tmp_path)) == 2
    err = capsys.readouterr().err
    _assert_every_dead_chart_named(err, dead)
    assert "hint: serve them from a mirror" in err
    assert not (tmp_path / "locks").exists()  # nothing written


@pytest.mark.parametrize("command", ["reproduce", "qualify"])
def test_reproduce_and_qualify_name_every_unreachable_chart_in_one_table(
        command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, dead = _catalog(tmp_path)
    # locks of the recipe that needs no remote chart exist; the others' charts cannot be fetched
    assert main([*_args(tmp_path, "--keep-going")]) == 1
    capsys.readouterr()
    argv = [command, "--catalog", str(tmp_path / "catalog"), "--lockdir", str(tmp_path / "locks"),
            "--cache", str(tmp_path / "cache2"), "--workers", "1"]
    before = sorted((p.name, p.read_bytes()) for p in (tmp_path / "locks").iterdir())
    assert main(argv) == 2
    err = capsys.readouterr().err
    _assert_every_dead_chart_named(err, dead)
    assert "Traceback" not in err
    assert sorted((p.name, p.read_bytes()) for p in (tmp_path / "locks").iterdir()) == before


def test_keep_going_locks_the_rest_and_says_what_it_skipped(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    _catalog(tmp_path)
    (tmp_path / "locks").mkdir()
    (tmp_path / "locks/eks.lock.json").write_text("an old lock, kept\n")
    assert main(_args(tmp_path, "--keep-going")) == 1
    out = capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "locks").iterdir()) == ["aks.lock.json", "eks.lock.json"]
    assert (tmp_path / "locks/eks.lock.json").read_text() == "an old lock, kept\n"
    assert "1 recipes locked" in out
    assert "2 recipes skipped (their lockfiles are left as they were): eks, gke" in out
    assert "overlays/gke.yaml:15" in out


def test_charts_lists_every_chart_the_catalog_needs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, dead = _catalog(tmp_path)
    assert main(["charts", "--catalog", str(tmp_path / "catalog"), "--json"]) == 0
    import json
    listed = json.loads(capsys.readouterr().out)
    assert [(c["repository"], c["chart"], c["version"], c["recipes"], c["pinnedAt"]) for c in listed] == sorted([
        (dead[0], "one", "1.0.0", ["eks"], ["overlays/eks.yaml:12"]),
        (dead[1], "two", "2.0.0", ["gke"], ["overlays/gke.yaml:12"]),
        (dead[2], "three", "3.0.0", ["gke"], ["overlays/gke.yaml:15"]),
    ])
    assert main(["charts", "--catalog", str(tmp_path / "catalog")]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0].split() == ["REPOSITORY", "CHART", "VERSION", "MIRROR", "COMPONENTS", "PINNED", "AT",
                                            "RECIPES"]
    assert "3 charts from 3 repositories (charts inside the catalog are not listed)" in text
