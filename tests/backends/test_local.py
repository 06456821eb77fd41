"""The local backend runs the stages in-process, exactly as the CLI always has, behind the same interface."""

from __future__ import annotations

import pytest

from pipeline.__main__ import main
from pipeline.backends import BackendName, LocalBackend, LocalOutputs, Stage, StagePlan, local_plan
from pipeline.errors import BackendError
from pipeline.stages import Workspace
from tests.backends.conftest import PlanFactory


def test_lock_then_reproduce_through_the_interface(make_plan: PlanFactory, offline_workspace: Workspace) -> None:
    workspace = offline_workspace
    locked = LocalBackend().run(make_plan(Stage.LOCK, ws=workspace))
    assert locked.exit_code == 0 and list(locked.files) == ["eks.lock.json"]
    assert (workspace.lockdir / "eks.lock.json").read_bytes() == locked.files["eks.lock.json"]
    reproduced = LocalBackend().run(make_plan(Stage.REPRODUCE))
    assert (reproduced.exit_code, reproduced.stdout, dict(reproduced.files)) == (0, "1/1 recipes reproduced\n", {})


def test_a_divergence_is_exit_code_1(make_plan: PlanFactory, offline_workspace: Workspace) -> None:
    workspace = offline_workspace
    LocalBackend().run(make_plan(Stage.LOCK, ws=workspace))
    values = workspace.catalog / "components/app/values.yaml"
    values.write_text(values.read_text() + "extraKey: 1\n")
    assert LocalBackend().run(make_plan(Stage.REPRODUCE)).exit_code == 1


def _cli(ws: Workspace, command: str, *extra: str) -> list[str]:
    return [command, "--catalog", str(ws.catalog), "--lockdir", str(ws.lockdir), "--cache", str(ws.cache),
            "--workers", "1", *extra]


@pytest.fixture
def spied(monkeypatch: pytest.MonkeyPatch) -> list[StagePlan]:
    """Every plan the CLI hands :meth:`LocalBackend.run`, which still runs it."""
    plans: list[StagePlan] = []
    run = LocalBackend.run

    def spy(self: LocalBackend, plan: StagePlan) -> LocalOutputs:
        plans.append(plan)
        return run(self, plan)

    monkeypatch.setattr(LocalBackend, "run", spy)
    return plans


def test_the_cli_s_default_lock_and_reproduce_go_through_the_local_backend(
        spied: list[StagePlan], offline_workspace: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    ws = offline_workspace
    assert main(_cli(ws, "lock", "--no-resolve")) == 0
    assert capsys.readouterr().out == (f"wrote     {ws.lockdir / 'eks.lock.json'}\n"
                                       "1 recipes locked (0 from the lock cache), 2 distinct renders (0 from the "
                                       "render cache, 0 discoveries from the discovery cache), 0 digest-pinned images "
                                       "reused from the previous locks\n")
    assert main(_cli(ws, "reproduce", "--recipe", "eks")) == 0
    out = capsys.readouterr().out
    assert "variation A: TZ=" in out and "eks " in out and "PASS" in out and "1/1 recipes reproduced" in out
    # The plan is built once on the host, with no container part: the workspace and options the CLI was given.
    assert [(type(p), p.stage, p.recipes, p.keep_going, p.check) for p in spied] == [
        (StagePlan, Stage.LOCK, (), False, False), (StagePlan, Stage.REPRODUCE, ("eks",), False, False)]
    assert spied[0].workspace == ws
    assert dict(spied[0].outputs.files) == {"eks.lock.json": None}


def test_lock_check_and_keep_going_reach_the_local_backend(
        spied: list[StagePlan], offline_workspace: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    ws = offline_workspace
    assert main(_cli(ws, "lock", "--no-resolve", "--keep-going")) == 0
    before = (ws.lockdir / "eks.lock.json").read_bytes()
    assert main(_cli(ws, "lock", "--no-resolve", "--check")) == 0
    assert capsys.readouterr().out.endswith("lock --check: 0 lockfiles would change, 1 up to date (nothing written)\n")
    values = ws.catalog / "components/app/values.yaml"
    values.write_text(values.read_text() + "extraKey: 1\n")
    assert main(_cli(ws, "lock", "--no-resolve", "--check")) == 1
    assert capsys.readouterr().out == (f"would write   {ws.lockdir / 'eks.lock.json'}\n"
                                       "lock --check: 1 lockfiles would change, 0 up to date (nothing written)\n")
    assert (ws.lockdir / "eks.lock.json").read_bytes() == before
    assert [(p.keep_going, p.check) for p in spied] == [(True, False), (False, True), (False, True)]


def test_a_container_backend_refuses_a_plan_without_its_container_part(offline_workspace: Workspace) -> None:
    from pipeline.backends.podman import ContainerCliBackend

    plan = local_plan(Stage.REPRODUCE, offline_workspace)
    with pytest.raises(BackendError) as caught:
        ContainerCliBackend(BackendName.PODMAN).run(plan)
    assert caught.value.diagnostics() == (
        "the podman backend runs the stage in containers, and this reproduce plan has no container part "
        "(base image, wheels, steps)\nhint: build the plan with pipeline.backends.plan_for, not local_plan")
