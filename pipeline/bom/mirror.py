"""The air-gap mirror list: every registry, every image by digest, every chart by digest.

Input: verified lockfiles (or :class:`~pipeline.bom.interface.Lockfile` records). Output, as
bytes, one pure function per format (:class:`MirrorFormat`):

* ``text``: three sections (``# registries``, ``# images``, ``# charts``), one item per line;
  images as ``registry/repository@sha256:…`` (what skopeo, crane and oras all accept), charts as
  ``<archive digest> <repository> <name> <version>``;
* ``json``: the same with everything the lock knows (tags, platforms, media type, which recipes
  and components use each item), canonical JSON;
* ``hauler``: a Hauler manifest, ``content.hauler.cattle.io/v1`` ``Images`` and ``Charts``
  (images by digest; charts by repository, name and version, their archive digests in comments,
  since Hauler's chart spec has no digest field);
* ``zarf``: a Zarf package config (``kind: ZarfPackageConfig``, schema v1alpha1), one Zarf
  component per catalog component (per chart variant when recipes pin different charts), with its
  chart (``url``, or ``localPath`` for a chart in the catalog) and its images as
  ``registry/repository:tag@sha256:…`` (Zarf keeps the tag for in-cluster pulls by tag);
* :func:`hosts_toml`: containerd ``hosts.toml`` files, one per upstream registry namespace
  (``<host>/hosts.toml``, ``host_port_`` for a host with a port), each sending pulls to one mirror
  host first (``capabilities = ["pull", "resolve"]``: a private mirror) and to the upstream
  ``server`` last.

Local charts (in the catalog's ``./charts``) are listed with paths relative to the catalog
directory: they travel with the catalog. Errors: :class:`~pipeline.bom.interface.BomError` when
an image has no digest (nothing can be mirrored by digest; ``allow_unpinned`` lists it by tag and
says so), or when a mirror host for ``hosts.toml`` is not ``[https://]host[:port]``.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import yaml

from ..lockfile import Lockfile
from ..vocabulary.digest import Digest, canonical_json
from ..vocabulary.hosts import containerd_hosts_toml, containerd_namespace_dir
from .interface import BomError, LockedChart, LockedComponent, LockedImage, Output

__all__ = [
    "HAULER_API_VERSION",
    "FormatOutput",
    "MirrorChart",
    "MirrorFormat",
    "MirrorImage",
    "MirrorList",
    "hosts_toml",
    "mirror_list",
    "render",
]

HAULER_API_VERSION = "content.hauler.cattle.io/v1"
_ZARF_NAME = re.compile(r"[^a-z0-9-]+")
_UNPINNED_HINT = ("the lock must record a digest for every image: run 'nox -s lock' (its resolve step asks the "
                  "registries) and commit lockfiles/; or pass --allow-unpinned to list such images by tag")


class MirrorFormat(enum.StrEnum):
    TEXT = "text"
    JSON = "json"
    HAULER = "hauler"
    ZARF = "zarf"


@dataclass(frozen=True, slots=True, kw_only=True)
class MirrorImage:
    """One image to mirror (by digest), with every tag and use the locks record for it."""

    registry: str
    repository: str
    digest: Digest | None
    tags: tuple[str, ...]
    platforms: tuple[tuple[str, Digest], ...] = ()
    media_type: str | None = None
    used_by: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    @property
    def by_digest(self) -> str:
        """``registry/repository@sha256:…`` (``:tag`` when unresolved)."""
        if self.digest is not None:
            return f"{self.name}@{self.digest}"
        return f"{self.name}:{self.tags[0]}" if self.tags else self.name

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "registry": self.registry, "repository": self.repository,
                               "digest": self.digest, "reference": self.by_digest, "tags": list(self.tags),
                               "usedBy": list(self.used_by)}
        if self.platforms:
            out["platforms"] = dict(self.platforms)
        if self.media_type is not None:
            out["mediaType"] = self.media_type
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class MirrorChart:
    """One chart to mirror, identified by its archive digest."""

    repository: str
    name: str
    version: str
    archive: Digest
    tree: Digest | None
    used_by: tuple[str, ...] = ()

    @property
    def is_local(self) -> bool:
        return not self.repository.startswith(("oci://", "https://", "http://"))

    @property
    def local_path(self) -> str:
        """The chart's path relative to the catalog directory (local charts only)."""
        return (PurePosixPath(self.repository) / self.name).as_posix()

    def as_dict(self) -> dict[str, Any]:
        return {"repository": self.repository, "name": self.name, "version": self.version,
                "archive": self.archive, "tree": self.tree, "local": self.is_local, "usedBy": list(self.used_by)}


