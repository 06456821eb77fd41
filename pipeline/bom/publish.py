"""The ``bom`` stage entry point: every BOM and the inventory document, written together or not at all.

Input: verified, fresh lockfiles (the caller reads them with :func:`pipeline.lock.read_lockfile`
and checks staleness first), the reviewed exemptions, and where to write. Output: ``<bom_dir>/
recipes/<recipe>.cdx.json``, ``<bom_dir>/catalog.cdx.json`` and the generated section of the
inventory document, replaced atomically in one step after every lock was verified and every BOM
built and validated; BOMs of recipes that no longer have a lock are removed. :func:`stale` is the
``qualify`` gate: what is missing or differs, without writing. Errors: those of
:mod:`~pipeline.bom.cyclonedx` and :mod:`~pipeline.bom.inventory`, all raised before any write.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..lock import Lockfile
from ..vocabulary.files import atomic_write_many
from .cyclonedx import bom_files, check_boms_fresh
from .interface import Exemption, locked_recipes
from .inventory import check_fresh, update_document

__all__ = ["Published", "publish", "stale"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Published:
    """What :func:`publish` did, for the CLI to print."""

    written: tuple[Path, ...]
    unchanged: tuple[Path, ...]
    removed: tuple[Path, ...]


def publish(locks: Sequence[Lockfile], *, bom_dir: Path, inventory: Path, catalog: str = "catalog",
            exemptions: Sequence[Exemption] = (), allow_unpinned: bool = False) -> Published:
    """Build, validate and write every BOM and the inventory document (all or nothing)."""
    recipes = locked_recipes(locks)
    files = {bom_dir / rel: data for rel, data in bom_files(locks, catalog=catalog, exemptions=exemptions,
                                                            allow_unpinned=allow_unpinned).items()}
    existing = inventory.read_text(encoding="utf-8") if inventory.is_file() else None
    files[inventory] = update_document(existing, recipes, where=str(inventory)).encode()
    unchanged = tuple(sorted(p for p, data in files.items() if p.is_file() and p.read_bytes() == data))
    atomic_write_many(files)
    removed = []
    if (bom_dir / "recipes").is_dir():
        for orphan in sorted((bom_dir / "recipes").glob("*.cdx.json")):
            if orphan not in files:
                orphan.unlink()
                removed.append(orphan)
    return Published(written=tuple(sorted(p for p in files if p not in unchanged)), unchanged=unchanged,
                     removed=tuple(removed))


def stale(locks: Sequence[Lockfile], *, bom_dir: Path, inventory: Path, catalog: str = "catalog",
          exemptions: Sequence[Exemption] = (), allow_unpinned: bool = False) -> list[str]:
    """One message per BOM or document that does not match the locks (empty: all fresh)."""
    return [*check_boms_fresh(bom_dir, locks, catalog=catalog, exemptions=exemptions, allow_unpinned=allow_unpinned),
            *check_fresh(inventory, locks)]
