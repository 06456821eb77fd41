"""The engine's identity, as a lock records it: package version, Helm SDK version, native library digest.

Workers report :func:`~pipeline.render.engine.engine_facts` (cheap: versions and the library's
path); the parent process hashes the library once per run here, without loading the engine itself.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata, util
from pathlib import Path

from ..errors import PipelineError

__all__ = ["ENGINE_NAME", "EngineIdentity", "installed_engine", "library_digest", "library_identity"]

#: The in-process engine: Helm's Go SDK embedded through the pinned ``helm-python-sdk`` wheel.
ENGINE_NAME = "helm-python-sdk"
_DISTRIBUTION = "helm-python-sdk"


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


def installed_engine() -> dict[str, str]:
    """Name, package version and native library digest of the installed engine, without loading it.

    What a publisher compares a lock's engine with (the Helm SDK version is known only once the
    library is loaded; the library digest already pins it). Raises when the wheel is not installed.
    """
    spec = util.find_spec("helm_python")
    try:
        version = metadata.version(_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        version = None
    if spec is None or not spec.submodule_search_locations or version is None:
        raise PipelineError("the Helm engine (the helm-python-sdk wheel) is not installed in this environment",
                            hint="run the command through nox (nox -s lock, nox -s bom …), or install "
                                 "requirements/run.txt with --require-hashes")
    libdir = Path(next(iter(spec.submodule_search_locations))) / "lib"
    library = next((p for p in (libdir / f"libhelm_c.so.{version}", libdir / "libhelm_c.so") if p.is_file()), None)
    if library is None:
        raise PipelineError(f"the Helm engine's native library is missing from {libdir}",
                            hint="re-create the virtual environment: 'nox -r'")
    return {"name": ENGINE_NAME, "version": version, "library": library_digest(str(library.resolve()))}
