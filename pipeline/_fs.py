"""Atomic file replacement: a temporary file in the target directory, fsync, then ``os.replace``.

An interrupted run leaves the previous file intact; readers never see a half-written file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_write", "atomic_write_many"]


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` atomically (creating parent directories)."""
    atomic_write_many({path: data}, mode=mode)


def atomic_write_many(files: dict[Path, bytes], *, mode: int = 0o644) -> None:
    """Write every file to a temporary sibling first; replace them only when all writes succeeded.

    Either every target is replaced or (on an error while writing) none is. Files whose bytes are
    already identical are left untouched, so their mtimes do not churn.
    """
    staged: list[tuple[Path, Path]] = []
    try:
        for path, data in sorted(files.items()):
            if path.is_file() and path.read_bytes() == data:
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            tmp_path = Path(tmp)
            staged.append((tmp_path, path))
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            tmp_path.chmod(mode)
    except BaseException:
        for tmp_path, _ in staged:
            with contextlib.suppress(FileNotFoundError):
                tmp_path.unlink()
        raise
    for tmp_path, path in staged:
        tmp_path.replace(path)


@contextlib.contextmanager
def exclusive(path: Path, *, wait: bool, what: str) -> Iterator[None]:
    """Hold an advisory ``flock`` on ``path`` (which records our pid) for the block.

    Another holder makes this raise :class:`~pipeline.errors.UsageError` at once ("another lock is
    running (pid N)"), or, with ``wait``, block until it is done. The kernel drops the lock when the
    holder dies, however it dies, so a killed run never leaves a stale lock behind.
    """
    import fcntl

    from .errors import UsageError

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            raise UsageError(f"another {what} is running (pid {holder})", path=path,
                             hint="wait for it to finish, or pass --wait to queue behind it") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)
