"""The container backends' base image, built on this machine from Debian packages, byte for byte.

Input: ``lab/base-image.toml`` (:class:`BaseImageSpec`): the Debian suite, debootstrap variant, the
packages to include, and the complete installed package set pinned by version; the Debian mirror of
this machine's apt sources (or ``--mirror``).

Output: :func:`build_base_image` runs ``debootstrap`` into a staging directory, checks the installed
package set against the pins, normalises the tree (:func:`normalise_rootfs`: no apt lists or
downloaded packages, no logs, no byte-code caches, no clock-dependent fields, no host files such as
``resolv.conf``), and packs it as one OCI layer (:func:`pack_rootfs`: sorted entries, mtime 0, no
user or group names, stored gzip) with a canonical-JSON config and manifest. The three blobs are
cached under ``<cache>/base-image/<key>/`` (``key`` derives from the spec), so a machine builds the
image once; :func:`push_base_image` uploads them to a registry and returns the reference pinned by
digest, which is the same on every machine that builds the same package set.

Errors: :class:`BaseImageError` (a :class:`~pipeline.errors.PipelineError`, exit 2) for a missing
``debootstrap``, a failed bootstrap (with its log tail), a package set that differs from the pins
(naming the packages), or an unreadable spec.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import stat
import subprocess
import tarfile
import tempfile
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import PipelineError
from pipeline.vocabulary.digest import Digest, canonical_json, sha256
from pipeline.vocabulary.media_types import OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST
from pipeline.vocabulary.reference import ImageRef

from .images import CREATED, Blob, PushReport, gzip_stored, push_blobs

__all__ = [
    "BASE_IMAGE_SPEC",
    "BaseImage",
    "BaseImageError",
    "BaseImageSpec",
    "build_base_image",
    "default_cache",
    "load_base_spec",
    "normalise_rootfs",
    "pack_rootfs",
    "push_base_image",
]

BASE_IMAGE_SPEC = Path(__file__).resolve().parent / "base-image.toml"
_DEBOOTSTRAP = "debootstrap"
_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_APT_SOURCES = (Path("/etc/apt/sources.list.d"), Path("/etc/apt/sources.list"))
_CONFIG_ENV = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8")
#: Paths (relative to the root) removed from the tree: caches, logs, host files, mirror names.
_REMOVE = (
    "etc/apt/sources.list", "etc/hostname", "etc/resolv.conf", "etc/machine-id",
    "etc/group-", "etc/gshadow-", "etc/passwd-", "etc/shadow-",
    "usr/lib/python3.11/EXTERNALLY-MANAGED",  # the image exists to receive pinned wheels with pip
    "var/cache/ldconfig/aux-cache", "var/lib/dpkg/available",
)
#: Directories whose contents are removed (the directories stay).
_EMPTY = ("dev", "proc", "sys", "run", "tmp", "var/log", "var/tmp", "var/cache/apt", "var/lib/apt/lists")
_OLD = re.compile(r"-old$")


class BaseImageError(PipelineError):
    """The base image could not be built (exit 2)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BaseImageSpec:
    """What ``lab/base-image.toml`` says: how to bootstrap the root filesystem and what it must hold."""

    repository: str
    tag: str
    suite: str
    variant: str
    architecture: str
    include: tuple[str, ...]
    packages: Mapping[str, str]

    def __post_init__(self) -> None:
        if not self.packages or not all(p in self.packages for p in self.include):
            raise ValueError("every included package must be among the pinned [packages]")

    @property
    def key(self) -> str:
        """Content key of the build: a different spec never reuses another's cached blobs."""
        body = {"repository": self.repository, "tag": self.tag, "suite": self.suite, "variant": self.variant,
                "architecture": self.architecture, "include": list(self.include), "packages": dict(self.packages)}
        return sha256(canonical_json(body)).removeprefix("sha256:")[:32]


@dataclass(frozen=True, slots=True, kw_only=True)
class BaseImage:
    """The built image: its layer, config and manifest blobs (the manifest's digest is the image's)."""

    spec: BaseImageSpec
    layer: Blob
    config: Blob
    manifest: Blob

    @property
    def digest(self) -> Digest:
        return self.manifest.digest

    def reference(self, registry: str) -> ImageRef:
        """``<registry>/<repository>:<tag>@sha256:…``."""
        return ImageRef.parse(f"{registry}/{self.spec.repository}:{self.spec.tag}@{self.digest}")


