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
import dataclasses
import difflib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .build import ChartProblem, RecipeBuild, build, chart_record, fetch_charts, pin_location
from .charts import ChartStore, SourceFactory, apply_mirrors, redact_url
from .errors import DivergenceError, LockError, PinError, PipelineError, UsageError
from .gates import Finding, ghost_finding, run_gates
from .images import DiscoveryCache, FoundImage, ImageRef, discover
from .lock import (
    CHECKS,
    LOCK_CHECKS,
    PinnedMemo,
    build_component,
    build_lockfile,
    check_lock,
    complete_lockfile,
    display_path,
    engine_mismatch,
    ghost_locks,
    input_digests,
    verified_locks,
)
from .lockfile import LOCK_SUFFIX, LockedComponent, Lockfile, load, lock_path
from .pin import PinnedRender, PinRules, load_pin_rules, pin_render, read_stream
from .progress import SILENT, Progress
from .recipes import Catalog, Component, ComponentType, Recipe, catalog_recipes, compose, load_catalog, load_environment
from .registry import DockerConfig, RegistryConfig, ResolvedImage, resolve_all
from .relock import LockCache
from .render.cache import CachedRenderer, RenderCache
from .render.identity import ENGINE_NAME, installed_engine, library_identity, pinned_engines, pinned_helm_cli
from .render.job import ComponentRender, RenderDigests, assemble, segments_of
from .render.pool import WorkerPool
from .render.sandbox import CANONICAL, VARIANT_A, VARIANT_B, Variation
from .reproduce import Divergence, compare_images, compare_renders, compare_with_lock
from .vocabulary.digest import Digest, sha256
from .vocabulary.files import plan_sync, sync_tree
from .vocabulary.store import ContentStore
from .volatile import load_volatile

if TYPE_CHECKING:
    from .diff import LockDiff
    from .drift import DriftReport

__all__ = [
    "CHECKS",
    "DiffResult",
    "LockResult",
    "NeededChart",
    "PinnedRecipe",
    "PublishedCheck",
    "PublishedPaths",
    "QualifyResult",
    "RecipeOutcome",
    "ReproduceResult",
    "Workspace",
    "catalog_charts",
    "check_published",
    "compose_recipes",
    "diff_catalog",
    "drift_catalog",
    "fresh_locks",
    "load_workspace_catalog",
    "lock_catalog",
    "pinned_recipe",
    "post_render",
    "qualify_catalog",
    "render_recipe",
    "reproduce_catalog",
    "resolve_locks",
]

log = logging.getLogger("pipeline")


@dataclass(frozen=True, slots=True, kw_only=True)
class Workspace:
    """Where a run reads and writes: catalog, lockfiles, cache (charts and rendered streams)."""

    catalog: Path
    lockdir: Path
    cache: Path
    workers: int | None = None
    #: what renders: ``helm-python-sdk`` (in-process, default) or ``helm-cli`` (the pinned helm binary)
    engine: str = ENGINE_NAME
    #: ``lock`` asks registries for every image's digest; ``False`` keeps only reference digests
    resolve: bool = True
    #: the environment file (mirrors, registries, credentials) merged over the catalog's ``pipeline.yaml``
    #: (the CLI finds it: ``--config``, ``$PIPELINE_CONFIG``, the user file); never a lock input
    environment: Path | None = None
    #: ``--registry-timeout``: seconds for all registry requests about one image (``None``: pipeline.yaml's)
    registry_timeout: float | None = None

    def registries(self, config: RegistryConfig) -> RegistryConfig:
        """``config`` with the command line's registry timeout applied."""
        return config if self.registry_timeout is None else config.with_timeout(self.registry_timeout)

    @property
    def store(self) -> ChartStore:
        return ChartStore(self.cache / "charts")

    @property
    def renders(self) -> ContentStore:
        """Rendered streams by digest, so ``render = lock`` can show a real diff of what changed."""
        return ContentStore(self.cache / "renders", name="render cache")

    def cache_stream(self, stream: bytes) -> None:
        self.renders.put(stream)

    def cached_stream(self, digest: Digest) -> bytes | None:
        return self.renders.get(digest)


def load_workspace_catalog(catalog_dir: Path, environment: Path | None = None) -> Catalog:
    """The catalog, its configuration merged with the environment file (when there is one)."""
    catalog = load_catalog(catalog_dir)
    if environment is None:
        return catalog
    return dataclasses.replace(catalog, config=catalog.config.with_environment(load_environment(environment)))


def compose_recipes(catalog_dir: Path, names: Sequence[str] | None = None, *,
                    environment: Path | None = None, loaded: Catalog | None = None) -> tuple[Catalog, list[Recipe]]:
    """Load the catalog (with the environment file merged over its configuration) and compose its
    recipes (all, or the ``names`` asked for). ``loaded``: the catalog as this run already loaded
    it (:func:`recipe_names`), not read again."""
    catalog, queries = _recipe_queries(catalog_dir, names, environment=environment, loaded=loaded)
    return catalog, [compose(catalog, q) for q in queries]


