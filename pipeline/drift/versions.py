"""Chart versions ordered the way Helm orders them: Semantic Versioning 2.0 precedence.

:func:`parse_version` reads ``[v]MAJOR[.MINOR[.PATCH]][-PRERELEASE][+BUILD]`` (the leading ``v``
and missing minor or patch are accepted, as Helm's semver library does); anything else is not a
version and is ``None``. Precedence follows semver §11: numbers compared numerically, a
pre-release sorts before its release, pre-release identifiers compared one by one (numeric below
alphanumeric, a longer list above its prefix), build metadata ignored.

:func:`newer_version` picks the newest offered version above a locked one, skipping
pre-releases unless the locked version is a pre-release itself; :func:`newest_version` the newest
of all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

__all__ = ["Version", "newer_version", "newest_version", "parse_version"]

_IDENT = r"[0-9A-Za-z-]+"
_VERSION = re.compile(
    rf"^v?(?P<major>\d+)(?:\.(?P<minor>\d+))?(?:\.(?P<patch>\d+))?"
    rf"(?:-(?P<pre>{_IDENT}(?:\.{_IDENT})*))?(?:\+(?P<build>{_IDENT}(?:\.{_IDENT})*))?$"
)

_PreKey = tuple[tuple[int, int, str], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Version:
    """A parsed version; ``text`` is exactly as the source wrote it."""

    text: str
    major: int
    minor: int
    patch: int
    prerelease: tuple[str, ...] = ()

    @property
    def is_prerelease(self) -> bool:
        return bool(self.prerelease)

    def precedence(self) -> tuple[int, int, int, int, _PreKey]:
        """A key whose order is semver precedence (equal for versions differing only in build or ``v``)."""
        pre: _PreKey = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in self.prerelease)
        return (self.major, self.minor, self.patch, 0 if self.prerelease else 1, pre)


def parse_version(text: str) -> Version | None:
    """``text`` as a :class:`Version`, or ``None`` when it is not one."""
    match = _VERSION.match(text)
    if match is None:
        return None
    return Version(
        text=text, major=int(match["major"]), minor=int(match["minor"] or 0), patch=int(match["patch"] or 0),
        prerelease=tuple(match["pre"].split(".")) if match["pre"] else (),
    )


def newer_version(locked: str, offered: Iterable[str]) -> str | None:
    """The newest of ``offered`` with higher precedence than ``locked``, or ``None``.

    Versions that do not parse are skipped; pre-releases count only when ``locked`` is one. When
    ``locked`` does not parse there is nothing to compare with: ``None``.
    """
    base = parse_version(locked)
    if base is None:
        return None
    floor = base.precedence()
    return _newest(v for v in _parsed(offered, prereleases=base.is_prerelease) if v.precedence() > floor)


def newest_version(offered: Iterable[str], *, prereleases: bool = False) -> str | None:
    """The newest of ``offered`` (pre-releases only when asked for), or ``None`` when none parses."""
    return _newest(_parsed(offered, prereleases=prereleases))


def _parsed(offered: Iterable[str], *, prereleases: bool) -> Iterator[Version]:
    for text in offered:
        version = parse_version(text)
        if version is not None and (prereleases or not version.is_prerelease):
            yield version


def _newest(candidates: Iterable[Version]) -> str | None:
    """Ties in precedence (``v1.2.0`` and ``1.2.0``) are broken by the text: the answer does not depend on order."""
    best = max(candidates, key=lambda v: (v.precedence(), v.text), default=None)
    return best.text if best is not None else None
