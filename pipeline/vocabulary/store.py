"""A content-addressed store: bytes kept under the sha256 of their content.

Contract:

- layout: ``<root>/<prefix><hex><suffix>``, one file per content (the chart store uses
  ``sha256/<hex>.tgz``);
- ``put(data)`` writes atomically (temporary sibling, then ``os.replace``) and returns the digest;
  putting bytes already present is a no-op;
- ``get(digest)`` re-hashes what it reads: a file whose bytes no longer match its name (disk
  corruption, a hand edit) is deleted and reported as missing, so the caller makes it again;
- ``digest in store`` only checks that the file exists (cheap); ``get`` is the authority;
- errors: ``ValueError`` for a digest that is not ``sha256:<64 hex>`` (callers word it for their stage).
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from .digest import Digest, parse_digest, sha256
from .files import atomic_write

__all__ = ["ContentStore", "read_entry", "write_entry"]

_log = logging.getLogger(__name__)


class ContentStore:
    """Bytes keyed by the sha256 of their content; ``name`` says which store in messages."""

    def __init__(self, root: Path, *, prefix: str = "", suffix: str = "", name: str = "content store") -> None:
        self.root = root
        self.prefix = prefix
        self.suffix = suffix
        self.name = name

    def put(self, data: bytes) -> Digest:
        """Store ``data`` (atomically) and return its digest."""
        digest = sha256(data)
        path = self.path(digest)
        if not path.is_file():
            atomic_write(path, data)
        return digest

    def get(self, digest: Digest) -> bytes | None:
        """The bytes with ``digest``, or ``None`` when absent or corrupt (a corrupt file is deleted)."""
        path = self.path(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        if sha256(data) != digest:
            _log.warning("%s: %s does not hash to its name; deleting it", self.name, path.name)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            return None
        return data

    def __contains__(self, digest: object) -> bool:
        return isinstance(digest, str) and self.path(Digest(digest)).is_file()

    def path(self, digest: Digest) -> Path:
        """Where the content with ``digest`` lives; ``ValueError`` unless it is a sha256 digest."""
        parse_digest(digest)
        algorithm, _, hexpart = digest.partition(":")
        if algorithm != "sha256":
            raise ValueError(f"digest {digest!r} uses {algorithm!r}; only sha256 is supported")
        return self.root / f"{self.prefix}{hexpart}{self.suffix}"


def read_entry(path: Path) -> bytes | None:
    """The bytes of a cache entry written by :func:`write_entry`, or ``None`` (absent, torn or corrupt)."""
    try:
        head, sep, data = path.read_bytes().partition(b"\n")
    except OSError:
        return None
    return data if sep and head.decode("ascii", "replace") == sha256(data) else None


def write_entry(path: Path, data: bytes) -> None:
    """A self-verifying cache entry at ``path``: the sha256 of ``data`` on the first line, then ``data``.

    Written atomically without fsync: a reader re-hashes it (:func:`read_entry`), so an entry lost or
    torn by a crash is a miss, never a wrong answer.
    """
    atomic_write(path, sha256(data).encode() + b"\n" + data, durable=False)
