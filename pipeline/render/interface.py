"""The renderer interface: what the build step needs of whatever renders jobs.

:class:`Renderer` is satisfied by :class:`~pipeline.render.pool.WorkerPool` (sandboxed worker
processes, the default for every command) and by :class:`InProcessRenderer` (this process; for tests
and tools that render a few jobs and accept the caller's environment). Both render each distinct job
once and return results keyed by :meth:`~pipeline.render.job.RenderJob.key`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from ..vocabulary.digest import Digest
from .job import ComponentRender, RenderJob, run_job
from .sandbox import CANONICAL, Variation

__all__ = ["InProcessRenderer", "Renderer"]


class Renderer(Protocol):
    """Renders jobs under one environment :class:`~pipeline.render.sandbox.Variation`."""

    @property
    def variation(self) -> Variation: ...

    def render(self, jobs: Sequence[RenderJob] | Mapping[Digest, RenderJob], *,
               advance: Callable[[], None] | None = None) -> dict[Digest, ComponentRender]: ...

    def spawn(self, count: int | None = None) -> None:
        """Get ready to render ``count`` jobs soon, without waiting (a pool starts its workers)."""


class InProcessRenderer:
    """Renders in this process with the engine loaded here (no sandbox: the caller's environment)."""

    def __init__(self, variation: Variation = CANONICAL) -> None:
        self._variation = variation

    @property
    def variation(self) -> Variation:
        return self._variation

    def spawn(self, count: int | None = None) -> None:
        """Nothing to start: the engine is loaded in this process on the first render."""

    def render(self, jobs: Sequence[RenderJob] | Mapping[Digest, RenderJob], *,
               advance: Callable[[], None] | None = None) -> dict[Digest, ComponentRender]:
        unique = dict(jobs) if isinstance(jobs, Mapping) else {job.key(): job for job in jobs}
        out: dict[Digest, ComponentRender] = {}
        for key, job in unique.items():
            out[key] = run_job(job)
            if advance is not None:
                advance()
        return out
