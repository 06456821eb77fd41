"""Helm's rules for finding a pinned chart version in what a repository offers.

Contract (read from Helm v4.2.3 and the Masterminds ``semver/v3`` v3.5.0 it uses, and checked
against the real ``helm`` binary in ``tests/charts/test_versions.py``):

- HTTP repositories (``pkg/repo/v1/index.go``, ``IndexFile.Get``): the entry whose version string
  equals the pin exactly wins; otherwise the pin is read as a semver constraint and the first entry
  that satisfies it, in the index's order after Helm sorts it newest first, wins. For one exact
  version (the only kind the pinning gate lets through) the constraint is semver *equality*: a
  leading ``v`` is ignored on both sides, and so is ``+build`` metadata (``1.2.3`` matches
  ``v1.2.3`` and ``1.2.3+up1``); a pre-release must match (``1.2.3`` never matches
  ``1.2.3-rc.1``). :func:`match_index_version` returns the version string the index served;
- OCI registries (``pkg/registry/client.go``, ``ValidateReference``): a pin that parses as a
  semantic version is used as the tag *verbatim*, with ``+`` written as ``_``; Helm lists tags and
  matches constraints only for pins that are not versions (ranges, which the pinning gate
  refuses). So ``v1.2.3`` asks for the tag ``v1.2.3`` and never finds ``1.2.3``
  (:func:`oci_tag`);
- :func:`nearest_versions` names the offered versions closest to a pin, for error messages.

Versions are parsed as Masterminds ``semver.NewVersion`` does with ``CoerceNewVersion`` (Helm's
default): an optional ``v``, one to three numeric parts (missing ones are 0; leading zeros are
accepted), ``-prerelease`` and ``+metadata`` identifiers; numeric pre-release identifiers must not
have leading zeros. Comparison ignores metadata, as ``Version.Compare`` does.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["SemVer", "match_index_version", "nearest_versions", "oci_tag", "parse_semver"]

_LOOSE = re.compile(
    r"^v?([0-9]+)(\.[0-9]+)?(\.[0-9]+)?"
    r"(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?"
    r"(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?$"
)
_MAX_LEN = 256
_UINT64 = 2**64


@dataclass(frozen=True, slots=True, kw_only=True)
class SemVer:
    """A version as Masterminds semver reads it (``metadata`` kept, but never compared)."""

    major: int
    minor: int
    patch: int
    pre: str
    metadata: str

    def compare(self, other: SemVer) -> int:
        """-1, 0 or 1, as ``(*Version).Compare`` (metadata ignored)."""
        for mine, theirs in ((self.major, other.major), (self.minor, other.minor), (self.patch, other.patch)):
            if mine != theirs:
                return 1 if mine > theirs else -1
        if not self.pre and not other.pre:
            return 0
        if not self.pre:
            return 1
        if not other.pre:
            return -1
        return _compare_prerelease(self.pre, other.pre)


def parse_semver(text: str) -> SemVer | None:
    """``text`` as ``semver.NewVersion`` (coercing) parses it, or ``None`` when it refuses it."""
    if len(text) > _MAX_LEN:
        return None
    match = _LOOSE.fullmatch(text)
    if match is None:
        return None
    parts = [int(match.group(1)), int((match.group(2) or ".0")[1:]), int((match.group(3) or ".0")[1:])]
    if any(part >= _UINT64 for part in parts):
        return None
    pre, metadata = match.group(5) or "", match.group(8) or ""
    for ident in pre.split(".") if pre else ():
        if ident.isdigit() and len(ident) > 1 and ident[0] == "0":
            return None  # ErrSegmentStartsZero
    return SemVer(major=parts[0], minor=parts[1], patch=parts[2], pre=pre, metadata=metadata)


def _compare_prerelease(mine: str, theirs: str) -> int:
    left, right = mine.split("."), theirs.split(".")
    for index in range(max(len(left), len(right))):
        a = left[index] if index < len(left) else ""
        b = right[index] if index < len(right) else ""
        result = _compare_pre_part(a, b)
        if result:
            return result
    return 0


def _compare_pre_part(a: str, b: str) -> int:
    """``comparePrePart``, including its quirk: numerically equal but differently written is -1."""
    if a == b:
        return 0
    if not a:
        return -1 if b else 1
    if not b:
        return 1
    a_num, b_num = a.isdigit() and int(a) < _UINT64, b.isdigit() and int(b) < _UINT64
    if not a_num and not b_num:
        return 1 if a > b else -1
    if not a_num:
        return 1  # a string sorts after a number
    if not b_num:
        return -1
    return 1 if int(a) > int(b) else -1


def _newest_first(offered: Iterable[str]) -> list[str]:
    """Helm's ``SortEntries`` order: newest first; unparseable versions last (a stable sort)."""
    items = list(offered)

    def older(a: str, b: str) -> int:
        pa, pb = parse_semver(a), parse_semver(b)
        if pa is None or pb is None:
            return (pa is None) - (pb is None)  # unparseable after parseable; ties keep their order
        return -pa.compare(pb)

    return sorted(items, key=functools.cmp_to_key(older))


def match_index_version(pin: str, offered: Sequence[str]) -> str | None:
    """The version string an HTTP index serves for the exact ``pin`` under Helm's rules, or ``None``.

    Exact string first; then the first version, newest first, that is semver-equal to ``pin``. For
    candidates that differ only in metadata (``1.2.3+a`` and ``1.2.3+b``) Helm keeps its sort's
    order, which for the ≤ 12 versions Go sorts by insertion is the index's order; so does this.
    A ``pin`` that is not one exact version (a range) matches only by exact string.
    """
    if pin in offered:
        return pin
    wanted = parse_semver(pin)
    if wanted is None or not re.fullmatch(r"v?\d+\.\d+\.\d+([-+].*)?", pin):
        return None
    for candidate in _newest_first(offered):
        parsed = parse_semver(candidate)
        if parsed is not None and parsed.compare(wanted) == 0:
            return candidate
    return None


def oci_tag(pin: str) -> str:
    """The tag Helm asks an OCI registry for a pinned version: the pin verbatim, ``+`` as ``_``."""
    return pin.replace("+", "_")


def nearest_versions(pin: str, offered: Iterable[str], *, count: int = 5) -> list[str]:
    """Up to ``count`` offered versions around where ``pin`` would sort (oldest first)."""
    ordered = list(reversed(_newest_first(set(offered))))
    parsed = [v for v in ordered if parse_semver(v) is not None]
    wanted = parse_semver(pin)
    if wanted is None or not parsed:
        return ordered[-count:]
    position = sum(1 for v in parsed if (p := parse_semver(v)) is not None and p.compare(wanted) < 0)
    start = max(0, min(position - count // 2, len(parsed) - count))
    return parsed[start:start + count]
