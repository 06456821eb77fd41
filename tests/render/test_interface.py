"""The renderer seam: build() renders through any Renderer, and both renderers give the same bytes."""

from __future__ import annotations

from pathlib import Path

from pipeline.build import build
from pipeline.charts import ChartStore, SourceFactory
from pipeline.recipes import catalog_recipes, compose, load_catalog
from pipeline.render import CANONICAL, InProcessRenderer, WorkerPool

CATALOG = Path(__file__).resolve().parents[2] / "recipes"


def test_build_through_the_in_process_renderer_equals_the_sandboxed_pool(tmp_path: Path) -> None:
    catalog = load_catalog(CATALOG)
    recipes = [compose(catalog, q) for q in catalog_recipes(catalog)][:1]
    store = ChartStore(tmp_path / "charts")
    with SourceFactory() as sources, WorkerPool(CANONICAL, workers=1) as pool:
        sandboxed = build(recipes, pool=pool, store=store, mirrors={}, volatile=(), sources=sources)
    with SourceFactory() as sources:
        in_process = build(recipes, pool=InProcessRenderer(), store=store, mirrors={}, volatile=(), sources=sources)
    name = recipes[0].name
    assert {c: r.stream for c, r in in_process[name].renders.items()} == \
        {c: r.stream for c, r in sandboxed[name].renders.items()}
    assert in_process[name].renders  # the recipe has components: the comparison is not vacuous
