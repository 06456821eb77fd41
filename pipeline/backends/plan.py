"""Plans: turning ``lock``/``reproduce`` on a host workspace into a :class:`~.interface.Plan`, and
checking and applying what a backend hands back.

Container layout (the same for every stage and step)::

    /opt/wheels                   the wheelhouse (read-only): one hashed wheel per pin + requirements.txt
    /opt/recipe-pipeline/pipeline this package's source (read-only; PYTHONPATH=/opt/recipe-pipeline)
    /in/catalog/…                 the step's recipe's catalog inputs, and only those (read-only)
    /in/lockfiles/<recipe>.lock.json  the step's own committed lockfile (read-only; reproduce only)
    /work/cache/charts, /renders  the host cache, copied in (content-addressed, verified on read)
    /out/lockfiles                where a ``lock`` step writes; exported back to the host

The catalog and the lockfiles go to ``/work/<same relative path>`` instead when they lie below the
host's working directory (:func:`container_path`), so messages naming them read the same inside and
outside. One :class:`~.interface.Step` per recipe runs ``python -m pipeline lock|reproduce …
--recipe R``; ``lock`` steps add ``--no-resolve`` (no network in a container) and :func:`assemble`
resolves on the host.

Guarantees: :func:`build_plan` composes the recipes on the host first (an unknown recipe or a broken
catalog fails here exactly as with the local backend), digests every input directory and step file,
and verifies the wheelhouse against the pinned hashes; :func:`verify_inputs` re-digests the inputs just before a
run (a catalog edited since the plan was made is a :class:`~pipeline.errors.BackendError`);
:func:`check_outputs` compares what came back with what the plan expected (names and, when known,
digests), and checks every lockfile's own integrity digest; :func:`write_outputs` writes the files
atomically (all or none) and prunes orphans as ``lock`` does.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..errors import BackendError
from ..lock import input_digests
from ..lockfile import LOCK_SUFFIX, MISSING_INPUT, Lockfile
from ..recipes import Recipe
from ..registry import DockerConfig, docker_config_path
from ..render.sandbox import CANONICAL
from ..stages import Workspace, compose_recipes, recipe_names, resolve_locks
from ..vocabulary.digest import Digest, sha256, sha256_of_entries
from ..vocabulary.files import atomic_write_many
from .interface import (
    ExpectedOutputs,
    FileMount,
    Mount,
    OutputMismatchError,
    Outputs,
    Plan,
    Stage,
    StagePlan,
    Step,
    Wheels,
)
from .settings import ContainerSettings, load_settings, project_root
from .wheelhouse import REQUIREMENTS_NAME, check_wheelhouse, parse_requirements, prepare_wheelhouse

__all__ = [
    "CONTAINER_CACHE",
    "CONTAINER_CATALOG",
    "CONTAINER_LOCKDIR",
    "CONTAINER_OUTPUT",
    "CONTAINER_PROJECT",
    "CONTAINER_WHEELHOUSE",
    "RUN_REQUIREMENTS",
    "Applied",
    "assemble",
    "build_plan",
    "check_outputs",
    "container_environment",
    "container_path",
    "local_plan",
    "plan_for",
    "tree_digest",
    "verify_inputs",
    "write_outputs",
]

CONTAINER_WHEELHOUSE = PurePosixPath("/opt/wheels")
CONTAINER_PROJECT = PurePosixPath("/opt/recipe-pipeline")
CONTAINER_CATALOG = PurePosixPath("/in/catalog")
CONTAINER_LOCKDIR = PurePosixPath("/in/lockfiles")
CONTAINER_WORKDIR = PurePosixPath("/work")
CONTAINER_CACHE = CONTAINER_WORKDIR / "cache"
CONTAINER_OUTPUT = PurePosixPath("/out/lockfiles")
#: The pins installed in the container, relative to the project root.
RUN_REQUIREMENTS = "requirements/run.txt"
#: Cache subdirectories worth copying in: both are content-addressed and re-verified when read.
_CACHE_PARTS = ("charts", "renders")
#: Never part of an input: Python's byte-code caches.
_SKIP = ("__pycache__",)


def container_environment() -> tuple[tuple[str, str], ...]:
    """The complete environment the plan sets, built like the canonical render sandbox's allow-list."""
    env = {
        "HOME": "/tmp",  # noqa: S108 - inside the container: an empty, writable directory of the image
        "LANG": CANONICAL.locale,
        "LC_ALL": CANONICAL.locale,
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": CANONICAL.hash_seed,
        "PYTHONNOUSERSITE": "1",
        "PYTHONPATH": str(CONTAINER_PROJECT),
        "TZ": CANONICAL.tz,
        **dict(CANONICAL.extra_env),
    }
    return tuple(sorted(env.items()))


