"""The in-toto Statement v1 with a SLSA Provenance v1 predicate that binds a catalog's locks.

Contract of :func:`build_statement`:

- inputs: verified, fresh lockfiles; the subject files, by repository-relative path, with their
  bytes (every lockfile, BOM, admission policy and the image inventory); the build's parameters
  (:class:`Parameters`: catalog and lock directories, the git commit when there is one, the
  builder id and backend);
- output: the canonical JSON bytes (sorted keys, two-space indent, trailing newline) of::

    _type          https://in-toto.io/Statement/v1
    subject        [{name: <path>, digest: {sha256: <hex>}}]   sorted by name
    predicateType  https://slsa.dev/provenance/v1
    predicate
      buildDefinition
        buildType             urn:recipe-pipeline:buildtype:lock:v1
        externalParameters    {catalog, lockdir, recipes: [names], source: {commit}}  (source only in git)
        resolvedDependencies  every chart (archive digest), every image (manifest or index digest),
                              the engine (package version, native library digest); sorted
      runDetails
        builder  {id, version: {backend, engine}, builderDependencies: [the engine]}

- guarantees: a pure function of its inputs (no clock, no environment, no absolute path, no random
  id): the same locks and files give the same bytes. Charts and images use the purls of the BOM,
  so a reviewer can match an entry of the attestation to the BOM's component;
- errors: an image without a digest cannot be attested
  (:class:`~pipeline.attest.interface.AttestError`, exit 2: lock with registries, not
  ``--no-resolve``).

:func:`parse_statement` reads a statement back (for verification) and names the first field that is
not what this module writes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from packageurl import PackageURL

from ..lockfile import EngineRecord, LockedChart, LockedImage, Lockfile
from ..vocabulary.digest import Digest, canonical_json, sha256
from .interface import AttestationMismatch, AttestError

__all__ = [
    "BUILD_TYPE",
    "PREDICATE_TYPE",
    "STATEMENT_TYPE",
    "Parameters",
    "Statement",
    "build_statement",
    "dependencies",
    "parse_statement",
]

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
#: Ours: what the predicate's fields mean is described in README.md ("Signed locks").
BUILD_TYPE = "urn:recipe-pipeline:buildtype:lock:v1"


@dataclass(frozen=True, slots=True, kw_only=True)
class Parameters:
    """What the statement says about the build besides the locks: where, from which commit, by whom."""

    catalog: str
    lockdir: str
    builder_id: str
    backend: str = "local"
    commit: str | None = None


def _hex(digest: Digest) -> str:
    algorithm, _, value = digest.partition(":")
    if algorithm != "sha256":
        raise AttestError(f"cannot attest a {algorithm} digest ({digest}): only sha256")
    return value


def _chart(chart: LockedChart) -> dict[str, Any]:
    qualifiers = {} if chart.is_local else {"repository_url": chart.repository.rstrip("/")}
    purl = PackageURL(type="helm", name=chart.name, version=chart.version, qualifiers=qualifiers or None)
    return {"name": f"{chart.name}@{chart.version}", "uri": purl.to_string(), "digest": {"sha256": _hex(chart.archive)},
            "mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
            "annotations": {"repository": chart.repository, "tree": chart.tree}}


def _image(recipe: str, component: str, image: LockedImage) -> dict[str, Any]:
    if image.digest is None:
        raise AttestError(f"recipe '{recipe}': component '{component}': image {image.ref} has no digest, so an "
                          "attestation could not say which bytes run",
                          hint="lock with registries ('nox -s lock', not --no-resolve) before attesting")
    qualifiers = {"repository_url": image.image.name}
    if image.image.tag is not None:
        qualifiers["tag"] = image.image.tag
    purl = PackageURL(type="oci", name=image.image.repository.rsplit("/", 1)[-1], version=image.digest,
                      qualifiers=qualifiers)
    entry: dict[str, Any] = {"name": image.ref, "uri": purl.to_string(), "digest": {"sha256": _hex(image.digest)}}
    if image.media_type is not None:
        entry["mediaType"] = image.media_type
    if image.platforms:
        entry["annotations"] = {"platforms": dict(image.platforms)}
    return entry


def _engine(engine: EngineRecord) -> dict[str, Any]:
    purl = PackageURL(type="pypi", name=engine.name, version=engine.version)
    return {"name": engine.name, "uri": purl.to_string(), "digest": {"sha256": _hex(engine.library)},
            "annotations": {"helm": engine.helm, "library": "sha256 of the engine's native library"}}


def dependencies(locks: Sequence[Lockfile]) -> list[dict[str, Any]]:
    """Every chart, image and engine the locks name, once each, sorted: ``resolvedDependencies``."""
    entries: dict[bytes, dict[str, Any]] = {}
    for lock in locks:
        for component in lock.ordered():
            if component.chart is not None:
                chart = _chart(component.chart)
                entries[canonical_json(chart)] = chart
            for image in component.images:
                entry = _image(lock.name, component.name, image)
                entries[canonical_json(entry)] = entry
        engine = _engine(lock.engine)
        entries[canonical_json(engine)] = engine
    return [entries[key] for key in sorted(entries, key=lambda k: (entries[k]["uri"], k))]


def build_statement(locks: Sequence[Lockfile], subjects: Mapping[str, bytes], params: Parameters) -> bytes:
    """The canonical statement bytes (see the module contract)."""
    if not subjects:
        raise AttestError("nothing to attest: no lockfile, BOM, policy or inventory was found")
    external: dict[str, Any] = {"catalog": params.catalog, "lockdir": params.lockdir,
                                "recipes": sorted(lock.name for lock in locks)}
    if params.commit is not None:
        external["source"] = {"commit": params.commit}
    # Fresh locks were all made by the installed engine: the builder's version names it.
    engines = sorted({lock.engine for lock in locks}, key=lambda e: (e.name, e.version, e.library))
    version = {"backend": params.backend}
    if engines:
        version["engine"] = f"{engines[0].name} {engines[0].version} (Helm {engines[0].helm})"
    builder = {"id": params.builder_id, "version": version, "builderDependencies": [_engine(e) for e in engines]}
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": name, "digest": {"sha256": _hex(sha256(data))}}
                    for name, data in sorted(subjects.items())],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {"buildType": BUILD_TYPE, "externalParameters": external,
                                "resolvedDependencies": dependencies(locks)},
            "runDetails": {"builder": builder},
        },
    }
    return canonical_json(statement)


@dataclass(frozen=True, slots=True, kw_only=True)
class Statement:
    """A statement read back: subjects (name → sha256 hex), recipes, dependencies, commit, builder."""

    subjects: Mapping[str, str]
    recipes: tuple[str, ...]
    dependencies: tuple[Mapping[str, Any], ...]
    commit: str | None
    builder_id: str


def parse_statement(payload: bytes, *, name: str) -> Statement:
    """Read the statement bytes a signature covers; :class:`AttestationMismatch` names what is wrong."""

    def fail(what: str) -> AttestationMismatch:
        return AttestationMismatch(f"{name}: the signed statement {what}")

    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise fail(f"is not JSON ({exc})") from exc
    if not isinstance(data, dict) or data.get("_type") != STATEMENT_TYPE:
        raise fail(f"is not an in-toto Statement v1 (_type {STATEMENT_TYPE})")
    if data.get("predicateType") != PREDICATE_TYPE:
        raise fail(f"has predicateType {data.get('predicateType')!r}, not {PREDICATE_TYPE!r}")
    subjects: dict[str, str] = {}
    for index, entry in enumerate(data.get("subject") or []):
        digest = entry.get("digest", {}).get("sha256") if isinstance(entry, dict) else None
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not isinstance(digest, str):
            raise fail(f"has a malformed subject[{index}] (a name and a sha256 digest)")
        if entry["name"] in subjects:
            raise fail(f"names subject {entry['name']!r} twice")
        subjects[entry["name"]] = digest
    if not subjects:
        raise fail("has no subject")
    predicate = data.get("predicate")
    definition = predicate.get("buildDefinition") if isinstance(predicate, dict) else None
    if not isinstance(definition, dict) or definition.get("buildType") != BUILD_TYPE:
        raise fail(f"is not a lock attestation (buildType {BUILD_TYPE})")
    external = definition.get("externalParameters")
    deps = definition.get("resolvedDependencies")
    if not isinstance(external, dict) or not isinstance(external.get("recipes"), list) or not isinstance(deps, list):
        raise fail("has no externalParameters.recipes or resolvedDependencies list")
    if not all(isinstance(d, dict) for d in deps):
        raise fail("has a resolvedDependencies entry that is not an object")
    source = external.get("source")
    commit = source.get("commit") if isinstance(source, dict) else None
    builder = predicate.get("runDetails", {}).get("builder", {}) if isinstance(predicate, dict) else {}
    return Statement(subjects=subjects, recipes=tuple(str(r) for r in external["recipes"]), dependencies=tuple(deps),
                     commit=commit if isinstance(commit, str) else None,
                     builder_id=str(builder.get("id", "")) if isinstance(builder, dict) else "")
