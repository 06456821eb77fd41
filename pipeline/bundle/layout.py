"""The OCI image layout on disk: a directory or a ``.tar`` of one, read and written by digest.

An OCI image layout (image-spec ``image-layout.md``) is ``oci-layout`` (``{"imageLayoutVersion":
"1.0.0"}``), ``index.json`` (an OCI index whose entries are the layout's roots) and
``blobs/sha256/<hex>``, one file per content, deduplicated by construction.

- :class:`LayoutWriter` writes blobs into a directory atomically (temporary sibling, then rename);
  a blob already present is kept only after it is re-hashed (a partial export's leftovers are
  never trusted by name); ``index.json`` and ``oci-layout`` are written last by the caller.
- :func:`pack_tar` turns a finished layout directory into a deterministic tar: entries sorted,
  ``oci-layout`` and ``index.json`` first, mtime 0, uid/gid 0, no user or group names, fixed
  modes, USTAR format, so the same layout gives the same bytes.
- :class:`LayoutReader` reads a layout from a directory or a tar, by path, without extracting;
  a tar member that is not a regular file under a plain relative name is refused.
"""

from __future__ import annotations

import contextlib
import io
import os
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..vocabulary.digest import Digest, is_sha256, sha256
from .interface import BundleError

__all__ = ["INDEX", "LAYOUT_FILE", "LAYOUT_VERSION", "LayoutReader", "LayoutWriter", "blob_path", "pack_tar",
           "partial_dir"]

LAYOUT_FILE = "oci-layout"
INDEX = "index.json"
LAYOUT_VERSION = "1.0.0"
_FIRST = (LAYOUT_FILE, INDEX)


def blob_path(digest: Digest) -> str:
    """``blobs/sha256/<hex>``: where a blob lives inside a layout."""
    algorithm, _, hexpart = digest.partition(":")
    return f"blobs/{algorithm}/{hexpart}"


class LayoutWriter:
    """Blobs written into ``root`` (a directory being built; the caller renames it into place)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.reused = 0
        self.written = 0
        self._checked: set[str] = set()
        (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)

    def has(self, digest: Digest) -> bool:
        """Whether blob ``digest`` is present *and* hashes to its name (a bad leftover is deleted)."""
        if digest in self._checked:
            return True
        path = self.root / blob_path(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return False
        if sha256(data) != digest:
            path.unlink()
            return False
        self._checked.add(digest)
        self.reused += 1
        return True

    def put(self, data: bytes, *, digest: Digest | None = None) -> Digest:
        """Store ``data`` (its sha256 must equal ``digest`` when given) and return its digest."""
        actual = sha256(data)
        if digest is not None and actual != digest:
            raise BundleError(f"blob {digest} to be written hashes to {actual}",
                              hint="the registry served bytes that do not match their digest; do not use it")
        if actual in self._checked:
            return actual
        path = self.root / blob_path(actual)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        Path(name).replace(path)
        self._checked.add(actual)
        self.written += 1
        return actual

    def read(self, digest: Digest) -> bytes:
        """The bytes of a blob :meth:`has` or :meth:`put` vouched for."""
        return (self.root / blob_path(digest)).read_bytes()

    def write_file(self, name: str, data: bytes) -> None:
        """A top-level file (``oci-layout``, ``index.json``), atomically."""
        path = self.root / name
        tmp = path.with_name(f".{name}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)

    def prune(self, keep: set[str]) -> None:
        """Remove blobs (and temporary files) that the finished layout does not reference."""
        for path in sorted((self.root / "blobs" / "sha256").iterdir()):
            if f"sha256:{path.name}" not in keep:
                path.unlink()


def _tarinfo(name: str, *, size: int = 0, directory: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if directory:
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
    else:
        info.size = size
        info.mode = 0o644
    return info


def pack_tar(root: Path, target: Path) -> None:
    """Write the layout at ``root`` as a deterministic tar at ``target`` (atomically)."""
    blobs = sorted(p.name for p in (root / "blobs" / "sha256").iterdir())
    tmp = target.with_name(f".{target.name}.tmp")
    with tmp.open("wb") as raw, tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in _FIRST:
            data = (root / name).read_bytes()
            tar.addfile(_tarinfo(name, size=len(data)), io.BytesIO(data))
        tar.addfile(_tarinfo("blobs/", directory=True))
        tar.addfile(_tarinfo("blobs/sha256/", directory=True))
        for hexpart in blobs:
            path = root / "blobs" / "sha256" / hexpart
            with path.open("rb") as handle:
                tar.addfile(_tarinfo(f"blobs/sha256/{hexpart}", size=path.stat().st_size), handle)
        raw.flush()
        os.fsync(raw.fileno())
    tmp.replace(target)


class LayoutReader(contextlib.AbstractContextManager["LayoutReader"]):
    """A layout read from a directory or a tar (``.tar``), by relative path."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tar: tarfile.TarFile | None = None
        self._members: dict[str, tarfile.TarInfo] = {}
        if not path.exists():
            raise BundleError(f"no bundle at {path}", hint=_missing_hint(path))
        if path.is_file():
            try:
                self._tar = tarfile.open(path, mode="r:")  # noqa: SIM115 - closed by close()
            except (tarfile.TarError, OSError) as exc:
                raise BundleError(f"{path} is not a tar archive ({exc})",
                                  hint="give the bundle directory or the .tar that 'bundle export' wrote") from exc
            for member in self._tar.getmembers():
                name = member.name.removeprefix("./")
                if member.isdir():
                    continue
                if not member.isfile() or name.startswith("/") or ".." in name.split("/"):
                    raise BundleError(f"{path}: tar member {member.name!r} is not a plain file of a layout",
                                      hint="the archive was not written by 'bundle export'; do not use it")
                self._members[name] = member

    def names(self) -> Iterator[str]:
        """Every file of the layout (relative paths), sorted."""
        if self._tar is not None:
            yield from sorted(self._members)
            return
        for path in sorted(self.path.rglob("*")):
            if path.is_file():
                yield path.relative_to(self.path).as_posix()

    def read(self, name: str) -> bytes | None:
        """The bytes of ``name``, or ``None`` when the layout has no such file."""
        if self._tar is not None:
            member = self._members.get(name)
            if member is None:
                return None
            handle = self._tar.extractfile(member)
            return handle.read() if handle is not None else None
        try:
            return (self.path / name).read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            return None

    def blob(self, digest: Digest) -> bytes | None:
        return self.read(blob_path(digest)) if is_sha256(digest) else None

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()

    def __exit__(self, *exc: object) -> None:
        self.close()


def partial_dir(target: Path) -> Path:
    """Where an export to ``target`` is built before it is renamed into place (a sibling, so the
    rename is atomic; a fixed name, so a rerun after an interruption finds and completes it)."""
    return target.parent / f".{target.name}.partial"


def _missing_hint(path: Path) -> str:
    if partial_dir(path).exists():
        return (f"an export to {path} was interrupted (its unfinished copy is {partial_dir(path)}): run "
                "'python -m pipeline bundle export' again to complete it")
    return "give the directory or .tar that 'python -m pipeline bundle export --out' wrote"
