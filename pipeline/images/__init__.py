"""Image references and image discovery.

``ImageRef.parse`` turns text into a normalised reference; :func:`discover` finds every image a
component's render names (with location and origin); :func:`annotation_images` reads a
chart's ``helm.sh/images`` annotation; :func:`format_inventory` and :func:`explain` are the views
``python -m pipeline images`` prints.
"""

from __future__ import annotations

from ..vocabulary.reference import DOCKER_HUB, ImageRef, ImageRefError
from ._scan import resource_of
from .annotation import AnnotatedImage, annotation_images
from .cache import DiscoveryCache
from .discover import ComponentLike, classify, discover
from .inventory import explain, format_inventory
from .model import (
    Discovery,
    FoundImage,
    Origin,
    Rejected,
    RejectReason,
    Resource,
    ValuePath,
    Via,
    format_path,
    join_key,
)

__all__ = [
    "DOCKER_HUB",
    "AnnotatedImage",
    "ComponentLike",
    "Discovery",
    "DiscoveryCache",
    "FoundImage",
    "ImageRef",
    "ImageRefError",
    "Origin",
    "RejectReason",
    "Rejected",
    "Resource",
    "ValuePath",
    "Via",
    "annotation_images",
    "classify",
    "discover",
    "explain",
    "format_inventory",
    "format_path",
    "join_key",
    "resource_of",
]
