"""Reviewed exceptions to the pinning gates: ``<catalog>/exemptions.yaml`` (this project's format).

Example::

    apiVersion: pipeline.recipes.dev/v1
    kind: PinExemptions
    versionPins:              # gate 1: an overlay or mixin pin that differs from registry.yaml
      - source: overlays/aks.yaml
        component: kube-prometheus-stack
        pin: "83.7.0"         # the pin the source writes; any other value is not exempted
        reason: AKS needs the 83.x CRDs until the managed Prometheus add-on moves to 84
        tracking: https://github.com/example/catalog/issues/12    # optional here
    imagePins:                # gate 2: an in-tree image left without an @sha256 digest
      - image: ghcr.io/nvidia/skyhook-packages/shellscript:1.1.1
        reason: the package is rebuilt in place by its publisher; digest pinning breaks upgrades
        tracking: https://github.com/example/catalog/issues/13    # required, https
    unpinnedFields:           # pinned render: a custom-resource kind whose fields take no digest
      - component: network-operator
        kind: NicClusterPolicy  # recipes/digest-fields.yaml says 'digestField: null' for it
        reason: the operator joins repository/image:version
        tracking: https://github.com/example/catalog/issues/14
        admission: allow-locked-tag   # how the generated admission policies treat these images

A missing file means no exemptions. The structure is checked here (a mapping of lists of mappings
with known keys, string values, a parseable image without a digest) and is
:class:`~pipeline.errors.RecipeError` with file, line and hint; whether an entry is justified
(reason, tracking link), still needed, or a duplicate is for the gates to report as findings.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._checks import check_keys, line_of, type_name
from .._yaml import YamlMap, load_file
from ..errors import RecipeError
from ..pin import UnpinnedFieldExemption, parse_unpinned_fields
from ..recipes.load import check_header, expect_mapping, get_str
from ..vocabulary.reference import ImageRef, ImageRefError

__all__ = ["EXEMPTIONS_API_VERSION", "EXEMPTIONS_FILE", "Exemptions", "ImageExemption", "VersionExemption",
           "load_exemptions"]

EXEMPTIONS_FILE = "exemptions.yaml"
EXEMPTIONS_API_VERSION = "pipeline.recipes.dev/v1"
_KIND = "PinExemptions"
_VERSION_KEYS = ("source", "component", "pin", "reason", "tracking")
_IMAGE_KEYS = ("image", "reason", "tracking")


@dataclass(frozen=True, slots=True, kw_only=True)
class VersionExemption:
    """A chart pin in ``source`` for ``component`` that may differ from the registry default."""

    source: str
    component: str
    pin: str
    reason: str
    tracking: str
    line: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageExemption:
    """An in-tree image (``image``, with tag, without digest) that may stay unpinned."""

    image: ImageRef
    written: str
    reason: str
    tracking: str
    line: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Exemptions:
    """The parsed exemptions file (``path`` is catalog-relative, for findings)."""

    path: str = EXEMPTIONS_FILE
    version_pins: tuple[VersionExemption, ...] = ()
    image_pins: tuple[ImageExemption, ...] = ()
    #: images of custom-resource kinds whose fields cannot carry a digest (the pinned render)
    unpinned_fields: tuple[UnpinnedFieldExemption, ...] = ()


def load_exemptions(root: Path) -> Exemptions:
    """Parse ``<root>/exemptions.yaml``; no file means no exemptions."""
    path = EXEMPTIONS_FILE
    if not (root / path).is_file():
        return Exemptions()
    data = load_file(root / path, display=path)
    doc = check_header(data, kind=_KIND, api_versions=(EXEMPTIONS_API_VERSION,), path=path,
                       hint=f"exemptions.yaml starts with 'apiVersion: {EXEMPTIONS_API_VERSION}' and 'kind: {_KIND}'")
    check_keys(doc, ("apiVersion", "kind", "versionPins", "imagePins", "unpinnedFields"), what="exemptions.yaml",
               path=path)
    versions = tuple(_version(item, path) for item in _entries(doc, "versionPins", path))
    images = tuple(_image(item, path) for item in _entries(doc, "imagePins", path))
    return Exemptions(path=path, version_pins=versions, image_pins=images,
                      unpinned_fields=parse_unpinned_fields(doc, path))


def _entries(doc: YamlMap, key: str, path: str) -> list[YamlMap]:
    value = doc.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise RecipeError(f"'{key}' must be a list, not a {type_name(value)}", path=path,
                          line=line_of(doc, key), hint=f"write '{key}:' followed by '- ' entries")
    return [expect_mapping(item, what=f"a '{key}' entry", path=path, line=line_of(item) or line_of(doc, key),
                           hint=f"each '{key}' entry is a mapping") for item in value]


def _version(node: YamlMap, path: str) -> VersionExemption:
    what = "a versionPins entry"
    check_keys(node, _VERSION_KEYS, what=what, path=path)
    return VersionExemption(
        source=get_str(node, "source", what=what, path=path, required=True).strip(),
        component=get_str(node, "component", what=what, path=path, required=True).strip(),
        pin=get_str(node, "pin", what=what, path=path, required=True),
        reason=get_str(node, "reason", what=what, path=path).strip(),
        tracking=get_str(node, "tracking", what=what, path=path).strip(),
        line=line_of(node),
    )


def _image(node: YamlMap, path: str) -> ImageExemption:
    what = "an imagePins entry"
    check_keys(node, _IMAGE_KEYS, what=what, path=path)
    written = get_str(node, "image", what=what, path=path, required=True).strip()
    line = line_of(node, "image")
    try:
        image = ImageRef.parse(written)
    except ImageRefError as exc:
        raise RecipeError(f"{what}: {exc}", path=path, line=line,
                          hint="write the image as it is found, e.g. ghcr.io/org/app:1.2.3") from exc
    if image.digest is not None:
        raise RecipeError(f"{what}: image {written!r} has a digest: it needs no exemption", path=path, line=line,
                          hint="remove this entry (a digest-pinned image passes the gate)")
    return ImageExemption(image=image, written=written, reason=_str(node, "reason", what, path),
                          tracking=_str(node, "tracking", what, path), line=line_of(node))


def _str(node: YamlMap, key: str, what: str, path: str) -> str:
    value: Any = get_str(node, key, what=what, path=path)
    return str(value).strip()
