"""The renderer seam: build() renders through any Renderer, and both renderers give the same bytes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.build import build
from pipeline.charts import ChartStore, SourceFactory
from pipeline.recipes import catalog_recipes, compose, load_catalog
from pipeline.render import CANONICAL, InProcessRenderer, WorkerPool
from pipeline.render.cache import CachedRenderer, RenderCache

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


class _Recording(InProcessRenderer):
    """The in-process renderer, noting when it is asked to get ready and what it renders."""

    def __init__(self) -> None:
        super().__init__()
        self.spawned: list[int | None] = []
        self.rendered = 0

    def spawn(self, count: int | None = None) -> None:
        self.spawned.append(count)

    def render(self, jobs: Any, *, advance: Any = None) -> Any:
        out = super().render(jobs, advance=advance)
        self.rendered += len(out)
        return out


def test_the_render_cache_starts_workers_only_for_jobs_it_does_not_hold(tmp_path: Path) -> None:
    # Workers are told to start as soon as the cache knows it lacks entries (they boot while the
    # cached entries are read); a run whose every job is cached starts none.
    catalog = load_catalog(CATALOG)
    recipes = [compose(catalog, q) for q in catalog_recipes(catalog)][:1]
    store = ChartStore(tmp_path / "charts")
    cache = RenderCache(tmp_path / "render-jobs", engine={"name": "test"})
    cold, warm = _Recording(), _Recording()
    for inner in (cold, warm):
        with SourceFactory() as sources:
            build(recipes, pool=CachedRenderer(inner, cache, engine_of=lambda: {"name": "test"}), store=store,
                  mirrors={}, volatile=(), sources=sources)
    assert cold.rendered == len(recipes[0].components) and cold.spawned == [cold.rendered]
    assert warm.rendered == 0 and warm.spawned == []
