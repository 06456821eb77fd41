"""``--backend podman`` for real: podman with runc runs one container per recipe on the base image built
here (``lab/base-image.toml``), served from a real registry on loopback.

Pinned: reproduce passes against the committed locks and a second run is served from the step cache;
lock gives lockfiles byte-identical to the local backend's (images resolved on the host through a
mirror, as the local lock resolves them); a changed values file is reported stale inside the container
as outside; bad input found inside a container gives the same exit code and message as outside; a base
image that cannot take the wheels fails with exit 2 and the hint; and
without podman (or runc, or docker) the backend fails within seconds with exit 2 and the hint.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from lab.images import ImageFile, ImageSpec, Platform, build_image, push_image
from lab.registry import fill_registry
from pipeline.backends import BackendName, Outputs, Stage
from pipeline.backends.podman import _cached, _loopback, _remember, _step_key
from pipeline.vocabulary.digest import sha256
from pipeline.vocabulary.reference import ImageRef
from tests.backends.conftest import REPO, Containers, PlanFactory
from tests.servers import start_registry

RECIPES = ("h100-any", "h100-eks-ubuntu-training-kubeflow", "h100-kind-inference")


def _pipeline(*args: str, cwd: Path, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=cwd, env={**env, "PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, timeout=1800, check=False)


def _checkout(tmp_path: Path) -> Path:
    """A copy of the committed catalog and locks, to edit."""
    work = tmp_path / "checkout"
    shutil.copytree(REPO / "recipes", work / "recipes")
    shutil.copytree(REPO / "lockfiles", work / "lockfiles")
    return work


def _report(stdout: str) -> list[str]:
    """The recipe table and divergences of a reproduce report (the sandbox lines and timings left out)."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("RECIPE "))
    return [line for line in lines[start:] if " recipes reproduced" not in line]


