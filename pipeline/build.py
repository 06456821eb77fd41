"""fetch → render → mask → discover for a set of recipes, under one environment variation.

Inputs: composed recipes, a chart store, mirrors, the charts a lock expects (by component), a
worker pool for the variation and the volatile declarations. Output: one :class:`RecipeBuild` per
recipe, holding the fetched charts, each component's masked render and the images found in it.
Charts are fetched once per distinct reference; identical render jobs across recipes render once.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass

from ._yaml import YamlMap, load_file
from .charts import STORE, ChartStore, FetchedChart, SourceFactory, WalkOrder, chart_yaml, fetch_chart
from .errors import (
    ChartError,
    ChartsUnavailableError,
    PipelineError,
    RecipeError,
    RenderError,
    ResolveError,
)
from .images import (
    AnnotatedImage,
    Discovery,
    FoundImage,
    Rejected,
    annotation_images,
    discover,
)
from .lockfile import LockedChart
from .progress import SILENT, Progress
from .recipes.load import REGISTRY_FILE
from .recipes.model import ChartRef, Component, ComponentType, Recipe
from .render.interface import Renderer
from .render.job import ComponentRender, RenderDigests, RenderJob
from .vocabulary.digest import Digest
from .volatile import VolatileField, mask

__all__ = ["ChartProblem", "RecipeBuild", "build", "chart_record", "charts_table", "fetch_charts", "job_for",
           "pin_location"]

log = logging.getLogger("pipeline")


@dataclass(frozen=True, slots=True, kw_only=True)
class RecipeBuild:
    """A recipe's charts, renders (after masking) and images, for one variation."""

    recipe: Recipe
    charts: Mapping[str, FetchedChart]
    renders: Mapping[str, ComponentRender]
    images: Mapping[str, tuple[FoundImage, ...]]
    rejected: Mapping[str, tuple[Rejected, ...]]


def chart_record(fetched: FetchedChart) -> LockedChart:
    """What a lock records of a chart: where it is pinned upstream, the version string the repository
    served for the pin (Helm's rules: a pin ``v1.2.3`` may be served as ``1.2.3``), its content digests,
    and who served it (the repository or its mirror; not recorded for the catalog's own charts)."""
    served_by = None if fetched.ref.is_local or fetched.served_by == STORE else fetched.served_by
    return LockedChart(repository=fetched.ref.repository, name=fetched.ref.name, version=fetched.version,
                       archive=fetched.archive, tree=fetched.tree, served_by=served_by)


def _manifest_chart_version(component: Component) -> str:
    if component.chart is None:
        return "0.0.0"
    return component.chart.version.removeprefix("v")


def job_for(recipe: Recipe, component: Component, chart: FetchedChart | None) -> RenderJob:
    """The self-contained render job of one component."""
    if component.type is not ComponentType.HELM:
        raise RenderError(
            f"recipe '{recipe.name}': component '{component.name}' is a {component.type.value} component; "
            "only Helm components (with or without a chart) can be rendered",
            hint="render Kustomize components with their own tool, or model them as manifest-only components",
        )

    def read(paths: Iterable[str]) -> tuple[tuple[str, bytes], ...]:
        return tuple((p, (recipe.catalog / p).read_bytes()) for p in paths)

    what = f"recipe '{recipe.name}': component '{component.name}'"
    if component.chart is not None:
        what += f" chart {component.chart.display()}"
    return RenderJob(
        component=component.name,
        what=what,
        chart=chart.data if chart is not None else None,
        values=component.values,
        release=component.name,
        namespace=component.namespace,
        kube_version=recipe.kube_version,
        api_versions=tuple(recipe.api_versions),
        manifest_chart_version=_manifest_chart_version(component),
        pre_manifests=read(component.pre_manifest_files),
        manifests=read(component.manifest_files),
    )


def pin_location(recipe: Recipe, component: Component) -> tuple[str, int | None] | None:
    """Where the component's chart version is pinned: the last overlay or mixin of its origins that
    writes ``version:`` for it, else ``registry.yaml``'s ``helm.defaultVersion`` (catalog-relative
    file, line); ``None`` when neither can be read."""
    for source in dict.fromkeys((*reversed(component.origin_files), REGISTRY_FILE)):
        try:
            doc = load_file(recipe.catalog / source, display=source)
        except RecipeError:
            continue
        spec = doc.get("spec") if isinstance(doc, YamlMap) else None
        refs = spec.get("componentRefs") if isinstance(spec, YamlMap) else None
        for ref in refs if isinstance(refs, list) else []:
            if isinstance(ref, YamlMap) and ref.get("name") == component.name and "version" in ref:
                return source, ref.line_of("version")
        for item in (doc.get("components") if isinstance(doc, YamlMap) else None) or []:
            helm = item.get("helm") if isinstance(item, YamlMap) and item.get("name") == component.name else None
            if isinstance(helm, YamlMap) and "defaultVersion" in helm:
                return source, helm.line_of("defaultVersion")
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChartProblem:
    """A chart that could not be fetched or matched to its pin, for one component and pin location,
    with every recipe it stops."""

    chart: ChartRef
    component: str
    pinned_at: str
    recipes: tuple[str, ...]
    problem: str
    hint: str | None = None