def tree_digest(root: Path, *, skip: Sequence[str] = ()) -> Digest:
    """Digest of every file under ``root`` by relative POSIX path (order-independent), skipping ``skip`` names."""
    entries: list[tuple[str, bytes]] = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part in skip for part in rel.parts) or not path.is_file():
            continue
        entries.append((rel.as_posix(), path.read_bytes()))
    return sha256_of_entries(entries)


def _mount(target: PurePosixPath, source: Path, *, read_only: bool = True, skip: Sequence[str] = ()) -> Mount:
    source = source.resolve()
    return Mount(target=target, source=source, digest=tree_digest(source, skip=skip), read_only=read_only,
                 skip=tuple(skip))


def _install_argv(target: PurePosixPath) -> tuple[str, ...]:
    return ("python", "-m", "pip", "install", "--no-index", "--find-links", str(target), "--require-hashes",
            "--only-binary", ":all:", "--no-cache-dir", "--disable-pip-version-check",
            "--root-user-action=ignore", "--requirement", str(target / REQUIREMENTS_NAME))


def container_path(host: Path, fallback: PurePosixPath, *, cwd: Path | None = None) -> PurePosixPath:
    """Where a host input goes in the container: under the workdir at the same relative path when it
    is below the working directory (so messages that name files relative to the working directory read
    the same inside and outside), else ``fallback``."""
    try:
        rel = host.resolve().relative_to((cwd or Path.cwd()).resolve())
    except ValueError:
        return fallback
    if not rel.parts or rel.parts[0] in {"cache", ".."}:
        return fallback
    return CONTAINER_WORKDIR / rel.as_posix()


def _catalog_inputs(recipe: Recipe, target: PurePosixPath) -> tuple[FileMount, ...]:
    """The recipe's catalog inputs (what its lock records), each placed at the same path under ``target``."""
    # An input is a file, or a part of one (``pipeline.yaml#spec.kubeVersion``): mount each file once,
    # pinned by the digest of its bytes.
    files = sorted({rel.partition("#")[0] for rel, digest in input_digests(recipe).items() if digest != MISSING_INPUT})
    mounts = []
    for rel in files:
        source = (recipe.catalog / rel).resolve()
        if not source.is_file():  # a part with its default value (no pipeline.yaml): nothing to mount
            continue
        mounts.append(FileMount(target=target / rel, source=source, digest=sha256(source.read_bytes())))
    return tuple(mounts)


def _expected(stage: Stage, ws: Workspace, names: Sequence[str], *, recipes: Sequence[str],
              known: Mapping[str, Digest], directory: PurePosixPath | None) -> ExpectedOutputs:
    """What ``stage`` over the recipes ``names`` hands back: one lockfile each for ``lock`` (with the
    ``known`` digests; the others unknown), exported from the container's ``directory`` (``None``: the
    stage runs on the host), nothing for ``reproduce``."""
    match stage:
        case Stage.LOCK:
            produced = {f"{name}{LOCK_SUFFIX}" for name in names}
            unknown = sorted(set(known) - produced)
            if unknown:
                raise BackendError(f"an expected digest names {unknown[0]!r}, which this lock does not produce",
                                   hint=f"expected outputs are {', '.join(sorted(produced))}")
            return ExpectedOutputs(
                directory=directory, files={n: known.get(n) for n in sorted(produced)},
                host=ws.lockdir, prune=None if recipes else f"*{LOCK_SUFFIX}",
            )
        case Stage.REPRODUCE:
            if known:
                raise BackendError("reproduce produces no files, so no output digest can be expected",
                                   hint="pass expected digests to a lock plan")
            return ExpectedOutputs()


