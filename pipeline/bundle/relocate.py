"""``bundle import``: push a bundle into a registry behind the gap, verifying every byte on the way.

Contract of :func:`import_bundle`:

- inputs: a bundle (directory or ``.tar``), a :class:`~pipeline.registry.Pusher` for the target
  registry (credentials from the Docker config, as for resolve), a repository ``prefix``;
- order: entries in ``index.json`` order; for each, what it references first (blobs, then child
  manifests), the manifest itself by digest, then its tag (an image's tag as the lock wrote it;
  cosign's ``sha256-<hex>.sig``/``.att``; the referrers tag ``sha256-<hex>``; a chart's version);
- every blob and manifest is read from the bundle and hashed *before* it is sent: the first one
  whose bytes do not match its digest stops the import (:class:`~pipeline.bundle.interface.BundleError`,
  exit 2) and nothing after it is pushed; a blob the target already has (``HEAD``) is not sent again;
- names: images go to ``<prefix>/<registry>/<repository>`` (``host:port`` written ``host_port``),
  their signatures next to them, charts to ``<prefix>/charts/<source>/<name>``
  (:mod:`pipeline.bundle.interface`); the metadata artifact is not pushed (it stays in the bundle);
- output: :class:`ImportResult` with counts, and the mirror configuration that makes ``lock`` and
  containerd pull from the target: :func:`mirrors_yaml` (for ``recipes/pipeline.yaml``) and
  :func:`hosts_files` (containerd ``hosts.toml`` per upstream registry, ``override_path`` since the
  mirror keeps each upstream under a repository prefix).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from ..registry import Pusher
from ..vocabulary.digest import Digest, sha256
from ..vocabulary.hosts import containerd_hosts_toml, containerd_namespace_dir
from ..vocabulary.media_types import INDEX_MEDIA_TYPES, MANIFEST_MEDIA_TYPES, OCI_MANIFEST
from .interface import (
    ANNOTATION_KIND,
    ANNOTATION_REPOSITORY,
    ANNOTATION_TAG,
    BundleError,
    EntryKind,
    chart_source_dir,
    image_repository,
    registry_dir,
)
from .layout import INDEX, LayoutReader
from .verify import read_contents

__all__ = ["ImportResult", "hosts_files", "import_bundle", "mirrors_yaml"]

_MANIFESTS = INDEX_MEDIA_TYPES | MANIFEST_MEDIA_TYPES


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportResult:
    """What an import pushed (and skipped), and what the mirror configuration needs to know."""

    target: str
    scheme: str
    prefix: str
    registries: tuple[str, ...]
    chart_repositories: tuple[str, ...]
    manifests: int
    blobs_pushed: int
    blobs_skipped: int
    bytes_pushed: int


class _Importer:
    def __init__(self, reader: LayoutReader, pusher: Pusher) -> None:
        self.reader = reader
        self.pusher = pusher
        self.blobs_pushed = self.blobs_skipped = self.bytes_pushed = self.manifests = 0
        self._done: set[tuple[str, str]] = set()

    def _bytes(self, digest: str, what: str) -> bytes:
        data = self.reader.blob(Digest(digest))
        if data is None:
            raise BundleError(f"{self.reader.path}: {what} {digest} is missing from the bundle; nothing more pushed",
                              hint="run 'python -m pipeline bundle verify' on it, and carry a good copy across")
        actual = sha256(data)
        if actual != digest:
            raise BundleError(
                f"{self.reader.path}: {what} {digest} hashes to {actual}: the bundle is corrupt or was altered; "
                "nothing more pushed", hint="do not use this bundle: export it again and carry a good copy across")
        return data

    def blob(self, repository: str, descriptor: Mapping[str, Any]) -> None:
        digest = str(descriptor.get("digest"))
        if (repository, digest) in self._done:
            return
        data = self._bytes(digest, "blob")
        if self.pusher.has_blob(repository, Digest(digest)):
            self.blobs_skipped += 1
        else:
            self.pusher.push_blob(repository, data, Digest(digest))
            self.blobs_pushed += 1
            self.bytes_pushed += len(data)
        self._done.add((repository, digest))

    def manifest(self, repository: str, descriptor: Mapping[str, Any], *, tag: str | None = None) -> None:
        digest = str(descriptor.get("digest"))
        body = self._bytes(digest, "manifest")
        data: Any = json.loads(body)
        media_type = str(descriptor.get("mediaType") or data.get("mediaType") or OCI_MANIFEST)
        if (repository, digest) not in self._done:
            for child in data.get("manifests") or ():
                if self.reader.blob(Digest(str(child.get("digest")))) is not None:  # platforms left out stay out
                    self.manifest(repository, child)
            for item in (data.get("config"), *(data.get("layers") or ())):
                if isinstance(item, Mapping):
                    self.blob(repository, item)
            self.pusher.push_manifest(repository, digest, body, media_type)
            self.manifests += 1
            self._done.add((repository, digest))
        if tag:
            self.pusher.push_manifest(repository, tag, body, media_type)


def import_bundle(path: Path, *, pusher: Pusher, prefix: str = "") -> ImportResult:
    """Push the bundle at ``path`` through ``pusher`` (see the module docstring for the contract)."""
    prefix = prefix.strip("/")
    with LayoutReader(path) as reader:
        index: Any = json.loads(reader.read(INDEX) or b"null")
        if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
            raise BundleError(f"{path} has no index.json: not a finished bundle",
                              hint="run 'python -m pipeline bundle export' again to complete it")
        contents, _ = read_contents(reader, index)
        importer = _Importer(reader, pusher)
        registries: set[str] = set()
        charts: set[str] = set()
        for entry in index["manifests"]:
            annotations = entry.get("annotations") or {}
            kind = annotations.get(ANNOTATION_KIND)
            upstream = str(annotations.get(ANNOTATION_REPOSITORY, ""))
            tag = annotations.get(ANNOTATION_TAG)
            if kind == EntryKind.METADATA.value:
                continue
            if kind == EntryKind.CHART.value:
                target = f"{prefix}/{upstream}" if prefix else upstream
            elif kind in {k.value for k in EntryKind}:
                registry, _, repository = upstream.partition("/")
                registries.add(registry)
                target = image_repository(registry, repository, prefix=prefix)
            else:
                raise BundleError(f"{path}: index.json entry {entry.get('digest')} has no known kind ({kind!r})",
                                  hint="the bundle was not written by 'bundle export'; do not use it")
            importer.manifest(target, entry, tag=str(tag) if tag else None)
        for chart in contents.get("charts") or ():
            if "://" in str(chart.get("repository", "")):
                charts.add(str(chart["repository"]))
    scheme = "http" if pusher.client.config.plain_http(pusher.host) else "https"
    return ImportResult(target=pusher.host, scheme=scheme, prefix=prefix, registries=tuple(sorted(registries)),
                        chart_repositories=tuple(sorted(charts)), manifests=importer.manifests,
                        blobs_pushed=importer.blobs_pushed, blobs_skipped=importer.blobs_skipped,
                        bytes_pushed=importer.bytes_pushed)


def _mirror_url(result: ImportResult, registry: str) -> str:
    path = "/".join(p for p in (result.prefix, registry_dir(registry)) if p)
    return f"{result.scheme}://{result.target}/{path}"


def mirrors_yaml(result: ImportResult) -> bytes:
    """The ``spec`` keys of ``recipes/pipeline.yaml`` that lock against the target (images and charts)."""
    spec: dict[str, Any] = {"registries": {"mirrors": {
        r: {"endpoints": [_mirror_url(result, r)], "skipUpstream": True} for r in result.registries}}}
    if result.chart_repositories:
        base = "/".join(p for p in (result.prefix, "charts") if p)
        spec["mirrors"] = {repo: f"oci://{result.target}/{base}/{chart_source_dir(repo)}"
                           for repo in result.chart_repositories}
    if result.scheme == "http" and not _loopback(result.target):
        spec["registries"]["insecure"] = [result.target]
    return yaml.safe_dump({"spec": spec}, sort_keys=True, default_flow_style=False).encode()


def _loopback(host: str) -> bool:
    from ..vocabulary.hosts import is_loopback

    return is_loopback(host)


def hosts_files(result: ImportResult) -> dict[PurePosixPath, bytes]:
    """containerd ``<namespace>/hosts.toml`` per upstream registry, each pulling from the target first."""
    out: dict[PurePosixPath, bytes] = {}
    for registry in result.registries:
        path = "/".join(p for p in (result.prefix, registry_dir(registry)) if p)
        url = f"{result.scheme}://{result.target}/v2/{path}"
        text = containerd_hosts_toml(registry, url, override_path=True,
                                     generated_by=f"'python -m pipeline bundle import --to {result.target}'")
        out[PurePosixPath(containerd_namespace_dir(registry)) / "hosts.toml"] = text
    return out
