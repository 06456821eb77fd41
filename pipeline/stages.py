"""The pipeline, top to bottom: compose → fetch → render → discover → resolve → lock; then
reproduce against the lock, qualify (every gate), and drift against upstream.

Entry points the CLI and nox sessions call: :func:`lock_catalog`, :func:`reproduce_catalog`,
:func:`qualify_catalog`, :func:`drift_catalog`, :func:`render_recipe` and :func:`fresh_locks` (the
verified, fresh locks that BOM, mirror list, provenance and policies publish from). Each takes a
:class:`Workspace` (catalog, lock directory, cache, worker count) and returns a result record;
none prints. Lockfiles are written all together and atomically: a failed run leaves every
previous lockfile intact.
"""

from __future__ import annotations

import contextlib
import difflib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .build import RecipeBuild, build, chart_record
from .charts import ChartStore, OciChartSource, SourceFactory
from .errors import GateError, LockError, PipelineError, StaleLockError, UsageError
from .gates import Finding, run_gates
from .images import FoundImage, ImageRef
from .lock import LOCK_SUFFIX, Lockfile, build_component, build_lockfile, input_digests, lock_path, read_lockfile
from .progress import SILENT, Progress
from .recipes import Catalog, Component, Recipe, catalog_recipes, compose, load_catalog
from .registry import DockerConfig, RegistryClient, ResolvedImage, resolve_all
from .render.identity import library_identity
from .render.pool import WorkerPool
from .render.sandbox import CANONICAL, VARIANT_A, VARIANT_B, Variation
from .reproduce import Divergence, compare_images, compare_renders, compare_with_lock
from .vocabulary.digest import Digest, parse_digest, sha256
from .vocabulary.files import atomic_write, atomic_write_many
from .volatile import load_volatile

if TYPE_CHECKING:
    from .drift import DriftReport

__all__ = [
    "LockResult",
    "QualifyResult",
    "RecipeOutcome",
    "ReproduceResult",
    "Workspace",
    "compose_recipes",
    "drift_catalog",
    "fresh_locks",
    "lock_catalog",
    "qualify_catalog",
    "render_recipe",
    "reproduce_catalog",
]

log = logging.getLogger("pipeline")

CHECKS = ("lock integrity", "engine", "staleness", "A = B", "render = lock", "images = lock")


@dataclass(frozen=True, slots=True, kw_only=True)
class Workspace:
    """Where a run reads and writes: catalog, lockfiles, cache (charts and rendered streams)."""

    catalog: Path
    lockdir: Path
    cache: Path
    workers: int | None = None
    #: ``lock`` asks registries for every image's digest; ``False`` keeps only reference digests
    resolve: bool = True

    @property
    def store(self) -> ChartStore:
        return ChartStore(self.cache / "charts")

    def cache_stream(self, stream: bytes) -> None:
        path = self.cache / "renders" / sha256(stream).removeprefix("sha256:")
        if not path.exists():
            atomic_write(path, stream)

    def cached_stream(self, digest: str) -> bytes | None:
        try:
            data = (self.cache / "renders" / digest.removeprefix("sha256:")).read_bytes()
        except OSError:
            return None
        return data if sha256(data) == digest else None


def compose_recipes(catalog_dir: Path, names: Sequence[str] | None = None) -> tuple[Catalog, list[Recipe]]:
    """Load the catalog and compose its recipes (all, or the ``names`` asked for)."""
    catalog = load_catalog(catalog_dir)
    queries = catalog_recipes(catalog)
    if names:
        known = {q.name: q for q in queries}
        unknown = [n for n in names if n not in known]
        if unknown:
            close = difflib.get_close_matches(unknown[0], list(known), n=3)
            raise UsageError(
                f"no recipe named {unknown[0]!r} in catalog {catalog_dir}",
                hint=(f"did you mean {', '.join(repr(c) for c in close)}? " if close else "")
                + "list the recipes with 'python -m pipeline recipes'",
            )
        queries = tuple(known[n] for n in names)
    return catalog, [compose(catalog, q) for q in queries]


