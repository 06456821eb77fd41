"""The engine's identity, as a lock records it: package version, Helm SDK version, native library digest.

Workers report :func:`~pipeline.render.engine.engine_facts` (cheap: versions and the library's
path); the parent process hashes the library once per run here, without loading the engine itself.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["EngineIdentity", "library_digest", "library_identity"]


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineIdentity:
    """Which engine rendered: package version, embedded Helm SDK, sha256 of the native library."""

    name: str
    version: str
    helm: str
    library: str

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version, "helm": self.helm, "library": self.library}


@functools.cache
def library_digest(path: str) -> str:
    """sha256 of the native library at ``path`` (85 MB, ~0.1 s), once per process."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()


def library_identity(facts: Mapping[str, str]) -> EngineIdentity:
    """The full identity from what an engine reports of itself (hashing the library it loaded)."""
    return EngineIdentity(name=facts["name"], version=facts["version"], helm=facts["helm"],
                          library=library_digest(facts["library_path"]))