@dataclass(frozen=True, slots=True, kw_only=True)
class MirrorList:
    """What an air-gapped site must copy: registries, images and charts, sorted."""

    registries: tuple[str, ...]
    images: tuple[MirrorImage, ...]
    charts: tuple[MirrorChart, ...]


@dataclass(slots=True)
class _Gather:
    tags: set[str] = field(default_factory=set)
    used_by: set[str] = field(default_factory=set)


def mirror_list(recipes: Sequence[Lockfile], *, allow_unpinned: bool = False) -> MirrorList:
    """Every image (by registry, repository and digest) and chart (by archive) the recipes use."""
    unpinned = [(r.name, c, i) for r in recipes for c, i in r.unpinned()]
    if unpinned and not allow_unpinned:
        shown = "; ".join(f"recipe '{r}' component '{c}': '{i.ref}'" for r, c, i in unpinned[:10])
        more = f" (and {len(unpinned) - 10} more)" if len(unpinned) > 10 else ""
        raise BomError(f"{len(unpinned)} image(s) have no digest in the locks, so they cannot be mirrored by "
                       f"digest: {shown}{more}", hint=_UNPINNED_HINT)
    images: dict[tuple[str, str, str], tuple[LockedImage, _Gather]] = {}
    charts: dict[tuple[str, str, str, str], tuple[LockedChart, _Gather]] = {}
    for recipe in recipes:
        for component in recipe.ordered():
            use = f"{recipe.name}/{component.name}"
            for image in component.images:
                key = (image.image.registry, image.image.repository, image.digest or f"tag:{image.image.tag}")
                _, gather = images.setdefault(key, (image, _Gather()))
                gather.used_by.add(use)
                if image.image.tag is not None:
                    gather.tags.add(image.image.tag)
            if component.chart is not None:
                chart = component.chart
                _, gather = charts.setdefault((chart.repository, chart.name, chart.version, chart.archive),
                                              (chart, _Gather()))
                gather.used_by.add(use)
    mirror_images = tuple(
        MirrorImage(registry=image.image.registry, repository=image.image.repository, digest=image.digest,
                    tags=tuple(sorted(g.tags)), platforms=image.platforms or (), media_type=image.media_type,
                    used_by=tuple(sorted(g.used_by)))
        for _, (image, g) in sorted(images.items()))
    mirror_charts = tuple(
        MirrorChart(repository=chart.repository, name=chart.name, version=chart.version, archive=chart.archive,
                    tree=chart.tree, used_by=tuple(sorted(g.used_by)))
        for _, (chart, g) in sorted(charts.items()))
    return MirrorList(registries=tuple(sorted({i.registry for i in mirror_images})), images=mirror_images,
                      charts=mirror_charts)


# ---- formats -----------------------------------------------------------------------------------


def _text(listing: MirrorList) -> bytes:
    lines = ["# registries", *listing.registries, "", "# images (by digest)"]
    lines += [image.by_digest for image in listing.images]
    lines += ["", "# charts (archive digest, repository, name, version; local repositories are catalog paths)"]
    lines += [f"{c.archive} {c.repository} {c.name} {c.version}" for c in listing.charts]
    return ("\n".join(lines) + "\n").encode()


def _json(listing: MirrorList) -> bytes:
    return canonical_json({"registries": list(listing.registries),
                           "images": [i.as_dict() for i in listing.images],
                           "charts": [c.as_dict() for c in listing.charts]})


