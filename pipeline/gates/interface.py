"""The gate interface: a small abstract :class:`Gate` and the :class:`Finding` it reports.

A gate is a check over explicit inputs (:class:`GateInput`: the loaded catalog, its exemptions, and
what earlier stages produced — composed recipes, found images, lock bodies) that returns findings;
it never raises for a failed check, only for input it cannot read. Every :class:`Finding` names
the gate, the catalog-relative file and (when known) the line, says what is wrong and why, and
carries the fix in ``hint``.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from ..images.model import FoundImage
from ..lockfile import Lockfile
from ..recipes import Catalog, Recipe
from .exemptions import Exemptions

__all__ = ["Finding", "Gate", "GateInput", "GateName", "sort_findings"]


class GateName(enum.StrEnum):
    """The three pinning layers, and the check that every lockfile belongs to a recipe."""

    CHART_VERSIONS = "chart-versions-pinned"
    IN_TREE_DIGESTS = "in-tree-images-digest-pinned"
    LOCKED_IMAGES = "chart-default-images-locked"
    LOCKS_MATCH_CATALOG = "locks-match-catalog"


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """One failed check: where (file, line), what and why (message), and the fix (hint)."""

    gate: GateName
    file: str
    line: int | None
    message: str
    hint: str

    def __post_init__(self) -> None:
        if not self.file or not self.message or not self.hint:
            raise ValueError("a finding needs a file, a message and a hint")

    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line is not None else self.file

    def __str__(self) -> str:
        return f"{self.where()}: {self.message}"

    def diagnostics(self) -> str:
        """``file:line: message [gate]`` and the hint on its own line, as the CLI prints it."""
        return f"{self} [{self.gate.value}]\nhint: {self.hint}"


def sort_findings(findings: Sequence[Finding]) -> list[Finding]:
    """Findings in a stable order: by file, line, gate and message."""
    return sorted(findings, key=lambda f: (f.file, f.line or 0, f.gate.value, f.message))


@dataclass(frozen=True, slots=True, kw_only=True)
class GateInput:
    """Everything a gate may look at.

    ``recipes`` and ``images`` are keyed by recipe name (images: every component's found images);
    ``locks`` maps a lock's display path (``lockfiles/<recipe>.lock.json``) to the verified lock.
    """

    catalog: Catalog
    exemptions: Exemptions
    recipes: Mapping[str, Recipe] = field(default_factory=dict)
    images: Mapping[str, Sequence[FoundImage]] = field(default_factory=dict)
    locks: Mapping[str, Lockfile] = field(default_factory=dict)


class Gate(abc.ABC):
    """A check that turns a :class:`GateInput` into findings (empty: the gate passes)."""

    name: ClassVar[GateName]

    @abc.abstractmethod
    def check(self, given: GateInput) -> list[Finding]:
        """Every finding of this gate, in any order (:func:`run_gates` sorts them)."""
