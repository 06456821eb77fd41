"""Images the project builds itself, byte for byte, and pushes to an OCI registry.

Our catalog's images are not pulled from anywhere: ``recipes/images.yaml`` lists them (repository,
tags, platforms, a file or two of content) and this module builds each one as OCI image-spec
blobs, so a fresh machine with no internet can serve them from a local registry (see
:mod:`lab.registry`) and a lock can record digests that a real registry served.

Inputs: ``recipes/images.yaml`` (kind ``ImageSet``), read by :func:`load_image_specs` into
:class:`ImageSpec` records, one per (repository, tag).

Outputs: :func:`build_image` returns a :class:`BuiltImage`: per platform one gzip layer, one
config and one ``application/vnd.oci.image.manifest.v1+json`` manifest, and over them an
``application/vnd.oci.image.index.v1+json`` index (a single-platform image is the plain manifest).
:func:`push_image` uploads it to a registry through the distribution API and returns a
:class:`PushReport`.

Guarantees: the bytes are a pure function of the spec, the same on every machine and Python:
tar entries sorted, with parent directories, mtime 0, uid/gid 0 and no user or group names
(USTAR); the gzip stream is written here with stored (level 0) deflate blocks, mtime 0 and no
file name, so no zlib build (zlib, zlib-ng) can change a byte; config, manifest and index are
canonical JSON (sorted keys) with ``created`` fixed at ``1970-01-01T00:00:00Z``. The config's
labels carry the image title and tag, so two tags never share a digest. A push checks that the
registry's ``Docker-Content-Digest`` equals our digest for every blob and manifest, and skips
blobs the registry already has.

Errors: :class:`~pipeline.errors.RecipeError` for ``images.yaml`` (file, line, hint);
:class:`~pipeline.errors.ResolveError` when a registry refuses a push, cannot be reached, or
answers with another digest than the one we computed.
"""

from __future__ import annotations

import io
import re
import struct
import tarfile
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import httpx

from pipeline._checks import check_keys, line_of, suggest, type_name
from pipeline._yaml import YamlMap, load_file
from pipeline.errors import RecipeError, ResolveError
from pipeline.recipes.load import check_header, expect_mapping
from pipeline.vocabulary.digest import Digest, canonical_json, sha256
from pipeline.vocabulary.media_types import OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST
from pipeline.vocabulary.reference import ImageRef, ImageRefError

__all__ = [
    "CREATED",
    "IMAGES_FILE",
    "IMAGE_SET_API_VERSION",
    "IMAGE_SET_KIND",
    "OCI_CONFIG",
    "OCI_INDEX",
    "OCI_LAYER_GZIP",
    "OCI_MANIFEST",
    "Blob",
    "BuiltImage",
    "ImageFile",
    "ImageSpec",
    "Platform",
    "PushReport",
    "build_image",
    "gzip_stored",
    "load_image_specs",
    "push_blobs",
    "push_image",
]


#: The ``created`` time of every config and history entry: the epoch, never the clock.
CREATED = "1970-01-01T00:00:00Z"

IMAGES_FILE = "images.yaml"
IMAGE_SET_KIND = "ImageSet"
IMAGE_SET_API_VERSION = "pipeline.recipes.dev/v1"

