"""Image discovery in rendered documents (pod specs; full operator-CR discovery is a later stage).

Input: a component's rendered stream and its merged values. Output: :class:`FoundImage` records,
one per place an image reference occurs, with the source file, the Kubernetes resource
(kind/namespace/name) and the field path, and the origin: ``in-tree`` when the reference comes from
our own manifests or our values, ``chart-default`` otherwise. Never guessed from values alone.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ._yaml import load_all_bytes
from .render.job import segments_of

__all__ = ["FoundImage", "Origin", "discover", "reference_digest"]

_WORKLOAD_POD_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "PodTemplate": ("template", "spec"),
}
_CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")
# Cheap pre-filter on the document text: only documents whose top-level kind can hold a pod spec are
# parsed (CRDs, RBAC and config documents are most of a render's bytes and never are).
_MAY_HOLD_PODS = re.compile(r"^kind:\s*['\"]?(?:" + "|".join(_WORKLOAD_POD_PATHS) + r"|\w*List)['\"]?\s*$",
                            re.MULTILINE)
_DIGEST = re.compile(r"@(sha256:[0-9a-f]{64})$")


class Origin(enum.StrEnum):
    IN_TREE = "in-tree"
    CHART_DEFAULT = "chart-default"


@dataclass(frozen=True, slots=True, kw_only=True)
class FoundImage:
    """One occurrence of an image reference in a render."""

    ref: str
    origin: Origin
    file: str
    resource: str
    field: str

    @property
    def found_at(self) -> str:
        return f"{self.resource} {self.field} ({self.file})"


def reference_digest(ref: str) -> str | None:
    """The ``sha256:`` digest a reference carries, if any."""
    match = _DIGEST.search(ref)
    return match.group(1) if match else None


def _resource(doc: Mapping[str, Any]) -> str:
    meta = doc.get("metadata") or {}
    namespace = meta.get("namespace")
    name = meta.get("name", "?")
    return f"{doc.get('kind', '?')}/{namespace}/{name}" if namespace else f"{doc.get('kind', '?')}/{name}"


def _walk(doc: Mapping[str, Any], prefix: str) -> Iterator[tuple[str, str]]:
    kind = doc.get("kind")
    if kind == "List" or (isinstance(kind, str) and kind.endswith("List") and isinstance(doc.get("items"), list)):
        for index, item in enumerate(doc.get("items") or []):
            if isinstance(item, dict):
                yield from _walk(item, f"{prefix}.items[{index}]")
        return
    path = _WORKLOAD_POD_PATHS.get(str(kind))
    if path is None:
        return
    node: Any = doc
    for step in path:
        node = node.get(step) if isinstance(node, dict) else None
    if not isinstance(node, dict):
        return
    field = prefix + "".join(f".{s}" for s in path)
    for key in _CONTAINER_LISTS:
        containers = node.get(key)
        if not isinstance(containers, list):
            continue
        for index, container in enumerate(containers):
            image = container.get("image") if isinstance(container, dict) else None
            if isinstance(image, str) and image.strip():
                yield f"{field}.{key}[{index}].image", image.strip()


def _value_strings(values: Any) -> Iterator[str]:
    if isinstance(values, dict):
        for v in values.values():
            yield from _value_strings(v)
    elif isinstance(values, list):
        for v in values:
            yield from _value_strings(v)
    elif isinstance(values, str):
        yield values


def discover(stream: bytes, *, values: Mapping[str, Any], in_tree_files: frozenset[str]) -> list[FoundImage]:
    """Every image reference in ``stream`` with where it was found, in stream order."""
    ours = set(_value_strings(values))
    found: list[FoundImage] = []
    for path, body in segments_of(stream):
        if not _MAY_HOLD_PODS.search(body):
            continue
        for doc in load_all_bytes(body.encode()):
            if not isinstance(doc, dict):
                continue
            resource = _resource(doc)
            for field, ref in _walk(doc, ""):
                origin = Origin.IN_TREE if path in in_tree_files or _set_by_values(ref, ours) else Origin.CHART_DEFAULT
                found.append(FoundImage(ref=ref, origin=origin, file=path, resource=resource, field=field.lstrip(".")))
    return found


def _set_by_values(ref: str, ours: set[str]) -> bool:
    """Whether our values (not the chart's defaults) chose this reference or a part of it.

    A heuristic until values are traced through templates: the whole reference, its repository,
    its digest or its tag appears verbatim as a string in our merged values.
    """
    if ref in ours:
        return True
    name, _, digest = ref.partition("@")
    repository, colon, tag = name.rpartition(":")
    if not colon or "/" in tag:
        repository, tag = name, ""
    return any(part and part in ours for part in (repository, tag, digest))
