"""The second engine (``--engine helm-cli``): the pinned helm binary in the same sandbox, the same bytes.

A lock of ``recipes/`` made with one engine reproduces with the other; the lock records which made
it; the binary is refused unless its sha256 is the one ``tools/go/tools.json`` pins.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

import pytest

from pipeline.__main__ import main
from pipeline.errors import RenderError
from pipeline.lockfile import load
from pipeline.render.identity import ENGINE_NAME, HELM_CLI, helm_binary, pinned_helm_cli
from pipeline.render.job import run_job
from pipeline.render.pool import WorkerPool
from pipeline.render.sandbox import CANONICAL
from pipeline.stages import Workspace, lock_catalog, reproduce_catalog
from tests.catalog_render import _job, compose_all
from tests.tools import TOOLS_JSON, tool

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "recipes"

pytestmark = [pytest.mark.tools, pytest.mark.slow]


@pytest.fixture
def helm_tools(monkeypatch: pytest.MonkeyPatch) -> Path:
    """``PIPELINE_TOOLS_DIR`` pointing at the checked pinned helm (skips, or fails under CI, without it)."""
    binary = tool("helm")
    monkeypatch.setenv("PIPELINE_TOOLS_DIR", str(binary.parent))
    return binary


def _ws(tmp: Path, engine: str) -> Workspace:
    return Workspace(catalog=CATALOG, lockdir=tmp / "locks", cache=tmp / "cache", workers=2, resolve=False,
                     engine=engine)


@pytest.mark.parametrize(("lock_with", "reproduce_with"), [(HELM_CLI, ENGINE_NAME), (ENGINE_NAME, HELM_CLI)])
def test_a_lock_made_by_one_engine_reproduces_with_the_other(helm_tools: Path, tmp_path: Path, lock_with: str,
                                                            reproduce_with: str) -> None:
    lock_catalog(_ws(tmp_path, lock_with))
    locks = sorted((tmp_path / "locks").glob("*.lock.json"))
    assert len(locks) == 3
    for path in locks:
        engine = load(path).engine
        assert engine.name == lock_with
        if lock_with == HELM_CLI:
            assert engine.identity == pinned_helm_cli()
            assert engine.library == "sha256:" + hashlib.sha256(helm_tools.read_bytes()).hexdigest()
    result = reproduce_catalog(_ws(tmp_path, reproduce_with))
    failed = [(o.recipe, d.check, d.summary) for o in result.outcomes for d in o.divergences]
    assert result.ok, failed
    assert all(o.checks["engine"] == "ok" and o.checks["render = lock"] == "ok" for o in result.outcomes)


def test_both_engines_lock_the_same_renders(helm_tools: Path, tmp_path: Path) -> None:
    lock_catalog(_ws(tmp_path / "cli", HELM_CLI))
    lock_catalog(_ws(tmp_path / "sdk", ENGINE_NAME))
    for path in sorted((tmp_path / "cli" / "locks").glob("*.lock.json")):
        cli, sdk = load(path), load(tmp_path / "sdk" / "locks" / path.name)
        assert {n: c.render for n, c in cli.components.items()} == {n: c.render for n, c in sdk.components.items()}
        assert cli.engine.name == HELM_CLI and sdk.engine.name == ENGINE_NAME


def test_every_component_renders_the_same_bytes_with_both_engines(helm_tools: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """In-tree manifests included (the wrapper chart through ``include … | b64enc``)."""
    monkeypatch.setenv("PIPELINE_HELM", str(helm_binary()))
    seen = set()
    in_tree = 0
    for recipe in compose_all(CATALOG):
        for component in recipe.components:
            job = _job(recipe, component.name, manifests_only=False)
            if job is None or job.key() in seen:
                continue
            seen.add(job.key())
            in_tree += len(job.manifests) + len(job.pre_manifests)
            assert run_job(job, HELM_CLI) == run_job(job), f"{recipe.name}/{component.name}"
    assert len(seen) >= 10 and in_tree >= 3


def test_in_tree_template_name_and_missing_values_match(helm_tools: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPELINE_HELM", str(helm_binary()))
    text = (b"kind: ConfigMap\ndata:\n  t: {{ .Template.Name }}\n  missing: '{{ .Values.nothing }}'\n"
            b"  v: {{ index .Values \"x\" \"a\" }}\n---\nkind: Namespace\n")
    job = dataclasses.replace(next(j for r in compose_all(CATALOG) for c in r.components
                                   if (j := _job(r, c.name, manifests_only=False)) is not None and j.chart is None),
                              component="x", values={"a": 1}, pre_manifests=(), manifests=(("m/cm.yaml", text),))
    ours, cli = run_job(job), run_job(job, HELM_CLI)
    assert cli == ours
    assert b"t: x/templates/m0000-cm.yaml\n  missing: ''\n  v: 1\n" in ours.stream


def test_render_cli_with_the_helm_cli_engine_prints_the_same_stream(
        helm_tools: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["render", "h100-kind-inference", "--catalog", str(CATALOG), "--cache", str(tmp_path / "c"),
            "--workers", "1"]
    assert main(base) == 0
    default = capsys.readouterr().out
    assert main([*base, "--engine", HELM_CLI]) == 0
    assert capsys.readouterr().out == default


def test_pool_reports_the_helm_cli_identity(helm_tools: Path) -> None:
    with WorkerPool(CANONICAL, workers=1, engine=HELM_CLI) as pool:
        pool.spawn()
        (hello,) = pool.hellos
    assert hello["engine"]["name"] == HELM_CLI
    assert hello["engine"]["library_path"] == str(helm_tools.resolve())
    assert hello["network"].startswith(("isolated", "not isolated"))


def test_a_binary_that_is_not_the_pinned_one_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    fake = tmp_path / "bin" / "helm"
    fake.parent.mkdir()
    fake.write_bytes(b"#!/bin/sh\necho not helm\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PIPELINE_TOOLS_DIR", str(fake.parent))
    with pytest.raises(RenderError, match=r"--engine helm-cli: .*/bin/helm is sha256:[0-9a-f]{64}, not the pinned "
                                          r"helm v4\.2\.3 \(sha256:[0-9a-f]{64} in tools/go/tools\.json\)"):
        helm_binary()
    code = main(["render", "h100-kind-inference", "--catalog", str(CATALOG), "--cache", str(tmp_path / "c"),
                 "--engine", HELM_CLI])
    assert code == 2
    err = capsys.readouterr().err
    assert "not the pinned helm v4.2.3" in err and "hint: rebuild it with 'nox -s tools'" in err


def test_a_missing_binary_names_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPELINE_TOOLS_DIR", str(tmp_path))
    with pytest.raises(RenderError, match=r"the pinned helm v4\.2\.3 is not built at .*/helm") as info:
        helm_binary()
    assert info.value.hint == "run 'nox -s tools' (or set PIPELINE_TOOLS_DIR to where it is built)"


def test_no_pinned_helm_is_an_error(tmp_path: Path) -> None:
    tools = tmp_path / "tools.json"
    data = json.loads(TOOLS_JSON.read_text(encoding="utf-8"))
    del data["tools"]["helm"]
    tools.write_text(json.dumps(data), encoding="utf-8")
    assert pinned_helm_cli(tools) is None
    with pytest.raises(RenderError, match="no helm binary is pinned"):
        helm_binary(tools)


def test_helm_cli_runs_only_on_the_local_backend(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reproduce", "--engine", HELM_CLI, "--backend", "dagger"]) == 2
    assert "--engine helm-cli runs only on the local backend" in capsys.readouterr().err


def test_a_lock_from_an_unpinned_engine_still_fails_the_engine_check(helm_tools: Path, tmp_path: Path) -> None:
    ws = _ws(tmp_path, ENGINE_NAME)
    lock_catalog(ws)
    path = sorted((tmp_path / "locks").glob("*.lock.json"))[0]
    # Re-seal the lock as if another helm binary had made it: the engine check must refuse it.
    from pipeline.lockfile import seal
    lock = load(path)
    other = dataclasses.replace(lock.engine, name=HELM_CLI, version="v4.2.3", helm="v4.2.3",
                                library="sha256:" + "0" * 64)  # type: ignore[arg-type]
    path.write_bytes(seal(recipe=lock.recipe, inputs=lock.inputs, engine=other,
                          components=list(lock.components.values()), volatile=lock.volatile).dumps())
    shutil.rmtree(tmp_path / "cache" / "renders", ignore_errors=True)
    result = reproduce_catalog(ws, [lock.name])
    (outcome,) = result.outcomes
    assert outcome.checks["engine"] == "FAIL"
    assert any("the lock was made by another engine" in d.summary and "library" in d.summary
               for d in outcome.divergences)