#: GOOS / GOARCH values the OCI image spec names for ``platform``; anything else is a typo.
_OSES = frozenset({"linux", "windows", "freebsd", "darwin"})
_ARCHES = frozenset({"386", "amd64", "arm", "arm64", "loong64", "mips64le", "ppc64le", "riscv64", "s390x"})
_VARIANT = re.compile(r"^v[0-9]+$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_FILE_PART = re.compile(r"^[A-Za-z0-9._+@-]+$")
_SPEC_KEYS = ("prefix", "platforms", "images")
_IMAGE_KEYS = ("repository", "tags", "platforms", "files")
_FILE_KEYS = ("path", "content", "mode")
_DIR_MODE = 0o755
_FILE_MODE = 0o644
_STORED_BLOCK = 0xFFFF
_TIMEOUT = httpx.Timeout(30.0, connect=5.0)


# ------------------------------------------------------------------------------------------------
# records


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class Platform:
    """An OCI platform: ``os/architecture[/variant]`` (``linux/amd64``, ``linux/arm64/v8``)."""

    os: str
    architecture: str
    variant: str | None = None

    def __post_init__(self) -> None:
        if self.os not in _OSES:
            raise ValueError(f"os {self.os!r} is not one of {', '.join(sorted(_OSES))}{suggest(self.os, _OSES)}")
        if self.architecture not in _ARCHES:
            raise ValueError(f"architecture {self.architecture!r} is not a GOARCH value "
                             f"({', '.join(sorted(_ARCHES))}){suggest(self.architecture, _ARCHES)}")
        if self.variant is not None and not _VARIANT.match(self.variant):
            raise ValueError(f"variant {self.variant!r} is not of the form v<N> (v7, v8)")

    @classmethod
    def parse(cls, text: str) -> Platform:
        """``linux/arm64/v8`` → ``Platform(os='linux', architecture='arm64', variant='v8')``."""
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise ValueError(f"platform {text!r} is not os/architecture[/variant], e.g. linux/amd64")
        return cls(os=parts[0], architecture=parts[1], variant=parts[2] if len(parts) == 3 else None)

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    def descriptor(self) -> dict[str, str]:
        """The ``platform`` object of an index entry."""
        out = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            out["variant"] = self.variant
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageFile:
    """One regular file of an image's single layer: a relative POSIX ``path`` and its bytes."""

    path: str
    content: bytes
    mode: int = _FILE_MODE

    def __post_init__(self) -> None:
        pure = PurePosixPath(self.path)
        if (not self.path or pure.is_absolute() or pure.as_posix() != self.path
                or not all(_FILE_PART.match(p) and p not in (".", "..") for p in pure.parts)):
            raise ValueError(f"file path {self.path!r} must be a normalised relative path of plain names")
        if not 0 <= self.mode <= 0o7777:
            raise ValueError(f"file mode {self.mode:o} is not a permission mode (0 to 7777 octal)")


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageSpec:
    """One image to build: ``ref`` has a tag and no digest; at least one platform and one file."""

    ref: ImageRef
    platforms: tuple[Platform, ...]
    files: tuple[ImageFile, ...]

    def __post_init__(self) -> None:
        if self.ref.tag is None or self.ref.digest is not None:
            raise ValueError(f"image {self.ref} must have a tag and no digest")
        if not self.platforms:
            raise ValueError(f"image {self.ref} has no platform")
        if len(set(self.platforms)) != len(self.platforms):
            raise ValueError(f"image {self.ref} lists a platform twice")
        if not self.files:
            raise ValueError(f"image {self.ref} has no file")
        paths = [f.path for f in self.files]
        if len(set(paths)) != len(paths):
            raise ValueError(f"image {self.ref} lists a file path twice")
        directories = {str(p) for f in self.files for p in PurePosixPath(f.path).parents if str(p) != "."}
        if clash := directories & set(paths):
            raise ValueError(f"image {self.ref}: {sorted(clash)[0]!r} is both a file and a directory")

    @property
    def tag(self) -> str:
        assert self.ref.tag is not None  # checked in __post_init__
        return self.ref.tag

    @property
    def title(self) -> str:
        """Last path component of the repository (``accel-driver``)."""
        return self.ref.repository.rsplit("/", 1)[-1]


@dataclass(frozen=True, slots=True, kw_only=True)
class Blob:
    """Bytes with their media type and digest (a layer, a config or a manifest)."""

    media_type: str
    data: bytes
    digest: Digest = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "digest", sha256(self.data))

    @property
    def size(self) -> int:
        return len(self.data)

    def descriptor(self) -> dict[str, Any]:
        """An OCI content descriptor (mediaType, digest, size)."""
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


@dataclass(frozen=True, slots=True, kw_only=True)
class BuiltImage:
    """A built image: the top-level document (index or manifest) and everything it refers to.

    ``top`` is what a tag points at (its digest is the image's digest); ``manifests`` are the
    per-platform manifests an index refers to (empty for a single-platform image, whose ``top``
    is the manifest); ``blobs`` are the configs and layers, each once, sorted by digest;
    ``platforms`` maps ``os/arch[/variant]`` to the platform's manifest digest.
    """

    spec: ImageSpec
    top: Blob
    manifests: tuple[Blob, ...]
    blobs: tuple[Blob, ...]
    platforms: Mapping[str, Digest]

    @property
    def digest(self) -> Digest:
        return self.top.digest

    @property
    def media_type(self) -> str:
        return self.top.media_type

    @property
    def reference(self) -> ImageRef:
        """``registry/repository:tag@digest``: the reference that pins this image."""
        return self.spec.ref.with_digest(self.digest)


