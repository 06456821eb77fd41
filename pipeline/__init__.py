"""Reproducible renders, lockfiles and supply-chain checks for Kubernetes recipe catalogs (AICR format).

The stages, in order (see ``pipeline.stages`` for the whole flow in one place):

compose (``pipeline.recipes``) → fetch (``pipeline.charts``) → render (``pipeline.render``) →
discover (``pipeline.images``) → lock (``pipeline.lock``) → reproduce (``pipeline.reproduce``).
"""

from __future__ import annotations

# The package's public names are its errors, listed once, in ``errors.__all__``.
from . import errors
from .errors import *  # noqa: F403

__all__ = list(errors.__all__)
