"""``bundle export``: every locked image and chart, by digest, with signatures, into an OCI image layout.

Contract of :func:`export_bundle`:

- inputs: verified, fresh lockfiles (:func:`pipeline.stages.fresh_locks`); a
  :class:`~pipeline.registry.RegistryClient` (the catalog's mirrors and credentials) for images and
  their signatures; the catalog, chart store and chart mirrors for chart archives
  (:func:`~pipeline.charts.fetch_chart`, checked against the lock's archive digest); the
  platforms to keep (empty: all); the documents to carry (lockfiles, BOMs, policies) and the
  Sigstore trusted roots;
- output: an OCI image layout at ``out`` (a directory, or a tar when ``out`` ends in ``.tar``):
  one ``index.json`` entry per locked image reference (its index or manifest by the locked
  digest, every platform manifest or only the selected ones, configs and layers), per locked chart
  (an OCI artifact with Helm's config and chart-content media types whose layer is the locked
  archive), per signature artifact of each image (cosign's ``sha256-<hex>.sig``/``.att`` tags, the
  OCI referrers API or its ``sha256-<hex>`` tag schema) and one ``metadata`` artifact (the lockfiles,
  documents, trusted roots and ``bundle.json``, the table of contents ``bundle verify`` checks);
- every manifest and blob is verified against its digest as it arrives (the registry client
  does it) and again when written; a platform manifest must be the one the lock recorded;
- deterministic: entries sorted, canonical JSON, no clock; the tar has fixed order, times and
  owners: the same locks and registry content give the same bytes;
- atomic: the layout is built in a fixed sibling directory (:func:`~pipeline.bundle.layout.partial_dir`)
  and renamed into place at the end (a tar is written next to its target, then renamed); an
  interrupted export leaves no layout at ``out`` and a rerun reuses the blobs already fetched,
  each re-hashed first;
- errors: :class:`~pipeline.bundle.interface.BundleError` (exit 2) for an unpinned image, a lock
  that disagrees with the registry, an ``out`` that is not a bundle; registry and chart errors as
  their stages raise them.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._yaml import load_yaml_strings
from ..charts import ChartStore, chart_yaml, fetch_chart
from ..lockfile import LOCK_SUFFIX, LockedChart, LockedImage, Lockfile
from ..recipes.model import ChartRef
from ..registry import NotFoundError, RegistryClient
from ..vocabulary.digest import Digest, canonical_json, parse_digest, sha256
from ..vocabulary.media_types import (
    HELM_CHART_LAYER,
    HELM_CONFIG,
    INDEX_MEDIA_TYPES,
    MANIFEST_MEDIA_TYPES,
    OCI_INDEX,
    OCI_MANIFEST,
)
from ..vocabulary.reference import ImageRef
from .interface import (
    ALL_PLATFORMS,
    ANNOTATION_KIND,
    ANNOTATION_PLATFORMS,
    ANNOTATION_REPOSITORY,
    ANNOTATION_SUBJECT,
    ANNOTATION_TAG,
    ANNOTATION_TITLE,
    ANNOTATION_UPSTREAM,
    BUNDLE_ARTIFACT,
    BUNDLE_CONFIG,
    REF_NAME,
    BundleError,
    EntryKind,
    chart_repository,
    chart_tag,
)
from .layout import INDEX, LAYOUT_FILE, LAYOUT_VERSION, LayoutWriter, pack_tar, partial_dir

__all__ = ["ExportResult", "collect_files", "export_bundle", "platform_of"]

METADATA_REF = "recipe-pipeline-bundle"
MANIFEST_TYPES = INDEX_MEDIA_TYPES | MANIFEST_MEDIA_TYPES
_KIND_ORDER = {kind: i for i, kind in enumerate(EntryKind)}
_CHART_FIELDS = ("apiVersion", "name", "version", "kubeVersion", "description", "type", "appVersion", "home",
                 "icon", "keywords", "sources", "annotations")
_MEDIA_BY_SUFFIX = {".json": "application/json", ".md": "text/markdown", ".yaml": "application/yaml",
                    ".yml": "application/yaml"}


@dataclass(frozen=True, slots=True, kw_only=True)
class ExportResult:
    """What an export wrote: counts, and the digest of ``index.json`` (equal bytes ⇔ equal digest)."""

    path: Path
    images: int
    charts: int
    artifacts: int
    blobs: int
    size: int
    fetched: int
    reused: int
    index: Digest


@dataclass(slots=True, kw_only=True)
class _Entry:
    descriptor: dict[str, Any]
    kind: EntryKind
    record: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[int, str, str]:
        annotations = self.descriptor["annotations"]
        return _KIND_ORDER[self.kind], annotations.get(REF_NAME, ""), self.descriptor["digest"]


def platform_of(descriptor: Mapping[str, Any]) -> str:
    """``os/arch[/variant]`` of an index entry; ``""`` for attestation manifests and entries without one."""
    platform = descriptor.get("platform")
    if not isinstance(platform, Mapping):
        return ""
    os_name, arch = str(platform.get("os", "")), str(platform.get("architecture", ""))
    if not os_name or not arch or (os_name, arch) == ("unknown", "unknown"):
        return ""
    variant = platform.get("variant")
    return "/".join([os_name, arch, *([str(variant)] if variant else [])]).lower()


def _compact(data: Any) -> bytes:
    return canonical_json(data)


class _Exporter:
    def __init__(self, *, client: RegistryClient, writer: LayoutWriter, platforms: frozenset[str]) -> None:
        self.client = client
        self.writer = writer
        self.platforms = platforms
        self.size = 0

    # ---- bytes ---------------------------------------------------------------------------------

    def manifest(self, ref: ImageRef, digest: Digest) -> bytes:
        """Manifest bytes by digest: from the partial layout (re-hashed) or the registry (verified)."""
        if self.writer.has(digest):
            return self.writer.read(digest)
        body = self.client.fetch_manifest(ref.with_digest(digest)).body
        self.writer.put(body, digest=digest)
        return body

    def blob(self, ref: ImageRef, digest: Digest, size: int | None) -> None:
        if self.writer.has(digest):
            return
        self.writer.put(self.client.fetch_blob(ref, digest, size=size), digest=digest)

    def manifest_tree(self, ref: ImageRef, digest: Digest, *, keep: frozenset[str] | None = None) -> bytes:
        """A manifest and everything it references (an index: its children, filtered by ``keep``)."""
        body = self.manifest(ref, digest)
        data = _json(body, f"manifest {digest} of {ref.name}")
        if data.get("mediaType") in INDEX_MEDIA_TYPES or "manifests" in data:
            for child in data.get("manifests") or ():
                platform = platform_of(child)
                if keep is not None and platform and platform not in keep:
                    continue
                if keep is not None and not platform:
                    continue  # attestation manifests travel only with every platform
                self.manifest_tree(ref, parse_digest(str(child.get("digest"))))
            return body
        for item in (data.get("config"), *(data.get("layers") or ())):
            if isinstance(item, Mapping) and item.get("digest"):
                size = item.get("size")
                self.blob(ref, parse_digest(str(item["digest"])), size if isinstance(size, int) else None)
        return body

    # ---- images --------------------------------------------------------------------------------

    def image(self, image: LockedImage) -> list[_Entry]:
        assert image.digest is not None
        ref = image.image
        body = self.manifest(ref, image.digest)
        data = _json(body, f"manifest of {image.ref}")
        media_type = str(data.get("mediaType") or (OCI_INDEX if "manifests" in data else OCI_MANIFEST))
        included: dict[str, str] = {}
        keep: frozenset[str] | None = None
        if "manifests" in data:
            served = {platform_of(c): str(c.get("digest")) for c in data.get("manifests") or () if platform_of(c)}
            locked = dict(image.platforms or ())
            for platform, digest in sorted(locked.items()):
                if served.get(platform) != digest:
                    raise BundleError(
                        f"image {image.ref!r}: the lock has {platform} at {digest}, but the index {image.digest} "
                        f"lists {served.get(platform) or 'no such platform'}",
                        hint="the lock and the registry disagree about an immutable digest: re-lock with "
                        "'nox -s lock' and review the change")
            keep = self.platforms or None
            included = {p: d for p, d in sorted(served.items()) if keep is None or p in keep}
        self.manifest_tree(ref, image.digest, keep=keep)
        annotations = {
            REF_NAME: image.ref, ANNOTATION_KIND: EntryKind.IMAGE.value, ANNOTATION_UPSTREAM: image.ref,
            ANNOTATION_REPOSITORY: ref.name,
            ANNOTATION_PLATFORMS: ALL_PLATFORMS if keep is None else ",".join(sorted(included)),
        }
        if ref.tag is not None:
            annotations[ANNOTATION_TAG] = ref.tag
        entry = _Entry(kind=EntryKind.IMAGE, descriptor={
            "mediaType": media_type, "digest": image.digest, "size": len(body), "annotations": annotations},
            record={"ref": image.ref, "digest": image.digest, "mediaType": media_type, "platforms": included})
        return [entry, *self.artifacts(ref, image.digest)]

    def artifacts(self, ref: ImageRef, digest: Digest) -> list[_Entry]:
        """Signatures, attestations and referrers of ``digest`` in ``ref``'s repository."""
        repo = ImageRef(registry=ref.registry, repository=ref.repository)
        hexpart = digest.split(":", 1)[1]
        out: list[_Entry] = []
        descriptors = self.client.referrers(repo, digest)
        if descriptors is None:  # no referrers API: the referrers tag schema
            tag = f"sha256-{hexpart}"
            found = self._tagged(repo, tag)
            if found is not None:
                self.manifest_tree(repo, found[0])
                out.append(self._artifact(EntryKind.REFERRERS, repo, found, subject=digest, tag=tag))
        else:
            for descriptor in sorted(descriptors, key=lambda d: str(d.get("digest"))):
                child = parse_digest(str(descriptor.get("digest")))
                body = self.manifest_tree(repo, child)
                out.append(self._artifact(EntryKind.REFERRER, repo, (child, body), subject=digest, tag=None))
        for suffix, kind in (("sig", EntryKind.SIGNATURE), ("att", EntryKind.ATTESTATION)):
            tag = f"sha256-{hexpart}.{suffix}"
            found = self._tagged(repo, tag)
            if found is not None:
                self.manifest_tree(repo, found[0])
                out.append(self._artifact(kind, repo, found, subject=digest, tag=tag))
        return out

    def _tagged(self, repo: ImageRef, tag: str) -> tuple[Digest, bytes] | None:
        try:
            found = self.client.fetch_manifest(ImageRef(registry=repo.registry, repository=repo.repository, tag=tag))
        except NotFoundError:
            return None
        self.writer.put(found.body, digest=found.digest)
        return found.digest, found.body

    @staticmethod
    def _artifact(kind: EntryKind, repo: ImageRef, found: tuple[Digest, bytes], *, subject: Digest,
                  tag: str | None) -> _Entry:
        digest, body = found
        data = _json(body, f"{kind.value} {digest} of {repo.name}")
        annotations = {REF_NAME: f"{repo.name}:{tag}" if tag else f"{repo.name}@{digest}",
                       ANNOTATION_KIND: kind.value, ANNOTATION_REPOSITORY: repo.name, ANNOTATION_SUBJECT: subject,
                       ANNOTATION_UPSTREAM: f"{repo.name}:{tag}" if tag else f"{repo.name}@{digest}"}
        if tag:
            annotations[ANNOTATION_TAG] = tag
        media_type = str(data.get("mediaType") or (OCI_INDEX if "manifests" in data else OCI_MANIFEST))
        return _Entry(kind=kind, descriptor={"mediaType": media_type, "digest": digest, "size": len(body),
                                             "annotations": annotations},
                      record={"kind": kind.value, "repository": repo.name, "reference": tag or digest,
                              "digest": digest, "subject": subject})

    # ---- charts --------------------------------------------------------------------------------

    def chart(self, chart: LockedChart, data: bytes) -> _Entry:
        _, raw = chart_yaml(data, source=f"chart {chart.name} {chart.version}")
        meta = load_yaml_strings(raw)
        config = {k: meta[k] for k in _CHART_FIELDS if isinstance(meta, Mapping) and meta.get(k) not in (None, "")}
        config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
        archive = self.writer.put(data, digest=chart.archive)
        config_digest = self.writer.put(config_bytes)
        manifest = _compact({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": HELM_CONFIG, "digest": config_digest, "size": len(config_bytes)},
            "layers": [{"mediaType": HELM_CHART_LAYER, "digest": archive, "size": len(data)}],
            "annotations": {ANNOTATION_TITLE: chart.name, "org.opencontainers.image.version": chart.version},
        })
        digest = self.writer.put(manifest)
        target, tag = chart_repository(chart.repository, chart.name, prefix=""), chart_tag(chart.version)
        upstream = f"{chart.repository} {chart.name} {chart.version}"
        return _Entry(kind=EntryKind.CHART, descriptor={
            "mediaType": OCI_MANIFEST, "digest": digest, "size": len(manifest),
            "annotations": {REF_NAME: f"{target}:{tag}", ANNOTATION_KIND: EntryKind.CHART.value,
                            ANNOTATION_UPSTREAM: upstream, ANNOTATION_REPOSITORY: target, ANNOTATION_TAG: tag}},
            record={"repository": chart.repository, "name": chart.name, "version": chart.version,
                    "archive": chart.archive, "tree": chart.tree, "target": target, "tag": tag})

    # ---- metadata ------------------------------------------------------------------------------

    def metadata(self, files: Mapping[str, bytes], contents: dict[str, Any]) -> _Entry:
        layers: list[dict[str, Any]] = []
        for name, data in sorted(files.items()):
            digest = self.writer.put(data)
            media_type = _MEDIA_BY_SUFFIX.get(Path(name).suffix, "application/octet-stream")
            layers.append({"mediaType": media_type, "digest": digest, "size": len(data),
                           "annotations": {ANNOTATION_TITLE: name}})
        contents["files"] = {name: sha256(data) for name, data in sorted(files.items())}
        config = canonical_json(contents)
        config_digest = self.writer.put(config)
        manifest = _compact({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": BUNDLE_ARTIFACT,
                             "config": {"mediaType": BUNDLE_CONFIG, "digest": config_digest, "size": len(config)},
                             "layers": layers})
        digest = self.writer.put(manifest)
        return _Entry(kind=EntryKind.METADATA, descriptor={
            "mediaType": OCI_MANIFEST, "artifactType": BUNDLE_ARTIFACT, "digest": digest, "size": len(manifest),
            "annotations": {REF_NAME: METADATA_REF, ANNOTATION_KIND: EntryKind.METADATA.value}})


