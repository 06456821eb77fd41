"""Which git commit a checkout is at, read from ``.git`` itself (no ``git`` process, no config).

:func:`git_commit` follows ``HEAD`` to the commit it names: a branch through loose refs or
``packed-refs`` (in the common directory of a linked worktree), or a detached ``HEAD``. It returns
``None`` outside a git checkout or when the refs cannot be read; it never fails. Reading the files
keeps the answer independent of the ``git`` binary, the user's configuration and
``safe.directory`` ownership rules, so the same checkout gives the same statement everywhere.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["git_commit"]

_OBJECT_ID = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")


def _git_dir(start: Path) -> Path | None:
    for directory in (start, *start.parents):
        dotgit = directory / ".git"
        if dotgit.is_dir():
            return dotgit
        if dotgit.is_file():
            text = dotgit.read_text(encoding="utf-8").strip()
            if text.startswith("gitdir:"):
                return (directory / text.removeprefix("gitdir:").strip()).resolve()
            return None
    return None


def git_commit(start: Path) -> str | None:
    """The commit ``HEAD`` names in the git checkout that holds ``start``; ``None`` if there is none."""
    try:
        git_dir = _git_dir(start.resolve())
        if git_dir is None:
            return None
        head = (git_dir / "HEAD").read_text(encoding="utf-8").strip()
        if not head.startswith("ref:"):
            return head if _OBJECT_ID.fullmatch(head) else None
        ref = head.removeprefix("ref:").strip()
        common = git_dir
        if (git_dir / "commondir").is_file():
            common = (git_dir / (git_dir / "commondir").read_text(encoding="utf-8").strip()).resolve()
        for base in (git_dir, common):
            loose = base / ref
            if loose.is_file():
                value = loose.read_text(encoding="utf-8").strip()
                return value if _OBJECT_ID.fullmatch(value) else None
        packed = common / "packed-refs"
        if packed.is_file():
            for line in packed.read_text(encoding="utf-8").splitlines():
                value, _, name = line.partition(" ")
                if name == ref and _OBJECT_ID.fullmatch(value):
                    return value
    except (OSError, UnicodeDecodeError):
        return None
    return None
