"""The visibility stage: CycloneDX BOMs, the published image inventory and the mirror list, from locks.

Every output is a pure function of verified lockfiles (no clock, no network, no environment):
:mod:`~pipeline.bom.cyclonedx` (CycloneDX 1.6 JSON per recipe and for the catalog),
:mod:`~pipeline.bom.inventory` (``docs/container-images.md``) and :mod:`~pipeline.bom.mirror`
(text, JSON, Hauler, Zarf, containerd ``hosts.toml``). :func:`publish` writes the BOMs and the
inventory together, atomically; :func:`stale` is the freshness gate for ``qualify``. Callers read locks with
:func:`pipeline.lock.read_lockfile` and check staleness first; these modules refuse a lock whose
body does not match its digest and, by default, an image without a digest.
"""

from __future__ import annotations

from .cyclonedx import (
    BomFiles,
    bom_files,
    build_bom,
    build_catalog_bom,
    check_boms_fresh,
    serialize,
    validate,
    write_boms,
)
from .interface import BomError, Exemption, Output, locked_recipes
from .inventory import check_fresh, write_inventory
from .mirror import MirrorFormat, hosts_toml, mirror_list
from .mirror import render as render_mirror_list
from .publish import Published, publish, stale

__all__ = [
    "BomError",
    "BomFiles",
    "Exemption",
    "MirrorFormat",
    "Output",
    "Published",
    "bom_files",
    "build_bom",
    "build_catalog_bom",
    "check_boms_fresh",
    "check_fresh",
    "hosts_toml",
    "locked_recipes",
    "mirror_list",
    "publish",
    "render_mirror_list",
    "serialize",
    "stale",
    "validate",
    "write_boms",
    "write_inventory",
]
