"""The provenance stage, top to bottom: the entry points the CLI, nox and qualify call.

- :func:`provenance`: read the matrix and the verified, fresh locks (``pipeline.stages.fresh_locks``),
  verify every locked digest against its
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

from ..errors import GateError
from ..images import ImageRef
from ..lockfile import Lockfile
from ..pin import Admission, load_pin_rules
from ..vocabulary.files import atomic_write, plan_sync
from .crd import load_crd, validate_files
from .interface import ArtifactSource
from .keyless import KeylessVerifier
from .locked import LockedImage, locked_images
from .matrix import ProvenanceMatrix, check, load_matrix
from .policies import (
    KYVERNO_DIR,
    POLICY_CONTROLLER_DIR,
    KyvernoApi,
    WriteResult,
    render_policies,
    write_policies,
)
from .report import render_matrix
from .verify import ImageVerification, verify_images

__all__ = [
    "CRD_FILES",
    "ProvenanceResult",
    "check_document",
    "check_policies",
    "check_provenance",
    "policies",
    "provenance",
    "tagged_images",
]

#: The CRDs the policies are validated against, relative to ``../shared/schemas``.
CRD_FILES = ("kyverno/kyverno.io_clusterpolicies.yaml", "kyverno/policies.kyverno.io_imagevalidatingpolicies.yaml",
             "policy-controller/300-clusterimagepolicy.yaml")


@dataclass(frozen=True, slots=True, kw_only=True)
class ProvenanceResult:
    matrix: ProvenanceMatrix
    images: tuple[LockedImage, ...]
    results: tuple[ImageVerification, ...] | None
    document: Path
    written: bool


def provenance(catalog: Path, locks: Sequence[Lockfile], *, document: Path, source: ArtifactSource | None,
               keyless: KeylessVerifier | None = None, catalog_display: str = "recipes") -> ProvenanceResult:
    """Matrix + verified, fresh locks (+ registry checks) → ``document`` (Markdown), written atomically."""
    matrix = load_matrix(catalog)
    images = locked_images(locks)
    results = verify_images(images, matrix, source=source, keyless=keyless) if source is not None else None
    data = render_matrix(matrix, images, results, catalog=catalog_display)
    written = not (document.is_file() and document.read_bytes() == data)
    atomic_write(document, data)
    return ProvenanceResult(matrix=matrix, images=images, results=results, document=document, written=written)


def tagged_images(catalog: Path, locks: Sequence[Lockfile]) -> tuple[ImageRef, ...]:
    """The locked images that ``exemptions.yaml`` ``unpinnedFields`` leaves by tag with
    ``admission: allow-locked-tag`` (found in a resource of the exempted kind of that component)."""
    rules = load_pin_rules(catalog)
    out: set[ImageRef] = set()
    for lock in locks:
        for component, image in lock.images():
            for exemption in rules.exemptions:
                if exemption.component != component.name or exemption.admission is not Admission.ALLOW_LOCKED_TAG:
                    continue
                if image.digest is not None and image.image.digest is None and any(
                        where.startswith(f"{exemption.kind}/") for where in image.found_at):
                    out.add(image.image)
    return tuple(sorted(out, key=str))


def check_document(catalog: Path, locks: Sequence[Lockfile], *, document: Path,
                   catalog_display: str = "recipes") -> list[str]:
    """The qualify gate over ``document``: it is what the matrix and the locks give (no registry asked)."""
    matrix = load_matrix(catalog)
    check(matrix, locks)
    expected = render_matrix(matrix, locked_images(locks), None, catalog=catalog_display)
    if document.is_file() and document.read_bytes() == expected:
        return []
    return [f"{document} does not match the locks and recipes/provenance.yaml: run 'nox -s provenance' and commit it"]


def policies(catalog: Path, locks: Sequence[Lockfile], *, out: Path,
             kyverno: KyvernoApi | None = None) -> WriteResult:
    """Render the admission policies from verified, fresh locks and the matrix; write them under ``out``.

    ``kyverno``: the Kyverno API of the allow-list for this run; ``None`` (every caller but an explicit
    ``policies --kyverno-api``): the one the matrix records (``spec.policies.kyvernoApi``)."""
    matrix = load_matrix(catalog)
    images = locked_images(locks)
    return write_policies(out, render_policies(matrix, images, tagged=tagged_images(catalog, locks),
                                               kyverno=KyvernoApi.of(matrix) if kyverno is None else kyverno))


def check_provenance(catalog: Path, locks: Sequence[Lockfile]) -> None:
    """The qualify gate over the matrix (see :func:`~pipeline.provenance.matrix.check`)."""
    check(load_matrix(catalog), locks)


def check_policies(catalog: Path, locks: Sequence[Lockfile], *, out: Path, schemas: Path | None) -> int:
    """The qualify gate over the policies: up to date, and valid against the CRDs (when ``schemas`` is
    given); returns the number of policy files."""
    matrix = load_matrix(catalog)
    expected = render_policies(matrix, locked_images(locks), tagged=tagged_images(catalog, locks),
                               kyverno=KyvernoApi.of(matrix))
    plan = plan_sync({out / rel: data for rel, data in expected.items()},
                     generated=[p for sub in (KYVERNO_DIR, POLICY_CONTROLLER_DIR) for p in (out / sub).glob("*.yaml")])
    if plan.changed:
        shown = ", ".join([*(p.relative_to(out).as_posix() for p in plan.written),
                           *(f"{p.relative_to(out).as_posix()} (not generated)" for p in plan.removed)])
        raise GateError(f"admission policies in {out.name}/ are not what the lockfiles and the matrix give "
                        f"(Kyverno {matrix.kyverno_api}, {matrix.path} spec.policies.kyvernoApi): {shown}",
                        hint="run 'python -m pipeline policies' and commit the result")
    if schemas is None:
        return len(expected)
    crds = [load_crd(schemas / rel) for rel in CRD_FILES]
    return validate_files([out / rel for rel in expected], crds, root=out.parent)
