"""Run the pinning gates over a catalog: the entry point ``qualify`` and the CLI call.

``run_gates(catalog, recipes=…, images=…, locks=…)`` loads the catalog and its exemptions, runs
gate 1 always, gate 2 when ``images`` is given and gate 3 when ``locks`` is given (a gate whose
input is missing is not run, rather than passed silently: the caller decides what to run), and
returns every finding, sorted. It raises only for input it cannot read
(:class:`~pipeline.errors.RecipeError`); a failed check is a finding. ``findings_error`` turns
findings into the :class:`~pipeline.errors.GateError` the CLI maps to exit code 1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from ..errors import GateError
from ..images.model import FoundImage
from ..lockfile import Lockfile
from ..recipes import Recipe, load_catalog
from .digests import InTreeDigestsPinned
from .exemptions import load_exemptions
from .interface import Finding, Gate, GateInput, sort_findings
from .locked import ChartDefaultImagesLocked
from .pinning import ChartVersionsPinned

__all__ = ["findings_error", "run_gates"]


def run_gates(
    catalog: Path,
    *,
    recipes: Sequence[Recipe] = (),
    images: Mapping[str, Sequence[FoundImage]] | None = None,
    locks: Mapping[str, Lockfile] | None = None,
) -> list[Finding]:
    """Every finding of the gates whose inputs are given, sorted by file and line."""
    loaded = load_catalog(catalog)
    given = GateInput(
        catalog=loaded, exemptions=load_exemptions(loaded.root), recipes={r.name: r for r in recipes},
        images=images or {}, locks=locks or {},
    )
    gates: list[Gate] = [ChartVersionsPinned()]
    if images is not None:
        gates.append(InTreeDigestsPinned())
    if locks is not None:
        gates.append(ChartDefaultImagesLocked())
    findings: list[Finding] = []
    for gate in gates:
        findings.extend(gate.check(given))
    return sort_findings(findings)


def findings_error(findings: Sequence[Finding]) -> GateError | None:
    """``None`` when there are no findings, else one error whose message lists them all."""
    if not findings:
        return None
    body = "\n".join(f.diagnostics() for f in findings)
    count = f"{len(findings)} finding{'s' if len(findings) != 1 else ''}"
    return GateError(f"pinning gates failed with {count}:\n{body}",
                     hint="fix each finding as its hint says; exemptions go in <catalog>/exemptions.yaml")