def local_plan(stage: Stage, ws: Workspace, *, recipes: Sequence[str] = (), keep_going: bool = False,
               check: bool = False) -> StagePlan:
    """The plan the local backend runs: the host view only (no base image, wheels or steps, so nothing
    is downloaded). The recipes are named here (an unknown recipe or a broken catalog fails here with
    the stage's own error), not composed: the stage composes them once."""
    catalog, names = recipe_names(ws.catalog, list(recipes) or None, environment=ws.environment)
    return StagePlan(stage=stage, recipes=tuple(recipes), workspace=ws, keep_going=keep_going, check=check,
                     outputs=_expected(stage, ws, names, recipes=recipes, known={}, directory=None), loaded=catalog)


def build_plan(
    stage: Stage,
    ws: Workspace,
    *,
    settings: ContainerSettings,
    project: Path,
    requirements: Path,
    wheelhouse: Path,
    recipes: Sequence[str] = (),
    expected: Mapping[str, Digest] | None = None,
) -> Plan:
    """The plan for ``stage`` on ``ws`` (see the module docstring for the container layout).

    One :class:`Step` per recipe, each running the stage for that recipe alone. ``lock`` steps run
    with ``--no-resolve`` (containers have no network); :func:`assemble` resolves on the host.
    ``expected`` gives known digests of output files by name (e.g. the local backend's lockfiles,
    to check that both backends produce the same bytes); names not given are expected with an
    unknown digest. ``wheelhouse`` must already hold the pinned wheels (:func:`prepare_wheelhouse`).
    """
    _, composed = compose_recipes(ws.catalog, list(recipes) or None)
    data = requirements.read_bytes()
    pins = parse_requirements(requirements)
    check_wheelhouse(wheelhouse, pins, data)
    wheels = Wheels(
        requirements=requirements.resolve(), requirements_digest=sha256(data), pins=pins,
        wheelhouse=_mount(CONTAINER_WHEELHOUSE, wheelhouse), install=_install_argv(CONTAINER_WHEELHOUSE),
    )
    package = project / "pipeline"
    catalog = container_path(ws.catalog, CONTAINER_CATALOG)
    inputs: list[Mount] = []
    common = ["python", "-m", "pipeline", stage.value, "--catalog", str(catalog)]
    lockdir = container_path(ws.lockdir, CONTAINER_LOCKDIR)
    names = [r.name for r in composed]
    outputs = _expected(stage, ws, names, recipes=recipes, known=expected or {}, directory=CONTAINER_OUTPUT)
    match stage:
        case Stage.LOCK:
            common += ["--lockdir", str(CONTAINER_OUTPUT), "--no-resolve"]
        case Stage.REPRODUCE:
            common += ["--lockdir", str(lockdir)]
    for part in _CACHE_PARTS:
        if (ws.cache / part).is_dir():
            inputs.append(_mount(CONTAINER_CACHE / part, ws.cache / part, read_only=False))
    common += ["--cache", str(CONTAINER_CACHE)]
    if ws.workers is not None:
        common += ["--workers", str(ws.workers)]
    steps = []
    for recipe in composed:
        name = recipe.name
        lockfile = f"{name}{LOCK_SUFFIX}"
        files: tuple[FileMount, ...] = ()
        if stage is Stage.REPRODUCE and (ws.lockdir / lockfile).is_file():
            source = (ws.lockdir / lockfile).resolve()
            files = (FileMount(target=lockdir / lockfile, source=source, digest=sha256(source.read_bytes())),)
        steps.append(Step(name=name, argv=(*common, "--recipe", name), catalog=_catalog_inputs(recipe, catalog),
                          files=files, outputs=(lockfile,) if stage is Stage.LOCK else ()))
    return Plan(
        stage=stage, recipes=tuple(recipes), workspace=ws, base_image=settings.base_image,
        platform=settings.platform, wheels=wheels,
        project=_mount(CONTAINER_PROJECT / "pipeline", package, skip=_SKIP),
        inputs=tuple(inputs), environment=container_environment(), workdir=CONTAINER_WORKDIR, catalog=catalog,
        steps=tuple(steps), outputs=outputs,
    )


