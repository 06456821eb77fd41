"""End to end through the CLI: lock, reproduce, and every way a user can make them fail.

Each test builds a tiny catalog (tests/factories.py), runs ``python -m pipeline`` in-process via
``main(argv)``, and checks the exit code and what the user reads.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.__main__ import main
from tests import factories

RAND_SECRET = """\
apiVersion: v1
kind: Secret
metadata:
  name: {{ .Release.Name }}-token
data:
  token: {{ randAlphaNum 16 | b64enc | quote }}
"""


def _args(root: Path, command: str, *extra: str) -> list[str]:
    # These catalogs name images on public registries that are not reachable here: lock without
    # resolving (tests/test_lock_resolve.py covers resolution against real registries).
    resolve = ["--no-resolve"] if command == "lock" else []
    return [command, "--catalog", str(root / "catalog"), "--lockdir", str(root / "locks"),
            "--cache", str(root / "cache"), "--workers", "2", *resolve, *extra]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    factories.catalog(tmp_path / "catalog")
    return tmp_path


def _lock(root: Path) -> dict[str, bytes]:
    assert main(_args(root, "lock")) == 0
    return {p.name: p.read_bytes() for p in sorted((root / "locks").iterdir())}


def test_lock_then_reproduce_passes_and_prints_a_summary(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    locks = _lock(project)
    assert list(locks) == ["eks.lock.json"]
    capsys.readouterr()
    assert main(_args(project, "reproduce")) == 0
    out = capsys.readouterr().out
    assert "variation A: TZ=" in out and "variation B: TZ=" in out
    assert "eks " in out and "PASS" in out
    assert "1/1 recipes reproduced" in out


def test_two_locks_are_byte_identical(project: Path) -> None:
    first = _lock(project)
    shutil.rmtree(project / "cache")
    assert _lock(project) == first


def test_lock_content(project: Path) -> None:
    body = json.loads(_lock(project)["eks.lock.json"])
    assert body["recipe"]["overlays"] == ["base", "eks"]
    assert body["engine"]["helm"] == "v4.2.3"
    assert body["engine"]["kubeVersion"] == "1.33.0"
    app = body["components"]["app"]
    assert app["chart"]["repository"] == "./charts" and app["chart"]["archive"].startswith("sha256:")
    assert sorted(app["render"]["files"]) == ["app/crds/widgets.yaml", "app/templates/deployment.yaml",
                                              "app/templates/hook.yaml", "app/templates/serviceaccount.yaml"]
    images = {i["ref"]: i for i in app["images"]}
    # tag 1.1 comes from our values file: in-tree origin; the hook's busybox is the chart's own default.
    assert images["ghcr.io/example/app:1.1"]["origin"] == "in-tree"
    assert images["docker.io/library/busybox:1.36"]["origin"] == "chart-default"
    assert body["components"]["extras"]["chart"] is None
    assert "components/app/values.yaml" in body["inputs"]["files"]
    assert "charts/app/templates/deployment.yaml" in body["inputs"]["files"]
    assert str(project) not in json.dumps(body)  # no absolute paths


def test_changed_values_file_is_named_as_the_stale_input(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _lock(project)
    values = project / "catalog/components/app/values.yaml"
    values.write_text(values.read_text() + "extraKey: 1\n")
    capsys.readouterr()
    assert main(_args(project, "reproduce")) == 1
    out = capsys.readouterr().out
    assert "[staleness] recipe 'eks'" in out
    assert "input components/app/values.yaml changed since the lock was made" in out


def test_edited_lock_digest_is_an_integrity_failure(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _lock(project)
    path = project / "locks/eks.lock.json"
    text = path.read_text()
    index = text.index('"archive": "sha256:') + len('"archive": "sha256:')
    path.write_text(text[:index] + ("0" if text[index] != "0" else "1") + text[index + 1:])
    capsys.readouterr()
    assert main(_args(project, "reproduce")) == 1
    out = capsys.readouterr().out
    assert "[lock integrity] recipe 'eks'" in out
    assert "eks.lock.json fails its integrity check" in out


def test_random_template_is_caught_naming_file_and_function(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    factories.catalog(tmp_path / "catalog", chart_templates={"deployment.yaml": factories.DEPLOYMENT,
                                                              "secret.yaml": RAND_SECRET})
    _lock(tmp_path)
    capsys.readouterr()
    assert main(_args(tmp_path, "reproduce")) == 1
    out = capsys.readouterr().out
    assert "[A = B] recipe 'eks' → component 'app' → file app/templates/secret.yaml → resource Secret/app-token" in out
    assert "field: data.token" in out
    assert "likely cause: app/templates/secret.yaml:6 calls randAlphaNum" in out


def test_declared_volatile_field_makes_a_random_chart_reproducible(tmp_path: Path) -> None:
    factories.catalog(tmp_path / "catalog", chart_templates={"secret.yaml": RAND_SECRET}, extra={
        "volatile.yaml": "apiVersion: pipeline.recipes.dev/v1\nkind: VolatileFields\nspec:\n  fields:\n"
                         "    - component: app\n      kind: Secret\n      path: data.token\n"
                         "      reason: random token, regenerated by the operator at install\n"})
    body = json.loads(_lock(tmp_path)["eks.lock.json"])
    assert body["volatile"] == [{"component": "app", "kind": "Secret", "path": "data.token",
                                 "reason": "random token, regenerated by the operator at install"}]
    assert main(_args(tmp_path, "reproduce")) == 0


def test_failed_lock_leaves_previous_lockfiles_intact(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = _lock(project)
    (project / "catalog/charts/app/templates/broken.yaml").write_text("{{ fail \"broken on purpose\" }}\n")
    capsys.readouterr()
    assert main(_args(project, "lock")) == 2
    err = capsys.readouterr().err
    assert "broken on purpose" in err
    assert {p.name: p.read_bytes() for p in (project / "locks").iterdir()} == before


def test_missing_lockfile_fails_with_the_fix(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_args(project, "reproduce")) == 1
    assert "no lockfile at" in capsys.readouterr().out


@pytest.mark.parametrize(("files", "message"), [
    ({"overlays/eks.yaml": "kind: RecipeMetadata\napiVersion: aicr.run/v1alpha2\nmetadata: {name: eks}\n"
                           "spec:\n  base: nowhere\n  criteria: {service: eks}\n"}, "nowhere"),
    ({"components/app/values.yaml": "- a list\n- not a mapping\n"}, "components/app/values.yaml"),
    ({"overlays/eks.yaml": "kind: RecipeMetadata\napiVersion: [unclosed\n"}, "malformed YAML"),
])
def test_bad_catalog_input_exits_2_with_location_and_hint(project: Path, capsys: pytest.CaptureFixture[str],
                                                          files: dict[str, str], message: str) -> None:
    factories.write_files(project / "catalog", files)
    assert main(_args(project, "lock")) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "hint: " in err
    assert not (project / "locks").exists()


def test_unknown_recipe_is_a_usage_error(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_args(project, "lock", "--recipe", "ek")) == 2
    err = capsys.readouterr().err
    assert "no recipe named 'ek'" in err and "did you mean 'eks'" in err


def test_reproduce_needs_no_network(project: Path) -> None:
    if shutil.which("unshare") is None or subprocess.run(["unshare", "--net", "true"], check=False).returncode:
        pytest.skip("unshare --net is not permitted here")
    _lock(project)
    proc = subprocess.run(["unshare", "--net", sys.executable, "-m", "pipeline", *_args(project, "reproduce")],
                          capture_output=True, text=True, check=False, cwd=Path(__file__).parents[1])
    assert proc.returncode == 0, proc.stdout + proc.stderr


class _Recorder:
    """A Progress that records every step and counts its items."""

    def __init__(self) -> None:
        self.steps: dict[str, list[int]] = {}

    def task(self, label: str, total: int) -> Callable[[], None]:
        done = self.steps.setdefault(label, [total, 0])

        def advance() -> None:
            done[1] += 1

        return advance


def test_progress_is_reported_per_distinct_render(project: Path) -> None:
    from pipeline.stages import Workspace, lock_catalog, reproduce_catalog

    ws = Workspace(catalog=project / "catalog", lockdir=project / "locks", cache=project / "cache", workers=2,
                   resolve=False)
    lock_catalog(ws)
    recorder = _Recorder()
    result = reproduce_catalog(ws, progress=recorder)
    assert result.ok
    # Each variation announces its distinct renders and advances once per finished one.
    assert recorder.steps == {"render A": [2, 2], "render B": [2, 2]}
