"""The ``bom`` stage entry point: every BOM and the inventory document, written together or not at all.

Input: verified, fresh lockfiles (from :func:`pipeline.stages.fresh_locks`), the reviewed
exemptions, and where to write. Output: ``<bom_dir>/
recipes/<recipe>.cdx.json``, ``<bom_dir>/catalog.cdx.json`` and the generated section of the
inventory document, replaced atomically in one step after every lock was verified and every BOM
built and validated; BOMs of recipes that no longer have a lock are removed. :func:`stale` is the
``qualify`` gate: what is missing or differs, without writing. Errors: those of
:mod:`~pipeline.bom.cyclonedx` and :mod:`~pipeline.bom.inventory`, all raised before any write.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..lockfile import Lockfile
from ..vocabulary.files import Synced, sync_tree
from .cyclonedx import bom_files, check_boms_fresh
from .interface import Exemption, locked_recipes
from .inventory import check_fresh, update_document

__all__ = ["Published", "publish", "stale"]


#: What :func:`publish` did, for the CLI to print.
Published = Synced


def publish(locks: Sequence[Lockfile], *, bom_dir: Path, inventory: Path, catalog: str = "catalog",
            exemptions: Sequence[Exemption] = (), allow_unpinned: bool = False,
            lockdir: str = "lockfiles") -> Published:
    """Build, validate and write every BOM and the inventory document (all or nothing)."""
    recipes = locked_recipes(locks)
    files = {bom_dir / rel: data for rel, data in bom_files(locks, catalog=catalog, exemptions=exemptions,
                                                            allow_unpinned=allow_unpinned).items()}
    existing = inventory.read_text(encoding="utf-8") if inventory.is_file() else None
    files[inventory] = update_document(existing, recipes, where=str(inventory), lockdir=lockdir).encode()
    return sync_tree(files, generated=(bom_dir / "recipes").glob("*.cdx.json"))


def stale(locks: Sequence[Lockfile], *, bom_dir: Path, inventory: Path, catalog: str = "catalog",
          exemptions: Sequence[Exemption] = (), allow_unpinned: bool = False, lockdir: str = "lockfiles") -> list[str]:
    """One message per BOM or document that does not match the locks (empty: all fresh)."""
    return [*check_boms_fresh(bom_dir, locks, catalog=catalog, exemptions=exemptions, allow_unpinned=allow_unpinned),
            *check_fresh(inventory, locks, lockdir=lockdir)]
