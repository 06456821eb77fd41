"""The lockfile: one canonical JSON document per recipe, content-addressed and self-verifying.

Built from a composed :class:`~pipeline.recipes.model.Recipe`, its fetched charts, its renders and
the images found in them. Guarantees: canonical JSON (sorted keys, two-space indent, trailing
newline), no timestamps, no absolute paths; ``inputs`` hashes every file the render depends on and
keeps each file's digest so a stale lock names the file that changed; ``digest`` is the sha256 of
the canonical body without it, so a hand-edited lock is detected (:class:`IntegrityError`).
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import IntegrityError, LockError
from .images import FoundImage, ImageRef, Origin
from .recipes.model import Component, Recipe
from .registry import ResolvedImage
from .render.job import ComponentRender
from .vocabulary.digest import Digest, canonical_json, sha256, sha256_of_entries
from .volatile import VOLATILE_FILE, VolatileField

__all__ = [
    "LOCK_SUFFIX",
    "LOCK_VERSION",
    "Lockfile",
    "build_component",
    "build_lockfile",
    "input_digests",
    "lock_path",
    "read_lockfile",
]

LOCK_VERSION = 1
LOCK_SUFFIX = ".lock.json"


def lock_path(lockdir: Path, recipe: str) -> Path:
    return lockdir / f"{recipe}{LOCK_SUFFIX}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Lockfile:
    """A parsed, integrity-checked lockfile; ``body`` is the canonical JSON object (with digest)."""

    recipe: str
    body: Mapping[str, Any]

    @property
    def digest(self) -> str:
        return str(self.body["digest"])

    @property
    def inputs(self) -> Mapping[str, Any]:
        inputs: Mapping[str, Any] = self.body["inputs"]
        return inputs

    @property
    def engine(self) -> Mapping[str, Any]:
        engine: Mapping[str, Any] = self.body["engine"]
        return engine

    @property
    def components(self) -> Mapping[str, Any]:
        components: Mapping[str, Any] = self.body["components"]
        return components

    def to_bytes(self) -> bytes:
        return canonical_json(self.body)


def _seal(body: dict[str, Any]) -> dict[str, Any]:
    unsigned = {k: v for k, v in body.items() if k != "digest"}
    return {**unsigned, "digest": sha256(canonical_json(unsigned))}


def input_digests(recipe: Recipe) -> dict[str, Digest]:
    """Digest of every catalog file the recipe's render depends on, by catalog-relative path.

    Covers the composition inputs (registry, overlays, mixins, values, manifests, config), the
    volatile declarations, and every file of each local chart directory or archive.
    """
    paths = set(recipe.input_files)
    if (recipe.catalog / VOLATILE_FILE).is_file():
        paths.add(VOLATILE_FILE)
    for component in recipe.components:
        if component.chart is not None and component.chart.is_local:
            paths.update(_local_chart_files(recipe.catalog, component))
    out: dict[str, Digest] = {}
    for rel in sorted(paths):
        path = recipe.catalog / rel
        try:
            stat = path.stat()
        except FileNotFoundError:
            out[rel] = Digest("missing")
            continue
        out[rel] = _file_digest(str(path), stat.st_size, stat.st_mtime_ns)
    return out


@functools.lru_cache(maxsize=65536)
def _file_digest(path: str, size: int, mtime_ns: int) -> Digest:
    """sha256 of a file, memoised on (path, size, mtime): recipes share most of their inputs."""
    del size, mtime_ns  # part of the cache key only
    return sha256(Path(path).read_bytes())


def _local_chart_files(catalog: Path, component: Component) -> list[str]:
    assert component.chart is not None
    base = Path(os.path.normpath(component.chart.repository))
    directory = catalog / base / component.chart.name
    if directory.is_dir():
        return sorted(
            (base / component.chart.name / p.relative_to(directory)).as_posix()
            for p in directory.rglob("*") if p.is_file() or p.is_symlink()
        )
    archive = base / f"{component.chart.name}-{component.chart.version}.tgz"
    return [archive.as_posix()]


def _inputs_block(recipe: Recipe, files: Mapping[str, Digest]) -> dict[str, Any]:
    options = {"kubeVersion": recipe.kube_version, "apiVersions": list(recipe.api_versions)}
    digest = sha256(canonical_json({"files": dict(files), "options": options}))
    return {"digest": digest, "files": dict(files), "options": options}


def _image_entries(found: Sequence[FoundImage], resolved: Mapping[ImageRef, ResolvedImage]) -> list[dict[str, Any]]:
    """One entry per distinct reference: what was written next to what was locked, and from where.

    ``source`` says where the digest came from: ``reference`` (written with ``@sha256:``; the
    registry was still asked, to verify it and record the platforms) or ``registry`` (a tag the
    registry resolved). Without a resolution (``lock --no-resolve``) only reference digests are kept.
    """
    by_ref: dict[ImageRef, dict[str, Any]] = {}
    for image in found:
        entry = by_ref.setdefault(image.ref, {"origin": Origin.CHART_DEFAULT.value, "foundAt": set()})
        if image.origin is Origin.IN_TREE:
            entry["origin"] = Origin.IN_TREE.value
        entry["foundAt"].add(image.found_at)
    out = []
    for ref in sorted(by_ref, key=str):
        entry = by_ref[ref]
        record: dict[str, Any] = {
            "ref": str(ref),
            "digest": ref.digest if ref.pinned else None,
            "source": "reference" if ref.pinned else None,
            "origin": entry["origin"],
            "foundAt": sorted(entry["foundAt"]),
        }
        answer = resolved.get(ref)
        if answer is not None:
            record.update({
                "digest": answer.digest,
                "source": "reference" if ref.pinned else "registry",
                "mediaType": answer.media_type,
                "platforms": dict(sorted(answer.platforms.items())),
                "servedBy": answer.served_by,
            })
        out.append(record)
    return out


def build_component(
    component: Component,
    *,
    chart: Mapping[str, str] | None,
    render: ComponentRender,
    images: Sequence[FoundImage],
    resolved: Mapping[ImageRef, ResolvedImage],
) -> dict[str, Any]:
    """The lock entry of one component."""
    files = {path: sha256(data) for path, data in render.files}
    return {
        "type": component.type.value,
        "release": component.name,
        "namespace": component.namespace,
        "chart": dict(chart) if chart is not None else None,
        "values": sha256(canonical_json(component.values)),
        "valuesFiles": list(component.values_files),
        "manifests": {"pre": list(component.pre_manifest_files), "post": list(component.manifest_files)},
        "render": {
            "files": files,
            "stream": sha256(render.stream),
            "root": sha256_of_entries(render.files),
        },
        "images": _image_entries(images, resolved),
    }


def build_lockfile(
    recipe: Recipe,
    *,
    inputs: Mapping[str, Digest],
    engine: Mapping[str, str],
    components: Mapping[str, dict[str, Any]],
    volatile: Sequence[VolatileField],
) -> Lockfile:
    """Assemble and seal a recipe's lockfile."""
    names = {c.name for c in recipe.components}
    body: dict[str, Any] = {
        "lockVersion": LOCK_VERSION,
        "recipe": {
            "name": recipe.name,
            "criteria": recipe.criteria.as_dict(),
            "overlays": list(recipe.overlays),
            "mixins": list(recipe.mixins),
            "order": [c.name for c in recipe.components],
        },
        "inputs": _inputs_block(recipe, inputs),
        "engine": {**engine, "kubeVersion": recipe.kube_version, "apiVersions": list(recipe.api_versions)},
        "components": dict(components),
        "volatile": [v.as_dict() for v in volatile if v.component in names],
    }
    return Lockfile(recipe=recipe.name, body=_seal(body))