def verify_inputs(plan: Plan) -> None:
    """Raise :class:`BackendError` when any input directory changed since ``plan`` was made."""
    for mount in plan.mounts:
        now = tree_digest(mount.source, skip=mount.skip) if mount.source.is_dir() else None
        if now != mount.digest:
            raise BackendError(
                f"input {mount.source} (for {mount.target}) changed since the plan was made: "
                f"planned {mount.digest}, now {now or 'missing'}",
                hint="something wrote to the workspace during the run; run again when it is quiet",
            )
    for step in plan.steps:
        for file in (*step.catalog, *step.files):
            now = sha256(file.source.read_bytes()) if file.source.is_file() else None
            if now != file.digest:
                raise BackendError(
                    f"input {file.source} (for {file.target}) changed since the plan was made: "
                    f"planned {file.digest}, now {now or 'missing'}",
                    hint="something wrote to the workspace during the run; run again when it is quiet",
                )


def check_outputs(plan: StagePlan, outputs: Outputs, *, backend: str, sealed_here: bool = False) -> None:
    """Raise when ``outputs`` is not what ``plan`` expected (only for a stage that exited 0).

    Lockfiles that come from elsewhere (a container) are parsed and verified by the lockfile model;
    ``sealed_here``: they were sealed by this process (the local backend), so the model made them and
    parsing them again would only repeat it."""
    if outputs.exit_code != 0:
        return
    expected = plan.outputs.files
    got = set(outputs.files)
    where = f"the {backend} backend's {plan.stage.value} run"
    for name in sorted(set(expected) - got):
        raise OutputMismatchError(f"{where} produced no {name!r} in {plan.outputs.directory or plan.outputs.host}",
                                  hint="the stage inside the container did not write every expected output; "
                                  "see its stderr above")
    for name in sorted(got - set(expected)):
        raise OutputMismatchError(f"{where} produced an unexpected file {name!r}",
                                  hint=f"expected only {', '.join(sorted(expected)) or 'no files'}")
    for name, want in sorted(expected.items()):
        have = sha256(outputs.files[name])
        if want is not None and have != want:
            raise OutputMismatchError(
                f"{where}: {name} has {have}, but the plan expected {want}",
                hint="the backends produced different bytes for the same inputs: compare the two with "
                "'nox -s reproduce' and the lockfile diff",
            )
    if plan.stage is Stage.LOCK and not sealed_here:
        for name, data in sorted(outputs.files.items()):
            Lockfile.from_bytes(data, display=f"{name} (from the {backend} backend)")


@dataclass(frozen=True, slots=True, kw_only=True)
class Applied:
    """What :func:`write_outputs` did on the host."""

    written: tuple[Path, ...]
    unchanged: tuple[Path, ...]
    removed: tuple[Path, ...]


def write_outputs(plan: StagePlan, outputs: Outputs) -> Applied:
    """Write the checked output files to the plan's host directory atomically; prune orphans."""
    host = plan.outputs.host
    if host is None or outputs.exit_code != 0:
        return Applied(written=(), unchanged=(), removed=())
    files = {host / name: data for name, data in outputs.files.items()}
    unchanged = tuple(sorted(p for p, data in files.items() if p.is_file() and p.read_bytes() == data))
    atomic_write_many(files)
    removed: list[Path] = []
    if plan.outputs.prune is not None and host.is_dir():
        for orphan in sorted(host.glob(plan.outputs.prune)):
            if orphan not in files:
                orphan.unlink()
                removed.append(orphan)
    written = tuple(sorted(p for p in files if p not in unchanged))
    return Applied(written=written, unchanged=unchanged, removed=tuple(removed))