def recipe_names(catalog_dir: Path, names: Sequence[str] | None = None, *,
                 environment: Path | None = None) -> tuple[Catalog, list[str]]:
    """The catalog and the names of its recipes (all, or the ``names`` asked for, each checked to
    exist), without composing them: what a plan needs to name its outputs."""
    catalog, queries = _recipe_queries(catalog_dir, names, environment=environment)
    return catalog, [q.name for q in queries]


def _recipe_queries(catalog_dir: Path, names: Sequence[str] | None, *, environment: Path | None,
                    loaded: Catalog | None = None) -> tuple[Catalog, tuple[Any, ...]]:
    catalog = load_workspace_catalog(catalog_dir, environment) if loaded is None else loaded
    queries = tuple(catalog_recipes(catalog))
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
    return catalog, queries


@dataclass(frozen=True, slots=True, kw_only=True)
class NeededChart:
    """A chart the catalog needs: the pin as written, where it is chosen, and the recipes that use it."""

    repository: str
    name: str
    version: str
    #: the mirror the environment or the catalog configures for it (``None``: fetched from upstream)
    served_from: str | None
    components: tuple[str, ...]
    pinned_at: tuple[str, ...]
    recipes: tuple[str, ...]


def catalog_charts(ws: Workspace, names: Sequence[str] | None = None) -> list[NeededChart]:
    """Every remote chart the catalog's recipes need (local charts live in the catalog), sorted by
    repository, name and version; nothing is fetched, so mirrors can be prepared before a first lock."""
    catalog, recipes = compose_recipes(ws.catalog, names, environment=ws.environment)
    found: dict[tuple[str, str, str], dict[str, set[str]]] = {}
    for recipe in recipes:
        for component in recipe.components:
            chart = component.chart
            if chart is None or chart.is_local or component.type is not ComponentType.HELM:
                continue
            entry = found.setdefault((chart.repository, chart.name, chart.version),
                                     {"components": set(), "pinned_at": set(), "recipes": set()})
            entry["components"].add(component.name)
            entry["recipes"].add(recipe.name)
            where = pin_location(recipe, component)
            if where is not None:
                entry["pinned_at"].add(f"{where[0]}:{where[1]}" if where[1] is not None else where[0])
    out = []
    for (repository, name, version), entry in sorted(found.items()):
        mirror = apply_mirrors(repository, catalog.config.mirrors)
        out.append(NeededChart(repository=repository, name=name, version=version,
                               served_from=redact_url(mirror) if mirror != repository else None,
                               components=tuple(sorted(entry["components"])),
                               pinned_at=tuple(sorted(entry["pinned_at"])), recipes=tuple(sorted(entry["recipes"]))))
    return out


def _selected_engine(name: str, *, cache: Path | None = None) -> dict[str, str]:
    """The identity of the engine ``--engine`` selects, as the render cache keys its entries
    (``cache``: the run's cache directory, where the library's digest is remembered across runs)."""
    if name == ENGINE_NAME:
        return installed_engine(memo=None if cache is None else cache / "engine-digest")
    pinned = pinned_helm_cli()
    if pinned is None:
        raise PipelineError(f"--engine {name}: no helm binary is pinned in tools/go/tools.json",
                            hint="use the default engine, or record the tool: 'python3 tools/go/build.py --record'")
    return pinned


def _render_limits(catalog: Catalog) -> dict[str, Any]:
    """``limits.render`` of the catalog's pipeline.yaml, as :class:`WorkerPool` arguments."""
    limits = catalog.config.limits.render
    return {"max_seconds": limits.max_seconds, "max_memory_mib": limits.max_memory_mib}


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
    #: recipes not locked (``keep_going``) because a chart they need could not be fetched; their old
    #: lockfiles are left as they were
    skipped: tuple[str, ...] = ()
    problems: tuple[ChartProblem, ...] = ()
    #: distinct render jobs served by the render cache
    cache_hits: int = 0
    #: digest-pinned references whose resolution came from the previous locks
    reused_digests: int = 0
    #: ``lock --check``: ``written``/``removed`` are what would change; nothing was written
    checked_only: bool = False
    #: recipes whose lock came from the lock cache (same inputs, charts, engine and code): not rendered
    reused_locks: int = 0
    #: component renders whose images came from the discovery cache (not parsed again)
    discovery_hits: int = 0