@pytest.mark.containers
def test_reproduce_on_podman_passes_against_the_committed_locks_then_comes_from_the_step_cache(
        containers: Containers, tmp_path: Path) -> None:
    cache = containers.cache(tmp_path / "cache")
    args = ("reproduce", "--backend", "podman", "--cache", str(cache))
    first = _pipeline(*args, cwd=REPO, env=containers.env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.endswith("3/3 recipes reproduced in 3 podman container steps (0 served from the step cache)\n")
    for name in RECIPES:
        assert f"{name}  " in first.stdout
    assert first.stdout.count("1/1 recipes reproduced") == 3
    started = time.monotonic()
    second = _pipeline(*args, cwd=REPO, env=containers.env)
    assert second.returncode == 0, second.stderr
    assert second.stdout.endswith("(3 served from the step cache)\n")
    assert "3 of 3 container steps served from the step cache: " + ", ".join(RECIPES) in second.stderr
    assert time.monotonic() - started < 60


@pytest.mark.containers
def test_lock_on_podman_is_byte_identical_to_the_local_backend(containers: Containers, tmp_path: Path) -> None:
    registry = start_registry(tmp_path / "registry")
    try:
        work = _checkout(tmp_path)
        fill_registry(work / "recipes", registry.url)
        config = work / "recipes/pipeline.yaml"
        config.write_text(config.read_text() + "  registries:\n    mirrors:\n      localhost:5001:\n"
                          f"        endpoints: [http://{registry.host}]\n        skipUpstream: true\n")
        local = _pipeline("lock", "--lockdir", "locks-local", "--cache", "cache-local", cwd=work, env=containers.env)
        assert local.returncode == 0, local.stderr
        podman = _pipeline("lock", "--backend", "podman", "--lockdir", "locks-podman", "--cache",
                           str(containers.cache(work / "cache-podman")), cwd=work, env=containers.env)
        assert podman.returncode == 0, podman.stderr
    finally:
        registry.stop()
    assert podman.stdout.endswith("3 recipes locked on the podman backend\n")
    names = sorted(p.name for p in (work / "locks-local").iterdir())
    assert names == [f"{r}.lock.json" for r in RECIPES]
    assert sorted(p.name for p in (work / "locks-podman").iterdir()) == names
    for name in names:
        assert (work / "locks-podman" / name).read_bytes() == (work / "locks-local" / name).read_bytes(), name
    assert f'"servedBy": "{registry.host}"' in (work / "locks-podman" / names[0]).read_text()


@pytest.mark.containers
def test_a_changed_values_file_is_stale_inside_the_container_as_outside(containers: Containers,
                                                                        tmp_path: Path) -> None:
    work = _checkout(tmp_path)
    values = work / "recipes/components/accel-operator/values.yaml"
    values.write_text(values.read_text() + "# edited after the lock\n")
    common = ("reproduce", "--recipe", "h100-kind-inference")
    outside = _pipeline(*common, "--cache", "cache-local", cwd=work, env=containers.env)
    inside = _pipeline(*common, "--backend", "podman", "--cache", str(containers.cache(work / "cache-podman")),
                       cwd=work, env=containers.env)
    assert (outside.returncode, inside.returncode) == (1, 1), inside.stderr
    assert _report(inside.stdout) == _report(outside.stdout)
    assert ("  input components/accel-operator/values.yaml changed since the lock was made: the lock is stale; "
            "run 'nox -s lock' and review") in _report(inside.stdout)
    assert inside.stdout.endswith("0/1 recipes reproduced in 1 podman container steps (0 served from the step cache)\n")
    assert not list((work / "cache-podman").glob("steps/*.json"))  # a failed step is never cached


@pytest.mark.containers
def test_bad_input_inside_a_container_gives_the_same_exit_code_and_message(containers: Containers,
                                                                           tmp_path: Path) -> None:
    work = _checkout(tmp_path)
    # A chart template that does not parse: the catalog composes on the host, the render fails inside.
    template = sorted((work / "recipes/charts/accel-operator/templates").glob("*.yaml"))[0]
    template.write_text("{{ .Values.broken \n" + template.read_text())
    common = ("lock", "--no-resolve", "--recipe", "h100-kind-inference")
    outside = _pipeline(*common, "--lockdir", "locks-local", "--cache", "cache-local", cwd=work, env=containers.env)
    inside = _pipeline(*common, "--backend", "podman", "--lockdir", "locks-podman",
                       "--cache", str(containers.cache(work / "cache-podman")), cwd=work, env=containers.env)
    assert outside.returncode == 2, outside.stderr
    assert (inside.returncode, inside.stderr) == (outside.returncode, outside.stderr)
    assert outside.stderr.startswith("error: ")
    assert not (work / "locks-podman").exists()


def _no_runtime_env(tmp_path: Path, *present: str) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in present:
        (bin_dir / name).write_text("#!/bin/sh\nexit 99\n")
        (bin_dir / name).chmod(0o755)
    return {"PATH": str(bin_dir), "HOME": str(tmp_path / "home"), "LANG": "C.UTF-8"}


@pytest.mark.parametrize(("backend", "present", "message", "hint"), [
    ("podman", (), "error: the podman backend needs the podman CLI, and there is none on PATH",
     "hint: install podman and runc (Debian/Ubuntu: 'apt-get install -y podman runc'), or use '--backend docker' "
     "where Docker runs, or drop '--backend podman' to use the local backend"),
    ("podman", ("podman",), "error: the podman backend runs containers with runc, and there is none on PATH",
     "hint: install podman and runc (Debian/Ubuntu: 'apt-get install -y podman runc'), or use '--backend docker' "
     "where Docker runs, or drop '--backend podman' to use the local backend"),
    ("docker", (), "error: the docker backend needs the docker CLI, and there is none on PATH",
     "hint: install Docker (https://docs.docker.com/engine/install/) and start its daemon, or use "
     "'--backend podman', or drop '--backend docker' to use the local backend"),
])
@pytest.mark.parametrize("command", ["reproduce", "lock"])
def test_without_the_runtime_the_backend_exits_2_within_seconds(tmp_path: Path, backend: str,
                                                                present: tuple[str, ...], message: str, hint: str,
                                                                command: str) -> None:
    env = _no_runtime_env(tmp_path, *present)
    started = time.monotonic()
    done = _pipeline(command, "--backend", backend, "--catalog", str(REPO / "recipes"), "--lockdir",
                     str(tmp_path / "locks"), "--cache", str(tmp_path / "cache"), cwd=tmp_path, env=env)
    assert time.monotonic() - started < 5
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.splitlines() == [message, hint]
    assert not (tmp_path / "cache" / "wheelhouse").exists()  # failed before planning (no download)
    assert not (tmp_path / "locks").exists()


def test_the_step_key_follows_every_input_and_the_cache_holds_only_what_it_was_given(
        make_plan: PlanFactory, tmp_path: Path) -> None:
    plan = make_plan(Stage.LOCK)
    step = plan.steps[0]
    key = _step_key("sha256:image", plan, step, BackendName.PODMAN)
    assert key == _step_key("sha256:image", plan, step, BackendName.PODMAN)
    edited = dataclasses.replace(step.catalog[0], digest=sha256(b"another values file"))
    moved = dataclasses.replace(plan.project, digest=sha256(b"another package"))
    others = [
        _step_key("sha256:other", plan, step, BackendName.PODMAN),
        _step_key("sha256:image", plan, step, BackendName.DOCKER),
        _step_key("sha256:image", dataclasses.replace(plan, project=moved), step, BackendName.PODMAN),
        _step_key("sha256:image", plan, dataclasses.replace(step, catalog=(edited, *step.catalog[1:])),
                  BackendName.PODMAN),
        _step_key("sha256:image", plan, dataclasses.replace(step, argv=(*step.argv, "-v")), BackendName.PODMAN),
    ]
    assert len({key, *others}) == 6
    # A catalog file that is not an input of the recipe is not in its step at all.
    (plan.workspace.catalog / "README.md").write_text("notes\n")
    assert _step_key("sha256:image", make_plan(Stage.LOCK), step, BackendName.PODMAN) == key
    path = tmp_path / "steps" / f"{key}.json"
    assert _cached(path) is None
    _remember(path, Outputs(exit_code=0, files={"eks.lock.json": b"\x00lock"}, stdout="out\n", stderr="err\n"))
    assert _cached(path) == Outputs(exit_code=0, files={"eks.lock.json": b"\x00lock"}, stdout="out\n",
                                    stderr="err\n")
    path.write_text("{not json")
    assert _cached(path) is None  # unreadable: the step runs again


@pytest.mark.parametrize(("ref", "loopback"), [
    ("127.0.0.1:5001/recipe-pipeline/base:x@sha256:" + "a" * 64, True),
    ("localhost:5001/base@sha256:" + "a" * 64, True),
    ("docker.io/library/python:3.11-slim-bookworm@sha256:" + "a" * 64, False),
])
def test_only_a_loopback_registry_is_pulled_from_without_tls(ref: str, loopback: bool) -> None:
    assert _loopback(ref) is loopback


@pytest.mark.containers
def test_a_base_image_without_python_fails_the_wheel_install_with_exit_2(containers: Containers,
                                                                        tmp_path: Path) -> None:
    registry = start_registry(tmp_path / "registry")
    try:
        spec = ImageSpec(ref=ImageRef.parse("localhost:5001/recipe-lab/no-python:1"),
                         platforms=(Platform.parse("linux/amd64"),),
                         files=(ImageFile(path="etc/os-release", content=b"ID=empty\n"),))
        built = build_image(spec)
        push_image(built, registry.url)
        env = {**containers.env, "RECIPE_PIPELINE_BASE_IMAGE": f"{registry.host}/recipe-lab/no-python:1@{built.digest}"}
        done = _pipeline("reproduce", "--backend", "podman", "--recipe", "h100-any",
                         "--cache", str(containers.cache(tmp_path / "cache")), cwd=REPO, env=env)
    finally:
        registry.stop()
    assert (done.returncode, done.stdout) == (2, "")
    lines = done.stderr.splitlines()
    assert lines[0].startswith("error: installing the pinned wheels failed in the container (exit 127): ")
    assert lines[-1] == ("hint: the base image and the wheels must fit each other: check "
                         "[tool.recipe-pipeline.backends.container] in pyproject.toml against requirements/run.txt")