def _engine_of(pool: WorkerPool) -> dict[str, str]:
    """The engine identity every worker of ``pool`` loaded (the native library hashed once per run)."""
    engines = {tuple(sorted(h["engine"].items())) for h in pool.hellos}
    if len(engines) != 1:
        raise PipelineError(f"render workers report different engines: {sorted(engines)}",
                            hint="re-create the virtual environment: 'nox -r'")
    return library_identity(dict(next(iter(engines)))).as_dict()


@dataclass(frozen=True, slots=True, kw_only=True)
class LockResult:
    written: tuple[Path, ...]
    unchanged: tuple[Path, ...]
    removed: tuple[Path, ...]
    recipes: tuple[Recipe, ...]
    renders: int


def lock_catalog(
    ws: Workspace, names: Sequence[str] | None = None, *, credentials: DockerConfig | None = None,
    progress: Progress = SILENT,
) -> LockResult:
    """Compose, fetch, render (canonical sandbox), resolve every image, write every lockfile atomically.

    With ``ws.resolve`` (the default) every image reference is resolved to its digest (and its
    per-platform digests) from its registry or a configured mirror; a registry that cannot answer
    is a :class:`ResolveError` and nothing is written. ``credentials`` come from a Docker config.
    """
    catalog, recipes = compose_recipes(ws.catalog, names)
    volatile = load_volatile(ws.catalog)
    with SourceFactory() as sources, WorkerPool(CANONICAL, workers=ws.workers) as pool:
        builds = build(recipes, pool=pool, store=ws.store, mirrors=catalog.config.mirrors, volatile=volatile,
                       sources=sources, progress=progress)
        engine = _engine_of(pool)
        renders = pool.rendered
    resolved: dict[ImageRef, ResolvedImage] = {}
    if ws.resolve:
        refs = sorted({i.ref for b in builds.values() for found in b.images.values() for i in found}, key=str)
        advance = progress.task("resolve images", len(refs))
        with RegistryClient(config=catalog.config.registries, credentials=credentials) as client:
            resolved = resolve_all(refs, client=client, progress=lambda _ref: advance())
        log.info("resolved %d distinct image references", len(resolved))
    files: dict[Path, bytes] = {}
    for recipe in recipes:
        lockfile = _lockfile(recipe, builds[recipe.name], engine=engine, volatile=volatile, resolved=resolved)
        files[lock_path(ws.lockdir, recipe.name)] = lockfile.to_bytes()
        for render in builds[recipe.name].renders.values():
            ws.cache_stream(render.stream)
    unchanged = tuple(sorted(p for p, data in files.items() if p.is_file() and p.read_bytes() == data))
    atomic_write_many(files)
    removed: list[Path] = []
    if not names and ws.lockdir.is_dir():
        for orphan in sorted(ws.lockdir.glob(f"*{LOCK_SUFFIX}")):
            if orphan not in files:
                orphan.unlink()
                removed.append(orphan)
    written = tuple(sorted(p for p in files if p not in unchanged))
    return LockResult(written=written, unchanged=unchanged, removed=tuple(removed),
                      recipes=tuple(recipes), renders=renders)


def _lockfile(recipe: Recipe, built: RecipeBuild, *, engine: Mapping[str, str], volatile: Sequence[Any],
              resolved: Mapping[ImageRef, ResolvedImage]) -> Lockfile:
    components = {
        c.name: build_component(
            c, chart=chart_record(built.charts[c.name]) if c.name in built.charts else None,
            render=built.renders[c.name], images=built.images[c.name], resolved=resolved,
        )
        for c in recipe.components
    }
    inputs = input_digests(recipe)
    return build_lockfile(recipe, inputs=inputs, engine=engine, components=components, volatile=volatile)


def render_recipe(ws: Workspace, name: str, *, variation: Variation = CANONICAL) -> RecipeBuild:
    """Render one recipe (for ``python -m pipeline render``)."""
    catalog, recipes = compose_recipes(ws.catalog, [name])
    with SourceFactory() as sources, WorkerPool(variation, workers=ws.workers) as pool:
        return build(recipes, pool=pool, store=ws.store, mirrors=catalog.config.mirrors,
                     volatile=load_volatile(ws.catalog), sources=sources)[name]