def lock_catalog(
    ws: Workspace, names: Sequence[str] | None = None, *, credentials: DockerConfig | None = None,
    progress: Progress = SILENT, keep_going: bool = False, check: bool = False, loaded: Catalog | None = None,
) -> LockResult:
    """Compose, fetch, render (canonical sandbox), resolve every image, write every lockfile atomically.

    With ``ws.resolve`` (the default) every image reference is resolved to its digest (and its
    per-platform digests) from its registry or a configured mirror; a registry that cannot answer
    is a :class:`ResolveError` and nothing is written. ``credentials`` come from a Docker config.
    Every chart is tried first: those that cannot be fetched raise one error naming them all; with
    ``keep_going`` the recipes that need them are skipped (``LockResult.skipped``, their lockfiles
    untouched) and the others locked.

    Incremental: a recipe whose inputs, fetched charts, engine and code match a lock-cache entry is
    not rendered or rediscovered (:class:`~pipeline.relock.LockCache`); a render job whose content
    key (and engine) is in the render cache is not rendered again, and a render already seen is not
    rediscovered (:class:`~pipeline.images.DiscoveryCache`); references pinned by digest take their
    resolution from the previous locks (tags are always asked); only lockfiles whose bytes change are
    rewritten. A lock-cache entry is keyed by this run's registry answers for the recipe's images
    too, and a miss assembles the lock exactly as a cold lock does, so a relock writes the bytes of
    a cold lock. With ``check`` nothing is written: the result says which lockfiles would change.
    ``loaded``: the catalog as this run already loaded it (the local backend's plan).
    """
    catalog, recipes = compose_recipes(ws.catalog, names, environment=ws.environment, loaded=loaded)
    volatile = load_volatile(ws.catalog)
    problems: list[ChartProblem] | None = [] if keep_going else None
    selected = _selected_engine(ws.engine, cache=ws.cache)
    cache = RenderCache(ws.cache / "render-jobs", engine=selected)
    lock_cache = LockCache(ws.cache / "locks", engine=selected)
    limits = _render_limits(catalog)
    with SourceFactory() as sources, WorkerPool(CANONICAL, workers=ws.workers, engine=ws.engine, **limits) as pool:
        charts = fetch_charts(recipes, store=ws.store, mirrors=catalog.config.mirrors, sources=sources,
                              walk_order=pool.variation.walk_order, problems=problems)
        # A recipe whose inputs, charts (as fetched now), engine and code are those of a cached lock,
        # and whose images this run resolved as then, is neither rendered nor rediscovered: its lock
        # bytes are reused (pipeline/relock.py).
        listings: dict[tuple[str, ...], dict[str, Digest]] = {}
        seen: dict[Path, Digest] = {}
        inputs = {r.name: input_digests(r, listings=listings, seen=seen) for r in recipes if r.name in charts}
        keys = {r.name: lock_cache.key(r, inputs=inputs[r.name], volatile=[v.as_dict() for v in volatile],
                                       charts={n: chart_record(c).as_json() for n, c in charts[r.name].items()})
                for r in recipes if r.name in charts}
        locked = [r for r in recipes if r.name in keys]
        refs: dict[str, list[ImageRef]] = {}
        for name, key in keys.items():
            if (known_refs := lock_cache.refs(key)) is not None:
                refs[name] = known_refs
        # Jobs whose content key is cached are not rendered; workers start only for the others.
        renderer = CachedRenderer(pool, cache, engine_of=lambda: _engine_of(pool))
        discovered = DiscoveryCache(ws.cache / "discovery")
        digests = RenderDigests()
        builds: dict[str, RecipeBuild] = {}

        def build_these(these: Sequence[Recipe]) -> None:
            if these:
                builds.update(build(these, pool=renderer, store=ws.store, mirrors=catalog.config.mirrors,
                                    volatile=volatile, sources=sources, progress=progress, charts=charts,
                                    discovered=discovered, digests=digests))

        build_these([r for r in locked if r.name not in refs])
        for name, built in builds.items():
            refs[name] = sorted({i.ref for found in built.images.values() for i in found}, key=str)
            lock_cache.put_refs(keys[name], refs[name])
        resolved: dict[ImageRef, ResolvedImage] = {}
        reused = 0
        if ws.resolve:
            wanted = sorted({ref for some in refs.values() for ref in some}, key=str)
            known = _previous_resolutions(ws.lockdir)
            resolved = {ref: known[ref] for ref in wanted if ref in known}
            reused = len(resolved)
            ask = [ref for ref in wanted if ref not in resolved]
            advance = progress.task("resolve images", len(ask))
            from .registry import RegistryClient  # here: httpx slows the start of commands without network
            with RegistryClient(config=ws.registries(catalog.config.registries), credentials=credentials) as client:
                resolved.update(resolve_all(ask, client=client, progress=lambda _ref: advance()))
            log.info("resolved %d distinct image references (%d digest-pinned ones taken from the previous locks)",
                     len(resolved), reused)
        finals = {name: lock_cache.answered(keys[name], {ref: resolved.get(ref) for ref in refs[name]})
                  for name in keys}
        hits = {name: raw for name, key in finals.items() if name not in builds
                and (raw := lock_cache.get(key, lock_path(ws.lockdir, name))) is not None}
        build_these([r for r in locked if r.name not in hits and r.name not in builds])
        if len(renderer.engines) > 1:
            raise PipelineError(f"render cache entries and workers report different engines: {renderer.engines}",
                                hint=f"remove the render cache ({ws.cache / 'render-jobs'}) and lock again")
        engine = (renderer.engines[0] if renderer.engines else _engine_of(pool)) if builds else None
        renders = pool.rendered
    files: dict[Path, bytes] = {}
    skipped = tuple(r.name for r in recipes if r.name not in keys)
    kept = {lock_path(ws.lockdir, name) for name in skipped}
    rules = load_pin_rules(ws.catalog) if len(hits) < len(locked) else None
    pinned: PinnedMemo = {}
    stored: set[Digest] = set()
    for recipe in locked:
        raw = hits.get(recipe.name)
        if raw is None:
            assert engine is not None
            lockfile = _lockfile(recipe, builds[recipe.name], engine=engine, volatile=volatile, resolved=resolved,
                                 inputs=inputs[recipe.name], rules=rules, digests=digests, pinned=pinned)
            raw = lockfile.raw or lockfile.dumps()
            lock_cache.put(finals[recipe.name], raw)
            for render in builds[recipe.name].renders.values():
                if (digest := digests.stream(render)) not in stored:  # each distinct stream once per run
                    stored.add(digest)
                    ws.cache_stream(render.stream)
        files[lock_path(ws.lockdir, recipe.name)] = raw
    generated = () if names else [p for p in ws.lockdir.glob(f"*{LOCK_SUFFIX}") if p not in kept]
    # A lock-cache hit is the lockfile on disk: it is unchanged, and need not be read again.
    on_disk = {lock_path(ws.lockdir, name) for name in hits}
    synced = (plan_sync if check else sync_tree)(files, generated=generated, unchanged=on_disk)
    lock_cache.save()
    return LockResult(written=synced.written, unchanged=synced.unchanged, removed=synced.removed,
                      recipes=tuple(locked), renders=renders, skipped=skipped, problems=tuple(problems or ()),
                      cache_hits=renderer.hits, reused_digests=reused, checked_only=check,
                      reused_locks=len(hits), discovery_hits=discovered.hits)


