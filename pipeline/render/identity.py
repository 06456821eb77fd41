"""The engine's identity, as a lock records it: package version, Helm SDK version, native library digest.

Workers report :func:`~pipeline.render.engine.engine_facts` (cheap: versions and the library's
path); the parent process hashes the library once per run here, without loading the engine itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import PipelineError, RenderError
from ..vocabulary.store import read_entry, write_entry

__all__ = [
    "ENGINES",
    "ENGINE_NAME",
    "HELM_CLI",
    "EngineIdentity",
    "helm_binary",
    "installed_engine",
    "library_digest",
    "library_identity",
    "pinned_engines",
    "pinned_helm_cli",
]

#: The in-process engine: Helm's Go SDK embedded through the pinned ``helm-python-sdk`` wheel.
ENGINE_NAME = "helm-python-sdk"
#: The second engine: the pinned ``helm`` binary (``tools/go/tools.json``), run as ``helm template``.
HELM_CLI = "helm-cli"
#: Every engine ``--engine`` accepts; the first is the default.
ENGINES = (ENGINE_NAME, HELM_CLI)
_DISTRIBUTION = "helm-python-sdk"
_ROOT = Path(__file__).resolve().parents[2]
#: Where the project records its pinned Go tools (a checkout's ``tools/go/tools.json``).
TOOLS_JSON = _ROOT / "tools" / "go" / "tools.json"


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineIdentity:
    """Which engine rendered: package version, embedded Helm SDK, sha256 of the native library."""

    name: str
    version: str
    helm: str
    library: str

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version, "helm": self.helm, "library": self.library}


#: the digest of each library this process has hashed or taken from a memo, by path
_KNOWN: dict[str, str] = {}


def library_digest(path: str, *, memo: Path | None = None) -> str:
    """sha256 of the native library at ``path`` (85 MB, ~50 ms), once per process.

    ``memo``: a file (in the pipeline's cache) that remembers the digest across runs under the
    library's identity on disk (device, inode, size, modification and change times): a library
    that is replaced or modified in any way has another ctime and is hashed again. A memo that is
    absent, torn or edited is ignored (it verifies itself).
    """
    known = _KNOWN.get(path)
    if known is None:
        known = _KNOWN[path] = _hash(path) if memo is None else _remembered(path, memo)
    return known


def _remembered(path: str, memo: Path) -> str:
    stat = Path(path).stat()
    key = f"{path}\0{stat.st_dev}:{stat.st_ino}:{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ctime_ns}"
    out = _read_memo(memo).get(key)
    if out is None:
        out = _hash(path)
        with contextlib.suppress(OSError):
            write_entry(memo, json.dumps({key: out}).encode())
    return out


def _hash(path: str) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()


def _read_memo(memo: Path) -> dict[str, str]:
    data = read_entry(memo)
    try:
        doc = json.loads(data) if data is not None else {}
    except ValueError:
        return {}
    return {k: v for k, v in doc.items() if isinstance(k, str) and isinstance(v, str)} if isinstance(doc, dict) else {}


def library_identity(facts: Mapping[str, str]) -> EngineIdentity:
    """The full identity from what an engine reports of itself (hashing the library it loaded)."""
    return EngineIdentity(name=facts["name"], version=facts["version"], helm=facts["helm"],
                          library=library_digest(facts["library_path"]))


def installed_engine(*, memo: Path | None = None) -> dict[str, str]:
    """Name, package version and native library digest of the installed engine, without loading it.

    What a publisher compares a lock's engine with (the Helm SDK version is known only once the
    library is loaded; the library digest already pins it). Raises when the wheel is not installed.
    ``memo``: see :func:`library_digest`.
    """
    # Imported here: importlib.metadata costs every command's start-up, and only this function reads it.
    from importlib import metadata, util

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
    return {"name": ENGINE_NAME, "version": version, "library": library_digest(str(library.resolve()), memo=memo)}


def pinned_helm_cli(tools_json: Path = TOOLS_JSON) -> dict[str, str] | None:
    """The ``helm-cli`` engine identity the checkout pins (``tools/go/tools.json``), or ``None``.

    ``version`` and ``helm`` are the binary's Helm version, ``library`` its recorded sha256.
    """
    try:
        entry = json.loads(tools_json.read_text(encoding="utf-8"))["tools"]["helm"]
        version, digest = str(entry["version"]), str(entry["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return {"name": HELM_CLI, "version": version, "helm": version, "library": digest}


def helm_binary(tools_json: Path = TOOLS_JSON) -> Path:
    """The pinned ``helm`` binary, its sha256 checked against ``tools/go/tools.json``.

    Found in ``$PIPELINE_TOOLS_DIR`` or the checkout's ``.cache/tools/bin`` (where ``nox -s tools``
    builds it). A missing, unpinned or different binary is a :class:`RenderError` (exit 2).
    """
    pinned = pinned_helm_cli(tools_json)
    if pinned is None:
        raise RenderError(f"--engine {HELM_CLI}: no helm binary is pinned ({tools_json} has no 'helm' with a sha256)",
                          hint="use the default engine, or record the tool: 'python3 tools/go/build.py --record'")
    directory = os.environ.get("PIPELINE_TOOLS_DIR")
    binary = (Path(directory) if directory else _ROOT / ".cache" / "tools" / "bin") / "helm"
    if not binary.is_file():
        raise RenderError(f"--engine {HELM_CLI}: the pinned helm {pinned['version']} is not built at {binary}",
                          hint="run 'nox -s tools' (or set PIPELINE_TOOLS_DIR to where it is built)")
    got = library_digest(str(binary.resolve()))
    if got != pinned["library"]:
        raise RenderError(f"--engine {HELM_CLI}: {binary} is {got}, not the pinned helm {pinned['version']} "
                          f"({pinned['library']} in tools/go/tools.json)",
                          hint="rebuild it with 'nox -s tools'")
    return binary.resolve()


def pinned_engines() -> list[dict[str, str]]:
    """Every engine identity this checkout pins: the installed in-process engine, and the helm binary.

    Both embed Helm v4.2.3 and print ``helm template``'s bytes (the parity test proves it), so a lock
    made by either is accepted by the engine check (README "Engines"); the lock still records which.
    The in-process identity has no ``helm`` key (known only once the library is loaded).
    """
    out: list[dict[str, str]] = []
    with contextlib.suppress(PipelineError):
        out.append(installed_engine())
    cli = pinned_helm_cli()
    if cli is not None:
        out.append(cli)
    return out