def _json(body: bytes, what: str) -> dict[str, Any]:
    try:
        data: Any = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise BundleError(f"{what} is not a JSON object", hint="the registry serves a broken manifest")
    return data


def _locked_images(locks: Sequence[Lockfile]) -> list[LockedImage]:
    images: dict[str, LockedImage] = {}
    for lock in locks:
        for component, image in lock.images():
            if image.digest is None:
                raise BundleError(
                    f"{lock.display or lock.name}: component {component.name!r}: image {image.ref!r} has no locked "
                    "digest; a bundle carries images by digest only",
                    hint="lock with registries reachable ('nox -s lock', not --no-resolve) and commit lockfiles/")
            known = images.setdefault(image.ref, image)
            if known.digest != image.digest:
                raise BundleError(f"image {image.ref!r} is locked at {known.digest} and at {image.digest} by "
                                  "different recipes", hint="re-lock every recipe together with 'nox -s lock'")
    return [images[k] for k in sorted(images)]


def _locked_charts(locks: Sequence[Lockfile]) -> list[LockedChart]:
    charts: dict[tuple[str, str, str], LockedChart] = {}
    for lock in locks:
        for component in lock.components.values():
            chart = component.chart
            if chart is None:
                continue
            known = charts.setdefault((chart.repository, chart.name, chart.version), chart)
            if known.archive != chart.archive:
                raise BundleError(f"chart {chart.name!r} {chart.version} of {chart.repository} is locked with two "
                                  f"archives ({known.archive}, {chart.archive})",
                                  hint="re-lock every recipe together with 'nox -s lock'")
    return [charts[k] for k in sorted(charts)]