_REQUIRED = ("lockVersion", "recipe", "inputs", "engine", "components", "volatile", "digest")


def read_lockfile(path: Path, *, display: str | None = None) -> Lockfile:
    """Parse and verify a lockfile. Bad JSON or schema → :class:`LockError` (exit 2); a digest that
    does not match the body → :class:`IntegrityError` (exit 1)."""
    shown = display or str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise LockError(f"lockfile {shown} does not exist",
                        hint="run 'nox -s lock' and commit lockfiles/") from exc
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        line = getattr(exc, "lineno", None)
        raise IntegrityError(f"lockfile {shown} is not valid JSON ({exc})", path=shown, line=line,
                             hint="restore it from version control (git checkout -- lockfiles/) "
                                  "or regenerate it with 'nox -s lock'") from exc
    if not isinstance(body, dict) or any(key not in body for key in _REQUIRED):
        missing = [k for k in _REQUIRED if not isinstance(body, dict) or k not in body]
        raise IntegrityError(f"lockfile {shown} is missing {', '.join(repr(m) for m in missing)}",
                             hint="restore it from version control or regenerate it with 'nox -s lock'")
    if body.get("lockVersion") != LOCK_VERSION:
        raise LockError(f"lockfile {shown} has lockVersion {body.get('lockVersion')!r}; "
                        f"this tool reads version {LOCK_VERSION}",
                        hint="regenerate it with 'nox -s lock'")
    sealed = _seal(body)
    if sealed["digest"] != body["digest"]:
        raise IntegrityError(
            f"lockfile {shown} fails its integrity check: recorded digest {body['digest']} but the body "
            f"hashes to {sealed['digest']} (edited by hand or corrupted)",
            hint="never edit lockfiles by hand: restore it (git checkout -- lockfiles/) or regenerate it "
                 "with 'nox -s lock' and review the diff",
        )
    if canonical_json(body) != raw:
        raise IntegrityError(f"lockfile {shown} is not in canonical form (reformatted by hand or a tool)",
                             hint="regenerate it with 'nox -s lock'")
    name = body["recipe"].get("name") if isinstance(body["recipe"], dict) else None
    return Lockfile(recipe=str(name), body=body)
