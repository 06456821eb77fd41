"""The lock diff on two lock sets of our catalog: exact rows in JSON and Markdown, exit codes, git."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pipeline.__main__ import main
from pipeline.diff import Change, DiffRow, LockDiff, Subject, format_markdown
from pipeline.lockfile import load
from tests.diff.catalogs import bump, copy_catalog, lock

pytestmark = pytest.mark.slow

KUBEFLOW = "h100-eks-ubuntu-training-kubeflow"
TELEMETRY = "localhost:5001/recipe-lab/telemetry-exporter"


@pytest.fixture(scope="module")
def sets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("diff")
    cache = root / "cache"
    before = lock(copy_catalog(root / "a"), root / "a-locks", cache)
    catalog = bump(copy_catalog(root / "b"))
    after = lock(catalog, root / "b-locks", cache)
    return {"before": before, "after": after, "catalog": catalog, "cache": cache, "root": root}


def _diff(sets: dict[str, Path], *extra: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["diff", "--catalog", str(sets["catalog"]), "--lockdir", str(sets["after"]), "--cache",
                 str(sets["cache"]), "--from", str(sets["before"]), "--to", str(sets["after"]), *extra])
    return code, capsys.readouterr().out


def _chart(lockdir: Path, recipe: str) -> Any:
    chart = load(lockdir / f"{recipe}.lock.json").components["telemetry-exporter"].chart
    assert chart is not None
    return chart


def test_json_rows_name_every_change(sets: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _diff(sets, "--format", "json", capsys=capsys)
    assert code == 1
    report = json.loads(out)
    assert report["equal"] is False
    assert report["changedRecipes"] == ["h100-any", KUBEFLOW, "h100-kind-inference"]
    rows = [r for r in report["rows"] if r["recipe"] == KUBEFLOW]
    old, new = _chart(sets["before"], KUBEFLOW), _chart(sets["after"], KUBEFLOW)
    base = {"recipe": KUBEFLOW, "file": "", "detail": []}
    assert rows[:5] == [
        {**base, "component": "node-tuning", "subject": "component", "change": "removed", "item": "node-tuning",
         "before": "manifests only", "after": "",
         "detail": [i.ref for i in load(sets["before"] / f"{KUBEFLOW}.lock.json").components["node-tuning"].images]},
        {**base, "component": "telemetry-exporter", "subject": "chart", "change": "archive",
         "item": "telemetry-exporter", "before": old.archive, "after": new.archive},
        {**base, "component": "telemetry-exporter", "subject": "chart", "change": "tree",
         "item": "telemetry-exporter", "before": old.tree, "after": new.tree},
        {**base, "component": "telemetry-exporter", "subject": "chart", "change": "version",
         "item": "telemetry-exporter", "before": "4.2.3", "after": "4.2.4"},
        {**base, "component": "telemetry-exporter", "subject": "image", "change": "re-tagged", "item": TELEMETRY,
         "before": f"{TELEMETRY}:4.2.3-4.1.1-ubuntu22.04", "after": f"{TELEMETRY}:4.2.4-4.1.1-ubuntu22.04"},
    ]
    resources = {(r["item"], r["change"]): r["detail"] for r in rows[5:]}
    assert all(r["subject"] == "resource" for r in rows[5:])
    assert resources[("DaemonSet/telemetry/telemetry-exporter", "changed")] == [
        "metadata.labels.helm.sh/chart", "spec.template.spec.containers[0].image"]
    assert resources[("ConfigMap/telemetry/telemetry-exporter-counters", "changed")] == [
        "metadata.labels.helm.sh/chart"]
    assert len(resources) == 7


def test_markdown_summary_and_detail_rows(sets: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _diff(sets, capsys=capsys)
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == f"## Lock diff: `{sets['before']}` → `{sets['after']}`"
    assert "3 of 3 recipes change (34 rows)." in lines
    assert (f"| `{KUBEFLOW}` | changed | 1 removed | 1 archive, 1 tree, 1 version | 1 re-tagged | 7 changed |"
            in lines)
    assert "| `h100-any` | changed | - | 1 archive, 1 tree, 1 version | 1 re-tagged | 7 changed |" in lines
    assert f"<details><summary><code>{KUBEFLOW}</code>: 12 changes</summary>" in lines
    assert ("| `telemetry-exporter` | chart | version | `telemetry-exporter` | `4.2.3` | `4.2.4` |  |" in lines)
    assert (f"| `telemetry-exporter` | image | re-tagged | `{TELEMETRY}` | `{TELEMETRY}:4.2.3-4.1.1-ubuntu22.04` | "
            f"`{TELEMETRY}:4.2.4-4.1.1-ubuntu22.04` |  |") in lines
    assert ("| `telemetry-exporter` | resource | changed | `DaemonSet/telemetry/telemetry-exporter`<br>in "
            "`telemetry-exporter/templates/daemonset.yaml` |  |  | metadata.labels.helm.sh/chart<br>"
            "spec.template.spec.containers[0].image |") in lines
    old = _chart(sets["before"], KUBEFLOW).archive
    assert f"`sha256:{old.removeprefix('sha256:')[:12]}…`" in out  # digests shortened in Markdown only


def test_equal_sets_exit_0(sets: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["diff", "--lockdir", str(sets["before"]), "--cache", str(sets["cache"]),
                 "--from", str(sets["before"]), "--to", str(sets["before"])])
    assert code == 0
    assert "No changes: 3 recipes, every lock identical." in capsys.readouterr().out


def test_uncached_streams_are_reported_by_file(sets: dict[str, Path], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["diff", "--lockdir", str(sets["after"]), "--cache", str(tmp_path / "empty"), "--no-render",
                 "--format", "json", "--from", str(sets["before"]), "--to", str(sets["after"])])
    assert code == 1
    rows = [r for r in json.loads(capsys.readouterr().out)["rows"] if r["subject"] == "resource"]
    assert {r["change"] for r in rows} == {"not compared"}
    assert rows[0]["detail"] == ["rendered stream of before and after not in the render cache and not re-rendered"]


def test_stale_cache_is_re_rendered_for_the_working_catalog(sets: dict[str, Path], tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    cache = tmp_path / "cache"
    shutil.copytree(sets["cache"] / "charts", cache / "charts")
    code = main(["diff", "--catalog", str(sets["catalog"]), "--lockdir", str(sets["after"]), "--cache", str(cache),
                 "--format", "json", "--from", str(sets["before"])])
    assert code == 1
    rows = json.loads(capsys.readouterr().out)["rows"]
    # the after side is re-rendered from the catalog; the before side (a plain directory) cannot be
    changes = {r["change"] for r in rows if r["subject"] == "resource"}
    assert changes == {"not compared"}
    assert rows[-1]["detail"] == ["rendered stream of before not in the render cache and not re-rendered"]


def test_from_a_git_revision_reads_committed_bytes_without_checkout(
        sets: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(sets["before"], repo / "lockfiles")
    shutil.copytree(sets["root"] / "a", repo / "recipes")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    subprocess.run([*git, "-C", str(repo), "add", "-A"], check=True)
    subprocess.run([*git, "-C", str(repo), "commit", "-qm", "before"], check=True)
    shutil.rmtree(repo / "lockfiles")
    shutil.copytree(sets["after"], repo / "lockfiles")  # the working tree now holds the new locks
    shutil.rmtree(repo / "recipes")
    shutil.copytree(sets["catalog"], repo / "recipes")
    cache = tmp_path / "cache"  # empty: both sides are re-rendered (the old catalog from git archive)
    code = main(["diff", "--catalog", str(repo / "recipes"), "--lockdir", str(repo / "lockfiles"),
                 "--cache", str(cache), "--format", "json", "--from", "main"])
    assert code == 1
    report = json.loads(capsys.readouterr().out)
    assert report["from"] == "main"
    resources = [r for r in report["rows"] if r["subject"] == "resource"]
    assert resources and {r["change"] for r in resources} == {"changed"}
    assert len(report["rows"]) == 34
    status = subprocess.run(["git", "-C", str(repo), "status", "--porcelain"], capture_output=True, text=True,
                            check=True).stdout
    assert "lockfiles/" in status  # the working tree was not checked out


@pytest.mark.parametrize(("source", "message"), [
    ("no-such-ref", "'no-such-ref' is neither a directory nor a git revision"),
    ("--upload-pack=x", "'--upload-pack=x' is not a git revision"),
])
def test_bad_source_exits_2(sets: dict[str, Path], source: str, message: str,
                            capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["diff", "--lockdir", str(Path(__file__).resolve().parents[2] / "lockfiles"),
                 f"--from={source}"])
    assert code == 2
    assert message in capsys.readouterr().err


def test_tampered_lock_is_bad_input(sets: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(sets["before"], tmp_path / "locks")
    target = tmp_path / "locks" / "h100-any.lock.json"
    target.write_text(target.read_text().replace('"4.2.3"', '"4.2.9"', 1))
    code = main(["diff", "--lockdir", str(sets["before"]), "--from", str(tmp_path / "locks")])
    assert code == 2
    err = capsys.readouterr().err
    assert f"error: cannot compare {tmp_path / 'locks'}: {tmp_path / 'locks'}/h100-any.lock.json" in err


def test_markdown_is_bounded_and_says_what_was_cut() -> None:
    rows = tuple(DiffRow(recipe=f"r{i:03d}", subject=Subject.IMAGE, change=Change.ADDED, item=f"example.com/i:{j}",
                         component="c", after="sha256:" + "a" * 64) for i in range(40) for j in range(30))
    diff = LockDiff(before="main", after="lockfiles", recipes=tuple(sorted({r.recipe for r in rows})), rows=rows)
    text = format_markdown(diff, limit=20_000).decode()
    assert len(text) <= 20_000
    assert "| `r039` | changed | - | - | 30 added | - |" in text  # the summary keeps every recipe
    cut = [line for line in text.splitlines() if "were cut" in line]
    assert cut and cut[0].startswith("> **")
    shown = text.count("<details>")
    assert f"**{(40 - shown) * 30} rows in {40 - shown} recipes were cut**" in cut[0]
