"""``--backend`` on the command line: no engine → exit 2 in seconds with the message and hint; with the
FAKE engine attached, ``lock --backend dagger`` writes the checked lockfile and ``reproduce`` relays
the container's report and exit code."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import pipeline.backends
from pipeline.__main__ import main
from pipeline.backends import Plan, Stage
from pipeline.stages import Workspace, lock_catalog
from pipeline.vocabulary.digest import sha256
from tests import factories
from tests.backends.conftest import REPO, PlanFactory
from tests.backends.fake_dagger_engine import FakeEngine, serve


def _args(ws: Workspace, command: str, *extra: str) -> list[str]:
    return [command, "--catalog", str(ws.catalog), "--lockdir", str(ws.lockdir), "--cache", str(ws.cache),
            "--workers", "1", *extra]


def test_reproduce_on_the_dagger_backend_without_an_engine_exits_2_within_seconds(tmp_path: Path) -> None:
    factories.catalog(tmp_path / "catalog")
    (tmp_path / "bin").mkdir()
    ws = Workspace(catalog=tmp_path / "catalog", lockdir=tmp_path / "locks", cache=tmp_path / "cache")
    # A clean environment: no DAGGER_* variables, no dagger CLI on PATH, a HOME with no cached CLI.
    env = {"PATH": str(tmp_path / "bin"), "HOME": str(tmp_path / "home"), "LANG": "C.UTF-8"}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "pipeline", *_args(ws, "reproduce", "--backend", "dagger")],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False)
    elapsed = time.monotonic() - started
    assert done.returncode == 2, done.stderr
    assert elapsed < 5
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "error: no Dagger engine is reachable: DAGGER_SESSION_PORT is not set and no dagger CLI is installed "
        "(none on PATH)",
        "hint: install Docker or Podman and the dagger CLI (https://docs.dagger.io/install), then run 'dagger run "
        f"python -m pipeline … --backend dagger' (or 'dagger run python -m pipeline reproduce --catalog {ws.catalog} "
        f"--lockdir {ws.lockdir} --backend dagger'); or set "
        "DAGGER_SESSION_PORT and DAGGER_SESSION_TOKEN to a running session; or drop '--backend dagger' to use the "
        "local backend",
    ]
    assert not (tmp_path / "home").exists()  # nothing downloaded or cached
    assert not ws.cache.exists()  # failed before planning (no wheelhouse download)


@pytest.fixture
def attached(monkeypatch: pytest.MonkeyPatch, make_plan: PlanFactory) -> Iterator[FakeEngine]:
    """The FAKE engine attached as a session, and plans built with the tiny wheelhouse (no download)."""

    def plan_for(stage: Stage, ws: Workspace, *, recipes: tuple[str, ...] = (), expected: object = None) -> Plan:
        del expected
        return make_plan(stage, recipes=recipes, ws=ws)

    monkeypatch.setattr(pipeline.backends, "plan_for", plan_for)
    with serve("t") as (engine, port):
        monkeypatch.setenv("DAGGER_SESSION_PORT", str(port))
        monkeypatch.setenv("DAGGER_SESSION_TOKEN", "t")
        yield engine


def test_lock_on_the_dagger_backend_writes_the_checked_lockfile(attached: FakeEngine, workspace: Workspace,
                                                                tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    # The factory catalog names images no registry here serves: lock without resolving.
    local = Workspace(catalog=workspace.catalog, lockdir=tmp_path / "local-locks", cache=tmp_path / "local-cache",
                      resolve=False)
    lock_catalog(local)
    data = (local.lockdir / "eks.lock.json").read_bytes()
    attached.feed.files = {"eks.lock.json": data}
    assert main(_args(workspace, "lock", "--backend", "dagger", "--no-resolve")) == 0
    assert (workspace.lockdir / "eks.lock.json").read_bytes() == data
    out = capsys.readouterr().out
    assert out == f"wrote     {workspace.lockdir / 'eks.lock.json'}\n1 recipes locked on the dagger backend\n"
    assert sha256(data) == sha256((workspace.lockdir / "eks.lock.json").read_bytes())


def test_a_tampered_lock_from_the_container_is_refused_and_nothing_is_written(
        attached: FakeEngine, workspace: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    attached.feed.files = {"eks.lock.json": b'{"digest": "sha256:0"}\n'}
    assert main(_args(workspace, "lock", "--backend", "dagger", "--no-resolve")) == 1
    assert "eks.lock.json (from the dagger backend) is missing" in capsys.readouterr().err
    assert not workspace.lockdir.exists()


def test_reproduce_relays_the_container_s_report_and_exit_code(attached: FakeEngine, workspace: Workspace,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    attached.feed.exit_code = 1
    attached.feed.stdout = "0/1 recipes reproduced (2 distinct renders in 1.0 s)\n"
    attached.feed.stderr = ""
    assert main(_args(workspace, "reproduce", "--backend", "dagger")) == 1
    assert capsys.readouterr().out == attached.feed.stdout + "0/1 recipes reproduced in 1 dagger container steps\n"