@dataclass(frozen=True, slots=True, kw_only=True)
class PushReport:
    """What :func:`push_image` did: blobs uploaded and blobs the registry already had."""

    reference: str
    digest: Digest
    uploaded: tuple[Digest, ...]
    skipped: tuple[Digest, ...]


# ------------------------------------------------------------------------------------------------
# images.yaml


def load_image_specs(path: Path, *, display: str | None = None) -> tuple[ImageSpec, ...]:
    """Read an ``ImageSet`` document: one :class:`ImageSpec` per (repository, tag), in file order.

    Every repository must lie under ``spec.prefix`` (``localhost:5001/recipe-lab``); platforms
    default to ``spec.platforms``. Unknown keys, wrong types, malformed references, tags or
    platforms, and a (repository, tag) listed twice are refused with the file and line.
    """
    shown = display or (IMAGES_FILE if path.name == IMAGES_FILE else str(path))
    hint = f"{IMAGES_FILE} holds one {IMAGE_SET_KIND} document (kind: {IMAGE_SET_KIND})"
    doc = check_header(load_file(path, display=shown), kind=IMAGE_SET_KIND,
                       api_versions=(IMAGE_SET_API_VERSION,), path=shown, hint=hint)
    check_keys(doc, ("apiVersion", "kind", "spec"), what=IMAGES_FILE, path=shown)
    spec = expect_mapping(doc.get("spec"), what=f"{IMAGES_FILE} spec", path=shown, line=line_of(doc, "spec"),
                          hint=f"spec is a mapping of {', '.join(_SPEC_KEYS)}")
    check_keys(spec, _SPEC_KEYS, what=f"{IMAGES_FILE} spec", path=shown)
    prefix = _prefix(spec, path=shown)
    defaults = _platforms(spec, "platforms", what=f"{IMAGES_FILE} spec", path=shown, default=())
    images = spec.get("images")
    if not isinstance(images, list) or not images:
        raise RecipeError(f"spec.images must be a non-empty list, not {_shown_type(images)}", path=shown,
                          line=line_of(spec, "images") or line_of(spec),
                          hint="list the images under 'images:' as '- repository: ...' items")
    out: list[ImageSpec] = []
    seen: dict[str, int | None] = {}
    for index, item in enumerate(images):
        what = f"spec.images[{index}]"
        node = expect_mapping(item, what=what, path=shown, line=line_of(spec, "images"),
                              hint="each image is a mapping of " + ", ".join(_IMAGE_KEYS))
        check_keys(node, _IMAGE_KEYS, what=what, path=shown)
        ref = _repository(node, prefix=prefix, what=what, path=shown)
        platforms = _platforms(node, "platforms", what=what, path=shown, default=defaults)
        if not platforms:
            raise RecipeError(f"{what}: no platforms (and spec.platforms gives no default)", path=shown,
                              line=line_of(node), hint="add 'platforms: [linux/amd64, linux/arm64/v8]'")
        files = _files(node, what=what, path=shown)
        for tag in _tags(node, what=what, path=shown):
            key = f"{ref.name}:{tag}"
            if key in seen:
                raise RecipeError(f"{what}: image {key!r} is listed twice (first at line {seen[key]})",
                                  path=shown, line=line_of(node, "tags"), hint="list each tag once")
            seen[key] = line_of(node, "tags")
            tagged = ImageRef(registry=ref.registry, repository=ref.repository, tag=tag)
            out.append(ImageSpec(ref=tagged, platforms=platforms, files=files))
    return tuple(out)


def _shown_type(value: Any) -> str:
    return "missing" if value is None else f"a {type_name(value)}"


def _prefix(spec: YamlMap, *, path: str) -> str:
    value = spec.get("prefix")
    if not isinstance(value, str) or not value.strip("/"):
        raise RecipeError(f"spec.prefix must be a registry/namespace string, not {_shown_type(value)}", path=path,
                          line=line_of(spec, "prefix") or line_of(spec),
                          hint="set 'prefix: localhost:5001/recipe-lab' (every repository lies under it)")
    try:
        ref = ImageRef.parse(value.rstrip("/") + "/x")
    except ImageRefError as exc:
        raise RecipeError(f"spec.prefix {value!r} is not a registry name with a path: {exc}", path=path,
                          line=line_of(spec, "prefix"), hint="write it as host:port/namespace") from exc
    if not value.startswith(ref.registry + "/"):
        raise RecipeError(f"spec.prefix {value!r} does not start with a registry host", path=path,
                          line=line_of(spec, "prefix"), hint="write it as host:port/namespace, e.g. localhost:5001/x")
    return value.rstrip("/")


