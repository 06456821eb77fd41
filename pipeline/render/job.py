"""Render jobs and their results: pure records and the pure function that runs one job.

A :class:`RenderJob` carries everything one component's render depends on (chart archive bytes,
values, capabilities, in-tree manifest templates), so it can cross a process boundary and be keyed
by content: two jobs with the same :meth:`RenderJob.key` give the same bytes, so a run renders each
key once. :func:`run_job` turns a job into a :class:`ComponentRender`: the stream a user would apply
(pre-manifests, then exactly what ``helm template --include-crds`` prints for the chart — CRDs, the
kind-sorted manifest, hooks — then post-manifests, each segment under a ``# Source:`` header) and the
same bytes grouped by source file. A segment is ``---\n# Source: PATH\n`` and its body exactly as
printed: :func:`segments_of` and :func:`assemble` are inverses.

In-tree manifests are the catalog's own (AICR applies them file by file, not in Helm's kind order):
each document of a rendered file becomes a segment of its own, stripped of surrounding blank lines.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..vocabulary.digest import Digest, canonical_json, sha256, sha256_of_entries

__all__ = ["ComponentRender", "RenderDigests", "RenderJob", "assemble", "run_job", "segments_of", "split_documents"]

_SOURCE = re.compile(r"^---\n# Source: (?P<path>[^\n]*)\n", re.MULTILINE)
_DOC_SEPARATOR = re.compile(r"^---[ \t]*(?:#[^\n]*)?$\n?", re.MULTILINE)


@dataclass(frozen=True, slots=True, kw_only=True)
class RenderJob:
    """One component's render, self-contained and picklable."""

    component: str
    what: str
    chart: bytes | None
    values: Mapping[str, Any]
    release: str
    namespace: str
    kube_version: str
    api_versions: tuple[str, ...]
    manifest_chart_version: str
    pre_manifests: tuple[tuple[str, bytes], ...] = ()
    manifests: tuple[tuple[str, bytes], ...] = ()

    def key(self) -> Digest:
        """Content key: equal keys render to equal bytes (what a run deduplicates on)."""
        body = {
            "component": self.component,
            "chart": sha256(self.chart) if self.chart is not None else None,
            "values": self.values,
            "release": self.release,
            "namespace": self.namespace,
            "kubeVersion": self.kube_version,
            "apiVersions": list(self.api_versions),
            "manifestChartVersion": self.manifest_chart_version,
            "pre": [[p, sha256(b)] for p, b in self.pre_manifests],
            "post": [[p, sha256(b)] for p, b in self.manifests],
        }
        return sha256(canonical_json(body))


@dataclass(frozen=True, slots=True, kw_only=True)
class ComponentRender:
    """A component's rendered bytes: the whole stream, and per source file (stream order)."""

    stream: bytes
    files: tuple[tuple[str, bytes], ...]

    def file_map(self) -> dict[str, bytes]:
        return dict(self.files)


class RenderDigests:
    """The digests of renders, computed once per render of a run however many recipes share it.

    A catalog's recipes share most component renders (the same :class:`ComponentRender` object
    comes out of the render results for every recipe whose job has that content key), and each
    recipe's lock records their digests: hashing them again per recipe made a relock's cost grow
    with the number of recipes times the rendered bytes (a 1.7 MB chart in 100 recipes: 170 MB hashed). Keyed by the
    object's identity; each entry holds its render, so an identity is never reused within the memo.
    """

    __slots__ = ("_files", "_streams")

    def __init__(self) -> None:
        self._streams: dict[int, tuple[ComponentRender, Digest]] = {}
        self._files: dict[int, tuple[ComponentRender, tuple[tuple[str, Digest], ...], Digest]] = {}

    def stream(self, render: ComponentRender) -> Digest:
        """sha256 of the whole stream."""
        hit = self._streams.get(id(render))
        if hit is None or hit[0] is not render:
            hit = (render, sha256(render.stream))
            self._streams[id(render)] = hit
        return hit[1]

    def files(self, render: ComponentRender) -> tuple[tuple[tuple[str, Digest], ...], Digest]:
        """sha256 of each source file (sorted by path) and their root (:func:`sha256_of_entries`)."""
        hit = self._files.get(id(render))
        if hit is None or hit[0] is not render:
            hit = (render, tuple(sorted((path, sha256(data)) for path, data in render.files)),
                   sha256_of_entries(render.files))
            self._files[id(render)] = hit
        return hit[1], hit[2]


def _segment(path: str, body: str) -> str:
    return f"---\n# Source: {path}\n{body}"


def _in_tree(path: str, doc: str) -> tuple[str, str]:
    return path, doc.strip("\n") + "\n"


def split_documents(text: str) -> list[str]:
    """Split a YAML stream on ``---`` lines; drop empty documents (Helm does the same)."""
    return [doc for doc in _DOC_SEPARATOR.split(text) if doc.strip()]


def run_job(job: RenderJob, engine_name: str = "helm-python-sdk") -> ComponentRender:
    """Render one job with the engine (imported here: only worker processes load it).

    ``engine_name`` is ``helm-python-sdk`` (in-process, the default) or ``helm-cli`` (the pinned
    ``helm`` binary named by ``PIPELINE_HELM``; see :mod:`pipeline.render.helm_cli`).
    """
    from .engines import RenderTarget, load_engine
    from .wrapper import WrapperChart

    engine = load_engine(engine_name)
    target = RenderTarget(release=job.release, namespace=job.namespace, kube_version=job.kube_version,
                          api_versions=job.api_versions)
    segments: list[tuple[str, str]] = []
    templates = dict((*job.pre_manifests, *job.manifests))
    rendered_manifests: dict[str, str] = {}
    if templates:
        wrapper = WrapperChart.of(templates, name=job.component, version=job.manifest_chart_version)
        rendered_manifests = engine.render_templates(wrapper, values={job.component: dict(job.values)}, target=target,
                                                     what=f"component '{job.component}' in-tree manifests")
    for path, _ in job.pre_manifests:
        segments.extend(_in_tree(path, doc) for doc in split_documents(rendered_manifests.get(path, "")))
    if job.chart is not None:
        template = engine.template_chart(job.chart, values=job.values, target=target, what=job.what)
        # Helm prints a lone newline when a chart renders no CRD and no manifest (hooks only, or
        # nothing): the one byte of its output that is not inside a segment (README "Helm parity").
        segments.extend(_sources(template))
    for path, _ in job.manifests:
        segments.extend(_in_tree(path, doc) for doc in split_documents(rendered_manifests.get(path, "")))
    return assemble(segments)


def assemble(segments: list[tuple[str, str]]) -> ComponentRender:
    """Build the stream and the per-file bytes from ``(source path, document)`` pairs."""
    stream_parts: list[str] = []
    by_file: dict[str, list[str]] = {}
    for path, body in segments:
        seg = _segment(path, body)
        stream_parts.append(seg)
        by_file.setdefault(path, []).append(seg)
    return ComponentRender(
        stream="".join(stream_parts).encode(),
        files=tuple((path, "".join(parts).encode()) for path, parts in by_file.items()),
    )


def segments_of(stream: bytes) -> list[tuple[str, str]]:
    """Inverse of :func:`assemble`: the ``(source path, body as printed)`` pairs of a stream."""
    return _sources(stream.decode())


def _sources(manifest: str) -> list[tuple[str, str]]:
    """``(source path, document)`` pairs of a Helm manifest stream, in stream order."""
    matches = list(_SOURCE.finditer(manifest))
    out: list[tuple[str, str]] = []
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(manifest)
        out.append((match["path"], manifest[match.end():end]))
    return out
