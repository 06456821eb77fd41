"""The drift report as bytes: Markdown for people, canonical JSON for machines.

Both are pure functions of the :class:`~pipeline.drift.model.DriftReport`: no clock time, no
absolute paths, items in the report's order, ``\\n`` line endings, so a scheduled job can diff this
week's report against last week's. The Markdown has a summary (every status with its count, zeros
included) and one table per status that has items, drift first and ``unchanged`` last. The JSON
(:func:`pipeline.vocabulary.digest.canonical_json`) holds ``reportVersion``, ``drift`` (whether any item is
not ``unchanged``), ``summary`` (count per status) and ``items``.
"""

from __future__ import annotations

from typing import assert_never

from ..vocabulary.digest import canonical_json
from .model import DriftItem, DriftReport, DriftStatus

__all__ = ["REPORT_VERSION", "SECTION_ORDER", "format_json", "format_markdown"]

REPORT_VERSION = 1
#: The order of the summary rows and of the tables: what needs action first.
SECTION_ORDER = (DriftStatus.LOCK_MISMATCH, DriftStatus.TAG_MOVED, DriftStatus.DELETED, DriftStatus.REPUBLISHED,
                 DriftStatus.ERROR, DriftStatus.NEWER_VERSION, DriftStatus.UNCHANGED)


def _meaning(status: DriftStatus) -> str:
    """One line under a status's table: what its items mean, and what ``old`` and ``new`` hold."""
    match status:
        case DriftStatus.UNCHANGED:
            return "The source serves what the lock says (old and new: the locked digest)."
        case DriftStatus.TAG_MOVED:
            return "The tag now points to another manifest (old: locked digest, new: the tag's digest now)."
        case DriftStatus.DELETED:
            return "The tag, image, chart or version is gone from its source (old: locked digest)."
        case DriftStatus.REPUBLISHED:
            return "The same chart version now has other archive bytes (old and new: archive digests)."
        case DriftStatus.NEWER_VERSION:
            return "A newer chart version is offered (old: locked version, new: newest version)."
        case DriftStatus.LOCK_MISMATCH:
            return ("The tag still points to the locked digest, but the registry serves other per-platform digests "
                    "or another media type than the lock claims (old and new: the locked digest).")
        case DriftStatus.ERROR:
            return "The source could not be asked; the item is unchecked (old: locked digest, if any)."
        case _:
            assert_never(status)


def format_json(report: DriftReport) -> bytes:
    """The report as canonical JSON."""
    return canonical_json({
        "reportVersion": REPORT_VERSION,
        "drift": bool(report.drifted),
        "summary": {status.value: count for status, count in report.counts().items()},
        "items": [item.as_json() for item in report.items],
    })


def format_markdown(report: DriftReport) -> bytes:
    """The report as a Markdown document."""
    counts = report.counts()
    total, errors = len(report.items), len(report.errors)
    moved = len(report.drifted) - errors
    if not moved and not errors:
        headline = f"No drift: all {total} locked items are as the lock says."
    else:
        headline = f"{moved} of {total} locked items drifted" + (f"; {errors} could not be checked." if errors else ".")
    lines = ["# Drift report", "", headline, "", "| status | items |", "| --- | ---: |"]
    lines += [f"| {status.value} | {counts[status]} |" for status in SECTION_ORDER]
    for status in SECTION_ORDER:
        items = [i for i in report.items if i.status is status]
        if not items:
            continue
        lines += ["", f"## {status.value} ({len(items)})", "", _meaning(status), "",
                  "| kind | reference | old | new | used by | detail |", "| --- | --- | --- | --- | --- | --- |"]
        lines += [_row(item) for item in items]
    return ("\n".join(lines) + "\n").encode()


def _row(item: DriftItem) -> str:
    cells = [item.kind.value, _code(item.reference), _code(item.old), _code(item.new),
             ", ".join(str(u) for u in item.used_by), item.detail]
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def _code(value: str | None) -> str:
    return f"`{value}`" if value else ""


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")
