"""``bundle verify``: is this layout, byte for byte, the locked charts and images with their signatures?

Contract of :func:`verify_bundle` — a checklist, every failure collected (none stops the others):

1. the layout: ``oci-layout`` says ``1.0.0``; ``index.json`` is an OCI index (an interrupted export
   has none);
2. every blob under ``blobs/sha256/`` hashes to its name; nothing else lies around;
3. every descriptor reachable from ``index.json`` is present with its size (an image's index may
   leave out the platforms its ``platforms`` annotation does not list); no blob is unreferenced;
4. the ``metadata`` artifact holds ``bundle.json`` and the lockfiles, each of which passes the
   lockfile model's integrity check;
5. every locked image (by the reference the lock wrote and its digest, with every locked platform
   the bundle was asked to carry) and every locked chart (by its archive digest) is an entry;
6. every signature, attestation and referrer that ``bundle.json`` lists is an entry, and is still
   attached to its image: its tag is ``sha256-<hex of the image>`` (``.sig``/``.att``), a cosign
   simple-signing payload names the image digest, an in-toto statement has it as a subject, a
   referrer's ``subject`` is it.

Returns a :class:`VerifyReport`; ``problems`` empty means the bundle is good. A path that does not
exist or is not a readable tar is a :class:`~pipeline.bundle.interface.BundleError` (exit 2).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import PipelineError
from ..lockfile import LOCK_SUFFIX, Lockfile
from ..vocabulary.digest import Digest, is_sha256, sha256
from ..vocabulary.media_types import INDEX_MEDIA_TYPES, MANIFEST_MEDIA_TYPES
from .export import platform_of
from .interface import (
    ALL_PLATFORMS,
    ANNOTATION_KIND,
    ANNOTATION_PLATFORMS,
    ANNOTATION_SUBJECT,
    ANNOTATION_TAG,
    ANNOTATION_TITLE,
    ANNOTATION_UPSTREAM,
    BUNDLE_ARTIFACT,
    REF_NAME,
    EntryKind,
    Problem,
)
from .layout import INDEX, LAYOUT_FILE, LAYOUT_VERSION, LayoutReader

__all__ = ["VerifyReport", "read_contents", "verify_bundle"]

_BLOB = re.compile(r"^blobs/sha256/[0-9a-f]{64}$")
_MANIFESTS = INDEX_MEDIA_TYPES | MANIFEST_MEDIA_TYPES
_SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
_DSSE = "application/vnd.dsse.envelope.v1+json"


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifyReport:
    """What ``bundle verify`` checked, and every difference it found."""

    path: Path
    blobs: int
    images: int
    charts: int
    artifacts: int
    locks: tuple[str, ...]
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def _loads(data: bytes | None) -> Any:
    if data is None:
        return None
    try:
        return json.loads(data)
    except ValueError:
        return None


def read_contents(reader: LayoutReader, index: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, bytes]]:
    """``bundle.json`` and the carried files (title → bytes) of the metadata artifact (empty when absent)."""
    for entry in index.get("manifests") or ():
        annotations = entry.get("annotations") or {}
        if annotations.get(ANNOTATION_KIND) != EntryKind.METADATA.value:
            continue
        manifest = _loads(reader.blob(Digest(str(entry.get("digest")))))
        if not isinstance(manifest, dict) or manifest.get("artifactType") != BUNDLE_ARTIFACT:
            return {}, {}
        config = _loads(reader.blob(Digest(str((manifest.get("config") or {}).get("digest")))))
        files: dict[str, bytes] = {}
        for layer in manifest.get("layers") or ():
            title = (layer.get("annotations") or {}).get(ANNOTATION_TITLE)
            data = reader.blob(Digest(str(layer.get("digest"))))
            if isinstance(title, str) and data is not None:
                files[title] = data
        return (config if isinstance(config, dict) else {}), files
    return {}, {}


class _Checker:
    def __init__(self, reader: LayoutReader) -> None:
        self.reader = reader
        self.problems: list[Problem] = []
        self.good: set[str] = set()
        self.referenced: set[str] = set()

    def fail(self, where: str, what: str) -> None:
        self.problems.append(Problem(where=where, what=what))

    def blobs(self) -> int:
        count = 0
        for name in self.reader.names():
            if name in (LAYOUT_FILE, INDEX):
                continue
            if not _BLOB.match(name):
                self.fail(name, "not part of an OCI image layout (a leftover of an interrupted write?)")
                continue
            count += 1
            digest = "sha256:" + name.rsplit("/", 1)[1]
            actual = sha256(self.reader.read(name) or b"")
            if actual != digest:
                self.fail(f"blob {digest}", f"its bytes hash to {actual}")
            else:
                self.good.add(digest)
        return count

    def descriptor(self, where: str, descriptor: Mapping[str, Any], *, keep: frozenset[str] | None = None) -> Any:
        """Check one descriptor (and, for a manifest, what it references); the parsed manifest or ``None``."""
        digest = str(descriptor.get("digest"))
        self.referenced.add(digest)
        if not is_sha256(digest):
            self.fail(where, f"descriptor digest {digest!r} is not sha256:<64 hex>")
            return None
        data = self.reader.blob(Digest(digest))
        if data is None:
            self.fail(where, f"blob {digest} is missing")
            return None
        size = descriptor.get("size")
        if isinstance(size, int) and size != len(data):
            self.fail(where, f"blob {digest} has {len(data)} bytes, the descriptor says {size}")
        if descriptor.get("mediaType") not in _MANIFESTS and not descriptor.get("artifactType"):
            return None
        if digest not in self.good:
            return None  # already reported as corrupt
        manifest = _loads(data)
        if not isinstance(manifest, dict):
            self.fail(where, f"manifest {digest} is not JSON")
            return None
        for child in manifest.get("manifests") or ():
            platform = platform_of(child)
            if keep is not None and (not platform or platform not in keep):
                self.referenced.add(str(child.get("digest")))
                continue
            self.descriptor(f"{where} → {platform or 'manifest'} {child.get('digest')}", child)
        for item in (manifest.get("config"), *(manifest.get("layers") or ())):
            if isinstance(item, Mapping):
                self.descriptor(f"{where} → blob {item.get('digest')}", item)
        return manifest


def verify_bundle(path: Path) -> VerifyReport:
    """Check the bundle at ``path`` (see the module docstring for the checklist)."""
    with LayoutReader(path) as reader:
        check = _Checker(reader)
        layout = _loads(reader.read(LAYOUT_FILE))
        if not isinstance(layout, dict) or layout.get("imageLayoutVersion") != LAYOUT_VERSION:
            check.fail(LAYOUT_FILE, f"missing or not {{\"imageLayoutVersion\": \"{LAYOUT_VERSION}\"}}")
        index = _loads(reader.read(INDEX))
        blobs = check.blobs()
        if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
            check.fail(INDEX, "missing or not an OCI index: this is not a finished bundle "
                       "(an interrupted export? run 'bundle export' again)")
            return VerifyReport(path=path, blobs=blobs, images=0, charts=0, artifacts=0, locks=(),
                                problems=tuple(check.problems))
        entries: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
        manifests: dict[str, Any] = {}
        for entry in index["manifests"]:
            annotations = entry.get("annotations") or {}
            kind = str(annotations.get(ANNOTATION_KIND, ""))
            name = str(annotations.get(REF_NAME, ""))
            platforms = str(annotations.get(ANNOTATION_PLATFORMS, ALL_PLATFORMS))
            keep = None if platforms == ALL_PLATFORMS else frozenset(p for p in platforms.split(",") if p)
            manifests[str(entry.get("digest"))] = check.descriptor(f"{kind or 'entry'} {name}", entry, keep=keep)
            entries.setdefault((kind, name), []).append(entry)
        for digest in sorted(check.good - check.referenced):
            check.fail(f"blob {digest}", "is not referenced by index.json")
        contents, files = read_contents(reader, index)
        if not contents:
            check.fail("metadata", "the bundle has no metadata artifact with bundle.json (not written by "
                       "'bundle export', or damaged)")
        locks = _locks(check, files)
        _coverage(check, locks, entries)
        artifacts = _signatures(check, contents, entries, manifests, reader)
        return VerifyReport(
            path=path, blobs=blobs, locks=tuple(lock.name for lock in locks), artifacts=artifacts,
            images=sum(len(v) for (k, _), v in entries.items() if k == EntryKind.IMAGE.value),
            charts=sum(len(v) for (k, _), v in entries.items() if k == EntryKind.CHART.value),
            problems=tuple(check.problems))


def _locks(check: _Checker, files: Mapping[str, bytes]) -> list[Lockfile]:
    locks = []
    for title, data in sorted(files.items()):
        if not (title.startswith("lockfiles/") and title.endswith(LOCK_SUFFIX)):
            continue
        try:
            locks.append(Lockfile.from_bytes(data, display=title))
        except PipelineError as exc:
            check.fail(title, exc.message)
    if not locks and files:
        check.fail("metadata", "carries no lockfile")
    return locks


_Entries = Mapping[tuple[str, str], list[Mapping[str, Any]]]


def _coverage(check: _Checker, locks: list[Lockfile], entries: _Entries) -> None:
    charts = {str((e.get("annotations") or {}).get(ANNOTATION_UPSTREAM)): e
              for (kind, _), group in entries.items() if kind == EntryKind.CHART.value for e in group}
    for lock in locks:
        where = f"lockfiles/{lock.name}{LOCK_SUFFIX}"
        for component, image in lock.images():
            found = entries.get((EntryKind.IMAGE.value, image.ref), [])
            if not found:
                check.fail(where, f"component {component.name!r}: image {image.ref} is not in the bundle")
                continue
            entry = found[0]
            if entry.get("digest") != image.digest:
                check.fail(where, f"component {component.name!r}: image {image.ref} is locked at {image.digest}, "
                           f"the bundle has {entry.get('digest')}")
                continue
            manifest = _loads(check.reader.blob(Digest(str(entry.get("digest")))))
            children = ({platform_of(c): c.get("digest") for c in manifest.get("manifests") or ()}
                        if isinstance(manifest, dict) else {})
            platforms = str((entry.get("annotations") or {}).get(ANNOTATION_PLATFORMS, ALL_PLATFORMS))
            for platform, digest in image.platforms or ():
                if platforms != ALL_PLATFORMS and platform not in platforms.split(","):
                    continue
                if children.get(platform) != digest:
                    check.fail(where, f"image {image.ref}: platform {platform} is locked at {digest}, the bundle's "
                               f"index has {children.get(platform) or 'none'}")
                elif check.reader.blob(Digest(digest)) is None:
                    check.fail(where, f"image {image.ref}: the {platform} manifest {digest} is missing")
        for component in lock.components.values():
            chart = component.chart
            if chart is None:
                continue
            entry_ = charts.get(f"{chart.repository} {chart.name} {chart.version}")
            manifest = _loads(check.reader.blob(Digest(str(entry_.get("digest"))))) if entry_ else None
            layers = [str(layer.get("digest")) for layer in (manifest or {}).get("layers") or ()]
            if entry_ is None:
                check.fail(where, f"component {component.name!r}: chart {chart.name} {chart.version} "
                           "is not in the bundle")
            elif chart.archive not in layers:
                check.fail(where, f"component {component.name!r}: chart {chart.name} {chart.version} is locked as "
                           f"{chart.archive}, the bundle has {', '.join(layers) or 'no archive'}")


def _signatures(check: _Checker, contents: Mapping[str, Any], entries: _Entries,
                manifests: Mapping[str, Any], reader: LayoutReader) -> int:
    listed = contents.get("artifacts") or []
    by_digest = {str(e.get("digest")): e for group in entries.values() for e in group}
    image_digests: dict[str, set[str]] = {}
    for (kind, _), group in entries.items():
        if kind == EntryKind.IMAGE.value:
            for e in group:
                repo = str((e.get("annotations") or {}).get("dev.recipe-pipeline.bundle.repository"))
                image_digests.setdefault(repo, set()).add(str(e.get("digest")))
    for item in listed:
        entry = by_digest.get(str(item.get("digest")))
        if entry is None or (entry.get("annotations") or {}).get(ANNOTATION_SUBJECT) != item.get("subject"):
            check.fail(f"{item.get('kind')} {item.get('repository')}:{item.get('reference')}",
                       f"listed in bundle.json for {item.get('subject')} but missing from index.json")
    count = 0
    for (kind, name), group in entries.items():
        if kind not in (EntryKind.SIGNATURE.value, EntryKind.ATTESTATION.value, EntryKind.REFERRERS.value,
                        EntryKind.REFERRER.value):
            continue
        for entry in group:
            count += 1
            annotations = entry.get("annotations") or {}
            subject = str(annotations.get(ANNOTATION_SUBJECT))
            repo = str(annotations.get("dev.recipe-pipeline.bundle.repository"))
            where = f"{kind} {name}"
            if subject not in image_digests.get(repo, set()):
                check.fail(where, f"is about {subject}, which is no image of {repo} in the bundle")
                continue
            hexpart = subject.split(":", 1)[1]
            tag = annotations.get(ANNOTATION_TAG)
            expected_tag = {EntryKind.SIGNATURE.value: f"sha256-{hexpart}.sig",
                            EntryKind.ATTESTATION.value: f"sha256-{hexpart}.att",
                            EntryKind.REFERRERS.value: f"sha256-{hexpart}"}.get(kind)
            if expected_tag is not None and tag != expected_tag:
                check.fail(where, f"is tagged {tag!r}, not {expected_tag!r}: detached from {subject}")
            manifest = manifests.get(str(entry.get("digest")))
            if not isinstance(manifest, dict):
                continue
            for problem in _attached(kind, manifest, subject, reader):
                check.fail(where, problem)
    return count


def _attached(kind: str, manifest: Mapping[str, Any], subject: str, reader: LayoutReader) -> list[str]:
    """Why ``manifest`` (a signature artifact) is no longer about ``subject`` (empty: it is)."""
    if kind == EntryKind.REFERRERS.value:
        out = []
        for child in manifest.get("manifests") or ():
            body = _loads(reader.blob(Digest(str(child.get("digest")))))
            if isinstance(body, dict):
                out += _attached(EntryKind.REFERRER.value, body, subject, reader)
        return out
    if kind == EntryKind.REFERRER.value:
        got = (manifest.get("subject") or {}).get("digest")
        return [] if got == subject else [f"its subject is {got}, not {subject}"]
    out = []
    for layer in manifest.get("layers") or ():
        data = reader.blob(Digest(str(layer.get("digest"))))
        if data is None:
            continue
        if layer.get("mediaType") == _SIMPLE_SIGNING:
            payload = _loads(data)
            got = ((payload or {}).get("critical") or {}).get("image", {}).get("docker-manifest-digest") \
                if isinstance(payload, dict) else None
            if got != subject:
                out.append(f"signature payload {layer.get('digest')} names {got}, not {subject}")
        elif layer.get("mediaType") == _DSSE:
            envelope = _loads(data)
            try:
                statement = json.loads(base64.b64decode(str((envelope or {}).get("payload", ""))))
                subjects = {f"sha256:{s['digest']['sha256']}" for s in statement.get("subject") or ()}
            except (ValueError, TypeError, KeyError, AttributeError):
                subjects = set()
            if subject not in subjects:
                out.append(f"attestation {layer.get('digest')} has no subject {subject}")
    return out
