"""Plan → Dagger query chain, built with the real ``dagger-io`` SDK and never executed.

Offline: :func:`~pipeline.backends.dagger.build_container` only builds the SDK's lazy chain (no
connection, no I/O). Each test walks the SDK's own record of the chain (``_ctx.selections``: one
field per call, with its GraphQL arguments) and prints the GraphQL document the engine would
receive, using the fake engine's SDL, so every element of the plan — pinned image, environment,
wheel install, mounts, command, output export — is asserted as the SDK will send it.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from pathlib import Path
from typing import Any

import dagger
import graphql
import pytest
from gql.dsl import DSLQuery, DSLSchema, dsl_gql

from pipeline.backends import Plan, Stage
from pipeline.backends.dagger import build_base, build_container, build_export
from pipeline.backends.plan import tree_digest
from pipeline.errors import BackendError, UsageError
from pipeline.stages import Workspace
from pipeline.vocabulary.digest import sha256
from pipeline.vocabulary.reference import ImageRef
from tests.backends.conftest import REPO, PlanFactory
from tests.backends.fake_dagger_engine import SCHEMA

BASE_IMAGE = re.compile(r"^docker\.io/library/python:3\.11-slim-bookworm@sha256:[0-9a-f]{64}$")
ENVIRONMENT = [
    ("HOME", "/tmp"),
    ("LANG", "C.UTF-8"),
    ("LC_ALL", "C.UTF-8"),
    ("PATH", "/usr/local/bin:/usr/bin:/bin"),
    ("PYTHONDONTWRITEBYTECODE", "1"),
    ("PYTHONHASHSEED", "0"),
    ("PYTHONNOUSERSITE", "1"),
    ("PYTHONPATH", "/opt/recipe-pipeline"),
    ("TZ", "UTC"),
]
INSTALL = ["python", "-m", "pip", "install", "--no-index", "--find-links", "/opt/wheels", "--require-hashes",
           "--only-binary", ":all:", "--no-cache-dir", "--disable-pip-version-check", "--root-user-action=ignore",
           "--requirement", "/opt/wheels/requirements.txt"]
#: The inputs of the factory catalog's recipe 'eks' (what its lock records), relative to the catalog.
RECIPE_INPUTS = ["charts/app/Chart.yaml", "charts/app/crds/widgets.yaml", "charts/app/templates/deployment.yaml",
                 "charts/app/templates/hook.yaml", "charts/app/templates/serviceaccount.yaml", "charts/app/values.yaml",
                 "components/app/values.yaml", "components/extras/manifests/config.yaml", "overlays/base.yaml",
                 "overlays/eks.yaml", "registry.yaml"]
#: Every Dagger API the backend may use to build a container: no services, secrets, sockets or privileges.
ALLOWED_CALLS = {"container", "from", "withEnvVariable", "withMountedDirectory", "withDirectory", "withExec",
                 "withWorkdir", "directory"}


def calls(obj: Any) -> list[tuple[str, str, dict[str, Any]]]:
    """The SDK's recorded chain of ``obj``: (type, field, arguments), object arguments as their own chains."""
    out = []
    for field in obj._ctx.selections:
        args = {k: (("object", calls(v)) if hasattr(v, "_ctx") else v) for k, v in field.args.items()}
        out.append((field.type_name, field.name, args))
    return out


def host_dir(path: Path, *, exclude: list[str] | None = None,
             include: list[str] | None = None) -> tuple[str, list[tuple[str, str, dict[str, Any]]]]:
    args: dict[str, Any] = {"path": str(path.resolve())}
    if exclude:
        args["exclude"] = exclude
    if include:
        args["include"] = include
    return ("object", [("Query", "host", {}), ("Host", "directory", args)])


def graphql_text(obj: Any, *terminal: str) -> str:
    """The GraphQL document the SDK would send for ``obj`` (+ a terminal field), object IDs as placeholders."""
    fields = []
    for field in obj._ctx.selections:
        args = {k: (f"ID({calls(v)[-1][2]['path']})" if hasattr(v, "_ctx") else v) for k, v in field.args.items()}
        fields.append(dataclasses.replace(field, args=args, children={}))
    fields += [dataclasses.replace(fields[-1], type_name="Container", name=name, args={}) for name in terminal]
    root = functools.reduce(lambda child, parent: parent.add_child(child), reversed(fields))
    return graphql.print_ast(dsl_gql(DSLQuery(root.to_dsl(DSLSchema(SCHEMA)))).document)