def _prepare(out: Path) -> Path:
    if out.exists() and not out.is_file() and any(out.iterdir()) and not (out / LAYOUT_FILE).is_file():
        raise BundleError(f"{out} exists and is not a bundle; refusing to replace it",
                          hint="choose another --out, or remove that directory yourself")
    if out.is_file() and out.suffix != ".tar":
        raise BundleError(f"{out} is a file; a bundle is a directory or a .tar", hint="choose another --out")
    partial = partial_dir(out)
    partial.mkdir(parents=True, exist_ok=True)
    return partial


def _finish(partial: Path, out: Path) -> None:
    if out.suffix == ".tar":
        pack_tar(partial, out)
        shutil.rmtree(partial)
        return
    old = out.parent / f".{out.name}.old"
    if old.exists():
        shutil.rmtree(old)
    if out.exists():
        out.rename(old)
    partial.rename(out)
    if old.exists():
        shutil.rmtree(old)


def export_bundle(
    locks: Sequence[Lockfile],
    *,
    client: RegistryClient,
    out: Path,
    catalog: Path,
    store: ChartStore,
    chart_mirrors: Mapping[str, str],
    platforms: Sequence[str] = (),
    files: Mapping[str, bytes] | None = None,
    workers: int = 8,
) -> ExportResult:
    """Write the bundle of ``locks`` at ``out`` (see the module docstring for the contract)."""
    images = _locked_images(locks)
    charts = _locked_charts(locks)
    wanted = frozenset(p.lower() for p in platforms)
    offered = {p for image in images for p, _ in image.platforms or ()}
    unknown = sorted(wanted - offered)
    if unknown:
        raise BundleError(f"--platform {unknown[0]!r} is not a platform of any locked image",
                          hint=f"the locked images offer: {', '.join(sorted(offered)) or 'no platform list'}")
    partial = _prepare(out)
    writer = LayoutWriter(partial)
    exporter = _Exporter(client=client, writer=writer, platforms=wanted)
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="bundle") as pool:
        image_entries = [e for entries in pool.map(exporter.image, images) for e in entries]
    chart_entries = []
    for chart in charts:
        fetched = fetch_chart(ChartRef(repository=chart.repository, name=chart.name, version=chart.version),
                              catalog=catalog, store=store, mirrors=chart_mirrors, expected=chart.archive)
        chart_entries.append(exporter.chart(chart, fetched.data))
    entries = sorted([*image_entries, *chart_entries], key=lambda e: e.key)
    contents: dict[str, Any] = {
        "bundleVersion": 1,
        "platforms": sorted(wanted) if wanted else ALL_PLATFORMS,
        "locks": {lock.name: lock.digest for lock in sorted(locks, key=lambda x: x.name)},
        "images": [e.record for e in entries if e.kind is EntryKind.IMAGE],
        "charts": [e.record for e in entries if e.kind is EntryKind.CHART],
        "artifacts": [e.record for e in entries if e.kind not in (EntryKind.IMAGE, EntryKind.CHART)],
    }
    documents = {f"lockfiles/{lock.name}{LOCK_SUFFIX}": lock.dumps() for lock in locks} | dict(files or {})
    entries.append(exporter.metadata(documents, contents))
    index = canonical_json({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [e.descriptor for e in entries],
        "annotations": {ANNOTATION_PLATFORMS: ",".join(sorted(wanted)) if wanted else ALL_PLATFORMS},
    })
    referenced = _reachable(writer, [e.descriptor for e in entries])
    writer.prune(referenced)
    writer.write_file(LAYOUT_FILE, canonical_json({"imageLayoutVersion": LAYOUT_VERSION}))
    writer.write_file(INDEX, index)
    size = sum((partial / "blobs" / "sha256" / d.split(":", 1)[1]).stat().st_size for d in referenced)
    _finish(partial, out)
    return ExportResult(path=out, images=len(images), charts=len(charts),
                        artifacts=sum(1 for e in entries if e.kind not in (EntryKind.IMAGE, EntryKind.CHART,
                                                                          EntryKind.METADATA)),
                        blobs=len(referenced), size=size, fetched=writer.written, reused=writer.reused,
                        index=sha256(index))


