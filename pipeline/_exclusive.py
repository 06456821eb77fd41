"""One run at a time: an advisory ``flock`` on a file that records the holder's pid."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

__all__ = ["exclusive"]


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
