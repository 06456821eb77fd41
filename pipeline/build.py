"""fetch → render → mask → discover for a set of recipes, under one environment variation.

Inputs: composed recipes, a chart store, mirrors, the charts a lock expects (by component), a
worker pool for the variation and the volatile declarations. Output: one :class:`RecipeBuild` per
recipe, holding the fetched charts, each component's masked render and the images found in it.
Charts are fetched once per distinct reference; identical render jobs across recipes render once.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ._yaml import YamlMap, load_file
from .charts import ChartStore, FetchedChart, SourceFactory, chart_yaml, fetch_chart
from .errors import ChartVersionError, RecipeError, RenderError
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
from .recipes.model import Component, ComponentType, Recipe
from .render.interface import Renderer
from .render.job import ComponentRender, RenderJob
from .vocabulary.digest import Digest, sha256
from .volatile import VolatileField, mask

__all__ = ["RecipeBuild", "build", "chart_record", "job_for", "pin_location"]

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
    served for the pin (Helm's rules: a pin ``v1.2.3`` may be served as ``1.2.3``), and its content digests."""
    return LockedChart(repository=fetched.ref.repository, name=fetched.ref.name, version=fetched.version,
                       archive=fetched.archive, tree=fetched.tree)


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


def _at_pin(exc: ChartVersionError, recipe: Recipe, component: Component) -> ChartVersionError:
    """``exc`` located at the file and line that pin the version (when known)."""
    where = pin_location(recipe, component)
    if where is None or exc.path is not None:
        return exc
    return ChartVersionError(f"recipe '{recipe.name}': component '{component.name}': {exc.message}",
                             hint=exc.hint, path=where[0], line=where[1])


def build(
    recipes: Sequence[Recipe],
    *,
    pool: Renderer,
    store: ChartStore,
    mirrors: Mapping[str, str],
    volatile: Sequence[VolatileField],
    expected: Mapping[tuple[str, str], Digest] | None = None,
    discovered: dict[tuple[Digest, Digest], Discovery] | None = None,
    sources: SourceFactory | None = None,
    progress: Progress = SILENT,
) -> dict[str, RecipeBuild]:
    """Fetch, render, mask and discover every recipe under ``pool``'s variation (any :class:`Renderer`:
    the sandboxed :class:`~pipeline.render.pool.WorkerPool`, or an in-process one).

    ``expected`` maps ``(recipe, component)`` to the archive digest a lock pins: the store serves
    those bytes without the network, and fetched bytes that differ are refused. ``discovered`` is
    a cache of image discovery by content that callers share between variations; ``sources`` the
    run's chart sources (one HTTP client per kind, reused across fetches).
    """
    expected = expected or {}
    fetched: dict[tuple[str, str, str, Digest | None], FetchedChart] = {}
    charts: dict[str, dict[str, FetchedChart]] = {}
    jobs: dict[tuple[str, str], RenderJob] = {}
    for recipe in recipes:
        charts[recipe.name] = {}
        for component in recipe.components:
            chart = None
            if component.chart is not None and component.type is ComponentType.HELM:
                want = expected.get((recipe.name, component.name))
                chart_key = (recipe.catalog.as_posix(), component.chart.repository,
                             f"{component.chart.name}@{component.chart.version}", want)
                if chart_key not in fetched:
                    try:
                        fetched[chart_key] = fetch_chart(
                            component.chart, catalog=recipe.catalog, store=store, mirrors=mirrors,
                            expected=want, walk_order=pool.variation.walk_order, sources=sources,
                        )
                    except ChartVersionError as exc:
                        raise _at_pin(exc, recipe, component) from exc
                chart = fetched[chart_key]
                charts[recipe.name][component.name] = chart
            jobs[(recipe.name, component.name)] = job_for(recipe, component, chart)
    keys = {where: job.key() for where, job in jobs.items()}
    distinct = {keys[where]: job for where, job in jobs.items()}
    log.info("render %s: %d component renders, %d distinct", pool.variation.name, len(jobs), len(distinct))
    results = pool.render(distinct, advance=progress.task(f"render {pool.variation.name}", len(distinct)))
    found_cache = discovered if discovered is not None else {}
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
            found_key = (key, sha256(rendered.stream))
            if found_key not in found_cache:
                chart = charts[recipe.name].get(component.name)
                annotations: tuple[AnnotatedImage, ...] = ()
                if chart is not None:  # fetch reads the archive; discover only parses its Chart.yaml
                    top, meta = chart_yaml(chart.data)
                    annotations = annotation_images(meta, chart=top)
                found_cache[found_key] = discover(rendered.stream, component=component, recipe=recipe.name,
                                                  annotations=annotations)
            found = found_cache[found_key]
            images[component.name] = tuple(i if i.recipe == recipe.name else dataclasses.replace(i, recipe=recipe.name)
                                           for i in found.images)
            rejected[component.name] = tuple(r if r.recipe == recipe.name
                                             else dataclasses.replace(r, recipe=recipe.name) for r in found.rejected)
        out[recipe.name] = RecipeBuild(recipe=recipe, charts=charts[recipe.name], renders=renders, images=images,
                                       rejected=rejected)
    return out

