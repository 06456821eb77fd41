"""Records of the drift stage: what was checked, what it found, and the report that holds them.

A :class:`DriftItem` is one locked image reference or one locked chart version, with every
(recipe, component) that uses it, its :class:`DriftStatus`, the locked value (``old``), what the
source says now (``new``) and a human ``detail``. What ``old`` and ``new`` hold depends on the
status (the report's tables are one per status, so a column means one thing per table):

============== ================================ ============================================
status         ``old``                          ``new``
============== ================================ ============================================
unchanged      locked digest (image) or         the same value, as the source serves it now
               archive digest (chart)
tag-moved      locked digest                    the digest the tag points to now
deleted        locked digest or archive digest  ``None``
republished    locked archive digest            archive digest served now for that version
newer-version  locked version                   the newest version the source offers
lock-mismatch  locked digest                    the same digest; ``detail`` names the claim the
                                                registry contradicts (platforms, media type)
error          locked digest or archive digest  ``None``
               (``None``: the lock has none)
============== ================================ ============================================

Records are valid once built (``__post_init__``); collections are sorted so a report built from
the same answers is the same whatever the thread timing.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["DriftItem", "DriftReport", "DriftStatus", "ItemKind", "Usage"]


class DriftStatus(enum.StrEnum):
    """What a source says about one locked item, compared with the lock."""

    UNCHANGED = "unchanged"
    TAG_MOVED = "tag-moved"
    DELETED = "deleted"
    REPUBLISHED = "republished"
    NEWER_VERSION = "newer-version"
    #: the tag still points to the locked digest, but the registry contradicts another claim of the
    #: lock about it (per-platform digests, media type): a lock edited with its self-digest recomputed
    LOCK_MISMATCH = "lock-mismatch"
    ERROR = "error"


class ItemKind(enum.StrEnum):
    IMAGE = "image"
    CHART = "chart"


#: Statuses that only one kind of item can have.
_KIND_OF_STATUS = {DriftStatus.TAG_MOVED: ItemKind.IMAGE, DriftStatus.REPUBLISHED: ItemKind.CHART,
                   DriftStatus.NEWER_VERSION: ItemKind.CHART, DriftStatus.LOCK_MISMATCH: ItemKind.IMAGE}


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class Usage:
    """A place a locked item is used: a component of a recipe's lock."""

    recipe: str
    component: str

    def __str__(self) -> str:
        return f"{self.recipe}/{self.component}"


@dataclass(frozen=True, slots=True, kw_only=True)
class DriftItem:
    """One locked image reference or chart version, and what its source says about it now.

    ``reference`` is the image reference as locked (``host/repo:tag``, ``host/repo:tag@sha256:…``,
    ``host/repo@sha256:…``) or the chart as ``ChartRef.display()`` writes it
    (``https://host/charts app@1.0.0``, ``oci://host/ns/app@1.0.0``, ``./charts/app@1.0.0``).
    ``used_by`` is sorted and without duplicates. See the module docstring for ``old``/``new``.
    """

    kind: ItemKind
    reference: str
    status: DriftStatus
    used_by: tuple[Usage, ...]
    old: str | None = None
    new: str | None = None
    detail: str = ""

    def __post_init__(self) -> None:
        if not self.reference:
            raise ValueError("DriftItem.reference must not be empty")
        if not self.used_by:
            raise ValueError(f"DriftItem {self.reference!r}: used_by must name at least one component")
        if tuple(sorted(set(self.used_by))) != self.used_by:
            raise ValueError(f"DriftItem {self.reference!r}: used_by must be sorted and without duplicates")
        only = _KIND_OF_STATUS.get(self.status)
        if only is not None and only is not self.kind:
            raise ValueError(f"DriftItem {self.reference!r}: status {self.status.value!r} is only for {only.value}s")
        match self.status:
            case DriftStatus.UNCHANGED:
                if self.old is None or self.old != self.new:
                    raise ValueError(f"DriftItem {self.reference!r}: unchanged needs old == new")
            case DriftStatus.TAG_MOVED | DriftStatus.REPUBLISHED | DriftStatus.NEWER_VERSION:
                if self.old is None or self.new is None or self.old == self.new:
                    raise ValueError(f"DriftItem {self.reference!r}: {self.status.value} needs old != new")
            case DriftStatus.DELETED:
                if self.old is None or self.new is not None:
                    raise ValueError(f"DriftItem {self.reference!r}: deleted needs old and no new")
            case DriftStatus.LOCK_MISMATCH:
                if self.old is None or self.old != self.new or not self.detail:
                    raise ValueError(f"DriftItem {self.reference!r}: lock-mismatch needs old == new and a detail")
            case DriftStatus.ERROR:
                if self.new is not None or not self.detail:
                    raise ValueError(f"DriftItem {self.reference!r}: error needs a detail and no new")

    @property
    def drifted(self) -> bool:
        return self.status is not DriftStatus.UNCHANGED

    def sort_key(self) -> tuple[str, str, str]:
        return (self.kind.value, self.reference, self.old or "")

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "reference": self.reference,
            "status": self.status.value,
            "old": self.old,
            "new": self.new,
            "detail": self.detail,
            "usedBy": [{"recipe": u.recipe, "component": u.component} for u in self.used_by],
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class DriftReport:
    """Every checked item, sorted by kind, reference and locked value."""

    items: tuple[DriftItem, ...]

    def __post_init__(self) -> None:
        keys = [i.sort_key() for i in self.items]
        if keys != sorted(keys) or len(set(keys)) != len(keys):
            raise ValueError("DriftReport.items must be sorted by (kind, reference, old) and unique")

    @classmethod
    def of(cls, items: list[DriftItem] | tuple[DriftItem, ...]) -> DriftReport:
        """A report of ``items`` in any order."""
        return cls(items=tuple(sorted(items, key=DriftItem.sort_key)))

    @property
    def drifted(self) -> tuple[DriftItem, ...]:
        """Every item whose status is not ``unchanged`` (errors included: an unchecked item is no all-clear)."""
        return tuple(i for i in self.items if i.drifted)

    @property
    def errors(self) -> tuple[DriftItem, ...]:
        """The items whose source could not be asked."""
        return tuple(i for i in self.items if i.status is DriftStatus.ERROR)

    def counts(self) -> Mapping[DriftStatus, int]:
        """Items per status, every status present (zero when none), in :class:`DriftStatus` order."""
        seen = Counter(i.status for i in self.items)
        return {status: seen.get(status, 0) for status in DriftStatus}