def _pinned_at(recipe: Recipe, component: Component) -> str:
    """``file:line`` of the pin (``file`` alone when its line is unknown, ``?`` when it cannot be read)."""
    where = pin_location(recipe, component)
    if where is None:
        return "?"
    return f"{where[0]}:{where[1]}" if where[1] is not None else where[0]


def charts_table(problems: Sequence[ChartProblem]) -> str:
    """One row per chart, component and pin location: what is missing, where it is chosen, who needs it."""
    rows = [(p.chart.name, p.chart.version, p.chart.repository, p.component, p.pinned_at, ",".join(p.recipes),
             p.problem) for p in sorted(problems, key=lambda p: (p.chart.repository, p.chart.name, p.chart.version,
                                                                  p.component, p.pinned_at))]
    header = ("CHART", "VERSION", "REPOSITORY", "COMPONENT", "PINNED AT", "RECIPES", "PROBLEM")
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header) - 1)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1]
                     for r in (header, *rows))


def _problems(failed: Mapping[tuple[str, ...], PipelineError],
              uses: Mapping[tuple[str, ...], list[tuple[Recipe, Component]]]) -> list[ChartProblem]:
    rows: dict[tuple[tuple[str, ...], str, str], list[str]] = {}
    for key in failed:
        for recipe, component in uses[key]:
            rows.setdefault((key, component.name, _pinned_at(recipe, component)), []).append(recipe.name)
    out = []
    for (key, name, pinned_at), recipes in rows.items():
        chart = next(c.chart for _, c in uses[key] if c.name == name)
        assert chart is not None
        out.append(ChartProblem(chart=chart, component=name, pinned_at=pinned_at,
                                recipes=tuple(sorted(set(recipes))), problem=" ".join(failed[key].message.split()),
                                hint=failed[key].hint))
    return out


def _unavailable(problems: Sequence[ChartProblem]) -> ChartsUnavailableError:
    charts = {(p.chart.repository, p.chart.name, p.chart.version) for p in problems}
    recipes = {r for p in problems for r in p.recipes}
    if len(problems) == 1 and len(recipes) == 1:  # one chart, one recipe: a plain message at the pin
        only = problems[0]
        file, _, line = only.pinned_at.rpartition(":")
        return ChartsUnavailableError(f"recipe '{only.recipes[0]}': component '{only.component}': {only.problem}",
                                      hint=only.hint, path=file if line.isdigit() else None,
                                      line=int(line) if line.isdigit() else None)
    return ChartsUnavailableError(
        f"{len(charts)} chart(s) could not be fetched, needed by {len(recipes)} recipe(s):\n"
        + charts_table(problems),
        hint="serve them from a mirror (spec.mirrors in an environment file: --config FILE, $PIPELINE_CONFIG or "
        "~/.config/recipe-pipeline/config.yaml), fix the pins at the lines shown, or lock the rest with "
        "'lock --keep-going'; 'python -m pipeline charts' lists every chart the catalog needs",
    )


def fetch_charts(
    recipes: Sequence[Recipe],
    *,
    store: ChartStore,
    mirrors: Mapping[str, str],
    expected: Mapping[tuple[str, str], Digest] | None = None,
    sources: SourceFactory | None = None,
    walk_order: WalkOrder = "sorted",
    problems: list[ChartProblem] | None = None,
) -> dict[str, dict[str, FetchedChart]]:
    """Every recipe's charts by component, each distinct chart reference fetched once (the fetch half
    of :func:`build`, for callers that decide what to render from the fetched charts).

    Every chart is tried before anything stops: charts that cannot be fetched or matched to their
    pins raise one :class:`~pipeline.errors.ChartsUnavailableError` listing them all; with
    ``problems`` (keep going) they are appended there and the recipes they stop are left out.
    """
    expected = expected or {}
    fetched: dict[tuple[str, ...], FetchedChart] = {}
    failed: dict[tuple[str, ...], PipelineError] = {}
    uses: dict[tuple[str, ...], list[tuple[Recipe, Component]]] = {}
    charts: dict[str, dict[str, FetchedChart]] = {}
    for recipe in recipes:
        charts[recipe.name] = {}
        for component in recipe.components:
            if component.chart is not None and component.type is ComponentType.HELM:
                want = expected.get((recipe.name, component.name))
                chart_key = (recipe.catalog.as_posix(), component.chart.repository,
                             f"{component.chart.name}@{component.chart.version}", want or "")
                uses.setdefault(chart_key, []).append((recipe, component))
                if chart_key not in fetched and chart_key not in failed:
                    try:
                        fetched[chart_key] = fetch_chart(
                            component.chart, catalog=recipe.catalog, store=store, mirrors=mirrors,
                            expected=want, walk_order=walk_order, sources=sources,
                        )
                    except (ChartError, ResolveError) as exc:  # keep going: report every chart at once
                        failed[chart_key] = exc
                if chart_key in fetched:
                    charts[recipe.name][component.name] = fetched[chart_key]
    if failed:
        missing = _problems(failed, uses)
        if problems is None:
            raise _unavailable(missing)
        problems.extend(missing)
        stopped = {r for p in missing for r in p.recipes}
        charts = {name: found for name, found in charts.items() if name not in stopped}
    return charts


