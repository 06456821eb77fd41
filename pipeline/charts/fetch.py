"""The fetch stage: a chart reference in, checked archive bytes out, identified by content.

Contract:

- inputs: a :class:`~pipeline.recipes.model.ChartRef` (as written in the catalog), the catalog root
  (for local repositories), a :class:`~pipeline.charts.store.ChartStore`, the mirror map
  (upstream URL prefix → mirror URL prefix), optionally the digest the lock expects, and
  optionally a :class:`SourceFactory` shared by a whole run (one HTTP client and one index cache
  per kind of source);
- output: :class:`FetchedChart`: the ref (the upstream repository and the pin, unchanged), the
  ``version`` string the repository served for the pin (Helm's rules: ``v1.2.3`` may be served as
  ``1.2.3``; :mod:`pipeline.charts.versions`; this is what the lock keeps), the ``archive`` digest
  (sha256 of the bytes), the ``tree`` digest (content hash
  independent of packaging), the bytes, and ``served_by`` (which URL served them, without
  credentials; ``store`` for a store hit; the catalog-relative repository for local charts);
- order of work:

  1. local repositories: the chart directory (or ``.tgz``) is read and packed afresh every time,
     since the tree on disk is the truth; the store is not consulted;
  2. remote repositories with ``expected`` already in the store: the stored bytes are used and the
     network is not touched (this is what lets ``reproduce`` run offline);
  3. otherwise the repository is rewritten through ``mirrors`` (the longest upstream prefix that
     equals the repository or a ``/``-bounded prefix of it), the source is chosen by the rewritten
     URL's scheme (``oci://``, ``http(s)://``, or a local path), the served version found
     (:meth:`~pipeline.charts.interface.ChartSource.served_version`) and that archive fetched;

  then the archive is inspected (:func:`~pipeline.charts.archive.inspect_archive`: safe to unpack,
  ``Chart.yaml`` name equal to the ref's, version equal to the served one, or for a store hit one
  that Helm's rules match to the pin), compared with ``expected``, and only then
  put into the store (only accepted bytes enter it);
- the network is used only in step 3, and only by the sources;
- errors: :class:`~pipeline.errors.ChartError`, including bytes that differ from the lock's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .._closing import Closing
from ..errors import ChartError
from ..recipes.model import ChartRef
from ..vocabulary.digest import Digest, check_sha256, sha256
from ..vocabulary.redact import redact_url
from .archive import inspect_archive
from .interface import ChartSource, SourceKind, kind_of
from .path import PathChartSource, WalkOrder
from .store import ChartStore
from .versions import match_index_version

__all__ = ["STORE", "FetchedChart", "SourceFactory", "apply_mirrors", "fetch_chart"]

#: ``served_by`` of a chart taken from the store.
STORE = "store"


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchedChart:
    """A fetched, inspected chart. ``archive`` is always sha256 of ``data`` (checked when built)."""

    ref: ChartRef
    version: str
    archive: Digest
    tree: Digest
    data: bytes = field(repr=False)
    served_by: str

    def __post_init__(self) -> None:
        check_sha256(self.data, self.archive, what="FetchedChart.archive")


class SourceFactory(Closing):
    """The chart sources of one run, created on first use and reused (one HTTP client per kind).

    Pass ready-made sources to override the defaults (e.g. an HTTP source with a custom retry
    policy). ``close()`` closes every source (the factory is a context manager).
    """

    def __init__(self, *, http: ChartSource | None = None, oci: ChartSource | None = None) -> None:
        self._http = http
        self._oci = oci

    def source(self, kind: SourceKind, *, catalog: Path, walk_order: WalkOrder = "sorted") -> ChartSource:
        """The source serving repositories of ``kind`` (local sources are cheap and made per call)."""
        match kind:
            case SourceKind.LOCAL:
                return PathChartSource(catalog, walk_order=walk_order)
            # The remote sources are imported on first use: they import httpx, which commands that
            # only read local charts do not pay for at start-up.
            case SourceKind.HTTP:
                if self._http is None:
                    from .http import HttpChartSource
                    self._http = HttpChartSource()
                return self._http
            case SourceKind.OCI:
                if self._oci is None:
                    from .oci import OciChartSource
                    self._oci = OciChartSource()
                return self._oci

    def close(self) -> None:
        for source in (self._http, self._oci):
            if source is not None:
                source.close()



def apply_mirrors(repository: str, mirrors: Mapping[str, str]) -> str:
    """``repository`` rewritten through the longest matching upstream prefix, or unchanged.

    A key matches when it equals the repository or is a prefix of it ending at a ``/``
    (``https://charts.example.com/a`` matches ``…/a`` and ``…/a/b``, never ``…/ab``); trailing
    slashes are ignored on both sides.
    """
    repo = repository.rstrip("/")
    best: tuple[str, str] | None = None
    for upstream, mirror in mirrors.items():
        key = upstream.rstrip("/")
        if key and (repo == key or repo.startswith(key + "/")) and (best is None or len(key) > len(best[0])):
            best = (key, mirror.rstrip("/"))
    if best is None:
        return repository
    return best[1] + repo[len(best[0]):]


def fetch_chart(
    ref: ChartRef,
    *,
    catalog: Path,
    store: ChartStore,
    mirrors: Mapping[str, str],
    expected: Digest | None = None,
    sources: SourceFactory | None = None,
    walk_order: WalkOrder = "sorted",
) -> FetchedChart:
    """Fetch, check and store the chart ``ref`` (see the module docstring for the order of work)."""
    kind = kind_of(ref.repository)
    if kind is not SourceKind.LOCAL and expected is not None:
        stored = store.get(expected)
        if stored is not None:
            return _accept(ref, stored, version=None, served_by=STORE, expected=expected, store=store,
                           archive_name=f"the chart store's copy {expected}")
    url = ref.repository if kind is SourceKind.LOCAL else apply_mirrors(ref.repository, mirrors)
    factory = sources if sources is not None else SourceFactory()
    try:
        source = factory.source(kind_of(url), catalog=catalog, walk_order=walk_order)
        asked = dataclasses.replace(ref, repository=url)
        version = source.served_version(asked)
        data = source.fetch(dataclasses.replace(asked, version=version))
        archive_name = redact_url(source.describe(dataclasses.replace(asked, version=version)))
    finally:
        if sources is None:
            factory.close()
    return _accept(ref, data, version=version, served_by=redact_url(url), expected=expected, store=store,
                   archive_name=archive_name)


def _accept(
    ref: ChartRef, data: bytes, *, version: str | None, served_by: str, expected: Digest | None, store: ChartStore,
    archive_name: str | None = None,
) -> FetchedChart:
    upstream = redact_url(ref.repository)
    info = inspect_archive(data, source=archive_name or served_by)
    where = f"chart {ref.name!r} version {ref.version!r} from {upstream}"
    if served_by != upstream:
        where += f" (served by {served_by})"
    if info.name != ref.name:
        raise ChartError(
            f"{where}: the archive's Chart.yaml names chart {info.name!r}",
            hint="the repository serves a different chart under this name: check the chart name and the "
            "mirror configuration",
        )
    if version is None and match_index_version(ref.version, [info.version]) is not None:
        version = info.version  # a store hit: the archive says which version was served
    if info.version != version:
        served = (f"the served {version!r} for the pin {ref.version!r}" if version not in (None, ref.version)
                  else f"the pinned {ref.version!r}")
        raise ChartError(
            f"{where}: the archive's Chart.yaml has version {info.version!r}, not {served}",
            hint="the repository serves a different version under this tag or URL: check the pin and the "
            "mirror configuration",
        )
    archive = sha256(data)
    if expected is not None and archive != expected:
        if kind_of(ref.repository) is SourceKind.LOCAL:
            hint = (f"the chart's files under {ref.repository!r} changed since the lock was made: if the "
                    "change is intended, re-lock with 'nox -s lock' and commit lockfiles/")
        else:
            hint = ("if the upstream re-published this version on purpose, re-lock with 'nox -s lock' and "
                    "review the change; otherwise treat it as tampering and do not use the chart")
        raise ChartError(f"{where}: fetched bytes {archive} differ from the lock's {expected}", hint=hint)
    store.put(data)
    return FetchedChart(ref=ref, version=info.version, archive=archive, tree=info.tree, data=data,
                        served_by=served_by)
