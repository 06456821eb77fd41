"""Reproducible renders, lockfiles and supply-chain checks for Kubernetes recipe catalogs (AICR format).

The stages, in order (see ``pipeline.stages`` for the whole flow in one place):

compose (``pipeline.recipes``) → fetch (``pipeline.charts``) → render (``pipeline.render``) →
discover (``pipeline.images``) → lock (``pipeline.lock``) → reproduce (``pipeline.reproduce``).
"""

from __future__ import annotations

from .errors import (
    ChartError,
    DivergenceError,
    GateError,
    IntegrityError,
    LockError,
    PipelineError,
    RecipeError,
    RenderError,
    ResolveError,
    StaleLockError,
    UsageError,
)

__all__ = [
    "ChartError",
    "DivergenceError",
    "GateError",
    "IntegrityError",
    "LockError",
    "PipelineError",
    "RecipeError",
    "RenderError",
    "ResolveError",
    "StaleLockError",
    "UsageError",
]