@dataclass(slots=True, kw_only=True)
class RecipeOutcome:
    """What reproduce found for one recipe: a status per check, and the divergences."""

    recipe: str
    components: int = 0
    files: int = 0
    images: int = 0
    checks: dict[str, str] = field(default_factory=dict)
    divergences: list[Divergence] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(status in {"ok", "skipped"} for status in self.checks.values())

    def fail(self, check: str, divergence: Divergence) -> None:
        self.checks[check] = "FAIL"
        self.divergences.append(divergence)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReproduceResult:
    outcomes: tuple[RecipeOutcome, ...]
    variations: Mapping[str, tuple[str, ...]]
    sandboxes: Mapping[str, Mapping[str, Any]]
    renders: int
    recipes: tuple[Recipe, ...] = ()
    #: images found in render A, by recipe (what the gates check)
    images: Mapping[str, tuple[FoundImage, ...]] = field(default_factory=dict)
    locks: Mapping[str, Lockfile] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.outcomes)


def _expected_charts(locks: Mapping[str, Lockfile], recipes: Sequence[Recipe]) -> dict[tuple[str, str], Digest]:
    out: dict[tuple[str, str], Digest] = {}
    for recipe in recipes:
        lock = locks.get(recipe.name)
        if lock is None:
            continue
        for component in recipe.components:
            chart = (lock.components.get(component.name) or {}).get("chart")
            # Local charts are re-packed from their tree (an input): staleness covers their edits.
            if chart and component.chart is not None and not component.chart.is_local:
                try:
                    out[(recipe.name, component.name)] = parse_digest(str(chart.get("archive")))
                except ValueError as exc:
                    raise LockError(f"lockfile of recipe '{recipe.name}': component '{component.name}' has "
                                    "an invalid chart archive digest",
                                    hint="regenerate it with 'nox -s lock'") from exc
    return out


