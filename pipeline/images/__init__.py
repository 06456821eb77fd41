"""Image references and (later) image discovery."""

from __future__ import annotations

from .reference import DOCKER_HUB, ImageRef, ImageRefError

__all__ = ["DOCKER_HUB", "ImageRef", "ImageRefError"]