def _previous_resolutions(lockdir: Path) -> dict[ImageRef, ResolvedImage]:
    """What the previous locks recorded for references **pinned by digest**: the digest is the
    content, so its media type and per-platform digests cannot have changed, and the registry need not
    be asked again. Tags are always asked: a tag can move at any time, and a lock that reused an old
    answer would hide it. Locks that fail to load (tampered, another format) are ignored."""
    out: dict[ImageRef, ResolvedImage] = {}
    for path in sorted(lockdir.glob(f"*{LOCK_SUFFIX}")) if lockdir.is_dir() else []:
        try:
            lock = load(path)
        except PipelineError:
            continue
        for _, image in lock.images():
            resolved = image.as_resolved()
            if resolved is not None and image.image.pinned and image.digest == image.image.digest:
                out[image.image] = resolved
    return out


def resolve_locks(ws: Workspace, locks: Sequence[Lockfile], *,
                  credentials: DockerConfig | None = None) -> list[Lockfile]:
    """The resolve step of ``lock`` for locks made elsewhere with ``--no-resolve`` (in containers).

    Asks the registries (the catalog's registry configuration, ``credentials``) for every image of
    ``locks`` once, and completes each lock as :func:`lock_catalog` would have written it: the same
    bytes. A registry that cannot answer is a :class:`ResolveError`, as with a local lock.
    """
    if not ws.resolve:
        return list(locks)
    from .registry import RegistryClient  # here: httpx slows the start of commands without network
    catalog = load_catalog(ws.catalog)
    refs = sorted({i.image for lock in locks for c in lock.components.values() for i in c.images}, key=str)
    with RegistryClient(config=catalog.config.registries, credentials=credentials) as client:
        resolved = resolve_all(refs, client=client)
    log.info("resolved %d distinct image references on the host", len(resolved))
    rules = load_pin_rules(ws.catalog)
    _, recipes = compose_recipes(ws.catalog, [lock.name for lock in locks], environment=ws.environment)
    return [complete_lockfile(lock, resolved, pinning=_pinning(ws, lock, recipe), rules=rules)
            for lock, recipe in zip(locks, recipes, strict=True)]


def _pinning(ws: Workspace, lock: Lockfile, recipe: Recipe) -> dict[str, tuple[ComponentRender, list[FoundImage]]]:
    """Each component's render and the images discovered in it: what the pinned render needs, which a
    lock step without the network could not compute. The renders come from the stream cache when the
    container wrote into it (a mounted cache), else they are rendered here; either way each must be
    the stream the lock records, or the lock is refused."""
    streams = {name: ws.cached_stream(c.render.stream) for name, c in lock.components.items()}
    renders: dict[str, ComponentRender] = {name: assemble(segments_of(stream))
                                           for name, stream in streams.items() if stream is not None}
    if len(renders) < len(lock.components):
        renders = dict(render_recipe(ws, lock.name).renders)
    out: dict[str, tuple[ComponentRender, list[FoundImage]]] = {}
    for component in recipe.components:
        locked = lock.components.get(component.name)
        render = renders.get(component.name)
        if locked is None or render is None or sha256(render.stream) != locked.render.stream:
            raise LockError(f"component {component.name!r} of {lock.name!r} renders on this host other bytes than "
                            f"the lock the container made records ({locked.render.stream if locked else 'none'})",
                            hint="run 'nox -s reproduce' to see the divergence, or lock on the local backend")
        out[component.name] = (render, list(discover(render.stream, component=component, recipe=lock.name).images))
    return out