def load_base_spec(path: Path = BASE_IMAGE_SPEC) -> BaseImageSpec:
    """Read and validate ``lab/base-image.toml``."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
        return BaseImageSpec(
            repository=str(document["repository"]), tag=str(document["tag"]), suite=str(document["suite"]),
            variant=str(document["variant"]), architecture=str(document["architecture"]),
            include=tuple(str(p) for p in document["include"]),
            packages={str(k): str(v) for k, v in sorted(document["packages"].items())},
        )
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BaseImageError(f"cannot read the base image spec {path}: {exc}",
                             hint="restore lab/base-image.toml from git") from exc


def default_cache() -> Path:
    """The machine-wide cache (``$XDG_CACHE_HOME`` or ``~/.cache``, then ``recipe-pipeline``)."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "recipe-pipeline"


def debian_mirror(sources: tuple[Path, ...] = _APT_SOURCES) -> str:
    """The first Debian mirror URL in this machine's apt sources (deb822 ``URIs:`` or one-line ``deb``)."""
    files: list[Path] = []
    for source in sources:
        if source.is_dir():
            files += sorted(source.glob("*.sources")) + sorted(source.glob("*.list"))
        elif source.is_file():
            files.append(source)
    for file in files:
        for line in file.read_text(encoding="utf-8", errors="replace").splitlines():
            words = line.split("#", 1)[0].split()
            url = words[1] if words[:1] == ["URIs:"] and len(words) > 1 else (
                words[1] if words[:1] == ["deb"] and len(words) > 2 else "")
            if url.startswith("http") and not url.rstrip("/").endswith("-security"):
                return url
    raise BaseImageError("no Debian mirror found in this machine's apt sources",
                         hint="pass one with --mirror URL")


def build_base_image(spec: BaseImageSpec, *, cache: Path, mirror: str | None = None) -> BaseImage:
    """The base image of ``spec``: from ``cache`` when built before, else bootstrapped, checked and packed."""
    target = cache / "base-image" / spec.key
    names = ("layer.tar.gz", "config.json", "manifest.json")
    if all((target / n).is_file() for n in names):
        layer, config, manifest = ((target / n).read_bytes() for n in names)
        built = BaseImage(spec=spec, layer=Blob(media_type=OCI_LAYER_GZIP, data=layer),
                          config=Blob(media_type=OCI_CONFIG, data=config),
                          manifest=Blob(media_type=OCI_MANIFEST, data=manifest))
        if json_refers(built):
            return built
    if shutil.which(_DEBOOTSTRAP, path=_PATH) is None:
        raise BaseImageError("debootstrap is not installed; the base image is bootstrapped from Debian packages",
                             hint="apt-get install -y debootstrap")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".build.", dir=target.parent))
    try:
        rootfs = staging / "rootfs"
        _debootstrap(spec, rootfs, mirror or debian_mirror())
        check_packages(spec, rootfs)
        normalise_rootfs(rootfs)
        built = _image(spec, pack_rootfs(rootfs))
        out = staging / "out"
        out.mkdir()
        for name, blob in zip(names, (built.layer, built.config, built.manifest), strict=True):
            (out / name).write_bytes(blob.data)
        if target.exists():
            shutil.rmtree(target)
        out.replace(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return built


def json_refers(built: BaseImage) -> bool:
    """The cached manifest names the cached config and layer (a torn cache is rebuilt)."""
    text = built.manifest.data.decode(errors="replace")
    return built.config.digest in text and built.layer.digest in text


def _debootstrap(spec: BaseImageSpec, rootfs: Path, mirror: str) -> None:
    argv = [_DEBOOTSTRAP, f"--variant={spec.variant}", f"--arch={spec.architecture}",
            f"--include={','.join(spec.include)}", spec.suite, str(rootfs), mirror]
    env = {"PATH": _PATH, "LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive", "HOME": "/root"}
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False, timeout=1800)
    if done.returncode != 0:
        log = rootfs / "debootstrap" / "debootstrap.log"
        tail = log.read_text(errors="replace")[-1500:] if log.is_file() else done.stderr[-1500:]
        raise BaseImageError(f"{' '.join(argv)} exited with {done.returncode}: {tail.strip()}",
                             hint="debootstrap needs the Debian mirror and root; see the log above")


def installed_packages(rootfs: Path) -> dict[str, str]:
    """Package → version of every installed package, read from ``var/lib/dpkg/status``."""
    text = (rootfs / "var/lib/dpkg/status").read_text(encoding="utf-8")
    out: dict[str, str] = {}
    for block in text.strip().split("\n\n"):
        fields = dict(re.findall(r"^(Package|Version|Status): (.*)$", block, re.MULTILINE))
        if fields.get("Status", "").endswith(" installed"):
            out[fields["Package"]] = fields["Version"]
    return out


