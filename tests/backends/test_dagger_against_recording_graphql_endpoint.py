"""The Dagger backend end to end, with the real ``dagger-io`` SDK attached to a FAKE engine.

No Dagger engine can run here (no container runtime), so :mod:`tests.backends.fake_dagger_engine`
serves the Dagger GraphQL API subset the backend uses on 127.0.0.1, records every query, and
answers with outputs the test feeds it. The SDK attaches to it as to a ``dagger run`` session
(``DAGGER_SESSION_PORT``/``DAGGER_SESSION_TOKEN``). What this proves: the backend's connection
handling, the queries it sends (pinned image, environment, read-only mounts, wheel install,
command, output export), and the verification of outputs by digest both ways (the lockfile a local
run produced comes back → accepted; other bytes → refused). What it does not prove: that a real
engine pulls the image, installs the wheels and renders the same bytes (see README).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest

from pipeline.backends import LocalBackend, OutputMismatchError, Stage, write_outputs
from pipeline.backends.dagger import DaggerBackend
from pipeline.errors import BackendError, IntegrityError
from pipeline.stages import Workspace, lock_catalog
from pipeline.vocabulary.digest import sha256
from tests import factories
from tests.backends.conftest import PlanFactory
from tests.backends.fake_dagger_engine import FakeEngine, serve

TOKEN = "fake-session-token"


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeEngine]:
    with serve(TOKEN) as (fake, port):
        monkeypatch.setenv("DAGGER_SESSION_PORT", str(port))
        monkeypatch.setenv("DAGGER_SESSION_TOKEN", TOKEN)
        yield fake


@pytest.fixture(scope="module")
def local_lock(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The lockfile the local backend writes for the tiny catalog: what the fake engine hands back."""
    root = tmp_path_factory.mktemp("local")
    factories.catalog(root / "catalog")
    # The factory catalog names images no registry here serves: lock without resolving.
    lock_catalog(Workspace(catalog=root / "catalog", lockdir=root / "locks", cache=root / "cache", workers=1,
                           resolve=False))
    return (root / "locks" / "eks.lock.json").read_bytes()


def compact(query: str) -> str:
    return " ".join(query.split())


def the_run_query(engine: FakeEngine, terminal: str) -> str:
    found = [compact(q) for q in engine.chain_queries if re.search(rf"\b{terminal}\b", q) and "withExec" in q]
    assert found, f"no recorded query ends in {terminal}"
    return found[0]


def test_lock_matches_the_local_backend_and_is_written(engine: FakeEngine, make_plan: PlanFactory,
                                                       workspace: Workspace, local_lock: bytes) -> None:
    plan = make_plan(Stage.LOCK, expected={"eks.lock.json": sha256(local_lock)})
    engine.feed.files = {"eks.lock.json": local_lock}
    engine.feed.stdout = "wrote     /out/lockfiles/eks.lock.json\n1 recipes locked, 2 distinct renders\n"
    started = time.monotonic()
    outputs = DaggerBackend().run(plan)
    assert time.monotonic() - started < 10
    assert outputs.exit_code == 0
    assert outputs.files == {"eks.lock.json": local_lock}
    assert outputs.stdout == engine.feed.stdout
    applied = write_outputs(plan, outputs)
    assert applied.written == (workspace.lockdir / "eks.lock.json",)
    assert (workspace.lockdir / "eks.lock.json").read_bytes() == local_lock

    # Every request carried the session token; the SDK introspected the schema first.
    assert engine.queries and all(r.authorized for r in engine.queries)
    assert "__schema" in engine.queries[0].query
    # What the engine was asked to do, as it received it.
    run = engine.runs[0]
    assert run.platform == "linux/amd64" and run.image == str(plan.base_image)
    assert run.env == plan.environment
    assert [(p.call, p.path, p.source.path, p.read_only) for p in run.placed] == [
        ("withMountedDirectory", "/opt/wheels", str(plan.wheels.wheelhouse.source), True),
        ("withMountedDirectory", "/opt/recipe-pipeline/pipeline", str(plan.project.source), True),
        ("withMountedDirectory", "/in/catalog", str(workspace.catalog.resolve()), True),
    ]
    assert run.placed[1].source.exclude == ("**/__pycache__",)
    assert run.workdir == "/work"
    assert run.execs == ((plan.wheels.install, "SUCCESS"), (plan.steps[0].argv, "ANY"))
    assert {r.calls for r in engine.runs} == {run.calls}  # every terminal query carried the same chain
    exit_query = the_run_query(engine, "exitCode")
    assert f'from( address: "{plan.base_image}" )' in exit_query
    assert 'withMountedDirectory( path: "/in/catalog" source: "fake-directory-' in exit_query
    assert '"--lockdir" "/out/lockfiles"' in exit_query and "expect: ANY" in exit_query
    export = the_run_query(engine, "entries")
    assert '{ directory: directory(path: "/out/lockfiles") { entries: entries } }' in export
    contents = the_run_query(engine, "contents")
    assert ('{ directory: directory(path: "/out/lockfiles") { file: file(path: "eks.lock.json") '
            '{ contents: contents } } }') in contents
    # Host directories were resolved to IDs before the chain was sent.
    ids = [compact(q) for q in engine.chain_queries if "host" in q and "withExec" not in q]
    catalog = [q for q in ids if f'directory( path: "{workspace.catalog.resolve()}" include: [' in q]
    assert len(catalog) == 1 and '"overlays/eks.yaml" "registry.yaml" ]' in catalog[0]  # only the recipe's inputs


