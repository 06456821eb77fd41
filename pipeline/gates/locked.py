"""Gate 3: every image a lock holds is locked to a digest.

Chart-default images are not pinned in-tree (the chart chooses them); the lock pins them, and the
admission policies generated from the lock verify them at deploy time. Input: lock bodies (the
parsed canonical JSON of ``lockfiles/<recipe>.lock.json``, keyed by that display path). Every
``components.<name>.images[]`` entry needs a ``digest`` that is ``sha256:<64 lowercase hex>``.
Lines are exact: a lock file is the canonical JSON of its body, so the body is serialised again
and the entry's ``"ref"`` line is found in it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..vocabulary.digest import canonical_json, is_sha256
from .interface import Finding, Gate, GateInput, GateName

__all__ = ["ChartDefaultImagesLocked"]

_HINT = "run 'python -m pipeline lock' (nox -s lock) to resolve every image against its registry, and commit lockfiles/"


class ChartDefaultImagesLocked(Gate):
    """Gate 3 (see the module docstring)."""

    name = GateName.LOCKED_IMAGES

    def check(self, given: GateInput) -> list[Finding]:
        findings: list[Finding] = []
        for path in sorted(given.locks):
            findings.extend(self._lock(path, given.locks[path]))
        return findings

    def _lock(self, path: str, body: Mapping[str, Any]) -> list[Finding]:
        lines = canonical_json(dict(body)).decode().splitlines()
        components = body.get("components")
        if not isinstance(components, Mapping):
            return [Finding(gate=self.name, file=path, line=None, message="lock has no 'components' mapping",
                            hint=_HINT)]
        findings: list[Finding] = []
        cursor = 0
        for name in sorted(components):
            entry = components[name]
            images = entry.get("images") if isinstance(entry, Mapping) else None
            for image in images if isinstance(images, list) else []:
                if not isinstance(image, Mapping):
                    continue
                ref = str(image.get("ref", "?"))
                line, cursor = _line_of(lines, f'"ref": {_json_str(ref)}', cursor)
                digest = image.get("digest")
                origin = image.get("origin", "chart-default")
                what = f"component '{name}': {origin} image '{ref}'"
                if digest is None or digest == "":
                    findings.append(Finding(gate=self.name, file=path, line=line,
                                            message=f"{what} has no digest in the lock", hint=_HINT))
                elif not is_sha256(digest):
                    findings.append(Finding(gate=self.name, file=path, line=line,
                                            message=f"{what} is locked to {digest!r}, not a sha256:<64 hex> digest",
                                            hint=_HINT))
        return findings


def _json_str(text: str) -> str:
    return canonical_json(text).decode().strip()


def _line_of(lines: list[str], needle: str, start: int) -> tuple[int | None, int]:
    """1-based line of ``needle`` at or after line index ``start`` (and the next start)."""
    for index in range(start, len(lines)):
        if needle in lines[index]:
            return index + 1, index + 1
    for index in range(min(start, len(lines))):
        if needle in lines[index]:
            return index + 1, start
    return None, start
