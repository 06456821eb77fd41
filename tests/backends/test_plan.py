"""Applying a backend's outputs on the host: atomic writes, unchanged files untouched, orphans pruned
only by a full lock; and the input check that guards a plan between building and running it."""

from __future__ import annotations

import dataclasses
from pathlib import Path, PurePosixPath

import pytest

from pipeline.backends import OutputMismatchError, Outputs, Plan, Stage, assemble, verify_inputs, write_outputs
from pipeline.backends.plan import container_path, tree_digest
from pipeline.errors import BackendError
from pipeline.lock import input_digests
from pipeline.stages import Workspace, compose_recipes
from pipeline.vocabulary.digest import sha256
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
    (workspace.catalog / "overlays/new.yaml").write_text("x: 1\n")  # not an input of the recipe: no change
    verify_inputs(plan)
    values = workspace.catalog / "components/app/values.yaml"
    planned = sha256(values.read_bytes())
    values.write_text(values.read_text() + "# edited\n")
    with pytest.raises(BackendError) as caught:
        verify_inputs(plan)
    assert caught.value.message == (f"input {values.resolve()} (for /in/catalog/components/app/values.yaml) changed "
                                    f"since the plan was made: planned {planned}, now {sha256(values.read_bytes())}")


# ---- assembling per-recipe steps on the host ----------------------------------------------------------


def _two_steps(plan: Plan) -> Plan:
    step = plan.steps[0]
    return dataclasses.replace(plan, steps=(dataclasses.replace(step, name="a"), dataclasses.replace(step, name="b")))


def test_one_step_per_recipe_with_only_its_own_inputs_and_lockfile(make_plan: PlanFactory,
                                                                   workspace: Workspace) -> None:
    workspace.lockdir.mkdir()
    (workspace.lockdir / "eks.lock.json").write_text("{}\n")
    (workspace.lockdir / "other.lock.json").write_text("{}\n")
    (workspace.catalog / "README.md").write_text("notes\n")
    plan = make_plan(Stage.REPRODUCE)
    assert [s.name for s in plan.steps] == ["eks"]
    recipe = compose_recipes(workspace.catalog, ["eks"])[1][0]
    # one mount per input file (a part of pipeline.yaml is an input too; its file is mounted once, if any)
    files = sorted({rel.partition("#")[0] for rel in input_digests(recipe)})
    assert [(str(f.target), f.source, f.digest) for f in plan.steps[0].catalog] == [
        (f"/in/catalog/{rel}", (workspace.catalog / rel).resolve(), sha256((workspace.catalog / rel).read_bytes()))
        for rel in files if (workspace.catalog / rel).is_file()]
    assert "/in/catalog/overlays/eks.yaml" in {str(f.target) for f in plan.steps[0].catalog}
    assert "/in/catalog/README.md" not in {str(f.target) for f in plan.steps[0].catalog}
    assert [(str(f.target), f.source, f.digest) for f in plan.steps[0].files] == [
        ("/in/lockfiles/eks.lock.json", (workspace.lockdir / "eks.lock.json").resolve(), sha256(b"{}\n"))]
    assert plan.inputs == ()  # nothing of the catalog or the lockfiles is shared between steps


def test_inputs_below_the_working_directory_keep_their_relative_path(make_plan: PlanFactory, workspace: Workspace,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(workspace.catalog.parent)
    plan = make_plan(Stage.REPRODUCE)
    assert str(plan.catalog) == "/work/catalog"
    assert str(plan.steps[0].catalog[0].target).startswith("/work/catalog/")
    assert plan.steps[0].argv[4:8] == ("--catalog", "/work/catalog", "--lockdir", "/work/locks")
    assert container_path(workspace.catalog.parent / "cache", PurePosixPath("/in/x")) == PurePosixPath("/in/x")


def test_the_first_step_with_bad_input_decides_the_exit_code_and_message(make_plan: PlanFactory) -> None:
    plan = _two_steps(make_plan(Stage.REPRODUCE))
    results = {"a": Outputs(exit_code=1, stdout="a report\n"),
               "b": Outputs(exit_code=2, stdout="", stderr="error: recipe 'b': broken\nhint: fix it\n")}
    assert assemble(plan, results, backend="podman") == Outputs(
        exit_code=2, stdout="", stderr="error: recipe 'b': broken\nhint: fix it\n")


def test_reports_are_relayed_in_recipe_order_with_a_summary(make_plan: PlanFactory) -> None:
    plan = _two_steps(make_plan(Stage.REPRODUCE))
    results = {"b": Outputs(exit_code=0, stdout="b ok\n", cached=("b",)),
               "a": Outputs(exit_code=1, stdout="a FAIL\n", stderr="a warned\n")}
    out = assemble(plan, results, backend="podman", step_cache=True)
    assert (out.exit_code, out.stderr, out.cached) == (1, "a warned\n", ("b",))
    assert out.stdout == ("a FAIL\nb ok\n1/2 recipes reproduced in 2 podman container steps "
                          "(1 served from the step cache)\n")


def test_a_step_handing_back_another_recipe_s_file_is_refused(make_plan: PlanFactory) -> None:
    plan = make_plan(Stage.LOCK)
    with pytest.raises(OutputMismatchError) as caught:
        assemble(plan, {"eks": Outputs(exit_code=0, files={"eks.lock.json": b"", "other.lock.json": b""})},
                 backend="podman")
    assert caught.value.message == "the podman backend's step 'eks' produced an unexpected file 'other.lock.json'"
    assert caught.value.exit_code == 1