def reproduce_catalog(ws: Workspace, names: Sequence[str] | None = None, *,
                      progress: Progress = SILENT) -> ReproduceResult:
    """Render every recipe twice under different sandboxes; check both against each other and the lock.

    Checks, in order, per recipe: lock integrity, engine identity, staleness (naming the changed
    input), render A = render B, render = lock, images = lock.
    """
    catalog, recipes = compose_recipes(ws.catalog, names)
    volatile = load_volatile(ws.catalog)
    outcomes = {r.name: RecipeOutcome(recipe=r.name, checks=dict.fromkeys(CHECKS, "skipped")) for r in recipes}
    locks: dict[str, Lockfile] = {}
    for recipe in recipes:
        outcome = outcomes[recipe.name]
        path = lock_path(ws.lockdir, recipe.name)
        shown = _display(path)
        if not path.is_file():
            outcome.fail("lock integrity", Divergence(
                recipe=recipe.name, check="lock integrity", summary=f"no lockfile at {shown}: run 'nox -s lock'"))
            continue
        try:
            locks[recipe.name] = read_lockfile(path, display=shown)
            outcome.checks["lock integrity"] = "ok"
        except GateError as exc:
            outcome.fail("lock integrity", Divergence(recipe=recipe.name, check="lock integrity",
                                                      summary=exc.message))
    expected = _expected_charts(locks, recipes)
    builds: dict[str, dict[str, RecipeBuild]] = {}
    sandboxes: dict[str, Mapping[str, Any]] = {}
    engine: dict[str, str] = {}
    rendered = 0
    discovered: dict[Any, Any] = {}
    with SourceFactory() as sources, contextlib.ExitStack() as stack:
        pools = [stack.enter_context(WorkerPool(v, workers=ws.workers)) for v in (VARIANT_A, VARIANT_B)]
        pools[1].spawn()  # B's interpreters start while A renders
        for pool in pools:
            builds[pool.variation.name] = build(recipes, pool=pool, store=ws.store, mirrors=catalog.config.mirrors,
                                                volatile=volatile, expected=expected, discovered=discovered,
                                                sources=sources, progress=progress)
            engine = _engine_of(pool)
            sandboxes[pool.variation.name] = {k: v for k, v in pool.hellos[0].items() if k not in {"pid", "engine"}}
            rendered += pool.rendered
    for recipe in recipes:
        _check_recipe(recipe, outcomes[recipe.name], locks.get(recipe.name), builds, engine=engine, ws=ws)
    return ReproduceResult(
        outcomes=tuple(outcomes[r.name] for r in recipes),
        variations={v.name: v.describe() for v in (VARIANT_A, VARIANT_B)},
        sandboxes=sandboxes, renders=rendered, recipes=tuple(recipes), locks=locks,
        images={r.name: tuple(i for c in r.components for i in builds["A"][r.name].images[c.name])
                for r in recipes},
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class QualifyResult:
    reproduce: ReproduceResult
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        return self.reproduce.ok and not self.findings


def qualify_catalog(ws: Workspace, names: Sequence[str] | None = None, *,
                    progress: Progress = SILENT) -> QualifyResult:
    """Every gate in one run: reproduce, then the pinning gates over its renders and the locks."""
    result = reproduce_catalog(ws, names, progress=progress)
    locks = {_display(lock_path(ws.lockdir, name)): lock.body for name, lock in result.locks.items()}
    findings = run_gates(ws.catalog, recipes=result.recipes, images=result.images, locks=locks)
    return QualifyResult(reproduce=result, findings=tuple(findings))


def _display(path: Path) -> str:
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


def _check_recipe(
    recipe: Recipe, outcome: RecipeOutcome, lock: Lockfile | None, builds: Mapping[str, Mapping[str, RecipeBuild]],
    *, engine: Mapping[str, str], ws: Workspace,
) -> None:
    a, b = builds["A"][recipe.name], builds["B"][recipe.name]
    outcome.components = len(recipe.components)
    outcome.files = sum(len(r.files) for r in a.renders.values())
    outcome.images = len({str(i.ref) for imgs in a.images.values() for i in imgs})
    if lock is not None:
        _check_engine(recipe, outcome, lock, engine)
        _check_staleness(recipe, outcome, lock)
    outcome.checks["A = B"] = "ok"
    for component in recipe.components:
        name = component.name
        chart = a.charts[name].data if name in a.charts else None
        if a.renders[name].stream != b.renders[name].stream:  # explain only what diverged
            for divergence in compare_renders(recipe=recipe.name, component=name, check="A = B",
                                              first=a.renders[name], second=b.renders[name], labels=("A", "B"),
                                              chart=chart, in_tree=_in_tree(recipe, component)):
                outcome.fail("A = B", divergence)
        archive_a = a.charts[name].archive if name in a.charts else None
        archive_b = b.charts[name].archive if name in b.charts else None
        if archive_a != archive_b:
            outcome.fail("A = B", Divergence(recipe=recipe.name, check="A = B", component=name,
                                             summary="the chart archive differs between the two fetches"))
    if lock is None or outcome.checks["staleness"] == "FAIL":
        return
    outcome.checks["render = lock"] = "ok"
    outcome.checks["images = lock"] = "ok"
    locked_components = lock.components
    for name in sorted(set(locked_components) - {c.name for c in recipe.components}):
        outcome.fail("render = lock", Divergence(recipe=recipe.name, check="render = lock", component=name,
                                                 summary="component is in the lock but not in the recipe"))
    for component in recipe.components:
        name = component.name
        locked = locked_components.get(name)
        if locked is None:
            outcome.fail("render = lock", Divergence(recipe=recipe.name, check="render = lock", component=name,
                                                     summary="component is in the recipe but not in the lock"))
            continue
        locked_chart = locked.get("chart")
        if name in a.charts and (locked_chart or {}).get("archive") != a.charts[name].archive:
            outcome.fail("render = lock", Divergence(
                recipe=recipe.name, check="render = lock", component=name,
                summary=f"chart archive {a.charts[name].archive} ≠ locked {(locked_chart or {}).get('archive')}"))
        stream_digest = str((locked.get("render") or {}).get("stream", ""))
        if sha256(a.renders[name].stream) != stream_digest:  # the cached lock bytes are read only to explain
            for divergence in compare_with_lock(recipe=recipe.name, component=name, render=a.renders[name],
                                                locked=locked, locked_stream=ws.cached_stream(stream_digest),
                                                chart=a.charts[name].data if name in a.charts else None,
                                                in_tree=_in_tree(recipe, component)):
                outcome.fail("render = lock", divergence)
        found = sorted({str(i.ref) for i in a.images[name]})
        locked_refs = sorted(str(i.get("ref")) for i in locked.get("images") or [])
        for divergence in compare_images(recipe=recipe.name, component=name, found=found, locked=locked_refs):
            outcome.fail("images = lock", divergence)


def _in_tree(recipe: Recipe, component: Component) -> dict[str, bytes]:
    """The component's in-tree manifest templates, by catalog path (to name the cause of a divergence)."""
    return {p: (recipe.catalog / p).read_bytes() for p in (*component.pre_manifest_files, *component.manifest_files)}


def _check_engine(recipe: Recipe, outcome: RecipeOutcome, lock: Lockfile, engine: Mapping[str, str]) -> None:
    locked = {k: lock.engine.get(k) for k in engine}
    if locked == dict(engine):
        outcome.checks["engine"] = "ok"
        return
    changed = ", ".join(f"{k}: lock {locked.get(k)!r} ≠ now {v!r}" for k, v in engine.items() if locked.get(k) != v)
    outcome.fail("engine", Divergence(recipe=recipe.name, check="engine",
                                      summary=f"the lock was made by another engine ({changed})"))


def _check_staleness(recipe: Recipe, outcome: RecipeOutcome, lock: Lockfile) -> None:
    messages = stale_inputs(recipe, lock)
    if not messages:
        outcome.checks["staleness"] = "ok"
        return
    for message in messages:
        outcome.fail("staleness", Divergence(recipe=recipe.name, check="staleness",
                                             summary=message + ": the lock is stale; run 'nox -s lock' and review"))


def stale_inputs(recipe: Recipe, lock: Lockfile) -> list[str]:
    """One message per input that changed since ``lock`` was made (empty: the lock is fresh)."""
    current = input_digests(recipe)
    locked: Mapping[str, str] = lock.inputs.get("files") or {}
    changed = sorted(p for p in set(current) & set(locked) if current[p] != locked[p])
    added = sorted(set(current) - set(locked))
    removed = sorted(set(locked) - set(current))
    options = {"kubeVersion": recipe.kube_version, "apiVersions": list(recipe.api_versions)}
    messages = [f"input {p} changed since the lock was made" for p in changed]
    messages += [f"input {p} is new since the lock was made" for p in added]
    messages += [f"input {p} was used by the lock but is no longer" for p in removed]
    if dict(lock.inputs.get("options") or {}) != options:
        messages.append(f"engine options changed: lock {lock.inputs.get('options')} ≠ now {options}")
    return messages


def fresh_locks(ws: Workspace, names: Sequence[str] | None = None) -> list[Lockfile]:
    """Every recipe's lockfile, verified and fresh, for stages that publish from locks (BOM, mirror list).

    A missing or unreadable lock is a :class:`LockError`, a tampered one an :class:`IntegrityError`, a
    stale one a :class:`StaleLockError` naming the changed inputs: nothing is published from them.
    """
    _, recipes = compose_recipes(ws.catalog, names)
    locks: list[Lockfile] = []
    stale: list[str] = []
    for recipe in recipes:
        path = lock_path(ws.lockdir, recipe.name)
        lock = read_lockfile(path, display=_display(path))
        stale += [f"recipe '{recipe.name}': {m}" for m in stale_inputs(recipe, lock)]
        locks.append(lock)
    if stale:
        raise StaleLockError("the locks are stale, nothing was written:\n  " + "\n  ".join(stale),
                             hint="run 'nox -s lock', review the diff of lockfiles/, then publish again")
    return locks


def drift_catalog(ws: Workspace, names: Sequence[str] | None = None, *,
                  credentials: DockerConfig | None = None) -> DriftReport:
    """Re-check every locked image tag and chart version against its source (the locks must be fresh)."""
    # Imported here: drift reads locks through the BOM's typed view, whose CycloneDX schema validator
    # costs a second at import; reproduce and lock must not pay it.
    from .drift import check_drift
    locks = fresh_locks(ws, names)
    config = load_catalog(ws.catalog).config
    with RegistryClient(config=config.registries, credentials=credentials) as client, \
            SourceFactory(oci=OciChartSource(client=client)) as charts:
        return check_drift(locks, client=client, charts=charts, catalog=ws.catalog, mirrors=config.mirrors)