def _repository(node: YamlMap, *, prefix: str, what: str, path: str) -> ImageRef:
    value = node.get("repository")
    line = line_of(node, "repository") or line_of(node)
    if not isinstance(value, str) or not value:
        raise RecipeError(f"{what}: 'repository' must be a string, not {_shown_type(value)}", path=path, line=line,
                          hint=f"write 'repository: {prefix}/<name>'")
    try:
        ref = ImageRef.parse(value)
    except ImageRefError as exc:
        raise RecipeError(f"{what}: {exc}", path=path, line=line, hint=f"write 'repository: {prefix}/<name>'") from exc
    if ref.tag is not None or ref.digest is not None:
        raise RecipeError(f"{what}: repository {value!r} carries a tag or digest", path=path, line=line,
                          hint="write the repository alone and list its tags under 'tags:'")
    if not ref.name.startswith(prefix + "/") or value != ref.name:
        raise RecipeError(f"{what}: repository {value!r} is not under {prefix!r}", path=path, line=line,
                          hint=f"the catalog's own images live under {prefix}/ (spec.prefix)")
    return ref


def _tags(node: YamlMap, *, what: str, path: str) -> tuple[str, ...]:
    value = node.get("tags")
    line = line_of(node, "tags") or line_of(node)
    if not isinstance(value, list) or not value:
        raise RecipeError(f"{what}: 'tags' must be a non-empty list, not {_shown_type(value)}", path=path, line=line,
                          hint="write 'tags: [\"1.0\"]'")
    tags: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise RecipeError(f"{what}: tag {item!r} must be a string, not a {type_name(item)}", path=path,
                              line=line, hint=f"quote it: \"{item}\"")
        if not _TAG.match(item):
            raise RecipeError(f"{what}: {item!r} is not a valid tag", path=path, line=line,
                              hint="a tag is 1-128 characters of letters, digits, '_', '.' and '-', not starting "
                                   "with '.' or '-'")
        if item in tags:
            raise RecipeError(f"{what}: tag {item!r} is listed twice", path=path, line=line,
                              hint="list each tag once")
        tags.append(item)
    return tuple(tags)


def _platforms(node: YamlMap, key: str, *, what: str, path: str,
               default: tuple[Platform, ...]) -> tuple[Platform, ...]:
    value = node.get(key)
    if value is None:
        return default
    line = line_of(node, key)
    if not isinstance(value, list) or not value:
        raise RecipeError(f"{what}: '{key}' must be a non-empty list, not {_shown_type(value)}", path=path, line=line,
                          hint="write 'platforms: [linux/amd64, linux/arm64/v8]'")
    out: list[Platform] = []
    for item in value:
        try:
            platform = Platform.parse(item if isinstance(item, str) else repr(item))
        except ValueError as exc:
            raise RecipeError(f"{what}: {exc}", path=path, line=line,
                              hint="write platforms as os/architecture[/variant], e.g. linux/arm64/v8") from exc
        if platform in out:
            raise RecipeError(f"{what}: platform '{platform}' is listed twice", path=path, line=line,
                              hint="list each platform once")
        out.append(platform)
    return tuple(out)


def _files(node: YamlMap, *, what: str, path: str) -> tuple[ImageFile, ...]:
    value = node.get("files")
    if not isinstance(value, list) or not value:
        raise RecipeError(f"{what}: 'files' must be a non-empty list, not {_shown_type(value)}", path=path,
                          line=line_of(node, "files") or line_of(node),
                          hint="add 'files: [{path: /etc/recipe-lab/<name>, content: \"...\\n\"}]'")
    out: list[ImageFile] = []
    for index, item in enumerate(value):
        where = f"{what}.files[{index}]"
        entry = expect_mapping(item, what=where, path=path, line=line_of(node, "files"),
                               hint="each file is a mapping of path, content and optionally mode")
        check_keys(entry, _FILE_KEYS, what=where, path=path)
        file_path, content, mode = entry.get("path"), entry.get("content"), entry.get("mode", _FILE_MODE)
        if not isinstance(file_path, str) or not isinstance(content, str):
            bad = "path" if not isinstance(file_path, str) else "content"
            raise RecipeError(f"{where}: '{bad}' must be a string, not {_shown_type(entry.get(bad))}", path=path,
                              line=line_of(entry, bad) or line_of(entry), hint="quote the value")
        if not isinstance(mode, int) or isinstance(mode, bool):
            raise RecipeError(f"{where}: 'mode' must be an octal number such as 0644, not {mode!r}", path=path,
                              line=line_of(entry, "mode"), hint="write 'mode: 0644' (YAML reads a leading 0 as octal)")
        try:
            out.append(ImageFile(path=file_path.removeprefix("/"), content=content.encode(), mode=mode))
        except ValueError as exc:
            raise RecipeError(f"{where}: {exc}", path=path, line=line_of(entry, "path"),
                              hint="write an absolute path inside the image, e.g. /etc/recipe-lab/<name>") from exc
    return tuple(out)