def test_other_bytes_than_expected_are_refused(engine: FakeEngine, make_plan: PlanFactory, workspace: Workspace,
                                               local_lock: bytes) -> None:
    plan = make_plan(Stage.LOCK, expected={"eks.lock.json": sha256(local_lock)})
    other = local_lock.replace(b'"1.33.0"', b'"1.34.0"')
    engine.feed.files = {"eks.lock.json": other}
    with pytest.raises(OutputMismatchError) as caught:
        DaggerBackend().run(plan)
    assert caught.value.message == (f"the dagger backend's lock run: eks.lock.json has {sha256(other)}, "
                                    f"but the plan expected {sha256(local_lock)}")
    assert caught.value.exit_code == 1
    assert not workspace.lockdir.exists()


def test_an_unknown_digest_still_gets_the_lockfile_integrity_check(engine: FakeEngine, make_plan: PlanFactory,
                                                                   local_lock: bytes) -> None:
    engine.feed.files = {"eks.lock.json": local_lock.replace(b'"1.33.0"', b'"1.34.0"')}
    with pytest.raises(IntegrityError, match=r"eks\.lock\.json \(from the dagger backend\) fails its integrity check"):
        DaggerBackend().run(make_plan(Stage.LOCK))
    engine.feed.files = {"eks.lock.json": local_lock}
    assert DaggerBackend().run(make_plan(Stage.LOCK)).files == {"eks.lock.json": local_lock}


@pytest.mark.parametrize(("files", "message"), [
    ({}, "the dagger backend's lock run produced no 'eks.lock.json' in /out/lockfiles"),
    ({"eks.lock.json": b"", "stray.txt": b"x"},
     "the dagger backend's step 'eks' produced an unexpected file 'stray.txt'"),
])
def test_missing_or_unexpected_outputs_are_refused(engine: FakeEngine, make_plan: PlanFactory,
                                                   files: dict[str, bytes], message: str) -> None:
    engine.feed.files = files
    with pytest.raises(OutputMismatchError) as caught:
        DaggerBackend().run(make_plan(Stage.LOCK))
    assert caught.value.message == message


def test_reproduce_relays_the_exit_code_and_report_and_exports_nothing(engine: FakeEngine,
                                                                        make_plan: PlanFactory) -> None:
    engine.feed.exit_code = 1
    engine.feed.stdout = "0/1 recipes reproduced\n"
    engine.feed.stderr = "warning\n"
    outputs = DaggerBackend().run(make_plan(Stage.REPRODUCE))
    assert (outputs.exit_code, outputs.stdout, outputs.stderr, dict(outputs.files)) == (
        1, "0/1 recipes reproduced\n0/1 recipes reproduced in 1 dagger container steps\n", "warning\n", {})
    assert not any("entries" in q for q in engine.chain_queries)
    assert engine.runs[0].execs[-1][0][3] == "reproduce"


def test_a_failed_wheel_install_is_a_backend_error_with_pip_s_stderr(engine: FakeEngine,
                                                                    make_plan: PlanFactory) -> None:
    engine.feed.failing_exec = ("python", "-m", "pip", "install")
    with pytest.raises(BackendError) as caught:
        DaggerBackend().run(make_plan(Stage.LOCK))
    assert caught.value.message == ("installing the pinned wheels failed in the container (exit 1): "
                                    "ERROR: THESE PACKAGES DO NOT MATCH THE HASHES (fake)")


def test_an_input_changed_after_planning_is_refused_before_anything_is_sent(engine: FakeEngine,
                                                                           make_plan: PlanFactory,
                                                                           workspace: Workspace) -> None:
    plan = make_plan(Stage.LOCK)
    values = workspace.catalog / "components/app/values.yaml"
    values.write_text(values.read_text() + "# edited\n")
    with pytest.raises(BackendError, match=r"changed since the plan was made"):
        DaggerBackend().run(plan)
    assert engine.queries == []


def test_the_local_backend_returns_the_same_lockfile(make_plan: PlanFactory, local_lock: bytes,
                                                     offline_workspace: Workspace) -> None:
    outputs = LocalBackend().run(make_plan(Stage.LOCK, expected={"eks.lock.json": sha256(local_lock)},
                                           ws=offline_workspace))
    assert outputs.exit_code == 0 and outputs.files == {"eks.lock.json": local_lock}
