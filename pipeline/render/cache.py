"""A content-addressed render cache: a job's raw render, kept across runs, keyed by what determines it.

Contract:

- key: sha256 of ``{job: RenderJob.key(), engine: identity, variation}``: the job's content key
  (chart bytes, values, capabilities, in-tree templates), the engine that renders (name, package
  version, native library digest; a new engine never hits an old entry) and the sandbox variation;
- value: the **raw** render (before volatile masking, which depends on ``recipes/volatile.yaml``
  and is applied by the caller on every run): the stream in a :class:`ContentStore` (re-hashed on
  every read: a corrupt file is deleted and treated as a miss) and a small index entry naming the
  stream's digest and the full engine identity the worker reported. The per-file split is rebuilt
  from the stream and must reproduce it exactly, or the entry is a miss;
- :class:`CachedRenderer` wraps any :class:`~pipeline.render.interface.Renderer`: hits are served
  from the cache, misses rendered by the wrapped renderer and stored. Only ``lock`` uses it:
  ``reproduce`` renders everything, twice, on purpose.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..vocabulary.digest import Digest, canonical_json, sha256, source_digest
from ..vocabulary.files import atomic_write
from ..vocabulary.store import ContentStore
from .interface import Renderer
from .job import ComponentRender, RenderJob, assemble, segments_of
from .sandbox import Variation

__all__ = ["CachedRenderer", "RenderCache"]

log = logging.getLogger("pipeline")


class RenderCache:
    """Raw renders under ``root`` (``streams/`` by content, ``jobs/`` by cache key)."""

    def __init__(self, root: Path, *, engine: Mapping[str, str]) -> None:
        self.streams = ContentStore(root / "streams", name="render cache")
        self.jobs = root / "jobs"
        self.engine = dict(sorted(engine.items()))

    def key(self, job_key: Digest, variation: Variation) -> Digest:
        return sha256(canonical_json({"job": job_key, "engine": self.engine, "variation": variation.name,
                                      "code": _render_code()}))

    def __contains__(self, key: object) -> bool:
        """Whether an entry exists under ``key`` (cheap; :meth:`get` is the authority)."""
        return isinstance(key, str) and (self.jobs / f"{key.removeprefix('sha256:')}.json").is_file()

    def get(self, key: Digest) -> tuple[ComponentRender, dict[str, str]] | None:
        """The cached render and the engine identity it was made with, or ``None``."""
        entry = self.jobs / f"{key.removeprefix('sha256:')}.json"
        try:
            data: Any = json.loads(entry.read_bytes())
            stream = self.streams.get(Digest(data["stream"]))
            engine = {str(k): str(v) for k, v in data["engine"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None
        if stream is None:
            return None
        render = assemble(segments_of(stream))
        if render.stream != stream:  # not a stream this pipeline assembled: do not trust it
            return None
        return render, engine

    def put(self, key: Digest, render: ComponentRender, engine: Mapping[str, str]) -> None:
        digest = self.streams.put(render.stream)
        atomic_write(self.jobs / f"{key.removeprefix('sha256:')}.json",
                     canonical_json({"stream": digest, "engine": dict(engine)}))


class CachedRenderer:
    """A :class:`Renderer` that serves repeated jobs from a :class:`RenderCache`.

    ``engine_of`` returns the full identity of the wrapped renderer's engine (asked only when
    something was rendered); ``hits`` and ``misses`` count distinct jobs of this run.
    """

    def __init__(self, inner: Renderer, cache: RenderCache, *, engine_of: Callable[[], Mapping[str, str]]) -> None:
        self._inner = inner
        self._cache = cache
        self._engine_of = engine_of
        self.hits = 0
        self.misses = 0
        #: full engine identities the results of this run came from (cache entries and fresh renders)
        self.engines: list[dict[str, str]] = []

    @property
    def variation(self) -> Variation:
        return self._inner.variation

    def spawn(self, count: int | None = None) -> None:
        self._inner.spawn(count)

    def render(self, jobs: Sequence[RenderJob] | Mapping[Digest, RenderJob], *,
               advance: Callable[[], None] | None = None) -> dict[Digest, ComponentRender]:
        unique = dict(jobs) if isinstance(jobs, Mapping) else {job.key(): job for job in jobs}
        keys = {job_key: self._cache.key(job_key, self.variation) for job_key in unique}
        absent = sum(1 for key in keys.values() if key not in self._cache)
        if absent:  # the workers start while the entries that are there are read and checked
            self._inner.spawn(absent)
        out: dict[Digest, ComponentRender] = {}
        todo: dict[Digest, RenderJob] = {}
        for job_key, job in unique.items():
            found = self._cache.get(keys[job_key])
            if found is None:
                todo[job_key] = job
                continue
            out[job_key], engine = found
            if engine not in self.engines:
                self.engines.append(engine)
            if advance is not None:
                advance()
        self.hits += len(out)
        self.misses += len(todo)
        if todo:
            fresh = self._inner.render(todo, advance=advance)
            engine = dict(self._engine_of())
            if engine not in self.engines:
                self.engines.append(engine)
            for job_key, render in fresh.items():
                self._cache.put(keys[job_key], render, engine)
            out.update(fresh)
        log.info("render cache: %d hits, %d rendered", len(unique) - len(todo), len(todo))
        return out


@functools.cache
def _render_code() -> Digest:
    """Digest of the render package's own source: how a job's output is assembled from what the engine
    prints (document splitting, hook order, the in-tree wrapper chart) is code, not engine; a change to
    it must never be served an entry rendered by the old code."""
    here = Path(__file__).parent
    return source_digest(here, here.glob("*.py"))
