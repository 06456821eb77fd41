"""The diff publisher: what changes between two lock sets, for review.

:func:`read_lock_set` reads each side (a directory, or a git revision read without a checkout),
:func:`diff_locks` compares them (recipes, components, charts, images, rendered resources) into a
:class:`LockDiff`, and :func:`format_markdown` / :func:`format_json` turn it into bytes. Reads locks
only through :mod:`pipeline.lockfile`; rendered streams come from a caller-supplied lookup (the
render cache, or a re-render the orchestration layer arranges). Writes nothing.
"""

from .model import Change, DiffRow, LockDiff, StreamSource, Subject, diff_locks, missing_streams, streams_of
from .report import MAX_MARKDOWN, REPORT_VERSION, format_json, format_markdown
from .sources import LockSet, export_tree, read_directory, read_git, read_lock_set

__all__ = [
    "MAX_MARKDOWN",
    "REPORT_VERSION",
    "Change",
    "DiffRow",
    "LockDiff",
    "LockSet",
    "StreamSource",
    "Subject",
    "diff_locks",
    "export_tree",
    "format_json",
    "format_markdown",
    "missing_streams",
    "read_directory",
    "read_git",
    "read_lock_set",
    "streams_of",
]
