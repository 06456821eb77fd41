"""Human-readable views of discovered images: the inventory table and ``--why IMAGE``.

Pure functions from :class:`FoundImage` / :class:`Rejected` records to text (``\\n`` line endings,
sorted, no terminal codes): the CLI prints what they return. Errors: :func:`explain` raises
:class:`~pipeline.errors.UsageError` when no found image matches the query (with the closest names).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import assert_never

from ..errors import UsageError
from ..vocabulary.reference import ImageRef, ImageRefError
from ._scan import shape_named
from .model import FoundImage, Origin, Rejected, Via, format_path

__all__ = ["explain", "format_inventory", "matches"]


def format_inventory(found: Iterable[FoundImage], rejected: Iterable[Rejected] = ()) -> str:
    """One line per distinct image (sorted): reference, origin, components, number of places.

    An image is ``in-tree`` when any of its places is. Refused candidates follow, one per line.
    """
    by_ref: dict[ImageRef, list[FoundImage]] = {}
    for image in found:
        by_ref.setdefault(image.ref, []).append(image)
    rows = [("IMAGE", "ORIGIN", "COMPONENTS", "PLACES")]
    for ref in sorted(by_ref, key=str):
        places = by_ref[ref]
        origin = Origin.IN_TREE if any(p.origin is Origin.IN_TREE for p in places) else Origin.CHART_DEFAULT
        components = ",".join(sorted({p.component for p in places}))
        count = len({(p.recipe, p.component, p.file, p.resource, p.field) for p in places})
        rows.append((str(ref), origin.value, components, str(count)))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}".rstrip() for r in rows]
    lines.append(f"{len(by_ref)} images")
    refused = sorted({(r.component, r.found_at, r.written, r.detail) for r in rejected})
    if refused:
        lines.append("")
        lines.append(f"not images ({len(refused)}):")
        lines.extend(f"  {component}: {written!r} at {where}: {detail}"
                     for component, where, written, detail in refused)
    return "\n".join(lines) + "\n"


def matches(image: FoundImage, query: ImageRef) -> bool:
    """Whether ``image`` is what ``query`` names: the same reference, or the same name when the
    query has no digest (any digest) or neither tag nor digest (any tag)."""
    ref = image.ref
    if ref.name != query.name:
        return False
    if query.digest is not None:
        return ref.digest == query.digest and (query.tag is None or ref.tag == query.tag)
    return query.tag is None or ref.tag == query.tag


def _how(via: Via) -> str:
    match via:
        case Via.CONTAINER:
            return "a container's image"
        case Via.FIELDS:
            return "sibling fields"
        case Via.FIELD:
            return "an image field"
        case Via.ENV:
            return "an environment variable"
        case Via.ARG:
            return "a container argument"
        case Via.ANNOTATION:
            return "the chart's helm.sh/images annotation"
        case _:
            assert_never(via)


def explain(found: Sequence[FoundImage], image: str) -> str:
    """Every place ``image`` came from: recipe, component, file, resource, field, how and who chose it."""
    try:
        query = ImageRef.parse(image.strip())
    except ImageRefError as exc:
        raise UsageError(f"--why {image!r}: {exc}",
                         hint="give an image reference, e.g. nvcr.io/nvidia/driver:580.95.05") from exc
    hits = [f for f in found if matches(f, query)]
    if not hits:
        names = sorted({str(f.ref) for f in found})
        close = difflib.get_close_matches(str(query), names, n=3, cutoff=0.5)
        hint = (f"did you mean: {', '.join(close)}" if close
                else "list the images with 'python -m pipeline images <recipe>'")
        raise UsageError(f"image {str(query)!r} is not in the render", hint=hint)
    lines: list[str] = []
    for ref in sorted({h.ref for h in hits}, key=str):
        places = sorted((h for h in hits if h.ref == ref),
                        key=lambda h: (h.recipe, h.component, h.file, str(h.resource), h.field))
        origin = Origin.IN_TREE if any(p.origin is Origin.IN_TREE for p in places) else Origin.CHART_DEFAULT
        digest = "pinned by digest" if ref.pinned else "not pinned by digest"
        lines.append(f"{ref}  ({origin.value}, {digest}, {len(places)} places)")
        for place in places:
            lines.append(f"  recipe {place.recipe}, component {place.component}: {place.file}")
            lines.append(f"    {place.resource} {place.field}")
            how = f"    found in {_how(place.via)}, written {place.written!r}"
            if place.parts:
                how += " from " + ", ".join(f"{k}={v!r}" for k, v in place.parts)
                shape = shape_named([k for k, _ in place.parts]) if place.via is Via.FIELDS else None
                if shape is not None:
                    how += f", joined as {shape.label}"
            lines.append(how)
            if place.set_by:
                lines.append(f"    set by our values: {', '.join(format_path(p) for p in place.set_by)}")
            elif place.origin is Origin.IN_TREE:
                lines.append("    written in our manifest")
            else:
                lines.append("    the chart's default")
    return "\n".join(lines) + "\n"
