"""Image discovery: every image reference in a component's render, where it is, and who chose it.

Input: the component's rendered stream (bytes with ``# Source:`` headers), the component (its name,
the values our catalog sets, its in-tree manifest files), the recipe name, and optionally the
chart's ``helm.sh/images`` annotation entries (:mod:`pipeline.images.annotation`).

Output: a :class:`~pipeline.images.model.Discovery`: the images (:class:`FoundImage`, in stream
order, then annotation order) and the candidates refused (:class:`Rejected`, with the reason).
Images come from rendered documents, never guessed from values (see :mod:`pipeline.images._scan`
for the patterns). A candidate is refused when it is empty, an unrendered template (``{{``,
``${``), a file path, a URL, not a reference at all, or a placeholder: a bare name with no
registry, tag or digest (the GPU operator's ``vgpu-manager`` with empty repository and version).
A container's own ``image`` is the exception: Kubernetes pulls a bare ``busybox`` from Docker Hub,
so there it is an image.

Origin: ``in-tree`` when the document came from one of the component's manifest files, or when
one of our values strings went into the reference (:class:`~pipeline.images._trace.ValueTracer`;
the paths are kept in ``FoundImage.set_by``); ``chart-default`` otherwise.

Guarantees: a pure function of its inputs; equal inputs give equal, equally ordered results.
Errors: :class:`~pipeline.errors.DiscoveryError` (a document that is not YAML, a malformed
``containerSHA``, a malformed annotation).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from ..vocabulary.reference import ImageRef, ImageRefError
from ._scan import Candidate, scan
from ._trace import ValueTracer
from .annotation import AnnotatedImage
from .model import Discovery, FoundImage, Origin, Rejected, RejectReason, Resource, Via

__all__ = ["ComponentLike", "classify", "discover"]


class ComponentLike(Protocol):
    """What discovery needs of a component (:class:`pipeline.recipes.Component` fits)."""

    @property
    def name(self) -> str: ...

    @property
    def values(self) -> Mapping[str, Any]: ...

    @property
    def manifest_files(self) -> tuple[str, ...]: ...

    @property
    def pre_manifest_files(self) -> tuple[str, ...]: ...


def discover(
    stream: bytes,
    *,
    component: ComponentLike,
    recipe: str,
    annotations: Sequence[AnnotatedImage] = (),
) -> Discovery:
    """Every image of ``stream`` (and of the chart's annotation), with location and origin."""
    in_tree = frozenset((*component.manifest_files, *component.pre_manifest_files))
    tracer = ValueTracer(component.values)
    images: list[FoundImage] = []
    rejected: list[Rejected] = []
    for candidate in (*scan(stream), *_annotated(annotations)):
        outcome = classify(candidate.written, bare_ok=candidate.bare_ok)
        if isinstance(outcome, ImageRef):
            set_by = tracer.trace(candidate.written, outcome, candidate.parts)
            origin = Origin.IN_TREE if candidate.file in in_tree or set_by else Origin.CHART_DEFAULT
            images.append(FoundImage(
                ref=outcome, written=candidate.written, origin=origin, via=candidate.via, recipe=recipe,
                component=component.name, file=candidate.file, resource=candidate.resource,
                field=candidate.field, parts=candidate.parts, set_by=set_by,
            ))
        else:
            reason, detail = outcome
            rejected.append(Rejected(
                written=candidate.written, reason=reason, detail=detail, via=candidate.via, recipe=recipe,
                component=component.name, file=candidate.file, resource=candidate.resource,
                field=candidate.field, parts=candidate.parts,
            ))
    return Discovery(images=tuple(images), rejected=tuple(rejected))


def _annotated(annotations: Iterable[AnnotatedImage]) -> list[Candidate]:
    return [
        Candidate(file=a.file, resource=Resource(kind="Chart", namespace="", name=a.chart), field=a.field,
                  via=Via.ANNOTATION, written=a.image.strip())
        for a in annotations
    ]


def classify(text: str, *, bare_ok: bool = False) -> ImageRef | tuple[RejectReason, str]:
    """``text`` as an image reference, or why it is not one.

    ``bare_ok``: accept a name without registry, tag or digest (a container's ``image``).
    """
    if not text.strip():
        return RejectReason.EMPTY, "empty: no image is named here"
    if "{{" in text or "}}" in text or "${" in text:
        return RejectReason.TEMPLATE, "an unrendered template, not an image reference"
    if "://" in text:
        return RejectReason.URL, "a URL, not an image reference (drop the scheme)"
    if text.startswith(("/", "./", "../", "~")):
        return RejectReason.PATH, "a file path, not an image reference"
    try:
        ref = ImageRef.parse(text)
    except ImageRefError as exc:
        return RejectReason.INVALID, str(exc)
    if not bare_ok and ref.tag is None and ref.digest is None and not _names_registry(text):
        return RejectReason.PLACEHOLDER, ("a bare name with no registry, tag or digest: a placeholder to fill in, "
                                          "not an image")
    return ref


def _names_registry(text: str) -> bool:
    first, slash, _ = text.partition("/")
    return bool(slash) and ("." in first or ":" in first or first == "localhost" or first != first.lower())
