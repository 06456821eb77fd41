"""Content-addressed store of chart archives: what lets ``reproduce`` run offline.

Contract:

- layout: ``<root>/sha256/<hex>.tgz``, one file per archive, named by the sha256 of its bytes;
- ``put(data)`` writes atomically (temporary sibling, then ``os.replace``) and returns the digest;
  putting bytes already present is a no-op;
- ``get(digest)`` re-hashes what it reads: a file whose bytes no longer match its name (disk
  corruption, a hand edit) is deleted and reported as missing, so the caller fetches it again;
- ``digest in store`` only checks that the file exists (cheap); ``get`` is the authority;
- errors: :class:`~pipeline.errors.ChartError` for a digest that is not ``sha256:<64 hex>``.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from ..errors import ChartError
from ..vocabulary.digest import Digest, parse_digest, sha256
from ..vocabulary.files import atomic_write

__all__ = ["ChartStore"]

_log = logging.getLogger(__name__)
_DIGEST_HINT = "chart archives are keyed by 'sha256:<64 hex>'"


class ChartStore:
    """Chart archives keyed by the sha256 of their bytes."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, data: bytes) -> Digest:
        """Store ``data`` (atomically) and return its digest."""
        digest = sha256(data)
        path = self._path(digest)
        if not path.is_file():
            atomic_write(path, data)
        return digest

    def get(self, digest: Digest) -> bytes | None:
        """The archive with ``digest``, or ``None`` when absent or corrupt (a corrupt file is deleted)."""
        path = self._path(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        if sha256(data) != digest:
            _log.warning("chart store: %s does not hash to its name; deleting it", path.name)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            return None
        return data

    def __contains__(self, digest: object) -> bool:
        return isinstance(digest, str) and self._path(Digest(digest)).is_file()

    def _path(self, digest: Digest) -> Path:
        try:
            parse_digest(digest)
        except ValueError as exc:
            raise ChartError(f"chart store: {exc}", hint=_DIGEST_HINT) from exc
        algorithm, _, hexpart = digest.partition(":")
        if algorithm != "sha256":
            raise ChartError(
                f"chart store: digest {digest!r} uses {algorithm!r}; only sha256 is supported",
                hint=_DIGEST_HINT,
            )
        return self.root / "sha256" / f"{hexpart}.tgz"
