"""Content-addressed store of chart archives: what lets ``reproduce`` run offline.

A :class:`~pipeline.vocabulary.store.ContentStore` (the one content-addressed store) with the
chart layout and :class:`~pipeline.errors.ChartError` for bad digests.

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

from pathlib import Path

from ..errors import ChartError
from ..vocabulary.digest import Digest
from ..vocabulary.store import ContentStore

__all__ = ["ChartStore"]

_DIGEST_HINT = "chart archives are keyed by 'sha256:<64 hex>'"


class ChartStore(ContentStore):
    """Chart archives keyed by the sha256 of their bytes: ``<root>/sha256/<hex>.tgz``."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, prefix="sha256/", suffix=".tgz", name="chart store")

    def path(self, digest: Digest) -> Path:
        try:
            return super().path(digest)
        except ValueError as exc:
            raise ChartError(f"chart store: {exc}", hint=_DIGEST_HINT) from exc
