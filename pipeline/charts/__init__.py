"""Chart fetching: sources (local path, HTTP repository, OCI registry), safe archive inspection,
deterministic packing of chart directories, and a content-addressed store.

The stage's entry point is :func:`fetch_chart`; everything else is the machinery it wires together
and that later stages (reproduce, drift, mirror) reuse.
"""

from .archive import MAX_MEMBERS, MAX_UNPACKED_BYTES, ArchiveInfo, chart_yaml, inspect_archive, read_archive
from .fetch import STORE, FetchedChart, SourceFactory, apply_mirrors, fetch_chart
from .http import HttpChartSource, RetryPolicy, Transport, redact_url
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