# ------------------------------------------------------------------------------------------------
# build


def build_image(spec: ImageSpec) -> BuiltImage:
    """Build ``spec`` as OCI blobs; the same spec gives the same bytes everywhere."""
    layer_tar = _layer_tar(spec.files)
    layer = Blob(media_type=OCI_LAYER_GZIP, data=gzip_stored(layer_tar))
    diff_id = sha256(layer_tar)
    manifests: list[tuple[Platform, Blob]] = []
    blobs: dict[Digest, Blob] = {layer.digest: layer}
    for platform in spec.platforms:
        config = Blob(media_type=OCI_CONFIG, data=canonical_json(_config(spec, platform, diff_id)))
        blobs[config.digest] = config
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config.descriptor(),
            "layers": [layer.descriptor()],
        }
        manifests.append((platform, Blob(media_type=OCI_MANIFEST, data=canonical_json(manifest))))
    platforms = {str(p): m.digest for p, m in manifests}
    sorted_blobs = tuple(blobs[d] for d in sorted(blobs))
    if len(manifests) == 1:
        return BuiltImage(spec=spec, top=manifests[0][1], manifests=(), blobs=sorted_blobs, platforms=platforms)
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{**m.descriptor(), "platform": p.descriptor()} for p, m in manifests],
    }
    return BuiltImage(spec=spec, top=Blob(media_type=OCI_INDEX, data=canonical_json(index)),
                      manifests=tuple(m for _, m in manifests), blobs=sorted_blobs, platforms=platforms)


def _config(spec: ImageSpec, platform: Platform, diff_id: Digest) -> dict[str, Any]:
    config: dict[str, Any] = {
        "architecture": platform.architecture,
        "os": platform.os,
        "created": CREATED,
        "config": {"Labels": {
            "org.opencontainers.image.title": spec.title,
            "org.opencontainers.image.version": spec.tag,
        }},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": CREATED, "created_by": "recipe-lab image builder: "
                     + " ".join("/" + f.path for f in sorted(spec.files, key=lambda f: f.path))}],
    }
    if platform.variant:
        config["variant"] = platform.variant
    return config


def _layer_tar(files: Iterable[ImageFile]) -> bytes:
    """A USTAR archive of ``files`` and their parent directories, sorted, with fixed metadata."""
    entries: dict[str, ImageFile | None] = {}
    for file in files:
        for parent in PurePosixPath(file.path).parents:
            if str(parent) != ".":
                entries.setdefault(str(parent), None)
        entries[file.path] = file
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(entries):
            item = entries[name]
            info = tarfile.TarInfo(name)
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if item is None:
                info.type = tarfile.DIRTYPE
                info.mode = _DIR_MODE
                tar.addfile(info)
            else:
                info.type = tarfile.REGTYPE
                info.mode = item.mode
                info.size = len(item.content)
                tar.addfile(info, io.BytesIO(item.content))
    return buf.getvalue()


