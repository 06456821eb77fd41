"""Gate 2: every image our catalog controls in-tree carries an ``@sha256:`` digest.

Input: the images found in every recipe (:class:`~pipeline.images.FoundImage`), the composed
recipes (to trace a value back to the file that sets it), the catalog root and the ``imagePins``
exemptions. An image is *in-tree* when it is written in one of our manifests or our values chose it
(or a part of it); chart defaults are gate 3's business (the lock pins them).

Checks:

1. every in-tree image has a digest, and the digest is ``sha256`` (another algorithm fails even
   with an exemption: the fix is to write the sha256 digest);
2. an in-tree image without a digest may be listed in ``exemptions.yaml`` under ``imagePins``
   (image with tag, a reason, and a tracking link: an ``https://`` URL);
3. every ``imagePins`` entry is needed (the image is still found in-tree without a digest), has a
   reason and a tracking link, and is listed once. Staleness is judged over the recipes given:
   pass every recipe of the catalog.

Where: a finding in a manifest names the manifest file and the line that writes the image (or the
field holding it); an image our values set names the values file or overlay and the line of the
value (the last one that wins in precedence order). Findings are merged across recipes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .._yaml import YamlMap, load_file
from ..errors import RecipeError
from ..images.model import FoundImage, Origin, ValuePath, Via, format_path
from ..recipes import Component, Recipe
from ..vocabulary.reference import ImageRef
from .exemptions import ImageExemption
from .interface import Finding, Gate, GateInput, GateName

__all__ = ["InTreeDigestsPinned", "unpinned"]


def unpinned(ref: ImageRef) -> ImageRef:
    """``ref`` without its digest: what an exemption names."""
    return ImageRef(registry=ref.registry, repository=ref.repository, tag=ref.tag)


@dataclass(slots=True)
class _Place:
    image: FoundImage
    recipes: set[str] = field(default_factory=set)
    others: set[tuple[str, str]] = field(default_factory=set)
    values_at: str = ""


class InTreeDigestsPinned(Gate):
    """Gate 2 (see the module docstring)."""

    name = GateName.IN_TREE_DIGESTS

    def check(self, given: GateInput) -> list[Finding]:
        locator = _Locator(given.catalog.root, given.recipes)
        exempt = {e.image: e for e in given.exemptions.image_pins}
        used: set[ImageRef] = set()
        places: dict[tuple[str, int | None, str], _Place] = {}
        for recipe in sorted(given.images):
            for image in given.images[recipe]:
                if image.origin is not Origin.IN_TREE or image.ref.pinned:
                    continue
                if image.ref.digest is None and unpinned(image.ref) in exempt:
                    used.add(unpinned(image.ref))
                    continue
                file, line, values_at = locator.locate(image)
                key = (file, line, str(image.ref))
                place = places.setdefault(key, _Place(image=image, values_at=values_at))
                place.recipes.add(recipe)
                if (str(image.resource), image.field) != (str(place.image.resource), place.image.field):
                    place.others.add((str(image.resource), image.field))
        findings = [self._finding(file, line, place) for (file, line, _), place in places.items()]
        findings.extend(self._exemption_findings(given.exemptions.path, given.exemptions.image_pins, used))
        return findings

    def _finding(self, file: str, line: int | None, place: _Place) -> Finding:
        image = place.image
        shown = repr(image.written) + (f" ({image.ref})" if image.written != str(image.ref) else "")
        where = f"{image.resource} {image.field}"
        if place.others:
            where += f" and {len(place.others)} more place{'s' if len(place.others) > 1 else ''}"
        recipes = ", ".join(sorted(place.recipes))
        values = f"; set by our values at {place.values_at}" if place.values_at else ""
        if image.ref.digest is not None:
            algorithm = image.ref.digest.split(":", 1)[0]
            message = (f"in-tree image {shown} is pinned with a {algorithm} digest; only sha256 is accepted "
                       f"({where}; recipes: {recipes}{values})")
            hint = f"replace the {algorithm} digest by the image's sha256 digest ('skopeo inspect' prints it)"
            return Finding(gate=self.name, file=file, line=line, message=message, hint=hint)
        message = f"in-tree image {shown} has no sha256 digest ({where}; recipes: {recipes}{values})"
        in_manifest = file == image.file
        return Finding(gate=self.name, file=file, line=line, message=message, hint=_pin_hint(image, in_manifest))

    def _exemption_findings(self, path: str, entries: Sequence[ImageExemption], used: set[ImageRef]) -> list[Finding]:
        findings: list[Finding] = []
        seen: dict[ImageRef, ImageExemption] = {}

        def add(entry: ImageExemption, message: str, hint: str) -> None:
            findings.append(Finding(gate=self.name, file=path, line=entry.line, message=message, hint=hint))

        for entry in entries:
            what = f"imagePins entry for {entry.written!r}"
            if entry.image in seen:
                add(entry, f"{what} is listed twice (first at line {seen[entry.image].line})",
                    "keep one entry per image")
                continue
            seen[entry.image] = entry
            if not entry.reason:
                add(entry, f"{what} has no reason", "say why the image cannot be pinned by digest: 'reason: ...'")
            if not _is_https_url(entry.tracking):
                got = f"{entry.tracking!r} is not an https:// URL" if entry.tracking else "none is given"
                add(entry, f"{what} needs a tracking link ({got})",
                    "link the issue that tracks pinning it: 'tracking: https://…'")
            if entry.image not in used:
                add(entry, f"stale {what}: no recipe has this image in-tree without a digest any more",
                    "remove the entry (the image is pinned now, or no longer used)")
        return findings


def _containing(needle: str) -> Callable[[str], bool]:
    return lambda text: bool(needle) and needle in text


def _key_pattern(key: str) -> re.Pattern[str]:
    return re.compile(rf"^\s*(?:-\s+)?[\"']?{re.escape(key)}[\"']?\s*:")


def _first(lines: Sequence[str], test: Callable[[str], object], *, start: int = 1) -> int | None:
    """1-based number of the first non-comment line from ``start`` that passes ``test``."""
    for number in range(start, len(lines) + 1):
        text = lines[number - 1]
        if not text.lstrip().startswith("#") and test(text):
            return number
    return None


def _is_https_url(text: str) -> bool:
    parts = urlsplit(text)
    return parts.scheme == "https" and bool(parts.netloc) and " " not in text


def _pin_hint(image: FoundImage, in_manifest: bool) -> str:
    exemption = ("or list it under imagePins in exemptions.yaml with a reason and a tracking link "
                 "(an https:// issue URL)")
    resolve = "(python -m pipeline lock, or 'skopeo inspect', gives the digest)"
    if not in_manifest:
        paths = ", ".join(format_path(p) for p in image.set_by)
        return (f"our values choose this image ({paths}): pin it there by digest (a tag value may carry it, "
                f"'<tag>@sha256:<digest>', or use the chart's digest value) {resolve}, {exemption}")
    names = dict(image.parts)
    if image.via is Via.FIELDS and "containerSHA" in names:
        return f"set 'containerSHA: sha256:<digest>' {resolve}, {exemption}"
    if image.via is Via.FIELDS and "digest" in names:
        return f"set 'digest: sha256:<digest>' {resolve}, {exemption}"
    if image.via is Via.FIELDS and "version" in names and "tag" not in names:
        return (f"set 'version: sha256:<digest>' (operators that split an image this way take a digest "
                f"there) {resolve}, {exemption}")
    return f"write it as '{image.written}@sha256:<digest>' {resolve}, {exemption}"


class _Locator:
    """File and line of a found image in the catalog: the manifest line, or the value that set it."""

    def __init__(self, root: Path, recipes: Mapping[str, Recipe]) -> None:
        self.root = root
        self.recipes = recipes
        self._texts: dict[str, list[str] | None] = {}
        self._docs: dict[str, Any] = {}

    def locate(self, image: FoundImage) -> tuple[str, int | None, str]:
        """``(file, line, 'values file:line' or '')``."""
        component = self._component(image)
        value_at: tuple[str, int | None] | None = None
        if image.set_by and component is not None:
            # The value to change first: where a digest would go, then the name.
            ranked = sorted(image.set_by, key=lambda p: p[-1] not in ("containerSHA", "digest", "version", "tag"))
            value_at = self._value(component, ranked)
        values_note = f"{value_at[0]}:{value_at[1]}" if value_at and value_at[1] else (value_at[0] if value_at else "")
        if self._lines(image.file) is not None:
            return image.file, self._manifest_line(image), values_note
        if value_at is not None:
            return value_at[0], value_at[1], ""
        fallback = (component.values_files or component.origin_files) if component is not None else ()
        return (fallback[-1] if fallback else image.file), None, ""

    def _component(self, image: FoundImage) -> Component | None:
        recipe = self.recipes.get(image.recipe)
        if recipe is None:
            return None
        try:
            return recipe.component(image.component)
        except KeyError:
            return None

    def _lines(self, rel: str) -> list[str] | None:
        if rel not in self._texts:
            path = self.root / rel
            try:
                inside = path.resolve().is_relative_to(self.root.resolve())
                self._texts[rel] = path.read_text(encoding="utf-8").splitlines() if inside and path.is_file() else None
            except (OSError, UnicodeDecodeError):
                self._texts[rel] = None
        return self._texts[rel]

    def _manifest_line(self, image: FoundImage) -> int | None:
        """Best effort: the line writing the reference, or for sibling fields the line where its digest
        belongs (``containerSHA``/``digest``/``version``) inside the block of the field's key."""
        lines = self._lines(image.file) or []
        for needle in (image.written, image.ref.familiar()):
            line = _first(lines, _containing(needle))
            if line is not None:
                return line
        keys = [k for k in re.findall(r"[A-Za-z0-9_-]+", image.field.split(".{", 1)[0]) if not k.isdigit()]
        anchor = None
        for key in reversed(keys):
            anchor = _first(lines, _key_pattern(key).match)
            if anchor is not None:
                break
        names = [k for k, _ in image.parts]
        wanted = [k for k in ("containerSHA", "digest", "version", "tag", "image", "repository") if k in names]
        for key in wanted:
            line = _first(lines, _key_pattern(key).match, start=anchor or 1)
            if line is not None:
                return line
        return anchor

    def _value(self, component: Component, paths: Sequence[ValuePath]) -> tuple[str, int | None] | None:
        """Where the first of ``paths`` is set, searching the winning file first."""
        for path in paths:
            for source in reversed(component.overrides_from):
                line = self._find(self._override(source, component.name), path)
                if line is not None:
                    return source, line
            for source in reversed(component.values_files):
                line = self._find(self._doc(source), path)
                if line is not None:
                    return source, line
        return None

    def _doc(self, rel: str) -> Any:
        if rel not in self._docs:
            try:
                self._docs[rel] = load_file(self.root / rel, display=rel)
            except RecipeError:
                self._docs[rel] = None
        return self._docs[rel]

    def _override(self, source: str, component: str) -> Any:
        doc = self._doc(source)
        spec = doc.get("spec") if isinstance(doc, dict) else None
        for ref in (spec.get("componentRefs") if isinstance(spec, dict) else None) or []:
            if isinstance(ref, dict) and ref.get("name") == component:
                return ref.get("overrides")
        return None

    @staticmethod
    def _find(node: Any, path: ValuePath) -> int | None:
        line: int | None = None
        for key in path:
            if isinstance(key, int):
                if not isinstance(node, list) or key >= len(node):
                    return None
                node = node[key]
                line = node.line if isinstance(node, YamlMap) else line
            else:
                if not isinstance(node, dict) or key not in node:
                    return None
                line = node.line_of(key) if isinstance(node, YamlMap) else line
                node = node[key]
        return line