def _lockfile(recipe: Recipe, built: RecipeBuild, *, engine: Mapping[str, str], volatile: Sequence[Any],
              resolved: Mapping[ImageRef, ResolvedImage], inputs: Mapping[str, Digest] | None = None,
              rules: PinRules | None = None, digests: RenderDigests | None = None,
              pinned: PinnedMemo | None = None) -> Lockfile:
    """``digests`` and ``pinned``: memos shared by the recipes of one run (see :func:`build_component`)."""
    rules = load_pin_rules(recipe.catalog) if rules is None else rules
    components = [
        build_component(
            c, chart=chart_record(built.charts[c.name]) if c.name in built.charts else None,
            render=built.renders[c.name], images=built.images[c.name], resolved=resolved, rules=rules,
            digests=digests, pinned=pinned,
        )
        for c in recipe.components
    ]
    inputs = input_digests(recipe) if inputs is None else inputs
    return build_lockfile(recipe, inputs=inputs, engine=engine, components=components, volatile=volatile)


def render_recipe(ws: Workspace, name: str, *, variation: Variation = CANONICAL) -> RecipeBuild:
    """Render one recipe (for ``python -m pipeline render``)."""
    catalog, recipes = compose_recipes(ws.catalog, [name], environment=ws.environment)
    limits = _render_limits(catalog)
    with SourceFactory() as sources, WorkerPool(variation, workers=ws.workers, engine=ws.engine, **limits) as pool:
        return build(recipes, pool=pool, store=ws.store, mirrors=catalog.config.mirrors,
                     volatile=load_volatile(ws.catalog), sources=sources)[name]


@dataclass(frozen=True, slots=True, kw_only=True)
class PinnedRecipe:
    """``render --pinned``: each component's pinned render, in deployment order, and the lock it used."""

    recipe: Recipe
    lock: Lockfile
    components: tuple[tuple[str, PinnedRender], ...]


def _digests(locked: LockedComponent) -> dict[ImageRef, Digest | None]:
    return {image.image: image.digest for image in locked.images}


def pinned_recipe(ws: Workspace, name: str) -> PinnedRecipe:
    """Render one recipe and write its lock's digests into it (``render --pinned``).

    The lock must be verified and fresh (:func:`fresh_locks`); the digest of each component's
    pinned stream is checked against the lock's ``render.pinned``, so what is printed is what the
    lock recorded. Errors: :class:`~pipeline.errors.PinError` (an image without a locked digest, a
    kind without a digest-field entry, an unpinnable field without an exemption);
    :class:`~pipeline.errors.DivergenceError` when the pinned bytes differ from the lock's record.
    """
    lock = fresh_locks(ws, [name])[0]
    built = render_recipe(ws, name)
    rules = load_pin_rules(ws.catalog)
    out: list[tuple[str, PinnedRender]] = []
    for component in built.recipe.components:
        locked = lock.components[component.name]
        pinned = pin_render(built.renders[component.name], built.images[component.name], digests=_digests(locked),
                            component=component.name, rules=rules)
        if locked.render.pinned is not None and sha256(pinned.render.stream) != locked.render.pinned:
            raise DivergenceError(f"recipe '{name}': component '{component.name}': the pinned render is "
                                  f"{sha256(pinned.render.stream)}, the lock records {locked.render.pinned}",
                                  hint="run 'nox -s reproduce' to see what changed, then 'nox -s lock'")
        out.append((component.name, pinned))
    return PinnedRecipe(recipe=built.recipe, lock=lock, components=tuple(out))


@dataclass(frozen=True, slots=True, kw_only=True)
class _Bare:
    """A component as post-render knows it: a name (origins do not matter for pinning)."""

    name: str
    values: Mapping[str, Any] = field(default_factory=dict)
    manifest_files: tuple[str, ...] = ()
    pre_manifest_files: tuple[str, ...] = ()


def post_render(manifests: bytes, *, lockfile: Path, component: str, catalog: Path) -> PinnedRender:
    """Helm post-renderer: ``manifests`` (Helm's output) pinned with ``lockfile``'s digests for ``component``.

    The input is read as it is (:func:`pipeline.pin.read_stream`): the render is Helm's bytes, so
    Helm's output of a chart gives the bytes of ``render --pinned`` for that component, and nothing
    but the image scalars changes. The lock is integrity-checked; ``catalog`` gives the
    digest-field table and the exemptions. Every image found must be one the lock knows for the
    component: another is a :class:`~pipeline.errors.PinError` (exit 2), and nothing is written.
    """
    lock = load(lockfile, display=display_path(lockfile))
    locked = lock.components.get(component)
    if locked is None:
        raise UsageError(f"lockfile {display_path(lockfile)} has no component {component!r}",
                         hint=f"its components: {', '.join(sorted(lock.components))}")
    prefix, render = read_stream(manifests)
    found = discover(render.stream, component=_Bare(name=component), recipe=lock.name).images
    known = {image.image for image in locked.images}
    unknown = [f for f in found if f.ref not in known]
    if unknown:
        first = unknown[0]
        raise PinError(f"image '{first.ref}' at {first.found_at} is not in the lock of component '{component}' "
                       f"({display_path(lockfile)})"
                       + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""),
                       hint="deploy the chart with the values the recipe locked, or re-lock the recipe "
                            "('nox -s lock') after changing it")
    pinned = pin_render(render, found, digests=_digests(locked), component=component, rules=load_pin_rules(catalog))
    if not prefix:
        return pinned
    return dataclasses.replace(pinned, render=ComponentRender(stream=prefix + pinned.render.stream,
                                                              files=pinned.render.files))


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
            locked = lock.components.get(component.name)
            # Local charts are re-packed from their tree (an input): staleness covers their edits.
            if locked is not None and locked.chart is not None and component.chart is not None \
                    and not component.chart.is_local:
                out[(recipe.name, component.name)] = locked.chart.archive
    return out


