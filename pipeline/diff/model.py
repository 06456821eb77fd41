"""What changes between two lock sets, as rows a reviewer reads: :func:`diff_locks`.

Inputs: two :class:`~pipeline.diff.sources.LockSet` (each lock already parsed and verified by the
lockfile model) and a way to get rendered streams by their locked digest (the render cache, or a
re-render the caller arranges). Output: a :class:`LockDiff`, every row sorted, no clock, no paths
of this machine. Per recipe:

- recipes added or removed; components added or removed;
- charts: version, archive digest and tree digest changes (a component that gains or loses a chart
  is a chart added or removed);
- images, per component, by reference: added, removed, **re-tagged** (the same repository under
  another tag; paired in sorted order when a repository has several), **re-digested** (the same
  reference locked at another digest), and per-platform digest changes;
- rendered resources (kind/namespace/name) added, removed, changed (with the field paths), or
  reordered only: the structural diff of :func:`pipeline.reproduce.compare_renders`, the one the
  reproduce report uses. A component whose streams cannot be had is reported per file, by digest.

Nothing here reads files or the network.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..lockfile import LockedChart, LockedComponent, LockedImage, Lockfile
from ..render.job import ComponentRender, assemble, segments_of
from ..reproduce import Divergence, compare_renders
from ..vocabulary.digest import Digest
from .sources import LockSet

__all__ = ["Change", "DiffRow", "LockDiff", "StreamSource", "Subject", "diff_locks", "missing_streams", "streams_of"]

#: The rendered stream whose sha256 is the digest, or ``None`` when it cannot be had.
StreamSource = Callable[[Digest], bytes | None]

_ONLY_FIRST = "(resource only in first render)"
_ONLY_SECOND = "(resource only in second render)"


class Subject(enum.StrEnum):
    """What a row is about (in report order)."""

    RECIPE = "recipe"
    COMPONENT = "component"
    CHART = "chart"
    IMAGE = "image"
    RESOURCE = "resource"


class Change(enum.StrEnum):
    """How it changed."""

    ADDED = "added"
    REMOVED = "removed"
    VERSION = "version"
    ARCHIVE = "archive"
    TREE = "tree"
    RETAGGED = "re-tagged"
    REDIGESTED = "re-digested"
    PLATFORMS = "platforms"
    CHANGED = "changed"
    REORDERED = "reordered"
    #: the rendered bytes changed, but neither stream was available to compare structurally
    UNCOMPARED = "not compared"


_SUBJECT_ORDER = {s: i for i, s in enumerate(Subject)}


@dataclass(frozen=True, slots=True, kw_only=True)
class DiffRow:
    """One change. ``item`` names the thing (component, chart, image reference or repository,
    resource ``Kind/namespace/name``); ``file`` the rendered file a resource came from."""

    recipe: str
    subject: Subject
    change: Change
    item: str
    component: str = ""
    file: str = ""
    before: str = ""
    after: str = ""
    detail: tuple[str, ...] = ()

    def sort_key(self) -> tuple[Any, ...]:
        return (self.recipe, self.component, _SUBJECT_ORDER[self.subject], self.item, self.file, self.change.value)

    def as_json(self) -> dict[str, Any]:
        return {"recipe": self.recipe, "component": self.component, "subject": self.subject.value,
                "change": self.change.value, "item": self.item, "file": self.file, "before": self.before,
                "after": self.after, "detail": list(self.detail)}


@dataclass(frozen=True, slots=True, kw_only=True)
class LockDiff:
    """Every change from ``before`` to ``after`` (labels of the two sides), rows sorted."""

    before: str
    after: str
    recipes: tuple[str, ...]
    rows: tuple[DiffRow, ...]

    @property
    def equal(self) -> bool:
        return not self.rows

    def rows_of(self, recipe: str) -> tuple[DiffRow, ...]:
        return tuple(r for r in self.rows if r.recipe == recipe)

    @property
    def changed_recipes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.recipe for r in self.rows))


def _chart_label(chart: LockedChart | None) -> str:
    return f"{chart.name}@{chart.version}" if chart is not None else "(no chart)"


def _chart_rows(recipe: str, component: str, before: LockedChart | None, after: LockedChart | None) -> list[DiffRow]:
    if before is None and after is None:
        return []
    if before is None or after is None:
        chart = after or before
        assert chart is not None
        return [DiffRow(recipe=recipe, component=component, subject=Subject.CHART,
                        change=Change.ADDED if before is None else Change.REMOVED, item=chart.name,
                        before=_chart_label(before), after=_chart_label(after), detail=(chart.repository,))]
    rows: list[DiffRow] = []
    item = after.name if after.name == before.name else f"{before.name} → {after.name}"
    if (before.repository, before.name, before.version) != (after.repository, after.name, after.version):
        detail = (f"repository {before.repository} → {after.repository}",) if before.repository != after.repository \
            else ()
        rows.append(DiffRow(recipe=recipe, component=component, subject=Subject.CHART, change=Change.VERSION,
                            item=item, before=before.version, after=after.version, detail=detail))
    for change, old, new in ((Change.ARCHIVE, before.archive, after.archive), (Change.TREE, before.tree, after.tree)):
        if old != new:
            rows.append(DiffRow(recipe=recipe, component=component, subject=Subject.CHART, change=change,
                                item=item, before=old, after=new))
    return rows


def _platform_changes(before: LockedImage, after: LockedImage) -> tuple[str, ...]:
    old, new = dict(before.platforms or ()), dict(after.platforms or ())
    out = []
    for platform in sorted(set(old) | set(new)):
        if platform not in new:
            out.append(f"{platform} removed")
        elif platform not in old:
            out.append(f"{platform} added {new[platform]}")
        elif old[platform] != new[platform]:
            out.append(f"{platform} {old[platform]} → {new[platform]}")
    return tuple(out)


def _repository(image: LockedImage) -> str:
    return f"{image.image.registry}/{image.image.repository}"


def _image_rows(recipe: str, component: str, before: Sequence[LockedImage],
                after: Sequence[LockedImage]) -> list[DiffRow]:
    old = {i.ref: i for i in before}
    new = {i.ref: i for i in after}
    rows: list[DiffRow] = []
    for ref in sorted(set(old) & set(new)):
        a, b = old[ref], new[ref]
        platforms = _platform_changes(a, b)
        if a.digest != b.digest:
            rows.append(DiffRow(recipe=recipe, component=component, subject=Subject.IMAGE, change=Change.REDIGESTED,
                                item=ref, before=a.digest or "(no digest)", after=b.digest or "(no digest)",
                                detail=platforms))
        elif platforms:
            rows.append(DiffRow(recipe=recipe, component=component, subject=Subject.IMAGE, change=Change.PLATFORMS,
                                item=ref, before=a.digest or "", after=b.digest or "", detail=platforms))
    gone = sorted(set(old) - set(new))
    came = sorted(set(new) - set(old))
    by_repo_gone: dict[str, list[str]] = {}
    by_repo_came: dict[str, list[str]] = {}
    for ref in gone:
        by_repo_gone.setdefault(_repository(old[ref]), []).append(ref)
    for ref in came:
        by_repo_came.setdefault(_repository(new[ref]), []).append(ref)
    paired: set[str] = set()
    for repo in sorted(set(by_repo_gone) & set(by_repo_came)):
        for a_ref, b_ref in zip(by_repo_gone[repo], by_repo_came[repo], strict=False):
            a, b = old[a_ref], new[b_ref]
            detail = ((f"digest {a.digest or '(none)'} → {b.digest or '(none)'}",) if a.digest != b.digest else ()) \
                + _platform_changes(a, b)
            rows.append(DiffRow(recipe=recipe, component=component, subject=Subject.IMAGE, change=Change.RETAGGED,
                                item=repo, before=a_ref, after=b_ref, detail=detail))
            paired.update((a_ref, b_ref))
    rows += [DiffRow(recipe=recipe, component=component, subject=Subject.IMAGE, change=Change.REMOVED, item=ref,
                     before=old[ref].digest or "(no digest)") for ref in gone if ref not in paired]
    rows += [DiffRow(recipe=recipe, component=component, subject=Subject.IMAGE, change=Change.ADDED, item=ref,
                     after=new[ref].digest or "(no digest)") for ref in came if ref not in paired]
    return rows


def _with_every_file(render: ComponentRender, paths: Sequence[str]) -> ComponentRender:
    """``render`` with an empty entry for each path it lacks, so a file that appears or disappears is
    compared resource by resource (each of its resources added or removed) rather than as a whole."""
    present = render.file_map()
    return ComponentRender(stream=render.stream,
                           files=tuple((p, present.get(p, b"")) for p in paths))


def _resource_row(recipe: str, component: str, divergence: Divergence) -> DiffRow:
    fields = divergence.fields
    file = divergence.file or ""
    detail: tuple[str, ...]
    if divergence.resource is None or divergence.resource == "(stream)":
        return DiffRow(recipe=recipe, component=component, subject=Subject.RESOURCE, change=Change.REORDERED,
                       item="(document order)", file=file, detail=fields or (divergence.summary,))
    if fields == (_ONLY_SECOND,):
        change, detail = Change.ADDED, ()
    elif fields == (_ONLY_FIRST,):
        change, detail = Change.REMOVED, ()
    elif divergence.ordering_only:
        change, detail = Change.REORDERED, fields
    else:
        change, detail = Change.CHANGED, fields
    return DiffRow(recipe=recipe, component=component, subject=Subject.RESOURCE, change=change,
                   item=divergence.resource, file=file, detail=detail)


def _resource_rows(recipe: str, component: str, before: LockedComponent, after: LockedComponent,
                   streams: StreamSource) -> list[DiffRow]:
    if before.render.stream == after.render.stream:
        return []
    old_stream, new_stream = streams(before.render.stream), streams(after.render.stream)
    if old_stream is None or new_stream is None:
        old_files, new_files = dict(before.render.files), dict(after.render.files)
        missing = [side for side, data in (("before", old_stream), ("after", new_stream)) if data is None]
        note = f"rendered stream of {' and '.join(missing)} not in the render cache and not re-rendered"
        return [DiffRow(recipe=recipe, component=component, subject=Subject.RESOURCE, change=Change.UNCOMPARED,
                        item=path, file=path, before=old_files.get(path, ""), after=new_files.get(path, ""),
                        detail=(note,))
                for path in sorted(set(old_files) | set(new_files)) if old_files.get(path) != new_files.get(path)]
    first, second = assemble(segments_of(old_stream)), assemble(segments_of(new_stream))
    paths = list(dict.fromkeys([*first.file_map(), *second.file_map()]))
    divergences = compare_renders(recipe=recipe, component=component, check="diff",
                                  first=_with_every_file(first, paths), second=_with_every_file(second, paths),
                                  labels=("before", "after"), chart=None, in_tree={})
    return [_resource_row(recipe, component, d) for d in divergences]


def _component_label(component: LockedComponent) -> str:
    return _chart_label(component.chart) if component.chart is not None else "manifests only"


def _recipe_rows(name: str, before: Lockfile, after: Lockfile, streams: StreamSource) -> list[DiffRow]:
    rows: list[DiffRow] = []
    old, new = before.components, after.components
    for component in sorted(set(old) - set(new)):
        rows.append(DiffRow(recipe=name, component=component, subject=Subject.COMPONENT, change=Change.REMOVED,
                            item=component, before=_component_label(old[component]),
                            detail=tuple(i.ref for i in old[component].images)))
    for component in sorted(set(new) - set(old)):
        rows.append(DiffRow(recipe=name, component=component, subject=Subject.COMPONENT, change=Change.ADDED,
                            item=component, after=_component_label(new[component]),
                            detail=tuple(i.ref for i in new[component].images)))
    for component in sorted(set(old) & set(new)):
        a, b = old[component], new[component]
        rows += _chart_rows(name, component, a.chart, b.chart)
        rows += _image_rows(name, component, a.images, b.images)
        rows += _resource_rows(name, component, a, b, streams)
    return rows


def diff_locks(before: LockSet, after: LockSet, *, streams: StreamSource) -> LockDiff:
    """Every change from ``before`` to ``after`` (see the module docstring)."""
    rows: list[DiffRow] = []
    for name in sorted(set(before.locks) - set(after.locks)):
        rows.append(DiffRow(recipe=name, subject=Subject.RECIPE, change=Change.REMOVED, item=name,
                            detail=before.locks[name].recipe.order))
    for name in sorted(set(after.locks) - set(before.locks)):
        rows.append(DiffRow(recipe=name, subject=Subject.RECIPE, change=Change.ADDED, item=name,
                            detail=after.locks[name].recipe.order))
    for name in sorted(set(before.locks) & set(after.locks)):
        rows += _recipe_rows(name, before.locks[name], after.locks[name], streams)
    return LockDiff(before=before.label, after=after.label,
                    recipes=tuple(sorted(set(before.locks) | set(after.locks))),
                    rows=tuple(sorted(rows, key=DiffRow.sort_key)))


def missing_streams(before: LockSet, after: LockSet, *, have: Callable[[Digest], bool]) -> dict[str, set[Digest]]:
    """Per side (``"before"``/``"after"``), the stream digests a diff will ask for and ``have`` lacks:
    what a caller re-renders before calling :func:`diff_locks`."""
    out: dict[str, set[Digest]] = {"before": set(), "after": set()}
    for name in sorted(set(before.locks) & set(after.locks)):
        old, new = before.locks[name].components, after.locks[name].components
        for component in sorted(set(old) & set(new)):
            a, b = old[component].render.stream, new[component].render.stream
            if a != b:
                if not have(a):
                    out["before"].add(a)
                if not have(b):
                    out["after"].add(b)
    return out


def streams_of(stores: Sequence[Mapping[Digest, bytes] | StreamSource]) -> StreamSource:
    """One :data:`StreamSource` over several (first answer wins)."""
    def lookup(digest: Digest) -> bytes | None:
        for store in stores:
            data = store.get(digest) if isinstance(store, Mapping) else store(digest)
            if data is not None:
                return data
        return None
    return lookup
