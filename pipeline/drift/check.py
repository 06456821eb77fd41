"""The drift check: re-ask every source the lock was made from, and classify what changed.

Contract of :func:`check_drift`:

- inputs: verified :class:`~pipeline.lock.Lockfile` objects, the run's
  :class:`~pipeline.registry.RegistryClient` (mirrors, credentials, retries), the chart sources
  (a :class:`~pipeline.charts.SourceFactory`, or a callable from :class:`~pipeline.charts.SourceKind`
  to a :class:`~pipeline.charts.ChartSource`; by default one whose OCI source shares ``client``),
  the catalog root, and the chart-repository mirror map of ``pipeline.yaml`` (``spec.mirrors``);
- what is asked, once per distinct query, on up to ``max_workers`` threads:

  - an image locked with a tag (``source: registry``, or ``source: reference`` written
    ``repo:tag@sha256:…``): the manifest the tag points to now (HEAD, then GET by digest, the
    bytes hashed: :meth:`~pipeline.registry.RegistryClient.fetch_manifest`). Same digest:
    ``unchanged``; another: ``tag-moved``; HTTP 404: ``deleted``;
  - an image locked by digest only (``repo@sha256:…``): whether the manifest still exists (HEAD):
    ``unchanged`` or ``deleted``;
  - a chart from an HTTP or OCI repository: the versions the source offers, then the locked
    version's archive, fetched fresh (never from the chart store) and hashed. Version no longer
    offered, or the OCI repository gone: ``deleted``; other archive bytes: ``republished`` (the
    detail says whether the files changed or only the packaging, by the tree digest); a higher
    version by semver precedence (:mod:`pipeline.drift.versions`; pre-releases only when the
    locked version is one): ``newer-version``;
  - a chart in the catalog (``./charts``): nothing is asked. Its files are inputs of the lock,
    which staleness checks; it is ``unchanged`` by construction and its detail says so;

  a chart gets one status, the most urgent: ``deleted``, then ``republished``, then
  ``newer-version`` (a newer version of a deleted or re-published chart is named in the detail).
  Images are asked through the client's registry mirrors and charts through ``mirrors``, as the
  lock stage asks; items always name the upstream reference the lock records;

- a source that cannot be asked (unreachable after retries, refused access, bytes that do not
  match their digest) gives ``error`` items carrying the source's message (never credentials);
  an image the lock holds without a digest is an ``error`` too (nothing to compare with);
- output: a :class:`~pipeline.drift.model.DriftReport`, sorted, the same whatever the thread
  timing; no clock time anywhere;
- errors: a lock that cannot be read as a lock raises (:class:`~pipeline.locked.BomError`,
  :class:`~pipeline.errors.IntegrityError`); nothing a source does raises.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ..charts import (
    ChartSource,
    OciChartSource,
    SourceFactory,
    SourceKind,
    apply_mirrors,
    inspect_archive,
    kind_of,
    redact_url,
)
from ..errors import PipelineError
from ..images import ImageRef
from ..lockfile import LockedChart, Lockfile
from ..recipes.model import ChartRef
from ..registry import NotFoundError, RegistryClient
from ..vocabulary.digest import Digest, sha256
from .model import DriftItem, DriftReport, DriftStatus, ItemKind, Usage
from .versions import newer_version, newest_version, parse_version

__all__ = ["ChartSources", "check_drift"]

#: Where chart archives and version lists come from: a factory, or any callable from kind to source.
ChartSources = SourceFactory | Callable[[SourceKind], ChartSource]

_log = logging.getLogger(__name__)
_LOCAL_DETAIL = ("local chart: its files are inputs of the lock, checked by staleness ('nox -s reproduce'), "
                 "not by drift")


# ---- answers of the sources --------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class _Found:
    """The image (or digest) is there: ``digest`` is what the tag points to now."""

    digest: str
    served_by: str | None = None
    media_type: str | None = None
    platforms: tuple[tuple[str, str], ...] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class _ChartFound:
    """The chart version is offered: the archive served now, and every version offered."""

    archive: Digest
    tree: Digest
    offered: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class _Gone:
    """The source answered that the tag, image, chart or version does not exist (any more)."""

    message: str
    offered: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class _Failed:
    """The source could not be asked; ``message`` says why (with the hint, without credentials)."""

    message: str


_ImageAnswer = _Found | _Gone | _Failed
_ChartAnswer = _ChartFound | _Gone | _Failed


# ---- what the locks hold -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class _ImageQuery:
    """One question to a registry: what ``ref``'s tag points to, or (``exists_only``) whether its digest exists."""

    ref: ImageRef
    exists_only: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class _LockedImageItem:
    """An image as locked: the reference as written, and the digest it was pinned to (if any)."""

    text: str
    ref: ImageRef
    digest: str | None
    #: what the lock claims a registry answered (``None``: locked without asking one)
    media_type: str | None = None
    platforms: tuple[tuple[str, str], ...] | None = None
    served_by: str | None = None

    @property
    def by_reference(self) -> bool:
        """Pinned by the digest written in the reference (``source: reference``)."""
        return self.ref.digest is not None

    @property
    def query(self) -> _ImageQuery | None:
        if self.digest is None:
            return None
        if self.ref.tag is None and self.ref.digest is not None:
            return _ImageQuery(ref=ImageRef(registry=self.ref.registry, repository=self.ref.repository,
                                            digest=self.ref.digest), exists_only=True)
        return _ImageQuery(ref=ImageRef(registry=self.ref.registry, repository=self.ref.repository,
                                        tag=self.ref.tag), exists_only=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class _LockedChartItem:
    """A chart as locked (remote or local), with its content digests."""

    chart: LockedChart

    @property
    def ref(self) -> ChartRef:
        return ChartRef(repository=self.chart.repository, name=self.chart.name, version=self.chart.version)

    @property
    def query_key(self) -> tuple[str, str, str]:
        return (self.chart.repository, self.chart.name, self.chart.version)

    @property
    def display(self) -> str:
        return dataclasses.replace(self.ref, repository=redact_url(self.chart.repository)).display()


def _collect(locks: Sequence[Lockfile]) -> tuple[dict[_LockedImageItem, set[Usage]],
                                                 dict[_LockedChartItem, set[Usage]]]:
    """Every distinct locked image and chart, with the components that use it."""
    images: dict[_LockedImageItem, set[Usage]] = {}
    charts: dict[_LockedChartItem, set[Usage]] = {}
    for recipe in sorted(locks, key=lambda lock: lock.name):
        for component in recipe.ordered():
            usage = Usage(recipe=recipe.name, component=component.name)
            for image in component.images:
                item = _LockedImageItem(text=image.ref, ref=image.image, digest=image.image.digest or image.digest,
                                        media_type=image.media_type, platforms=image.platforms,
                                        served_by=image.served_by)
                images.setdefault(item, set()).add(usage)
            if component.chart is not None:
                charts.setdefault(_LockedChartItem(chart=component.chart), set()).add(usage)
    return images, charts


# ---- asking --------------------------------------------------------------------------------------


def _failure(exc: PipelineError) -> str:
    return exc.message + (f" (hint: {exc.hint})" if exc.hint else "")


def _ask_image(client: RegistryClient, query: _ImageQuery) -> _ImageAnswer:
    try:
        if query.exists_only:
            assert query.ref.digest is not None
            if not client.manifest_exists(query.ref):
                return _Gone(message=f"registry {query.ref.registry!r} no longer has {str(query.ref)!r} (HTTP 404)")
        answer = client.resolve(query.ref)
        return _Found(digest=answer.digest, served_by=answer.served_by, media_type=answer.media_type,
                      platforms=tuple(sorted(answer.platforms.items())))
    except NotFoundError as exc:
        return _Gone(message=exc.message)
    except PipelineError as exc:
        return _Failed(message=_failure(exc))


def _ask_chart(source: ChartSource, ref: ChartRef, url: str) -> _ChartAnswer:
    asked = dataclasses.replace(ref, repository=url)
    shown = redact_url(url)
    try:
        offered = source.versions(asked)
    except PipelineError as exc:
        if isinstance(exc.__cause__, NotFoundError):
            return _Gone(message=exc.message)
        return _Failed(message=_failure(exc))
    if ref.version not in offered:
        return _Gone(message=f"version {ref.version!r} of chart {ref.name!r} is no longer offered by {shown}",
                     offered=offered)
    try:
        data = source.fetch(asked)
        info = inspect_archive(data, source=shown)
    except PipelineError as exc:
        if isinstance(exc.__cause__, NotFoundError):
            return _Gone(message=exc.message, offered=offered)
        return _Failed(message=_failure(exc))
    return _ChartFound(archive=sha256(data), tree=info.tree, offered=offered)


def _is_prerelease(version: str) -> bool:
    parsed = parse_version(version)
    return parsed is not None and parsed.is_prerelease


def _source_of(charts: ChartSources, kind: SourceKind, catalog: Path) -> ChartSource:
    if isinstance(charts, SourceFactory):
        return charts.source(kind, catalog=catalog)
    return charts(kind)


# ---- classifying -------------------------------------------------------------------------------


def _image_item(item: _LockedImageItem, used_by: tuple[Usage, ...], answer: _ImageAnswer | None) -> DriftItem:
    def made(status: DriftStatus, *, new: str | None = None, detail: str = "") -> DriftItem:
        return DriftItem(kind=ItemKind.IMAGE, reference=item.text, status=status, used_by=used_by, old=item.digest,
                         new=new, detail=detail)

    if answer is None:
        return made(DriftStatus.ERROR, detail="the lock records no digest for this image, so there is nothing to "
                                              "compare (hint: run 'nox -s lock' to resolve it)")
    match answer:
        case _Failed(message=message):
            return made(DriftStatus.ERROR, detail=message)
        case _Gone(message=message):
            return made(DriftStatus.DELETED, detail=message)
        case _Found(digest=digest, served_by=served_by, media_type=media_type, platforms=platforms):
            notes = []
            if served_by and served_by != item.ref.registry:
                notes.append(f"served by mirror {served_by!r}")
            if item.served_by and served_by and item.served_by != served_by:
                # Who answered is environment (mirrors), not input: digests are checked against bytes.
                notes.append(f"locked from {item.served_by!r}, served now by {served_by!r}")
            via = "; ".join(notes)
            if digest == item.digest:
                contradicted = _contradicted(item, media_type=media_type, platforms=platforms)
                if contradicted:
                    return made(DriftStatus.LOCK_MISMATCH, new=digest, detail="; ".join(contradicted))
                return made(DriftStatus.UNCHANGED, new=digest, detail=via)
            tag = item.ref.tag or "latest"
            detail = (f"tag {tag!r} no longer points to the digest pinned in the reference" if item.by_reference
                      else f"tag {tag!r} points to another manifest than when the lock was made")
            return made(DriftStatus.TAG_MOVED, new=digest, detail=f"{detail}; {via}" if via else detail)


def _contradicted(item: _LockedImageItem, *, media_type: str | None,
                  platforms: tuple[tuple[str, str], ...] | None) -> list[str]:
    """The lock's claims about ``item`` that the registry's answer for the same digest contradicts."""
    out: list[str] = []
    if item.media_type is not None and media_type is not None and item.media_type != media_type:
        out.append(f"the lock claims media type {item.media_type!r}, the registry serves {media_type!r}")
    if item.platforms is not None and platforms is not None and item.platforms != platforms:
        locked, served = dict(item.platforms), dict(platforms)
        for platform in sorted(set(locked) | set(served)):
            if locked.get(platform) != served.get(platform):
                out.append(f"the lock claims {platform} is {locked.get(platform) or '(absent)'}, "
                           f"the registry serves {served.get(platform) or '(absent)'}")
    return out


def _chart_item(item: _LockedChartItem, used_by: tuple[Usage, ...], answer: _ChartAnswer | None) -> DriftItem:
    chart = item.chart

    def made(status: DriftStatus, *, old: str | None = chart.archive, new: str | None = None,
             detail: str = "") -> DriftItem:
        return DriftItem(kind=ItemKind.CHART, reference=item.display, status=status, used_by=used_by, old=old,
                         new=new, detail=detail)

    if answer is None:
        return made(DriftStatus.UNCHANGED, new=chart.archive, detail=_LOCAL_DETAIL)
    match answer:
        case _Failed(message=message):
            return made(DriftStatus.ERROR, detail=message)
        case _Gone(message=message, offered=offered):
            newest = newest_version(offered, prereleases=_is_prerelease(chart.version))
            return made(DriftStatus.DELETED,
                        detail=message + (f"; newest version offered: {newest!r}" if newest else ""))
        case _ChartFound(archive=archive, tree=tree, offered=offered):
            newer = newer_version(chart.version, offered)
            if archive != chart.archive:
                if chart.tree is None:
                    what = "other archive bytes (the lock records no tree digest to compare the files)"
                elif tree == chart.tree:
                    what = "other archive bytes but the same files: repackaged, same content"
                else:
                    what = f"other content (tree {chart.tree} → {tree})"
                also = f"; a newer version is offered too: {newer!r}" if newer else ""
                return made(DriftStatus.REPUBLISHED, new=archive,
                            detail=f"version {chart.version!r} was re-published with {what}{also}")
            if newer is not None:
                return made(DriftStatus.NEWER_VERSION, old=chart.version, new=newer,
                            detail=f"the locked version's archive is unchanged; {newer!r} is the newest version "
                                   "offered")
            detail = ("" if parse_version(chart.version) is not None else
                      f"version {chart.version!r} is not a semantic version: newer versions were not looked for")
            return made(DriftStatus.UNCHANGED, new=archive, detail=detail)


# ---- the stage -----------------------------------------------------------------------------------


def check_drift(
    locks: Sequence[Lockfile],
    *,
    client: RegistryClient,
    charts: ChartSources | None = None,
    catalog: Path,
    mirrors: Mapping[str, str] | None = None,
    max_workers: int = 16,
) -> DriftReport:
    """Re-check every locked image tag and chart version against its source (see the module docstring)."""
    if max_workers < 1:
        raise ValueError(f"max_workers must be >= 1, got {max_workers}")
    images, locked_charts = _collect(locks)
    image_queries = {q for item in images if (q := item.query) is not None}
    chart_queries = {item.query_key: (item.ref, apply_mirrors(item.chart.repository, mirrors or {}))
                     for item in locked_charts if not item.chart.is_local}
    owned: SourceFactory | None = None
    if charts is None:
        charts = owned = SourceFactory(oci=OciChartSource(client=client))
    try:
        # Sources are made here, on one thread: a factory creates them lazily and is not locked.
        sources = {kind: _source_of(charts, kind, catalog)
                   for kind in sorted({kind_of(url) for _, url in chart_queries.values()})}
        workers = max(1, min(max_workers, len(image_queries) + len(chart_queries)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="drift") as pool:
            image_futures: dict[_ImageQuery, Future[_ImageAnswer]] = {
                q: pool.submit(_ask_image, client, q) for q in sorted(image_queries, key=lambda q: str(q.ref))}
            chart_futures: dict[tuple[str, str, str], Future[_ChartAnswer]] = {
                key: pool.submit(_ask_chart, sources[kind_of(url)], ref, url)
                for key, (ref, url) in sorted(chart_queries.items())}
    finally:
        if owned is not None:
            owned.close()
    out: list[DriftItem] = []
    for image, image_users in images.items():
        query = image.query
        out.append(_image_item(image, tuple(sorted(image_users)),
                               image_futures[query].result() if query is not None else None))
    for chart, chart_users in locked_charts.items():
        future = chart_futures.get(chart.query_key)
        out.append(_chart_item(chart, tuple(sorted(chart_users)), future.result() if future is not None else None))
    report = DriftReport.of(out)
    _log.info("drift: %d item(s) checked, %d drifted, %d error(s)", len(report.items), len(report.drifted),
              len(report.errors))
    return report