def reproduce_catalog(ws: Workspace, names: Sequence[str] | None = None, *,
                      progress: Progress = SILENT, loaded: Catalog | None = None) -> ReproduceResult:
    """Render every recipe twice under different sandboxes; check both against each other and the lock.

    Checks, in order, per recipe: lock integrity, engine identity, staleness (naming the changed
    input), render A = render B, render = lock, images = lock. ``loaded``: as for :func:`lock_catalog`.
    """
    catalog, recipes = compose_recipes(ws.catalog, names, environment=ws.environment, loaded=loaded)
    volatile = load_volatile(ws.catalog)
    outcomes = {r.name: RecipeOutcome(recipe=r.name, checks=dict.fromkeys(CHECKS, "skipped")) for r in recipes}
    locks: dict[str, Lockfile] = {}
    checked = {}
    for recipe in recipes:
        # The engine check waits for the workers' own report (below): here integrity and staleness.
        checked[recipe.name] = check_lock(recipe, ws.lockdir, engine={})
        lock = checked[recipe.name].lock
        if lock is not None and "lock integrity" not in checked[recipe.name].failures:
            locks[recipe.name] = lock
    expected = _expected_charts(locks, recipes)
    builds: dict[str, dict[str, RecipeBuild]] = {}
    sandboxes: dict[str, Mapping[str, Any]] = {}
    engine: dict[str, str] = {}
    rendered = 0
    discovered: dict[Any, Any] = {}
    with SourceFactory() as sources, contextlib.ExitStack() as stack:
        pools = [stack.enter_context(WorkerPool(v, workers=ws.workers, engine=ws.engine, **_render_limits(catalog)))
                 for v in (VARIANT_A, VARIANT_B)]
        pools[1].spawn()  # B's interpreters start while A renders
        for pool in pools:
            builds[pool.variation.name] = build(recipes, pool=pool, store=ws.store, mirrors=catalog.config.mirrors,
                                                volatile=volatile, expected=expected, discovered=discovered,
                                                sources=sources, progress=progress)
            engine = _engine_of(pool)
            sandboxes[pool.variation.name] = {k: v for k, v in pool.hellos[0].items() if k not in {"pid", "engine"}}
            rendered += pool.rendered
    for recipe in recipes:
        outcome = outcomes[recipe.name]
        lock = locks.get(recipe.name)
        failures = dict(checked[recipe.name].failures)
        if lock is not None:
            failures.pop("engine", None)
            if (mismatch := engine_mismatch(lock, engine, equivalent=pinned_engines())) is not None:
                failures["engine"] = [mismatch]
        for check in LOCK_CHECKS:
            if check in failures:
                for message in failures[check]:
                    hint = ": the lock is stale; run 'nox -s lock' and review" if check == "staleness" else ""
                    outcome.fail(check, Divergence(recipe=recipe.name, check=check, summary=message + hint))
            elif lock is not None:
                outcome.checks[check] = "ok"
        _check_recipe(recipe, outcome, lock, builds, ws=ws)
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
    locks = {display_path(lock_path(ws.lockdir, name)): lock for name, lock in result.locks.items()}
    findings = run_gates(ws.catalog, recipes=result.recipes, images=result.images, locks=locks)
    if not names:
        findings += [ghost_finding(display_path(p)) for p in ghost_locks(ws.lockdir, [r.name for r in result.recipes])]
    return QualifyResult(reproduce=result, findings=tuple(findings))


def _check_recipe(
    recipe: Recipe, outcome: RecipeOutcome, lock: Lockfile | None, builds: Mapping[str, Mapping[str, RecipeBuild]],
    *, ws: Workspace,
) -> None:
    a, b = builds["A"][recipe.name], builds["B"][recipe.name]
    outcome.components = len(recipe.components)
    outcome.files = sum(len(r.files) for r in a.renders.values())
    outcome.images = len({str(i.ref) for imgs in a.images.values() for i in imgs})
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
    rules = load_pin_rules(recipe.catalog)
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
        stream_digest = locked.render.stream
        stream_differs = sha256(a.renders[name].stream) != stream_digest
        if stream_differs:  # the cached lock bytes are read only to explain
            for divergence in compare_with_lock(recipe=recipe.name, component=name, render=a.renders[name],
                                                locked=locked.render, locked_stream=ws.cached_stream(stream_digest),
                                                chart=a.charts[name].data if name in a.charts else None,
                                                in_tree=_in_tree(recipe, component)):
                outcome.fail("render = lock", divergence)
        found = sorted({str(i.ref) for i in a.images[name]})
        locked_refs = sorted(i.ref for i in locked.images)
        image_set_differs = found != locked_refs
        for divergence in compare_images(recipe=recipe.name, component=name, found=found, locked=locked_refs):
            outcome.fail("images = lock", divergence)
        # Every other claim the lock makes and a render can confirm: chart identity and content
        # digests, values, files, render digests, image origins and where each image was found.
        # Who served the chart is a record of the lock run, not a claim: a mirror changes no byte.
        claim = (dataclasses.replace(chart_record(a.charts[name]),
                                     served_by=locked.chart.served_by if locked.chart is not None else None)
                 if name in a.charts else None)
        expected = build_component(component, chart=claim, render=a.renders[name], images=a.images[name],
                                   resolved=_registry_claims(locked), rules=rules)
        for where, want, got in _claims_differ(expected.as_json(), locked.as_json()):
            check = "images = lock" if where.startswith("images") else "render = lock"
            if (where.startswith("render") and stream_differs) or (check == "images = lock" and image_set_differs):
                continue  # already reported above, with a diff
            outcome.fail(check, Divergence(recipe=recipe.name, check=check, component=name,
                                           summary=_claim_summary(where, want, got)))


