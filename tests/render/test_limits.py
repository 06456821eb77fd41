"""Resource limits on renders (issue 17, item 6): a runaway template is stopped, named, and reaped."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.errors import RecipeError, RenderError
from pipeline.recipes.config import load_config
from pipeline.render.job import RenderJob
from pipeline.render.pool import WorkerPool
from pipeline.render.sandbox import CANONICAL
from tests.factories import DEPLOYMENT, catalog, chart_archive, write_files

ROOT = Path(__file__).resolve().parents[2]
#: 10^10 iterations of an empty loop: seconds of CPU per thousand, little memory.
FOREVER = "{{ range until 100000 }}{{ range until 100000 }}{{ end }}{{ end }}\n"
#: A string doubled 40 times: a terabyte, refused by the address-space limit within a second.
HUGE = '{{ $s := "xxxxxxxxxxxxxxxx" }}{{ range until 40 }}{{ $s = printf "%s%s" $s $s }}{{ end }}{{ $s }}\n'


def _workers_of(pid: int) -> list[int]:
    """Live render workers whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = next((line.split()[1] for line in status.splitlines() if line.startswith("PPid:")), "")
        if ppid == str(pid) and b"pipeline.render._worker" in cmdline:
            found.append(int(entry.name))
    return found


def _job(template: str) -> RenderJob:
    return RenderJob(component="app", what="recipe 'r': component 'app' chart app 1.0.0",
                     chart=chart_archive(templates={"loop.yaml": template}), values={}, release="app",
                     namespace="ns", kube_version="1.33.0", api_versions=(), manifest_chart_version="1.0.0")


@pytest.mark.parametrize(("template", "seconds", "expected", "key"), [
    (FOREVER, 2, "the render did not finish within 2 s (limits.render.maxSeconds)", "maxSeconds"),
    # a generous clock, so that on a loaded machine the memory limit is still what stops it
    (HUGE, 25, "the render needed more than 2600 MiB of memory (limits.render.maxMemoryMiB)", "maxMemoryMiB"),
])
def test_a_runaway_render_is_stopped_named_and_reaped(template: str, seconds: int, expected: str, key: str) -> None:
    started = time.monotonic()
    with WorkerPool(CANONICAL, workers=1, max_seconds=seconds, max_memory_mib=2600) as pool, \
            pytest.raises(RenderError) as info:
        pool.render([_job(template)])
    assert time.monotonic() - started < 30
    assert info.value.exit_code == 2
    assert info.value.message == (f"recipe 'r': component 'app' chart app 1.0.0: {expected} in template "
                                  "app/templates/loop.yaml; the worker was stopped")
    assert info.value.hint is not None and f"'spec: limits: render: {key}:'" in info.value.hint
    assert _workers_of(os.getpid()) == []


def test_a_pool_keeps_rendering_within_the_limits() -> None:
    fine = RenderJob(component="app", what="component 'app'", chart=chart_archive(),
                     values={"replicas": 1, "image": {"repository": "r", "tag": "1"}}, release="app",
                     namespace="ns", kube_version="1.33.0", api_versions=(), manifest_chart_version="1.0.0")
    with WorkerPool(CANONICAL, workers=1, max_seconds=30, max_memory_mib=2600) as pool:
        assert b"kind: Deployment" in next(iter(pool.render([fine]).values())).stream


def test_lock_fails_with_exit_2_naming_component_and_template_and_leaves_nothing(tmp_path: Path) -> None:
    work = tmp_path / "work"
    catalog(work / "recipes", chart_templates={"deployment.yaml": DEPLOYMENT, "loop.yaml": FOREVER})
    write_files(work, {
        "recipes/pipeline.yaml": ("apiVersion: pipeline.recipes.dev/v1\nkind: PipelineConfig\n"
                                  "spec:\n  limits:\n    render: {maxSeconds: 3}\n"),
        "lockfiles/eks.lock.json": "{\"previous\": true}\n",
    })
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "lock", "--no-resolve", "--workers", "1", "--catalog", "recipes",
         "--lockdir", "lockfiles", "--cache", ".cache"],
        cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp)})
    out, err = proc.communicate(timeout=60)
    assert time.monotonic() - started < 30
    assert proc.returncode == 2, err
    assert err.splitlines()[0] == (
        "error: recipe 'eks': component 'app' chart ./charts/app@1.0.0: the render did not finish within 3 s "
        "(limits.render.maxSeconds) in one of its templates (the engine does not say which): "
        "app/templates/deployment.yaml, app/templates/loop.yaml; the worker was stopped")
    assert "Traceback" not in err and out == ""
    assert (work / "lockfiles/eks.lock.json").read_bytes() == b"{\"previous\": true}\n"
    assert _workers_of(proc.pid) == []
    assert list(tmp.iterdir()) == []  # the sandboxes are gone too
    for entry in Path("/proc").iterdir():  # and no process of this run still works inside them
        if entry.name.isdigit():
            try:
                cwd = str((entry / "cwd").readlink())
            except OSError:
                continue
            assert not cwd.startswith(str(tmp))


@pytest.mark.parametrize(("snippet", "message"), [
    ("render: {maxSeconds: 0}", "limits.render.maxSeconds must be a number of seconds in (0, 86400], not 0"),
    ("render: {maxMemoryMiB: 512}", "limits.render.maxMemoryMiB must be an integer of at least 2048, not 512"),
    ("render: {maxCpu: 1}", "unknown key 'maxCpu' in limits.render"),
])
def test_render_limit_settings_are_checked(tmp_path: Path, snippet: str, message: str) -> None:
    write_files(tmp_path, {"pipeline.yaml": ("apiVersion: pipeline.recipes.dev/v1\nkind: PipelineConfig\n"
                                             f"spec:\n  limits:\n    {snippet}\n")})
    with pytest.raises(RecipeError) as info:
        load_config(tmp_path)
    assert info.value.message == message
    assert info.value.line == 5


def test_render_limit_settings_are_read(tmp_path: Path) -> None:
    write_files(tmp_path, {"pipeline.yaml": ("apiVersion: pipeline.recipes.dev/v1\nkind: PipelineConfig\n"
                                             "spec:\n  limits:\n    render: {maxSeconds: 5, maxMemoryMiB: 3000}\n")})
    render = load_config(tmp_path).limits.render
    assert (render.max_seconds, render.max_memory_mib) == (5.0, 3000)