def build(
    recipes: Sequence[Recipe],
    *,
    pool: Renderer,
    store: ChartStore,
    mirrors: Mapping[str, str],
    volatile: Sequence[VolatileField],
    expected: Mapping[tuple[str, str], Digest] | None = None,
    discovered: MutableMapping[tuple[Digest, Digest], Discovery] | None = None,
    sources: SourceFactory | None = None,
    progress: Progress = SILENT,
    problems: list[ChartProblem] | None = None,
    charts: Mapping[str, Mapping[str, FetchedChart]] | None = None,
    digests: RenderDigests | None = None,
) -> dict[str, RecipeBuild]:
    """Fetch, render, mask and discover every recipe under ``pool``'s variation (any :class:`Renderer`:
    the sandboxed :class:`~pipeline.render.pool.WorkerPool`, or an in-process one).

    ``expected`` maps ``(recipe, component)`` to the archive digest a lock pins: the store serves
    those bytes without the network, and fetched bytes that differ are refused. ``discovered`` is
    a cache of image discovery by content (job key, masked stream digest) that callers share between
    variations, or keep across runs (:class:`~pipeline.images.DiscoveryCache`); ``sources`` the
    run's chart sources (one HTTP client per kind, reused across fetches); ``charts`` the charts
    :func:`fetch_charts` already fetched (nothing is fetched again); ``digests`` the run's memo of
    render digests (:class:`~pipeline.render.job.RenderDigests`), shared with the lock assembly.

    Charts are fetched by :func:`fetch_charts` (its errors, and ``problems`` to keep going: the
    recipes a missing chart stops are left out of the result).
    """
    if charts is None:
        charts = fetch_charts(recipes, store=store, mirrors=mirrors, expected=expected, sources=sources,
                              walk_order=pool.variation.walk_order, problems=problems)
    recipes = [r for r in recipes if r.name in charts]
    jobs: dict[tuple[str, str], RenderJob] = {}
    for recipe in recipes:
        for component in recipe.components:
            jobs[(recipe.name, component.name)] = job_for(recipe, component, charts[recipe.name].get(component.name))
    keys = {where: job.key() for where, job in jobs.items()}
    distinct = {keys[where]: job for where, job in jobs.items()}
    log.info("render %s: %d component renders, %d distinct", pool.variation.name, len(jobs), len(distinct))
    results = pool.render(distinct, advance=progress.task(f"render {pool.variation.name}", len(distinct)))
    found_cache: MutableMapping[tuple[Digest, Digest], Discovery] = discovered if discovered is not None else {}
    digests = RenderDigests() if digests is None else digests
    out: dict[str, RecipeBuild] = {}
    for recipe in recipes:
        renders: dict[str, ComponentRender] = {}
        images: dict[str, tuple[FoundImage, ...]] = {}
        rejected: dict[str, tuple[Rejected, ...]] = {}
        for component in recipe.components:
            key = keys[(recipe.name, component.name)]
            rendered = mask(component.name, results[key], volatile)
            renders[component.name] = rendered
            # Discovery depends only on the bytes and the job: parse once per content, then name the recipe.
            found_key = (key, digests.stream(rendered))
            seen = found_cache.get(found_key)
            if seen is None:
                chart = charts[recipe.name].get(component.name)
                annotations: tuple[AnnotatedImage, ...] = ()
                if chart is not None:  # fetch reads the archive; discover only parses its Chart.yaml
                    top, meta = chart_yaml(chart.data)
                    annotations = annotation_images(meta, chart=top)
                seen = discover(rendered.stream, component=component, recipe=recipe.name, annotations=annotations)
                found_cache[found_key] = seen
            images[component.name] = tuple(i if i.recipe == recipe.name else dataclasses.replace(i, recipe=recipe.name)
                                           for i in seen.images)
            rejected[component.name] = tuple(r if r.recipe == recipe.name
                                             else dataclasses.replace(r, recipe=recipe.name) for r in seen.rejected)
        out[recipe.name] = RecipeBuild(recipe=recipe, charts=charts[recipe.name], renders=renders, images=images,
                                       rejected=rejected)
    return out

