"""The render stage: Helm's engine (``engine``) in sandboxed worker processes (``pool``, ``sandbox``).

A :class:`~pipeline.render.job.RenderJob` holds everything one component's render depends on; a
:class:`~pipeline.render.pool.WorkerPool` renders distinct jobs once each, in fresh interpreters
whose environment a :class:`~pipeline.render.sandbox.Variation` fixes. The engine module is imported
only inside workers.
"""

from __future__ import annotations

from .interface import InProcessRenderer, Renderer
from .job import ComponentRender, RenderJob
from .pool import WorkerPool
from .sandbox import CANONICAL, VARIANT_A, VARIANT_B, Variation

__all__ = [
    "CANONICAL",
    "VARIANT_A",
    "VARIANT_B",
    "ComponentRender",
    "InProcessRenderer",
    "RenderJob",
    "Renderer",
    "Variation",
    "WorkerPool",
]
