"""The local backend runs the stages in-process, exactly as the CLI always has, behind the same interface."""

from __future__ import annotations

from pipeline.backends import LocalBackend, Stage
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