def _reachable(writer: LayoutWriter, roots: Sequence[Mapping[str, Any]]) -> set[str]:
    """Every digest reachable from ``roots`` (manifests and indexes are followed; the rest are leaves)."""
    seen: set[str] = set()
    stack: list[Mapping[str, Any]] = list(roots)
    while stack:
        descriptor = stack.pop()
        digest = str(descriptor["digest"])
        if digest in seen or not writer.has(Digest(digest)):
            continue
        seen.add(digest)
        if descriptor.get("mediaType") not in MANIFEST_TYPES:
            continue
        parsed = _json(writer.read(Digest(digest)), f"manifest {digest}")
        for item in (*(parsed.get("manifests") or ()), parsed.get("config"), *(parsed.get("layers") or ())):
            if isinstance(item, Mapping) and isinstance(item.get("digest"), str):
                stack.append(item)
    return seen


def collect_files(paths: Sequence[Path], *, required: bool) -> dict[str, bytes]:
    """The documents to carry: each file, or every file under each directory, by its path as given
    (POSIX, relative). A missing path is an error when ``required``, else skipped."""
    out: dict[str, bytes] = {}
    for path in paths:
        if path.is_file():
            out[path.as_posix()] = path.read_bytes()
        elif path.is_dir():
            for item in sorted(path.rglob("*")):
                if item.is_file():
                    out[item.as_posix()] = item.read_bytes()
        elif required:
            raise BundleError(f"{path}: no such file or directory to carry in the bundle",
                              hint="give existing files or directories with --include")
    bad = sorted(name for name in out if name.startswith(("/", "../", "lockfiles/")))
    if bad:
        raise BundleError(f"cannot carry {bad[0]!r}: give paths relative to the working directory, outside lockfiles/",
                          hint="the bundle carries the verified locks itself")
    return out