def expected_chain(plan: Plan, *, inputs: list[Any], argv: list[str], files: list[Any] | None = None) -> list[Any]:
    return [
        ("Query", "container", {"platform": "linux/amd64"}),
        ("Container", "from", {"address": str(plan.base_image)}),
        *[("Container", "withEnvVariable", {"name": k, "value": v}) for k, v in ENVIRONMENT],
        ("Container", "withMountedDirectory",
         {"path": "/opt/wheels", "source": host_dir(plan.wheels.wheelhouse.source), "readOnly": True}),
        ("Container", "withExec", {"args": INSTALL}),
        ("Container", "withMountedDirectory", {"path": "/opt/recipe-pipeline/pipeline",
                                               "source": host_dir(REPO / "pipeline", exclude=["**/__pycache__"]),
                                               "readOnly": True}),
        *inputs,
        # The step's recipe's catalog inputs, and no other file of the catalog.
        ("Container", "withMountedDirectory",
         {"path": "/in/catalog", "source": host_dir(plan.workspace.catalog, include=RECIPE_INPUTS), "readOnly": True}),
        *(files or []),
        ("Container", "withWorkdir", {"path": "/work"}),
        ("Container", "withExec", {"args": argv, "expect": "ANY"}),
    ]


def test_lock_plan_holds_every_element(make_plan: PlanFactory, workspace: Workspace) -> None:
    plan = make_plan(Stage.LOCK)
    assert BASE_IMAGE.match(str(plan.base_image))
    assert plan.platform == "linux/amd64"
    assert [(p.name, p.version) for p in plan.wheels.pins] == [("tiny-dep", "1.0")]
    assert plan.wheels.requirements_digest == sha256(plan.wheels.requirements.read_bytes())
    assert plan.wheels.wheelhouse.read_only
    assert plan.wheels.wheelhouse.digest == tree_digest(plan.wheels.wheelhouse.source)
    assert list(plan.wheels.install) == INSTALL
    assert plan.project.source == (REPO / "pipeline").resolve() and plan.project.skip == ("__pycache__",)
    assert plan.inputs == () and str(plan.catalog) == "/in/catalog"
    assert [f.target.relative_to(plan.catalog).as_posix() for f in plan.steps[0].catalog] == RECIPE_INPUTS
    assert plan.steps[0].catalog[0].digest == sha256((workspace.catalog / RECIPE_INPUTS[0]).read_bytes())
    assert list(plan.environment) == ENVIRONMENT
    # One step per recipe; containers lock without the network, the host resolves (plan.assemble).
    assert [(s.name, list(s.argv), s.files, s.outputs) for s in plan.steps] == [
        ("eks", ["python", "-m", "pipeline", "lock", "--catalog", "/in/catalog", "--lockdir", "/out/lockfiles",
                 "--no-resolve", "--cache", "/work/cache", "--workers", "1", "--recipe", "eks"], (),
         ("eks.lock.json",))]
    assert str(plan.outputs.directory) == "/out/lockfiles"
    assert dict(plan.outputs.files) == {"eks.lock.json": None}
    assert plan.outputs.host == workspace.lockdir and plan.outputs.prune == "*.lock.json"


def test_lock_chain_through_the_sdk(make_plan: PlanFactory, workspace: Workspace) -> None:
    plan = make_plan(Stage.LOCK)
    ctr = build_container(dagger.dag, plan, plan.steps[0])
    assert calls(ctr) == expected_chain(plan, inputs=[], argv=list(plan.steps[0].argv))
    assert calls(build_base(dagger.dag, plan)) == calls(ctr)[:len(calls(build_base(dagger.dag, plan)))]
    export = build_export(ctr, plan)
    assert export is not None
    assert calls(export)[-1] == ("Container", "directory", {"path": "/out/lockfiles"})
    assert calls(export)[:-1] == calls(ctr)


def test_reproduce_chain_mounts_locks_read_only_and_copies_the_cache(make_plan: PlanFactory,
                                                                     workspace: Workspace) -> None:
    (workspace.lockdir).mkdir()
    (workspace.lockdir / "eks.lock.json").write_text("{}\n")
    for part in ("charts", "renders"):
        (workspace.cache / part).mkdir(parents=True)
        (workspace.cache / part / "x").write_text(part)
    plan = make_plan(Stage.REPRODUCE, recipes=["eks"])
    argv = ["python", "-m", "pipeline", "reproduce", "--catalog", "/in/catalog", "--lockdir", "/in/lockfiles",
            "--cache", "/work/cache", "--workers", "1", "--recipe", "eks"]
    assert [list(s.argv) for s in plan.steps] == [argv]
    inputs = [
        # The cache is content-addressed and verified on read: copied in (writable there), never written back.
        ("Container", "withDirectory", {"path": "/work/cache/charts", "source": host_dir(workspace.cache / "charts")}),
        ("Container", "withDirectory",
         {"path": "/work/cache/renders", "source": host_dir(workspace.cache / "renders")}),
    ]
    # The step's own input: only this recipe's lockfile, read-only.
    lockfile = ("Container", "withMountedDirectory",
                {"path": "/in/lockfiles", "source": host_dir(workspace.lockdir, include=["eks.lock.json"]),
                 "readOnly": True})
    ctr = build_container(dagger.dag, plan, plan.steps[0])
    assert calls(ctr) == expected_chain(plan, inputs=inputs, argv=argv, files=[lockfile])
    assert build_export(ctr, plan) is None
    assert plan.outputs.files == {} and plan.outputs.host is None


