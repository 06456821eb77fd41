"""Atomic file replacement, and the one writer of generated trees.

:func:`atomic_write_many`: a temporary file in each target directory, fsync, then ``os.replace``;
an interrupted run leaves the previous files intact and readers never see a half-written file.
:func:`sync_tree` is how every generated artefact (lockfiles, BOMs, inventory, policies) reaches
disk: write what changed, leave identical files alone, remove generated files no longer produced;
:func:`plan_sync` answers the same question without writing (the freshness gates).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Synced", "atomic_write", "atomic_write_many", "plan_sync", "sync_tree"]


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically (creating parent directories)."""
    atomic_write_many({path: data}, mode=mode, durable=durable)


def atomic_write_many(files: dict[Path, bytes], *, mode: int = 0o644, durable: bool = True) -> None:
    """Write every file to a temporary sibling first; replace them only when all writes succeeded.

    Either every target is replaced or (on an error while writing) none is. Files whose bytes are
    already identical are left untouched, so their mtimes do not churn. ``durable=False`` skips the
    fsync: only for cache entries that are verified on every read (a write lost in a crash is then a
    miss, never a wrong answer).
    """
    _replace_all({path: data for path, data in files.items() if _current(path) != data}, mode=mode, durable=durable)


def _current(path: Path) -> bytes | None:
    """The bytes of the file at ``path``, or ``None`` when there is no readable file."""
    try:
        return path.read_bytes()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None


def _replace_all(files: Mapping[Path, bytes], *, mode: int = 0o644, durable: bool = True) -> None:
    """Replace every file of ``files`` (all or none), without comparing with what is there."""
    staged: list[tuple[Path, Path]] = []
    try:
        for path, data in sorted(files.items()):
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            tmp_path = Path(tmp)
            staged.append((tmp_path, path))
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                if durable:
                    os.fsync(handle.fileno())
            tmp_path.chmod(mode)
    except BaseException:
        for tmp_path, _ in staged:
            with contextlib.suppress(FileNotFoundError):
                tmp_path.unlink()
        raise
    for tmp_path, path in staged:
        tmp_path.replace(path)


@dataclass(frozen=True, slots=True, kw_only=True)
class Synced:
    """What :func:`sync_tree` did (or, from :func:`plan_sync`, would do)."""

    written: tuple[Path, ...] = ()
    unchanged: tuple[Path, ...] = ()
    removed: tuple[Path, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.written or self.removed)


def plan_sync(files: Mapping[Path, bytes], *, generated: Iterable[Path] = (),
              unchanged: Iterable[Path] = ()) -> Synced:
    """What :func:`sync_tree` would do, without writing (``written``: missing or different files).

    ``unchanged``: paths of ``files`` the caller knows hold exactly those bytes (they are not read)."""
    known = set(unchanged)
    same = {p for p, data in files.items() if p in known or _current(p) == data}
    return Synced(written=tuple(sorted(p for p in files if p not in same)), unchanged=tuple(sorted(same)),
                  removed=tuple(sorted({p for p in generated if p not in files and p.is_file()})))


def sync_tree(files: Mapping[Path, bytes], *, generated: Iterable[Path] = (),
              unchanged: Iterable[Path] = ()) -> Synced:
    """Make the disk hold ``files``: every changed file replaced atomically (all or none), identical
    files untouched, and every path of ``generated`` (files an earlier run wrote) that ``files`` no
    longer holds removed, after the writes succeeded. Each file is read once, to compare; paths of
    ``unchanged`` (known to hold their bytes already) are not read at all."""
    plan = plan_sync(files, generated=generated, unchanged=unchanged)
    _replace_all({path: files[path] for path in plan.written})
    for path in plan.removed:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    return plan
