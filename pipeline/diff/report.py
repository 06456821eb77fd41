"""A :class:`~pipeline.diff.model.LockDiff` as bytes: Markdown for a pull-request comment, canonical JSON.

Markdown: a title, one summary table (a row per changed recipe: counts per subject), then one
collapsible ``<details>`` section per changed recipe with a row per change. The whole document is
bounded (:data:`MAX_MARKDOWN`, under GitHub's 65,536-character comment limit): sections that would
pass the bound are left out, and a closing note says how many rows in how many recipes were cut and
that the JSON report has them all. Digests are shortened to 12 hex digits in Markdown only.

JSON (``reportVersion`` 1): canonical (sorted keys, two-space indent, trailing newline), every row
with full digests. Both are pure functions of the diff: no clock, no machine paths.
"""

from __future__ import annotations

import re
from collections import Counter

from ..vocabulary.digest import canonical_json
from .model import Change, DiffRow, LockDiff, Subject

__all__ = ["MAX_MARKDOWN", "REPORT_VERSION", "format_json", "format_markdown"]

REPORT_VERSION = 1
MAX_MARKDOWN = 60_000
MAX_DETAIL = 8
_DIGEST = re.compile(r"sha256:([0-9a-f]{12})[0-9a-f]{52}")
_COLUMNS = (Subject.COMPONENT, Subject.CHART, Subject.IMAGE, Subject.RESOURCE)


def format_json(diff: LockDiff) -> bytes:
    """The canonical JSON report."""
    return canonical_json({
        "reportVersion": REPORT_VERSION, "from": diff.before, "to": diff.after, "equal": diff.equal,
        "recipes": list(diff.recipes), "changedRecipes": list(diff.changed_recipes),
        "rows": [r.as_json() for r in diff.rows],
    })


def _cell(text: str) -> str:
    text = _DIGEST.sub(r"sha256:\1…", text)
    return text.replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    return f"`{_cell(text)}`" if text else ""


def _counts(rows: tuple[DiffRow, ...], subject: Subject) -> str:
    counted = Counter(r.change.value for r in rows if r.subject is subject)
    return ", ".join(f"{n} {change}" for change, n in sorted(counted.items())) or "-"


def _summary_row(recipe: str, rows: tuple[DiffRow, ...]) -> str:
    head = next((r for r in rows if r.subject is Subject.RECIPE), None)
    if head is not None:
        status = "**added**" if head.change is Change.ADDED else "**removed**"
        return f"| `{recipe}` | {status} | {len(head.detail)} components | | | |"
    return f"| `{recipe}` | changed | " + " | ".join(_counts(rows, s) for s in _COLUMNS) + " |"


def _detail(row: DiffRow) -> str:
    items = list(row.detail[:MAX_DETAIL])
    if len(row.detail) > MAX_DETAIL:
        items.append(f"… {len(row.detail) - MAX_DETAIL} more")
    return "<br>".join(_cell(i) for i in items)


def _section(recipe: str, rows: tuple[DiffRow, ...]) -> str:
    lines = [f"<details><summary><code>{recipe}</code>: {len(rows)} change{'s' * (len(rows) != 1)}</summary>",
             "",
             "| component | subject | change | item | before | after | detail |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        item = _code(row.item) + (f"<br>in `{_cell(row.file)}`" if row.file and row.file != row.item else "")
        lines.append(f"| {_code(row.component)} | {row.subject.value} | {row.change.value} | {item} | "
                     f"{_code(row.before)} | {_code(row.after)} | {_detail(row)} |")
    lines += ["", "</details>", ""]
    return "\n".join(lines)


def format_markdown(diff: LockDiff, *, limit: int = MAX_MARKDOWN) -> bytes:
    """The Markdown report, at most ``limit`` characters (see the module docstring)."""
    title = f"## Lock diff: `{diff.before}` → `{diff.after}`\n\n"
    if diff.equal:
        return (title + f"No changes: {len(diff.recipes)} recipes, every lock identical.\n").encode()
    changed = diff.changed_recipes
    head = [title.rstrip("\n"), "",
            f"{len(changed)} of {len(diff.recipes)} recipes change ({len(diff.rows)} rows).", "",
            "| recipe | status | components | charts | images | rendered resources |",
            "|---|---|---|---|---|---|"]
    head += [_summary_row(name, diff.rows_of(name)) for name in changed]
    text = "\n".join(head) + "\n\n"
    cut_rows = cut_recipes = 0
    reserve = 300  # room for the note below
    for name in changed:
        rows = diff.rows_of(name)
        section = _section(name, rows)
        if cut_recipes or len(text) + len(section) > limit - reserve:
            cut_rows += len(rows)
            cut_recipes += 1
            continue
        text += section
    if cut_recipes:
        text += (f"\n> **{cut_rows} rows in {cut_recipes} recipes were cut** to keep this comment under "
                 f"{limit:,} characters; the JSON report (`--format json`) lists every row.\n")
    return text.encode()