def _registry_claims(locked: LockedComponent) -> dict[ImageRef, ResolvedImage]:
    """What the lock says registries answered: only drift and signed locks can confirm these."""
    return {image.image: resolved for image in locked.images if (resolved := image.as_resolved()) is not None}


def _claims_differ(want: Any, got: Any, where: str = "") -> list[tuple[str, Any, Any]]:
    """Every JSON path where ``want`` and ``got`` differ (lists of images compared by ``ref``)."""
    if isinstance(want, dict) and isinstance(got, dict):
        out: list[tuple[str, Any, Any]] = []
        for key in sorted(set(want) | set(got)):
            out += _claims_differ(want.get(key), got.get(key), f"{where}.{key}" if where else key)
        return out
    if isinstance(want, list) and isinstance(got, list) and all(isinstance(i, dict) and "ref" in i
                                                                 for i in [*want, *got]) and want + got:
        mine, theirs = {i["ref"]: i for i in want}, {i["ref"]: i for i in got}
        out = []
        for ref in sorted(set(mine) | set(theirs)):
            out += _claims_differ(mine.get(ref), theirs.get(ref), f"{where}[{ref}]")
        return out
    return [] if want == got else [(where, want, got)]


def _claim_summary(where: str, want: Any, got: Any) -> str:
    """``the lock claims …`` in words: for lists, the entries the lock adds or lacks."""
    if isinstance(want, list) and isinstance(got, list):
        extra, missing = [g for g in got if g not in want], [w for w in want if w not in got]
        parts = [f"also lists {_short(extra)}" if extra else "", f"does not list {_short(missing)}" if missing else ""]
        said = " and ".join(p for p in parts if p) or "lists the same entries in another order"
        return f"the lock's {where} {said}, unlike this render"
    return f"the lock claims {where} = {_short(got)}, but this render gives {_short(want)}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 160 else text[:157] + "..."


def _in_tree(recipe: Recipe, component: Component) -> dict[str, bytes]:
    """The component's in-tree manifest templates, by catalog path (to name the cause of a divergence)."""
    return {p: (recipe.catalog / p).read_bytes() for p in (*component.pre_manifest_files, *component.manifest_files)}


def fresh_locks(ws: Workspace, names: Sequence[str] | None = None) -> list[Lockfile]:
    """Every recipe's lockfile, verified, made by the installed engine and fresh: what every
    publisher (BOM, inventory, mirror list, provenance, policies, drift) reads.

    A missing or unreadable lock is a :class:`LockError`, a tampered one an :class:`IntegrityError`, a
    stale one a :class:`StaleLockError` naming the changed inputs: nothing is published from them.
    """
    _, recipes = compose_recipes(ws.catalog, names, environment=ws.environment)
    return verified_locks(recipes, ws.lockdir, engine=installed_engine(), equivalent=pinned_engines())


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishedPaths:
    """Where the artefacts published from the locks live (what qualify checks for freshness)."""

    bom: Path
    inventory: Path
    provenance: Path
    policies: Path
    #: the Kyverno and policy-controller CRDs to validate policies against (``None``: freshness only)
    schemas: Path | None
    #: how the inventory names the lock directory
    lockdir: str = "lockfiles"


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishedCheck:
    """One published artefact's freshness: what differs from the locks (empty: fresh), and notes."""

    name: str
    problems: tuple[str, ...]
    notes: tuple[str, ...] = ()


def check_published(ws: Workspace, paths: PublishedPaths) -> tuple[PublishedCheck, ...]:
    """qualify's freshness gate: the BOMs and inventory, the provenance matrix and the admission
    policies are exactly what the (fresh, verified) locks give; nothing is written."""
    from .bom import stale
    from .gates import load_exemptions
    from .provenance import check_document

    def guarded(name: str, check: Callable[[Sequence[Lockfile]], Sequence[str]], notes: tuple[str, ...] = ()
                ) -> PublishedCheck:
        try:
            return PublishedCheck(name=name, problems=tuple(check(fresh_locks(ws))), notes=notes)
        except PipelineError as exc:
            return PublishedCheck(name=name, problems=(exc.diagnostics(),), notes=notes)

    exemptions = load_exemptions(ws.catalog).image_pins
    notes = () if paths.schemas is not None else (
        "CRD schemas not found: policies checked for freshness only (pass --schemas DIR to validate them "
        "against the Kyverno and policy-controller CRDs)",)
    return (
        guarded("BOMs and inventory", lambda locks: stale(locks, bom_dir=paths.bom, inventory=paths.inventory,
                                                          exemptions=exemptions, lockdir=paths.lockdir)),
        guarded("provenance matrix", lambda locks: check_document(ws.catalog, locks, document=paths.provenance)),
        guarded("admission policies", lambda locks: _policies_fresh(ws, locks, paths), notes),
    )