def gzip_stored(data: bytes) -> bytes:
    """RFC 1952 gzip of ``data`` with stored (uncompressed) deflate blocks: mtime 0, no name, OS 255.

    Written by hand rather than with :mod:`gzip`: compressed deflate output depends on the zlib
    build (zlib-ng and zlib differ), stored blocks do not, so these bytes are the same everywhere.
    """
    out = bytearray(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff")
    chunks = [data[i:i + _STORED_BLOCK] for i in range(0, len(data), _STORED_BLOCK)] or [b""]
    for number, chunk in enumerate(chunks):
        final = 1 if number == len(chunks) - 1 else 0
        out += struct.pack("<BHH", final, len(chunk), len(chunk) ^ 0xFFFF) + chunk
    out += struct.pack("<II", zlib.crc32(data) & 0xFFFFFFFF, len(data) & 0xFFFFFFFF)
    return bytes(out)


# ------------------------------------------------------------------------------------------------
# push


def push_image(built: BuiltImage, registry_url: str, *, client: httpx.Client | None = None) -> PushReport:
    """Push ``built`` to the registry at ``registry_url`` (``http://127.0.0.1:5001``) under its tag.

    Blobs first (``HEAD`` to skip what the registry has, else ``POST`` an upload and ``PUT`` it
    with its digest), then each platform manifest by digest, then the index (or the single
    manifest) by tag. Every digest the registry reports must equal ours. The repository path is
    the spec's (``recipe-lab/<name>``); the registry host in the spec is not contacted.
    """
    return push_blobs(built.spec.ref, top=built.top, manifests=built.manifests, blobs=built.blobs,
                      registry_url=registry_url, client=client)


def push_blobs(ref: ImageRef, *, top: Blob, manifests: Iterable[Blob], blobs: Iterable[Blob], registry_url: str,
               client: httpx.Client | None = None) -> PushReport:
    """Push an image given as blobs under ``ref``'s repository and tag (see :func:`push_image`)."""
    if ref.tag is None:
        raise ValueError(f"image {ref} has no tag to push under")
    own = client is None
    http = client if client is not None else httpx.Client(timeout=_TIMEOUT, trust_env=False)
    push = _Push(http=http, base=registry_url.rstrip("/"), ref=ref)
    uploaded: list[Digest] = []
    skipped: list[Digest] = []
    try:
        for blob in blobs:
            if push.has_blob(blob):
                skipped.append(blob.digest)
            else:
                push.upload_blob(blob)
                uploaded.append(blob.digest)
        for manifest in manifests:
            push.put_manifest(manifest.digest, manifest)
        push.put_manifest(ref.tag, top)
    except httpx.HTTPError as exc:
        raise ResolveError(f"pushing {ref} to {push.base}: {type(exc).__name__}: {exc}",
                           hint="is the registry running? 'python -m lab status'") from exc
    finally:
        if own:
            http.close()
    return PushReport(reference=str(ref.with_digest(top.digest)), digest=top.digest, uploaded=tuple(uploaded),
                      skipped=tuple(skipped))


@dataclass(frozen=True, slots=True, kw_only=True)
class _Push:
    """The distribution API calls of one push: ``base`` is the registry URL, the repository the spec's."""

    http: httpx.Client
    base: str
    ref: ImageRef

    @property
    def api(self) -> str:
        return f"{self.base}/v2/{self.ref.repository}"

    def has_blob(self, blob: Blob) -> bool:
        response = self.http.head(f"{self.api}/blobs/{blob.digest}")
        if response.status_code == 200:
            return True
        if response.status_code == 404:
            return False
        raise self.refused(f"HEAD blob {blob.digest}", response)

    def upload_blob(self, blob: Blob) -> None:
        started = self.http.post(f"{self.api}/blobs/uploads/")
        location = started.headers.get("location")
        if started.status_code != 202 or not location:
            raise self.refused("POST blob upload", started)
        target = httpx.URL(f"{self.api}/blobs/uploads/").join(location)
        done = self.http.put(target.copy_merge_params({"digest": blob.digest}), content=blob.data,
                             headers={"Content-Type": "application/octet-stream"})
        if done.status_code != 201:
            raise self.refused(f"PUT blob {blob.digest}", done)
        self.check_digest(done, blob.digest, f"blob {blob.media_type}")

    def put_manifest(self, reference: str, blob: Blob) -> None:
        response = self.http.put(f"{self.api}/manifests/{reference}", content=blob.data,
                                 headers={"Content-Type": blob.media_type})
        if response.status_code != 201:
            raise self.refused(f"PUT manifest {reference}", response)
        self.check_digest(response, blob.digest, blob.media_type)

    def check_digest(self, response: httpx.Response, want: Digest, what: str) -> None:
        got = response.headers.get("docker-content-digest")
        if got != want:
            raise ResolveError(f"pushing {self.ref} to {self.base}: the registry stored the {what} as "
                               f"{got!r}, not as our digest {want}",
                               hint="the registry rewrote the bytes; use a distribution-compatible registry")

    def refused(self, action: str, response: httpx.Response) -> ResolveError:
        body = response.text[:300].strip()
        return ResolveError(f"pushing {self.ref} to {self.base}: {action} answered {response.status_code}"
                            + (f": {body}" if body else ""),
                            hint="check the registry's log; it must accept anonymous pushes on loopback")
