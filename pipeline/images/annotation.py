"""The ``helm.sh/images`` chart annotation (Artifact Hub format), read from a chart's ``Chart.yaml``.

A chart may declare the images it deploys in ``Chart.yaml``::

    annotations:
      helm.sh/images: |
        - name: operator
          image: nvcr.io/nvidia/gpu-operator:v26.3.2

Input: the bytes of the chart's own (top-level) ``Chart.yaml`` and the chart directory's name, as
:func:`pipeline.charts.chart_yaml` reads them from a checked archive (discover never opens
archives: that is fetch's business). Output: :class:`AnnotatedImage` records in the order listed
(an entry without an ``image`` comes back with ``image=''``, which discovery rejects as empty).

Errors: :class:`~pipeline.errors.DiscoveryError` for a ``Chart.yaml`` that is not YAML or an
annotation that is not a YAML list of mappings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from .._yaml import load_yaml_strings, problem_of
from ..errors import DiscoveryError

__all__ = ["ANNOTATION", "AnnotatedImage", "annotation_images"]

ANNOTATION = "helm.sh/images"
_HINT = (f"'{ANNOTATION}' is a YAML list of '- name: <name>' / 'image: <reference>' entries (Artifact Hub "
         "format); fix the chart or report it to its maintainers")


@dataclass(frozen=True, slots=True, kw_only=True)
class AnnotatedImage:
    """One entry of a chart's ``helm.sh/images`` annotation."""

    chart: str
    index: int
    name: str
    image: str

    @property
    def file(self) -> str:
        return f"{self.chart}/Chart.yaml"

    @property
    def field(self) -> str:
        return f'annotations["{ANNOTATION}"][{self.index}].image'


def annotation_images(chart_yaml: bytes, *, chart: str) -> tuple[AnnotatedImage, ...]:
    """The annotated images of one ``Chart.yaml`` (``()`` when it has no such annotation)."""
    where = f"{chart}/Chart.yaml"
    try:
        meta = load_yaml_strings(chart_yaml)
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        problem, line, limit_hint = problem_of(exc)
        raise DiscoveryError(f"{where} is not readable YAML: {problem}", path=where, line=line,
                             hint=limit_hint or _HINT) from exc
    annotations = meta.get("annotations") if isinstance(meta, dict) else None
    text = annotations.get(ANNOTATION) if isinstance(annotations, dict) else None
    if text is None:
        return ()
    if not isinstance(text, str):
        raise DiscoveryError(f"annotation '{ANNOTATION}' in {where} must be a string holding YAML",
                             path=where, hint=_HINT)
    try:
        entries: Any = load_yaml_strings(text.encode())
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        problem, _, limit_hint = problem_of(exc)
        raise DiscoveryError(f"annotation '{ANNOTATION}' in {where} is not YAML: {problem}", path=where,
                             hint=limit_hint or _HINT) from exc
    if entries is None or entries == "":
        return ()
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise DiscoveryError(f"annotation '{ANNOTATION}' in {where} is not a list of mappings", path=where,
                             hint=_HINT)
    return tuple(
        AnnotatedImage(chart=chart, index=index, name=_str(entry.get("name")), image=_str(entry.get("image")))
        for index, entry in enumerate(entries)
    )


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""
