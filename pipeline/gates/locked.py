"""Gate 3: every image a lock holds is locked to a digest; and every lockfile belongs to a recipe.

Chart-default images are not pinned in-tree (the chart chooses them); the lock pins them, and the
admission policies generated from the lock verify them at deploy time. Input: verified
:class:`~pipeline.lockfile.Lockfile` records keyed by their display path
(``lockfiles/<recipe>.lock.json``); the model already guarantees every digest it holds is
``sha256:<64 hex>``, so the gate looks for images locked without one (``lock --no-resolve``). Lines
are exact: they point into the bytes the lock was read from.

:func:`ghost_finding` reports a lockfile that no recipe of the catalog produces (a copied lock, or
one left behind by a removed recipe): it would otherwise pass every check of its own.
"""

from __future__ import annotations

from ..lockfile import Lockfile
from .interface import Finding, Gate, GateInput, GateName

__all__ = ["ChartDefaultImagesLocked", "ghost_finding"]

_HINT = "run 'python -m pipeline lock' (nox -s lock) to resolve every image against its registry, and commit lockfiles/"


class ChartDefaultImagesLocked(Gate):
    """Gate 3 (see the module docstring)."""

    name = GateName.LOCKED_IMAGES

    def check(self, given: GateInput) -> list[Finding]:
        findings: list[Finding] = []
        for path in sorted(given.locks):
            findings.extend(self._lock(path, given.locks[path]))
        return findings

    def _lock(self, path: str, lock: Lockfile) -> list[Finding]:
        findings: list[Finding] = []
        for name in sorted(lock.components):
            for index, image in enumerate(lock.components[name].images):
                if image.digest is None:
                    findings.append(Finding(
                        gate=self.name, file=path, line=lock.line_of("components", name, "images", index, "ref"),
                        message=f"component '{name}': {image.origin.value} image '{image.ref}' has no digest "
                                "in the lock",
                        hint=_HINT))
        return findings


def ghost_finding(path: str) -> Finding:
    """The finding for a lockfile at ``path`` that no recipe of the catalog produces."""
    return Finding(gate=GateName.LOCKS_MATCH_CATALOG, file=path, line=None,
                   message="this lockfile belongs to no recipe of the catalog (copied, or left by a removed recipe)",
                   hint="delete it, or run 'nox -s lock', which removes the locks of recipes that no longer exist")
