"""Applying a backend's outputs on the host: atomic writes, unchanged files untouched, orphans pruned
only by a full lock; and the input check that guards a plan between building and running it."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.backends import Outputs, Stage, verify_inputs, write_outputs
from pipeline.backends.plan import tree_digest
from pipeline.errors import BackendError
from pipeline.stages import Workspace
from tests.backends.conftest import PlanFactory


def test_full_lock_writes_keeps_and_prunes(make_plan: PlanFactory, workspace: Workspace) -> None:
    workspace.lockdir.mkdir()
    (workspace.lockdir / "gone.lock.json").write_text("{}\n")
    (workspace.lockdir / "notes.md").write_text("kept\n")
    plan = make_plan(Stage.LOCK)
    applied = write_outputs(plan, Outputs(exit_code=0, files={"eks.lock.json": b"new\n"}))
    assert applied.written == (workspace.lockdir / "eks.lock.json",)
    assert applied.removed == (workspace.lockdir / "gone.lock.json",)
    assert sorted(p.name for p in workspace.lockdir.iterdir()) == ["eks.lock.json", "notes.md"]
    again = write_outputs(plan, Outputs(exit_code=0, files={"eks.lock.json": b"new\n"}))
    assert (again.written, again.unchanged, again.removed) == ((), (workspace.lockdir / "eks.lock.json",), ())


def test_a_partial_lock_prunes_nothing(make_plan: PlanFactory, workspace: Workspace) -> None:
    workspace.lockdir.mkdir()
    (workspace.lockdir / "other.lock.json").write_text("{}\n")
    applied = write_outputs(make_plan(Stage.LOCK, recipes=["eks"]), Outputs(exit_code=0, files={"eks.lock.json": b"x"}))
    assert applied.removed == () and (workspace.lockdir / "other.lock.json").exists()


def test_a_failed_stage_writes_nothing(make_plan: PlanFactory, workspace: Workspace) -> None:
    applied = write_outputs(make_plan(Stage.LOCK), Outputs(exit_code=2, files={"eks.lock.json": b"x"}))
    assert applied.written == () and not workspace.lockdir.exists()


def test_tree_digest_ignores_order_and_skipped_names(tmp_path: Path) -> None:
    (tmp_path / "a/__pycache__").mkdir(parents=True)
    (tmp_path / "a/x.py").write_text("x")
    before = tree_digest(tmp_path, skip=["__pycache__"])
    (tmp_path / "a/__pycache__/x.pyc").write_bytes(b"\0")
    assert tree_digest(tmp_path, skip=["__pycache__"]) == before
    assert tree_digest(tmp_path) != before


def test_verify_inputs_names_the_input_that_changed(make_plan: PlanFactory, workspace: Workspace) -> None:
    plan = make_plan(Stage.LOCK)
    verify_inputs(plan)
    (workspace.catalog / "overlays/new.yaml").write_text("x: 1\n")
    with pytest.raises(BackendError) as caught:
        verify_inputs(plan)
    assert caught.value.message.startswith(f"input {workspace.catalog.resolve()} (for /in/catalog) changed since "
                                           f"the plan was made: planned {plan.inputs[0].digest}, now sha256:")
