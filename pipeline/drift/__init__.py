"""The drift stage: has upstream moved under the locks?

:func:`check_drift` re-asks every source the locks were made from (image tags, image digests,
chart versions) and classifies each locked item (:class:`DriftStatus`); :func:`format_markdown`
and :func:`format_json` turn the :class:`DriftReport` into deterministic bytes. The stage reads
locks and the network and writes nothing; the CLI decides what to write and how to exit
(``--fail-on-drift``: 1 when any item is not ``unchanged``, ``error`` items included).
"""

from .check import ChartSources, check_drift
from .model import DriftItem, DriftReport, DriftStatus, ItemKind, Usage
from .report import REPORT_VERSION, SECTION_ORDER, format_json, format_markdown
from .versions import Version, newer_version, newest_version, parse_version

__all__ = [
    "REPORT_VERSION",
    "SECTION_ORDER",
    "ChartSources",
    "DriftItem",
    "DriftReport",
    "DriftStatus",
    "ItemKind",
    "Usage",
    "Version",
    "check_drift",
    "format_json",
    "format_markdown",
    "newer_version",
    "newest_version",
    "parse_version",
]
