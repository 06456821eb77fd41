"""``upgrade``: one YAML line moves, the recipes using the chart are relocked, reproduce passes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from pipeline.__main__ import main
from pipeline.charts import pack_directory
from pipeline.lockfile import load

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]


def _offer(catalog: Path, chart: str, version: str) -> None:
    """Put ``<chart>-<version>.tgz`` beside the chart directory: the local repository now offers it."""
    directory = catalog / "charts" / chart
    copy = catalog.parent / "staging" / chart
    shutil.copytree(directory, copy)
    meta = copy / "Chart.yaml"
    text = meta.read_text()
    current = next(line.split(": ", 1)[1] for line in text.splitlines() if line.startswith("version: "))
    meta.write_text(text.replace(f"\nversion: {current}\n", f"\nversion: {version}\n"))
    (catalog / "charts" / f"{chart}-{version}.tgz").write_bytes(pack_directory(copy, chart))
    shutil.rmtree(catalog.parent / "staging")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(ROOT / "recipes", root / "recipes")
    _offer(root / "recipes", "accel-operator", "v1.5.0")
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    assert main(["lock", "--no-resolve", "--catalog", str(root / "recipes"), "--lockdir", str(root / "lockfiles"),
                 "--cache", str(root / "cache"), "--workers", "1"]) == 0
    (root / ".gitignore").write_text("cache/\n")
    subprocess.run([*GIT, "-C", str(root), "add", "-A"], check=True)
    subprocess.run([*GIT, "-C", str(root), "commit", "-qm", "start"], check=True)
    return root


def _args(root: Path) -> list[str]:
    return ["--catalog", str(root / "recipes"), "--lockdir", str(root / "lockfiles"), "--cache", str(root / "cache"),
            "--workers", "1"]


def _publish(root: Path) -> list[str]:
    return ["--bom", str(root / "bom"), "--docs-images", str(root / "docs" / "container-images.md"),
            "--docs-provenance", str(root / "docs" / "provenance-matrix.md"), "--policies", str(root / "policies")]


def test_upgrade_changes_one_line_relocks_users_and_reproduces(project: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["upgrade", "accel-operator", "--to", "v1.5.0", "--no-resolve", *_args(project), *_publish(project)])
    captured = capsys.readouterr()
    out = captured.out
    assert code == 0, captured.err
    diff = subprocess.run(["git", "-C", str(project), "diff", "-U0", "--", "recipes/"], capture_output=True,
                          text=True, check=True).stdout
    changed = [line for line in diff.splitlines() if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert changed == ["-      defaultVersion: v1.4.2", "+      defaultVersion: v1.5.0"]
    assert "recipes/registry.yaml:24" not in out  # messages name catalog-relative files
    assert "registry.yaml:24: accel-operator v1.4.2 → v1.5.0" in out
    for lockfile in sorted((project / "lockfiles").glob("*.lock.json")):
        chart = load(lockfile).components["accel-operator"].chart
        assert chart is not None and chart.version == "v1.5.0"
    assert "| `telemetry-exporter`" not in out  # the diff names only what moved
    assert "| `accel-operator` | chart | version | `accel-operator` | `v1.4.2` | `v1.5.0` |  |" in out
    assert (project / "bom" / "catalog.cdx.json").is_file()
    assert (project / "docs" / "provenance-matrix.md").is_file()
    assert "admission policies not regenerated" in captured.err  # they need resolved digests
    assert main(["reproduce", *_args(project)]) == 0


def test_a_version_not_offered_exits_2_and_touches_nothing(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["upgrade", "accel-operator", "--to", "v9.9.9", "--no-resolve", *_args(project), *_publish(project)])
    assert code == 2
    err = capsys.readouterr().err
    assert "error: chart 'accel-operator': version 'v9.9.9' is not offered by ./charts" in err
    assert "hint: versions offered near it: v1.4.2, v1.5.0" in err
    status = subprocess.run(["git", "-C", str(project), "status", "--porcelain"], capture_output=True, text=True,
                            check=True).stdout
    assert status == ""


def test_latest_picks_the_newest_offered(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _offer(project / "recipes", "accel-operator", "v1.6.0-rc.1")
    assert main(["upgrade", "accel-operator", "--latest", "--no-resolve", "--no-publish", *_args(project)]) == 0
    assert "accel-operator v1.4.2 → v1.5.0" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "message"), [
    (["upgrade", "accel-operator"], "upgrade needs exactly one of --to VERSION and --latest"),
    (["upgrade", "--latest"], "upgrade needs a COMPONENT or --all"),
    (["upgrade", "--all", "--to", "1.0.0"], "--all moves every chart to its own newest version"),
    (["upgrade", "no-such", "--to", "1.0.0"], "uses a chart component named 'no-such'"),
])
def test_usage_errors_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*argv, "--catalog", str(ROOT / "recipes"), "--lockdir", str(ROOT / "lockfiles")]) == 2
    assert message in capsys.readouterr().err


def test_round_trip_keeps_quotes_and_comments() -> None:
    from pipeline.upgrade import _edit

    text = ('components:\n  # keep me\n  - name: a\n    helm:\n      defaultVersion: "1.2.3"  # pinned\n'
            "      defaultChart: a\n")
    edited, line, old = _edit(text, source="registry.yaml", component="a", new="1.3.0")
    assert (line, old) == (5, "1.2.3")
    assert edited == text.replace('"1.2.3"', '"1.3.0"')


@pytest.mark.tools
@pytest.mark.usefixtures("lab_registry")
def test_upgrade_regenerates_the_policies_in_the_kyverno_api_the_catalog_records(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # provenance.yaml records ClusterPolicy: the upgrade's regenerated allow-list keeps that form
    # (it used to fall back to the default ImageValidatingPolicy), and 'policies' follows it too.
    matrix = project / "recipes" / "provenance.yaml"
    matrix.write_text(matrix.read_text() + "  policies:\n    kyvernoApi: ClusterPolicy\n")
    code = main(["upgrade", "accel-operator", "--to", "v1.5.0", *_args(project), *_publish(project)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    kyverno = project / "policies" / "kyverno"
    assert "kind: ClusterPolicy" in (kyverno / "recipe-digest-allowlist.yaml").read_text()
    assert (kyverno / "recipe-locked-repositories.yaml").is_file()
    policies = ["policies", *_args(project), "--out", str(project / "policies")]
    assert main(policies) == 0
    out = capsys.readouterr().out
    assert "unchanged" in out and "wrote" not in out
    assert main([*policies, "--kyverno-api", "imagevalidatingpolicy"]) == 0
    captured = capsys.readouterr()
    assert "note: --kyverno-api imagevalidatingpolicy writes the allow-list as ImageValidatingPolicy, but " \
           "provenance.yaml records spec.policies.kyvernoApi: ClusterPolicy" in captured.err
    assert "kind: ImageValidatingPolicy" in (kyverno / "recipe-digest-allowlist.yaml").read_text()
    assert f"removed   {kyverno / 'recipe-locked-repositories.yaml'}" in captured.out