def test_the_graphql_document_names_image_mounts_environment_and_command(make_plan: PlanFactory,
                                                                        workspace: Workspace) -> None:
    plan = make_plan(Stage.LOCK)
    text = " ".join(graphql_text(build_container(dagger.dag, plan, plan.steps[0]), "exitCode").split())
    assert text.startswith('{ container(platform: "linux/amd64") { from: from( address: '
                           f'"{plan.base_image}" ) {{ withEnvVariable: withEnvVariable(name: "HOME", value: "/tmp")')
    assert 'withEnvVariable(name: "TZ", value: "UTC")' in text
    assert 'withEnvVariable(name: "PYTHONHASHSEED", value: "0")' in text
    wheels = plan.wheels.wheelhouse.source
    assert f'withMountedDirectory( path: "/opt/wheels" source: "ID({wheels})" readOnly: true )' in text
    assert ('withExec( args: [ "python" "-m" "pip" "install" "--no-index" "--find-links" "/opt/wheels" '
            '"--require-hashes"') in text
    catalog = workspace.catalog.resolve()
    assert f'withMountedDirectory( path: "/in/catalog" source: "ID({catalog})" readOnly: true )' in text
    assert text.index("/opt/recipe-pipeline/pipeline") < text.index('path: "/in/catalog"')  # after the shared base
    assert ('withWorkdir: withWorkdir(path: "/work") { withExec: withExec( args: [ "python" "-m" "pipeline" "lock" '
            '"--catalog" "/in/catalog" "--lockdir" "/out/lockfiles" "--no-resolve" "--cache" "/work/cache" "--workers" '
            '"1" "--recipe" "eks" ] expect: ANY ) { exitCode: exitCode }') in text
    assert text.count("withExec") == 4 and text.count("withMountedDirectory") == 6  # alias + field each


def test_no_service_secret_socket_or_privilege_is_asked_for(make_plan: PlanFactory) -> None:
    for stage in Stage:
        plan = make_plan(stage)
        chain = calls(build_container(dagger.dag, plan, plan.steps[0]))
        assert {name for _, name, _ in chain} <= ALLOWED_CALLS
        for _, _, args in chain:
            assert not {"insecureRootCapabilities", "experimentalPrivilegedNesting", "registryService"} & set(args)


def test_known_output_digests_are_part_of_the_plan(make_plan: PlanFactory) -> None:
    digest = sha256(b"the local backend's lock")
    assert dict(make_plan(Stage.LOCK, expected={"eks.lock.json": digest}).outputs.files) == {"eks.lock.json": digest}


@pytest.mark.parametrize(("stage", "expected", "message"), [
    (Stage.LOCK, {"other.lock.json": sha256(b"x")},
     "an expected digest names 'other.lock.json', which this lock does not produce"),
    (Stage.REPRODUCE, {"eks.lock.json": sha256(b"x")},
     "reproduce produces no files, so no output digest can be expected"),
])
def test_expected_digests_must_name_outputs_of_the_stage(make_plan: PlanFactory, stage: Stage,
                                                         expected: dict[str, Any], message: str) -> None:
    with pytest.raises(BackendError) as caught:
        make_plan(stage, expected=expected)
    assert caught.value.message == message


def test_an_unknown_recipe_fails_on_the_host_as_with_the_local_backend(make_plan: PlanFactory) -> None:
    with pytest.raises(UsageError, match="no recipe named 'ekss'"):
        make_plan(Stage.LOCK, recipes=["ekss"])


def test_a_plan_refuses_a_base_image_without_digest(make_plan: PlanFactory) -> None:
    plan = make_plan(Stage.LOCK)
    with pytest.raises(ValueError, match="is not pinned by a sha256 digest"):
        dataclasses.replace(plan, base_image=ImageRef.parse("python:3.11-slim-bookworm"))


def test_a_plan_refuses_an_unsorted_environment(make_plan: PlanFactory) -> None:
    plan = make_plan(Stage.LOCK)
    with pytest.raises(ValueError, match="environment must be sorted"):
        dataclasses.replace(plan, environment=(("TZ", "UTC"), ("HOME", "/tmp")))
