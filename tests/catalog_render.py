"""Render a catalog's recipes in-process (real Helm engine) and discover their images.

For tests of discovery and of the pinning gates on whole catalogs: local charts (``./charts``) are
packed from the catalog; with ``manifests_only`` (the real AICR catalog, whose charts are not here)
only each component's in-tree manifests are rendered. Identical render jobs render once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from pipeline.build import job_for
from pipeline.charts import chart_yaml, pack_directory
from pipeline.images import AnnotatedImage, Discovery, FoundImage, Rejected, annotation_images, discover
from pipeline.recipes import Recipe, catalog_recipes, compose, load_catalog
from pipeline.recipes.model import ComponentType
from pipeline.render.job import ComponentRender, RenderJob, run_job
from pipeline.vocabulary.digest import Digest


def compose_all(root: Path) -> list[Recipe]:
    catalog = load_catalog(root)
    return [compose(catalog, query) for query in catalog_recipes(catalog)]


def _job(recipe: Recipe, name: str, *, manifests_only: bool) -> RenderJob | None:
    component = recipe.component(name)
    if component.type is not ComponentType.HELM:
        return None
    job = job_for(recipe, component, None)
    if manifests_only or component.chart is None:
        return job if (job.manifests or job.pre_manifests) else None
    assert component.chart.is_local, component.chart
    directory = recipe.catalog / component.chart.repository / component.chart.name
    return replace(job, chart=pack_directory(directory, component.chart.name))


def distinct_jobs(root: Path, *, charts_only: bool = False) -> dict[Digest, RenderJob]:
    """Every distinct render job of the catalog at ``root`` (charts packed from it), by content key,
    in first-use order; ``charts_only``: the jobs with a chart."""
    jobs: dict[Digest, RenderJob] = {}
    for recipe in compose_all(root):
        for component in recipe.components:
            job = _job(recipe, component.name, manifests_only=False)
            if job is not None and (job.chart is not None or not charts_only):
                jobs.setdefault(job.key(), job)
    return jobs


def discover_catalog(recipes: Sequence[Recipe], *, manifests_only: bool = False) -> dict[str, Discovery]:
    """Each recipe's images and refused candidates, over all its components (and charts' annotations)."""
    renders: dict[str, ComponentRender] = {}
    out: dict[str, Discovery] = {}
    for recipe in recipes:
        images: list[FoundImage] = []
        rejected: list[Rejected] = []
        for component in recipe.components:
            job = _job(recipe, component.name, manifests_only=manifests_only)
            if job is None:
                continue
            key = job.key()
            if key not in renders:
                renders[key] = run_job(job)
            annotations: tuple[AnnotatedImage, ...] = ()
            if job.chart is not None:
                top, meta = chart_yaml(job.chart)
                annotations = annotation_images(meta, chart=top)
            found = discover(renders[key].stream, component=component, recipe=recipe.name, annotations=annotations)
            images.extend(found.images)
            rejected.extend(found.rejected)
        out[recipe.name] = Discovery(images=tuple(images), rejected=tuple(rejected))
    return out