def _yaml(documents: Sequence[Mapping[str, Any]]) -> str:
    return yaml.safe_dump_all(documents, sort_keys=False, default_flow_style=False, explicit_start=False,
                              width=1000, allow_unicode=True)


def _hauler(listing: MirrorList, *, name: str) -> bytes:
    images = {"apiVersion": HAULER_API_VERSION, "kind": "Images", "metadata": {"name": f"{name}-images"},
              "spec": {"images": [{"name": image.by_digest} for image in listing.images]}}
    charts = {"apiVersion": HAULER_API_VERSION, "kind": "Charts", "metadata": {"name": f"{name}-charts"},
              "spec": {"charts": [_hauler_chart(c) for c in listing.charts]}}
    header = ["# Hauler manifest generated from lockfiles/ by 'python -m pipeline mirror list --format hauler'.",
              "# Images are pinned by digest. Hauler's chart spec has no digest field; the locked archive",
              "# digests are listed here (local charts: paths relative to the catalog directory):"]
    header += [f"#   {c.name} {c.version} ({c.repository}): {c.archive}" for c in listing.charts]
    return ("\n".join(header) + "\n" + _yaml([images, charts])).encode()


def _hauler_chart(chart: MirrorChart) -> dict[str, str]:
    if chart.is_local:
        return {"name": chart.local_path, "repoURL": ".", "version": chart.version}
    return {"name": chart.name, "repoURL": chart.repository.rstrip("/"), "version": chart.version}


def _zarf_name(text: str) -> str:
    name = _ZARF_NAME.sub("-", text.lower()).strip("-")
    return name if name and name[0].isalnum() else f"c-{name}".rstrip("-")


def _zarf_image(image: LockedImage) -> str:
    text = image.image.name
    if image.image.tag is not None:
        text += f":{image.image.tag}"
    return f"{text}@{image.digest}" if image.digest is not None else text


_VariantKey = tuple[str, str, str]  # component name, chart archive ("" without a chart), namespace


@dataclass(slots=True)
class _ZarfVariant:
    """A catalog component as some recipes deploy it (same chart archive, same namespace)."""

    component: LockedComponent
    recipes: set[str] = field(default_factory=set)
    images: set[str] = field(default_factory=set)


def _zarf(recipes: Sequence[Lockfile], *, name: str) -> bytes:
    # One Zarf component per variant: recipes that deploy the same chart the same way share it; a
    # component that recipes deploy differently gets one Zarf component per variant (not required).
    variants: dict[_VariantKey, _ZarfVariant] = {}
    for recipe in recipes:
        for component in recipe.ordered():
            key = (component.name, component.chart.archive if component.chart else "", component.namespace or "")
            variant = variants.setdefault(key, _ZarfVariant(component=component))
            variant.recipes.add(recipe.name)
            variant.images.update(_zarf_image(i) for i in component.images)
    names = _zarf_component_names(variants)
    components = []
    for key, variant in sorted(variants.items()):
        locked = variant.component
        zarf: dict[str, Any] = {"name": names[key],
                                "description": f"{key[0]} in recipes: {', '.join(sorted(variant.recipes))}"}
        if sum(1 for k in variants if k[0] == key[0]) == 1:
            zarf["required"] = True
        if locked.chart is not None:
            zarf["charts"] = [_zarf_chart(locked.chart, release=key[0], namespace=locked.namespace)]
        if variant.images:
            zarf["images"] = sorted(variant.images)
        components.append(zarf)
    package = {"kind": "ZarfPackageConfig",
               "metadata": {"name": _zarf_name(name),
                            "description": "Images and charts of the recipe catalog, pinned by digest "
                                           "(generated from lockfiles/; local chart paths are relative to "
                                           "the catalog directory)"},
               "components": components}
    return _yaml([package]).encode()


