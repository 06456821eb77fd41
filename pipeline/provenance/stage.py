"""The provenance stage, top to bottom: the entry points the CLI, nox and qualify call.

- :func:`provenance`: read the matrix and the lockfiles, verify every locked digest against its
  registry (when given an :class:`ArtifactSource`; ``None`` renders "not checked"), render
  ``docs/provenance-matrix.md`` and write it atomically; returns a :class:`ProvenanceResult`;
- :func:`policies`: render the Kyverno and policy-controller policies and write them atomically
  under the policy directory (stale generated files removed);
- :func:`check_provenance` (qualify): every locked component documented, every gap owned,
  tracked and mitigated (:class:`~pipeline.errors.GateError`);
- :func:`check_policies` (qualify): the committed policies equal what the lock and the matrix
  give, and validate against the real CRDs with no prunable field (:class:`GateError`).

No function prints; only :func:`provenance` with a source touches the network.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import GateError, LockError
from ..lock import LOCK_SUFFIX, Lockfile, read_lockfile
from ..vocabulary.files import atomic_write
from .crd import load_crd, validate_files
from .interface import ArtifactSource
from .keyless import KeylessVerifier
from .locked import LockedImage, locked_images
from .matrix import ProvenanceMatrix, check, load_matrix
from .policies import KYVERNO_DIR, POLICY_CONTROLLER_DIR, WriteResult, render_policies, write_policies
from .report import render_matrix
from .verify import ImageVerification, verify_images

__all__ = [
    "CRD_FILES",
    "ProvenanceResult",
    "check_policies",
    "check_provenance",
    "policies",
    "provenance",
    "read_lockfiles",
]

#: The CRDs the policies are validated against, relative to ``../shared/schemas``.
CRD_FILES = ("kyverno/kyverno.io_clusterpolicies.yaml", "policy-controller/300-clusterimagepolicy.yaml")


@dataclass(frozen=True, slots=True, kw_only=True)
class ProvenanceResult:
    matrix: ProvenanceMatrix
    images: tuple[LockedImage, ...]
    results: tuple[ImageVerification, ...] | None
    document: Path
    written: bool


def read_lockfiles(lockdir: Path) -> tuple[Lockfile, ...]:
    """Every ``*.lock.json`` of ``lockdir``, integrity-checked, sorted by recipe."""
    paths = sorted(lockdir.glob(f"*{LOCK_SUFFIX}"))
    if not paths:
        raise LockError(f"no lockfiles in {lockdir}", hint="run 'nox -s lock' first")
    return tuple(read_lockfile(p, display=f"{lockdir.name}/{p.name}") for p in paths)


def provenance(catalog: Path, lockdir: Path, *, document: Path, source: ArtifactSource | None,
               keyless: KeylessVerifier | None = None, catalog_display: str = "recipes") -> ProvenanceResult:
    """Matrix + lockfiles (+ registry checks) → ``document`` (Markdown), written atomically."""
    matrix = load_matrix(catalog)
    images = locked_images(read_lockfiles(lockdir))
    results = verify_images(images, matrix, source=source, keyless=keyless) if source is not None else None
    data = render_matrix(matrix, images, results, catalog=catalog_display)
    written = not (document.is_file() and document.read_bytes() == data)
    atomic_write(document, data)
    return ProvenanceResult(matrix=matrix, images=images, results=results, document=document, written=written)


def policies(catalog: Path, lockdir: Path, *, out: Path) -> WriteResult:
    """Render the admission policies from the lockfiles and the matrix; write them under ``out``."""
    matrix = load_matrix(catalog)
    images = locked_images(read_lockfiles(lockdir))
    return write_policies(out, render_policies(matrix, images))


def check_provenance(catalog: Path, lockdir: Path) -> None:
    """The qualify gate over the matrix (see :func:`~pipeline.provenance.matrix.check`)."""
    check(load_matrix(catalog), read_lockfiles(lockdir))


def check_policies(catalog: Path, lockdir: Path, *, out: Path, schemas: Path | None,
                   lockfiles: Sequence[Lockfile] | None = None) -> int:
    """The qualify gate over the policies: up to date, and valid against the CRDs (when ``schemas`` is
    given); returns the number of policy files."""
    matrix = load_matrix(catalog)
    expected = render_policies(matrix, locked_images(lockfiles or read_lockfiles(lockdir)))
    stale = sorted(rel for rel, data in expected.items()
                   if not (out / rel).is_file() or (out / rel).read_bytes() != data)
    extra = sorted(str(p.relative_to(out)) for sub in (KYVERNO_DIR, POLICY_CONTROLLER_DIR)
                   for p in (out / sub).glob("*.yaml") if str(p.relative_to(out)) not in expected)
    if stale or extra:
        shown = ", ".join([*stale, *(f"{e} (not generated)" for e in extra)])
        raise GateError(f"admission policies in {out.name}/ are not what the lockfiles and the matrix give: {shown}",
                        hint="run 'python -m pipeline policies' and commit the result")
    if schemas is None:
        return len(expected)
    crds = [load_crd(schemas / rel) for rel in CRD_FILES]
    return validate_files([out / rel for rel in expected], crds, root=out.parent)
