"""Compare renders with each other and with the lock; explain every divergence.

Pure functions over bytes and lock bodies: no rendering, no I/O except reading chart archives that
are already in memory. A divergence is explained down to recipe → component → file → resource
(kind/namespace/name) → field path, with a bounded unified diff, a structural diff, a verdict of
ordering-only versus value change, and the likely cause when the templates call functions that
cannot give the same bytes twice (``randAlphaNum``, ``uuidv4``, ``genCA``, ``now``, ``lookup``, …).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._yaml import load_all_bytes
from .charts import read_archive
from .lockfile import LockedRender
from .render.job import ComponentRender, assemble, segments_of
from .vocabulary.digest import sha256

__all__ = ["Divergence", "compare_renders", "likely_causes", "nondeterministic_calls"]

MAX_DIFF_LINES = 40
MAX_FIELDS = 12

#: Template functions whose output differs between two renders, or depends on a live cluster.
NONDETERMINISTIC = ("randAlphaNum", "randAlpha", "randNumeric", "randAscii", "randBytes", "randInt",
                    "uuidv4", "genCA", "genCAWithKey", "genSelfSignedCert", "genSelfSignedCertWithKey",
                    "genSignedCert", "genSignedCertWithKey", "genPrivateKey", "now", "lookup", "shuffle")
_CALL = re.compile(r"\{\{-?[^}]*?\b(" + "|".join(NONDETERMINISTIC) + r")\b[^}]*\}\}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Divergence:
    """One difference, located as precisely as the evidence allows."""

    recipe: str
    check: str
    component: str | None = None
    file: str | None = None
    resource: str | None = None
    summary: str = ""
    fields: tuple[str, ...] = ()
    ordering_only: bool = False
    diff: str = ""
    causes: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    def location(self) -> str:
        parts = [f"recipe '{self.recipe}'"]
        if self.component:
            parts.append(f"component '{self.component}'")
        if self.file:
            parts.append(f"file {self.file}")
        if self.resource:
            parts.append(f"resource {self.resource}")
        return " → ".join(parts)

    def format(self) -> str:
        lines = [f"[{self.check}] {self.location()}", f"  {self.summary}"]
        if self.ordering_only:
            lines.append("  kind of change: ordering only (the same documents/items, in another order)")
        elif self.fields:
            lines.append("  kind of change: values")
        for item in self.fields[:MAX_FIELDS]:
            lines.append(f"  field: {item}")
        if len(self.fields) > MAX_FIELDS:
            lines.append(f"  … and {len(self.fields) - MAX_FIELDS} more fields")
        for cause in self.causes:
            lines.append(f"  likely cause: {cause}")
        if self.diff:
            lines.append("  diff:")
            lines.extend("    " + line for line in self.diff.rstrip("\n").split("\n"))
        return "\n".join(lines)


def nondeterministic_calls(text: str) -> list[tuple[int, str]]:
    """``(line, function)`` for every nondeterministic template call in ``text``."""
    out: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        out.extend((number, match.group(1)) for match in _CALL.finditer(line))
    return out


def _chart_templates(archive: bytes | None) -> dict[str, str]:
    if archive is None:
        return {}
    # The one safe archive reader (size, path and member checks) even here, where the bytes are
    # the lock's own chart: a divergence report must not be the place a hostile archive gets through.
    return {path: data.decode(errors="replace")
            for path, data in read_archive(archive, source="the locked chart")[1].items() if "/templates/" in path}


def likely_causes(file: str, *, chart: bytes | None, in_tree: Mapping[str, bytes]) -> tuple[str, ...]:
    """Name the template and function most likely behind a divergence in rendered ``file``."""
    templates = _chart_templates(chart)
    templates.update({p: b.decode(errors="replace") for p, b in in_tree.items()})
    causes: list[str] = []
    direct = templates.get(file)
    if direct is not None:
        causes.extend(f"{file}:{line} calls {fn}" for line, fn in nondeterministic_calls(direct))
    if not causes:
        # The call may sit in a helper (_helpers.tpl) or another template the file includes.
        for path in sorted(templates):
            causes.extend(f"{path}:{line} calls {fn}" for line, fn in nondeterministic_calls(templates[path]))
    return tuple(causes)


def _resource_key(doc: Any) -> str:
    if not isinstance(doc, dict):
        return "<not a mapping>"
    meta = doc.get("metadata") or {}
    ns = meta.get("namespace")
    name = meta.get("name", "?")
    return f"{doc.get('kind', '?')}/{ns}/{name}" if ns else f"{doc.get('kind', '?')}/{name}"


def _docs(data: bytes) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for _, body in segments_of(data):
        try:
            for doc in load_all_bytes(body.encode()):
                out.append((_resource_key(doc), doc))
        except Exception:  # unparsable output is compared as text only
            out.append(("<unparsable>", body))
    return out


def _structural(a: bytes, b: bytes) -> tuple[list[tuple[str, list[str]]], bool]:
    """Per resource, the changed field paths; and whether the difference is ordering only."""
    from deepdiff import DeepDiff

    docs_a, docs_b = _docs(a), _docs(b)
    map_a: dict[str, list[Any]] = {}
    map_b: dict[str, list[Any]] = {}
    for key, doc in docs_a:
        map_a.setdefault(key, []).append(doc)
    for key, doc in docs_b:
        map_b.setdefault(key, []).append(doc)
    changes: list[tuple[str, list[str]]] = []
    ordering_only = True
    for key in sorted(set(map_a) | set(map_b)):
        left, right = map_a.get(key, []), map_b.get(key, [])
        if left == right:
            continue
        if not left or not right:
            changes.append((key, ["(resource only in " + ("second" if not left else "first") + " render)"]))
            ordering_only = False
            continue
        diff = DeepDiff(left, right, verbose_level=1)
        paths = sorted({_path(p) for kind in diff for p in _items(diff[kind])})
        if DeepDiff(left, right, ignore_order=True):
            ordering_only = False
        changes.append((key, paths))
    if not changes and [k for k, _ in docs_a] != [k for k, _ in docs_b]:
        changes.append(("(stream)", ["document order differs"]))
    return changes, ordering_only and bool(changes)


def _items(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [str(k) for k in value]
    return [str(v) for v in value]


def _path(deep_path: str) -> str:
    # DeepDiff paths look like root[0]['spec']['replicas']; show them as [0].spec.replicas without the doc index.
    text = re.sub(r"^root\[\d+\]", "", deep_path)
    return re.sub(r"\['([^']*)'\]", r".\1", text).lstrip(".") or "(whole document)"


def _unified(a: bytes, b: bytes, label_a: str, label_b: str) -> str:
    lines = list(difflib.unified_diff(a.decode(errors="replace").splitlines(),
                                      b.decode(errors="replace").splitlines(),
                                      fromfile=label_a, tofile=label_b, lineterm="", n=2))
    if len(lines) > MAX_DIFF_LINES:
        lines = [*lines[:MAX_DIFF_LINES], f"… ({len(lines) - MAX_DIFF_LINES} more diff lines)"]
    return "\n".join(lines)


def compare_renders(
    *,
    recipe: str,
    component: str,
    check: str,
    first: ComponentRender,
    second: ComponentRender,
    labels: tuple[str, str],
    chart: bytes | None,
    in_tree: Mapping[str, bytes],
) -> list[Divergence]:
    """Every difference between two renders of one component, file by file, resource by resource."""
    if first.stream == second.stream:
        return []
    out: list[Divergence] = []
    files_a, files_b = first.file_map(), second.file_map()
    for path in sorted(set(files_a) | set(files_b)):
        a, b = files_a.get(path), files_b.get(path)
        if a == b:
            continue
        if a is None or b is None:
            out.append(Divergence(recipe=recipe, check=check, component=component, file=path,
                                  summary=f"file only in the {labels[0] if b is None else labels[1]} render"))
            continue
        changes, ordering_only = _structural(a, b)
        causes = () if ordering_only else likely_causes(path, chart=chart, in_tree=in_tree)
        diff = _unified(a, b, f"{labels[0]}/{path}", f"{labels[1]}/{path}")
        if not changes:
            changes = [("(text)", ["formatting only (the parsed documents are equal)"])]
        for resource, paths in changes:
            out.append(Divergence(
                recipe=recipe, check=check, component=component, file=path, resource=resource,
                summary=f"{labels[0]} {sha256(a)} ≠ {labels[1]} {sha256(b)}",
                fields=tuple(paths), ordering_only=ordering_only, diff=diff, causes=causes,
            ))
            diff = ""  # show the text diff once per file
    if not out:
        # Same files, different stream: the order of files in the stream changed.
        out.append(Divergence(recipe=recipe, check=check, component=component,
                              summary="the same files in a different stream order", ordering_only=True))
    return out


def compare_with_lock(
    *,
    recipe: str,
    component: str,
    render: ComponentRender,
    locked: LockedRender,
    locked_stream: bytes | None,
    chart: bytes | None,
    in_tree: Mapping[str, bytes],
) -> list[Divergence]:
    """Differences between a render and the lock entry of the same component."""
    if sha256(render.stream) == locked.stream:
        return []
    if locked_stream is not None and sha256(locked_stream) == locked.stream:
        return compare_renders(recipe=recipe, component=component, check="render = lock",
                               first=assemble(segments_of(locked_stream)), second=render, labels=("lock", "render"),
                               chart=chart, in_tree=in_tree)
    out: list[Divergence] = []
    locked_files: Mapping[str, str] = dict(locked.files)
    current = {path: sha256(data) for path, data in render.files}
    for path in sorted(set(locked_files) | set(current)):
        if locked_files.get(path) == current.get(path):
            continue
        causes = likely_causes(path, chart=chart, in_tree=in_tree)
        out.append(Divergence(
            recipe=recipe, check="render = lock", component=component, file=path,
            summary=f"lock {locked_files.get(path, '(absent)')} ≠ render {current.get(path, '(absent)')}"
                    " (locked bytes not in the local cache: run 'nox -s lock' and 'git diff' to see them)",
            causes=causes,
        ))
    if not out:
        out.append(Divergence(recipe=recipe, check="render = lock", component=component,
                              summary="the same files in a different stream order", ordering_only=True))
    return out


def compare_images(*, recipe: str, component: str, found: Sequence[str], locked: Sequence[str]) -> list[Divergence]:
    """Images found in the render versus images in the lock, by reference."""
    added = sorted(set(found) - set(locked))
    removed = sorted(set(locked) - set(found))
    out = [Divergence(recipe=recipe, check="images = lock", component=component,
                      summary=f"image {ref!r} found in the render but not in the lock") for ref in added]
    out += [Divergence(recipe=recipe, check="images = lock", component=component,
                       summary=f"image {ref!r} is in the lock but no longer in the render") for ref in removed]
    return out