def assemble(plan: Plan, results: Mapping[str, Outputs], *, backend: str, step_cache: bool = False) -> Outputs:
    """The steps' results put together on the host as the local backend reports the whole stage.

    A step that failed with bad input (exit 2 or more) makes the stage fail with that step's exit
    code and message, the first in recipe order, as the local backend stops at the first; otherwise
    the exit code is the worst step's (1: a recipe did not reproduce). ``reproduce`` relays every
    step's report in recipe order and a summary line; ``lock`` parses every step's ``--no-resolve``
    lockfile, resolves its images on the host (:func:`~pipeline.stages.resolve_locks`) and hands back
    the completed lockfiles, checked against the plan (:func:`check_outputs`). ``step_cache``: the
    backend keeps its own step cache, and the summary says how many steps it served.
    """
    ordered = [(step, results[step.name]) for step in plan.steps]
    cached = tuple(step.name for step, out in ordered if out.cached)
    broken = [(step, out) for step, out in ordered if out.exit_code not in {0, 1}]
    if broken:
        step, out = broken[0]
        return Outputs(exit_code=out.exit_code, stdout="", stderr=out.stderr, cached=cached)
    stderr = "".join(out.stderr for _, out in ordered)
    exit_code = max(out.exit_code for _, out in ordered)
    match plan.stage:
        case Stage.REPRODUCE:
            passed = sum(1 for _, out in ordered if out.exit_code == 0)
            summary = f"{passed}/{len(ordered)} recipes reproduced in {len(ordered)} {backend} container steps"
            summary += f" ({len(cached)} served from the step cache)\n" if step_cache else "\n"
            outputs = Outputs(exit_code=exit_code, stdout="".join(out.stdout for _, out in ordered) + summary,
                              stderr=stderr, cached=cached)
        case Stage.LOCK:
            files: dict[str, bytes] = {}
            if exit_code == 0:
                for step, out in ordered:
                    extra = sorted(set(out.files) - set(step.outputs))
                    if extra:
                        raise OutputMismatchError(f"the {backend} backend's step {step.name!r} produced an "
                                                  f"unexpected file {extra[0]!r}",
                                                  hint=f"expected only {', '.join(step.outputs)}")
                    files.update(out.files)
                if plan.workspace.resolve and set(files) == set(plan.outputs.files):
                    locks = [Lockfile.from_bytes(data, display=f"{name} (from the {backend} backend)")
                             for name, data in sorted(files.items())]
                    credentials = DockerConfig.load(docker_config_path(os.environ), required=False)
                    files = {f"{lock.name}{LOCK_SUFFIX}": lock.dumps()
                             for lock in resolve_locks(plan.workspace, locks, credentials=credentials)}
            outputs = Outputs(exit_code=exit_code, files=files, stdout="".join(out.stdout for _, out in ordered),
                              stderr=stderr, cached=cached)
    check_outputs(plan, outputs, backend=backend)
    return outputs


def plan_for(stage: Stage, ws: Workspace, *, recipes: Sequence[str] = (),
             expected: Mapping[str, Digest] | None = None) -> Plan:
    """The plan for ``stage`` from this checkout: its settings, ``requirements/run.txt`` and wheelhouse.

    Downloads the wheelhouse into ``<cache>/wheelhouse/`` the first time (``pip download``); later
    runs reuse it once it verifies against the pinned hashes.
    """
    root = project_root()
    settings = load_settings(root)
    requirements = root / RUN_REQUIREMENTS
    wheelhouse = prepare_wheelhouse(requirements, ws.cache, settings)
    return build_plan(stage, ws, settings=settings, project=root, requirements=requirements,
                      wheelhouse=wheelhouse, recipes=recipes, expected=expected)