def _zarf_component_names(variants: Mapping[_VariantKey, _ZarfVariant]) -> dict[_VariantKey, str]:
    """A unique Zarf component name per variant: the component's name, qualified only as far as needed."""
    out: dict[_VariantKey, str] = {}
    for component in sorted({k[0] for k in variants}):
        keys = sorted(k for k in variants if k[0] == component)
        for level in range(1, 5):
            candidates = {k: _zarf_name("-".join(_zarf_qualifiers(k, variants[k].component)[:level])) for k in keys}
            if len(set(candidates.values())) == len(keys) or level == 4:
                out.update(candidates)
                break
    return out


def _zarf_qualifiers(key: _VariantKey, component: LockedComponent) -> list[str]:
    version = component.chart.version if component.chart is not None else "manifests"
    return [key[0], version, key[2] or "default", key[1].removeprefix("sha256:")[:12] or "in-tree"]


def _zarf_chart(chart: LockedChart, *, release: str, namespace: str | None) -> dict[str, str]:
    out = {"name": chart.name, "version": chart.version}
    if chart.is_local:
        out["localPath"] = (PurePosixPath(chart.repository) / chart.name).as_posix()
    elif chart.is_oci:
        out["url"] = f"{chart.repository.rstrip('/')}/{chart.name}"
    else:
        out["url"] = chart.repository.rstrip("/")
    if namespace:
        out["namespace"] = namespace
    out["releaseName"] = release
    return out


def render(recipes: Sequence[Lockfile], fmt: MirrorFormat, *, name: str = "catalog",
           allow_unpinned: bool = False) -> bytes:
    """The mirror list of ``recipes`` in format ``fmt``."""
    listing = mirror_list(recipes, allow_unpinned=allow_unpinned)
    match fmt:
        case MirrorFormat.TEXT:
            return _text(listing)
        case MirrorFormat.JSON:
            return _json(listing)
        case MirrorFormat.HAULER:
            return _hauler(listing, name=name)
        case MirrorFormat.ZARF:
            return _zarf(recipes, name=name)


class FormatOutput(Output):
    """One mirror-list format as an :class:`Output`."""

    def __init__(self, fmt: MirrorFormat, *, name: str = "catalog", allow_unpinned: bool = False) -> None:
        self.fmt = fmt
        self.name = fmt.value
        self.catalog = name
        self.allow_unpinned = allow_unpinned

    def render(self, recipes: Sequence[Lockfile]) -> bytes:
        return render(recipes, self.fmt, name=self.catalog, allow_unpinned=self.allow_unpinned)


# ---- containerd hosts.toml -----------------------------------------------------------------------


def _mirror_url(mirror: str) -> str:
    text = mirror.strip()
    parts = urlsplit(text if "://" in text else f"https://{text}")
    if parts.scheme not in {"https", "http"} or not parts.hostname or parts.path.strip("/") or parts.query \
            or parts.fragment or parts.username or parts.password:
        raise BomError(f"mirror {mirror!r} is not a registry host: write it as host[:port] or https://host[:port]",
                       hint="a path-based proxy (one path per upstream) needs override_path in each hosts.toml; "
                            "write those by hand")
    return f"{parts.scheme}://{parts.netloc}"


def hosts_toml(recipes: Sequence[Lockfile], mirror: str, *,
               allow_unpinned: bool = False) -> dict[PurePosixPath, bytes]:
    """``<namespace>/hosts.toml`` for every registry the locks pull from, all pointing at ``mirror``.

    Install them under containerd's registry ``config_path`` (e.g. ``/etc/containerd/certs.d``).
    The mirror is tried first for pull and resolve; the upstream ``server`` stays the fallback.
    """
    url = _mirror_url(mirror)
    listing = mirror_list(recipes, allow_unpinned=allow_unpinned)
    out: dict[PurePosixPath, bytes] = {}
    for registry in listing.registries:
        text = containerd_hosts_toml(
            registry, url, generated_by=f"'python -m pipeline mirror list --hosts-toml {url.removeprefix('https://')}'")
        out[PurePosixPath(containerd_namespace_dir(registry)) / "hosts.toml"] = text
    return out