def _policies_fresh(ws: Workspace, locks: Sequence[Lockfile], paths: PublishedPaths) -> list[str]:
    from .provenance import check_policies

    count = check_policies(ws.catalog, locks, out=paths.policies, schemas=paths.schemas)  # raises a GateError
    log.info("%d admission policies checked", count)
    return []


def drift_catalog(ws: Workspace, names: Sequence[str] | None = None, *,
                  credentials: DockerConfig | None = None) -> DriftReport:
    """Re-check every locked image tag and chart version against its source (the locks must be fresh)."""
    # Imported here: drift reads locks through the BOM's typed view, whose CycloneDX schema validator
    # costs a second at import; reproduce and lock must not pay it. The network's clients likewise: httpx
    # slows the start of the commands that do not use the network.
    from .charts import OciChartSource
    from .drift import check_drift
    from .registry import RegistryClient
    locks = fresh_locks(ws, names)
    config = load_workspace_catalog(ws.catalog, ws.environment).config
    with RegistryClient(config=ws.registries(config.registries), credentials=credentials) as client, \
            SourceFactory(oci=OciChartSource(client=client)) as charts:
        return check_drift(locks, client=client, charts=charts, catalog=ws.catalog, mirrors=config.mirrors)


@dataclass(frozen=True, slots=True, kw_only=True)
class DiffResult:
    diff: LockDiff
    #: rendered streams re-rendered because the render cache lacked them, per side
    rerendered: Mapping[str, int]


def diff_catalog(ws: Workspace, source: str, target: str | None = None, *, rerender: bool = True) -> DiffResult:
    """What changes from the locks at ``source`` (a directory or a git revision) to ``target`` (a
    directory; default the workspace's lockdir), rendered resources included.

    Rendered streams come from the render cache (keyed by the locked ``render.stream`` digest). With
    ``rerender``, a stream the cache lacks is rendered again from the catalog that made it — the
    working tree's catalog for the workspace's own locks, the catalog committed at the revision for
    a git ``source`` (read with ``git archive``, no checkout) — and cached; a stream that still
    cannot be had (the lock is stale against its catalog) is reported per file, by digest.
    """
    from .diff import diff_locks, export_tree, missing_streams, read_lock_set

    before = read_lock_set(source, lockdir=ws.lockdir)
    after = read_lock_set(target or ws.lockdir.as_posix(), lockdir=ws.lockdir)
    rerendered = {"before": 0, "after": 0}
    if rerender:
        missing = missing_streams(before, after, have=lambda digest: digest in ws.renders)
        if missing["after"] and (target is None or Path(target).resolve() == ws.lockdir.resolve()):
            rerendered["after"] = _render_into_cache(ws, ws.catalog, after.locks, missing["after"])
        if missing["before"] and not Path(source).is_dir():
            import tempfile

            with tempfile.TemporaryDirectory(prefix="pipeline-diff-") as tmp:
                catalog = export_tree(source, ws.catalog, Path(tmp))
                if catalog is not None and catalog.is_dir():
                    rerendered["before"] = _render_into_cache(ws, catalog, before.locks, missing["before"])
    return DiffResult(diff=diff_locks(before, after, streams=ws.cached_stream), rerendered=rerendered)


def _render_into_cache(ws: Workspace, catalog_dir: Path, locks: Mapping[str, Lockfile], wanted: set[Digest]) -> int:
    """Render the recipes of ``catalog_dir`` whose locks name a ``wanted`` stream; cache what matches."""
    names = sorted(name for name, lock in locks.items()
                   if any(c.render.stream in wanted for c in lock.components.values()))
    try:
        catalog, recipes = compose_recipes(catalog_dir, None)
    except PipelineError as exc:
        log.warning("cannot re-render %s for the diff: %s", catalog_dir, exc.message)
        return 0
    recipes = [r for r in recipes if r.name in names]
    if not recipes:
        return 0
    found: set[Digest] = set()
    try:
        with SourceFactory() as sources, WorkerPool(CANONICAL, workers=ws.workers) as pool:
            builds = build(recipes, pool=pool, store=ws.store, mirrors=catalog.config.mirrors,
                           volatile=load_volatile(catalog_dir), sources=sources)
    except PipelineError as exc:
        log.warning("cannot re-render %s for the diff: %s", catalog_dir, exc.message)
        return 0
    for built in builds.values():
        for render in built.renders.values():
            if (digest := sha256(render.stream)) in wanted:
                ws.cache_stream(render.stream)
                found.add(digest)
    return len(found)
