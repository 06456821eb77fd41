"""Chart fetching: sources (local path, HTTP repository, OCI registry), safe archive inspection,
deterministic packing of chart directories, and a content-addressed store.

The stage's entry point is :func:`fetch_chart`; everything else is the machinery it wires together
and that later stages (reproduce, drift, mirror) reuse.

Each name below is imported from its module on first use (PEP 562): the HTTP and OCI sources import
``httpx`` (through :mod:`pipeline.registry`), which commands that only read local charts, or no
chart, do not pay for at start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from ..vocabulary.redact import redact_url
    from .archive import MAX_MEMBERS, MAX_UNPACKED_BYTES, ArchiveInfo, chart_yaml, inspect_archive, read_archive
    from .fetch import STORE, FetchedChart, SourceFactory, apply_mirrors, fetch_chart
    from .http import HttpChartSource, RetryPolicy, Transport
    from .interface import ChartSource, SourceKind, kind_of
    from .oci import OciChartSource
    from .path import PathChartSource, WalkOrder, pack_directory
    from .store import ChartStore

__all__ = [
    "MAX_MEMBERS",
    "MAX_UNPACKED_BYTES",
    "STORE",
    "ArchiveInfo",
    "ChartSource",
    "ChartStore",
    "FetchedChart",
    "HttpChartSource",
    "OciChartSource",
    "PathChartSource",
    "RetryPolicy",
    "SourceFactory",
    "SourceKind",
    "Transport",
    "WalkOrder",
    "apply_mirrors",
    "chart_yaml",
    "fetch_chart",
    "inspect_archive",
    "kind_of",
    "pack_directory",
    "read_archive",
    "redact_url",
]

#: The module that defines each name of ``__all__`` (relative to this package).
_SOURCES = {
    "redact_url": "..vocabulary.redact",
    "MAX_MEMBERS": ".archive",
    "MAX_UNPACKED_BYTES": ".archive",
    "ArchiveInfo": ".archive",
    "chart_yaml": ".archive",
    "inspect_archive": ".archive",
    "read_archive": ".archive",
    "STORE": ".fetch",
    "FetchedChart": ".fetch",
    "SourceFactory": ".fetch",
    "apply_mirrors": ".fetch",
    "fetch_chart": ".fetch",
    "HttpChartSource": ".http",
    "RetryPolicy": ".http",
    "Transport": ".http",
    "ChartSource": ".interface",
    "SourceKind": ".interface",
    "kind_of": ".interface",
    "OciChartSource": ".oci",
    "PathChartSource": ".path",
    "WalkOrder": ".path",
    "pack_directory": ".path",
    "ChartStore": ".store",
}


__getattr__, __dir__ = lazy_exports(__name__, globals(), _SOURCES, __all__)