def check_packages(spec: BaseImageSpec, rootfs: Path) -> None:
    """Raise unless the bootstrapped package set is exactly the pinned one."""
    have = installed_packages(rootfs)
    want = dict(spec.packages)
    problems = [f"{name} {want[name]} is pinned but {have[name]} was installed"
                for name in sorted(set(want) & set(have)) if want[name] != have[name]]
    problems += [f"{name} {have[name]} was installed but is not pinned" for name in sorted(set(have) - set(want))]
    problems += [f"{name} {want[name]} is pinned but was not installed" for name in sorted(set(want) - set(have))]
    if problems:
        raise BaseImageError(
            f"the bootstrapped package set differs from lab/base-image.toml: {'; '.join(problems[:8])}"
            + (f" (and {len(problems) - 8} more)" if len(problems) > 8 else ""),
            hint="Debian published new versions: review them, update [packages] in lab/base-image.toml, "
            "and commit the change (the image digest changes with it)",
        )


def normalise_rootfs(rootfs: Path) -> None:
    """Remove what differs between two bootstraps of the same packages (see the module docstring)."""
    for rel in _REMOVE:
        (rootfs / rel).unlink(missing_ok=True)
    for rel in _EMPTY:
        directory = rootfs / rel
        if not directory.is_dir():
            continue
        for child in directory.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    for path in sorted(rootfs.rglob("*"), reverse=True):
        if path.name == "__pycache__" and path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif _OLD.search(path.name) and path.parent.name in {"dpkg", "debconf"}:
            path.unlink()
    shadow = rootfs / "etc/shadow"
    if shadow.is_file():  # field 3 is the day of the last password change: the build's clock
        lines = [":".join([*f[:2], "", *f[3:]]) if len(f := line.split(":")) > 3 else line
                 for line in shadow.read_text(encoding="utf-8").splitlines()]
        shadow.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _walk(root: Path) -> Iterator[Path]:
    yield root
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            yield from _walk(path)
        else:
            yield path


def pack_rootfs(rootfs: Path) -> bytes:
    """The tree as an uncompressed tar: sorted, mtime 0, numeric owners only, hard links kept."""
    buf = io.BytesIO()
    seen: dict[tuple[int, int], str] = {}
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for path in _walk(rootfs):
            rel = path.relative_to(rootfs).as_posix()
            name = "." if rel == "." else f"./{rel}"
            st = path.lstat()
            info = tarfile.TarInfo(name)
            info.mode = stat.S_IMODE(st.st_mode)
            info.uid, info.gid, info.mtime = st.st_uid, st.st_gid, 0
            info.uname = info.gname = ""
            if stat.S_ISDIR(st.st_mode):
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif stat.S_ISLNK(st.st_mode):
                info.type, info.linkname = tarfile.SYMTYPE, str(path.readlink())
                tar.addfile(info)
            elif stat.S_ISREG(st.st_mode):
                inode = (st.st_dev, st.st_ino)
                if st.st_nlink > 1 and inode in seen:
                    info.type, info.linkname = tarfile.LNKTYPE, seen[inode]
                    tar.addfile(info)
                    continue
                seen[inode] = name
                info.type, info.size = tarfile.REGTYPE, st.st_size
                with path.open("rb") as data:
                    tar.addfile(info, data)
            # sockets, fifos and device nodes are the runtime's business (/dev is emptied above)
    return buf.getvalue()


def _image(spec: BaseImageSpec, layer_tar: bytes) -> BaseImage:
    layer = Blob(media_type=OCI_LAYER_GZIP, data=gzip_stored(layer_tar))
    config = Blob(media_type=OCI_CONFIG, data=canonical_json({
        "architecture": spec.architecture,
        "os": "linux",
        "created": CREATED,
        "config": {"Env": list(_CONFIG_ENV), "Cmd": ["python3"], "Labels": {
            "org.opencontainers.image.title": spec.repository.rsplit("/", 1)[-1],
            "org.opencontainers.image.version": spec.tag,
        }},
        "rootfs": {"type": "layers", "diff_ids": [sha256(layer_tar)]},
        "history": [{"created": CREATED, "created_by": f"debootstrap --variant={spec.variant} "
                     f"--include={','.join(spec.include)} {spec.suite} (normalised; lab/base_image.py)"}],
    }))
    manifest = Blob(media_type=OCI_MANIFEST, data=canonical_json({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config.descriptor(), "layers": [layer.descriptor()],
    }))
    return BaseImage(spec=spec, layer=layer, config=config, manifest=manifest)


def push_base_image(built: BaseImage, registry: str) -> PushReport:
    """Push ``built`` to the registry at ``registry`` (``127.0.0.1:5001``) under its tag; check every digest."""
    ref = ImageRef.parse(f"{registry}/{built.spec.repository}:{built.spec.tag}")
    return push_blobs(ref, top=built.manifest, manifests=(), blobs=sorted((built.config, built.layer),
                                                                          key=lambda b: b.digest),
                      registry_url=f"http://{registry}")
