"""Safe inspection of a chart archive, entirely in memory, in one pass.

Contract:

- input: archive bytes (what a source served, or what the store holds) and ``source``, a label
  for messages (a URL without credentials, a catalog-relative path, or ``store``);
- output: :class:`ArchiveInfo`: the chart name and version from ``Chart.yaml``, the sorted member
  file paths, and ``tree``, a content hash that does not depend on how the archive was packed
  (member order, timestamps, owners, modes, tar format, gzip level): it is
  :func:`pipeline.vocabulary.digest.sha256_of_entries` over (path relative to the chart root, file bytes)
  for every regular file;
- guarantees: nothing is written to disk, so inspecting a hostile archive is harmless; an archive
  that passes could be unpacked safely (no member escapes its single top-level directory);
- errors: :class:`~pipeline.errors.ChartError` naming the source and the offending member, for
  archives that are not gzip or not tar, absolute paths, ``..`` components, symbolic and hard
  links (all of them: Helm charts have no use for links), device files, FIFOs, members outside a
  single top-level directory, duplicate members, a missing or unreadable ``Chart.yaml``, and sizes
  beyond the limits below.

Limits (decompression-bomb guards, deliberately far above any real chart; the largest charts in
the wild unpack to a few MiB):

- :data:`MAX_UNPACKED_BYTES` = 200 MiB: the whole decompressed tar stream, checked while
  decompressing, so a bomb is stopped after at most that many bytes;
- :data:`MAX_MEMBERS` = 20 000 tar members.
"""

from __future__ import annotations

import io
import tarfile
import zlib
from dataclasses import dataclass

import yaml

from .._yaml import load_yaml_strings, problem_of
from ..errors import ChartError
from ..vocabulary.digest import Digest, sha256_of_entries

__all__ = [
    "MAX_MEMBERS",
    "MAX_UNPACKED_BYTES",
    "ArchiveInfo",
    "chart_name_version",
    "chart_yaml",
    "inspect_archive",
    "read_archive",
]

MAX_UNPACKED_BYTES = 200 * 1024 * 1024
MAX_MEMBERS = 20_000

_UNSAFE_HINT = (
    "a chart archive must hold regular files and directories under one top-level directory named "
    "after the chart; re-package it with 'helm package' (or the pipeline's packer) and do not use it as is"
)

@dataclass(frozen=True, slots=True, kw_only=True)
class ArchiveInfo:
    """What an archive holds. ``members`` are the regular files' paths (top directory included), sorted."""

    name: str
    version: str
    tree: Digest
    members: tuple[str, ...]


def inspect_archive(data: bytes, *, source: str) -> ArchiveInfo:
    """Check ``data`` is a safe chart archive and describe it (see the module docstring)."""
    return read_archive(data, source=source)[0]


def chart_yaml(data: bytes, *, source: str = "chart archive") -> tuple[str, bytes]:
    """``(chart directory, bytes of its Chart.yaml)`` of the safe chart archive ``data``.

    Only the chart's own (top-level) ``Chart.yaml``: subcharts have theirs. Errors as
    :func:`inspect_archive`.
    """
    info, files = read_archive(data, source=source)
    top = info.members[0].split("/", 1)[0]
    return top, files[f"{top}/Chart.yaml"]


def read_archive(data: bytes, *, source: str) -> tuple[ArchiveInfo, dict[str, bytes]]:
    """:func:`inspect_archive`, and the regular files' bytes by path (top directory included).

    The one reader of chart archives: every check of the module docstring runs before any caller
    sees a byte.
    """
    tar_bytes = _gunzip(data, source)
    try:
        archive = tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:")  # noqa: SIM115 - closed below
    except tarfile.TarError as exc:
        raise ChartError(
            f"chart archive from {source} is gzip but not a tar archive: {exc}",
            hint="a chart archive is a .tgz made by 'helm package'; check what the source serves",
        ) from exc
    top: str | None = None
    files: dict[str, bytes] = {}
    dirs: set[str] = set()
    total = 0
    try:
        with archive:
            for count, member in enumerate(archive, start=1):
                if count > MAX_MEMBERS:
                    raise ChartError(
                        f"chart archive from {source} has more than {MAX_MEMBERS} members",
                        hint="this is far beyond any real chart (a decompression bomb?); do not use it",
                    )
                path = _safe_path(member, source)
                first = path.split("/", 1)[0]
                if top is None:
                    top = first
                elif first != top:
                    raise ChartError(
                        f"chart archive from {source}: member {member.name!r} is outside the archive's "
                        f"top-level directory {top + '/'!r}",
                        hint=_UNSAFE_HINT,
                    )
                if path in files or (path in dirs and not member.isdir()):
                    raise ChartError(
                        f"chart archive from {source}: member {member.name!r} appears twice",
                        hint="a duplicate member makes the content ambiguous; " + _UNSAFE_HINT,
                    )
                if member.isdir():
                    dirs.add(path)
                    continue
                total += member.size
                if total > MAX_UNPACKED_BYTES:
                    raise _too_big(source)
                handle = archive.extractfile(member)
                if handle is None:  # pragma: no cover - regular files always have a payload
                    raise ChartError(f"chart archive from {source}: member {member.name!r} has no payload")
                files[path] = handle.read()
    except tarfile.TarError as exc:
        raise ChartError(
            f"chart archive from {source} is a truncated or corrupt tar stream: {exc}",
            hint="fetch it again; if the error persists the source serves a broken archive",
        ) from exc
    if top is None or not files:
        raise ChartError(f"chart archive from {source} is empty", hint=_UNSAFE_HINT)
    prefix = top + "/"
    chart_yaml = files.get(prefix + "Chart.yaml")
    if chart_yaml is None:
        raise ChartError(
            f"chart archive from {source} has no {prefix}Chart.yaml",
            hint="a chart archive must hold <chart>/Chart.yaml; check the source serves a Helm chart",
        )
    name, version = chart_name_version(chart_yaml, where=f"chart archive from {source}: {prefix}Chart.yaml")
    entries = [(path.removeprefix(prefix), content) for path, content in files.items()]
    info = ArchiveInfo(
        name=name,
        version=version,
        tree=sha256_of_entries(entries),
        members=tuple(sorted(files)),
    )
    return info, files


def _gunzip(data: bytes, source: str) -> bytes:
    """Decompress every gzip member of ``data``, stopping at :data:`MAX_UNPACKED_BYTES`."""
    if data[:2] != b"\x1f\x8b":
        raise ChartError(
            f"chart archive from {source} is not gzip-compressed (starts with {data[:8]!r})",
            hint="a chart archive is a .tgz; the source may have served an HTML error page or a "
            "plain tar: check the URL and what it returns",
        )
    out = bytearray()
    pending = data
    try:
        while pending:
            decomp = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            chunk = pending
            while chunk:
                out += decomp.decompress(chunk, MAX_UNPACKED_BYTES + 1 - len(out))
                if len(out) > MAX_UNPACKED_BYTES:
                    raise _too_big(source)
                chunk = decomp.unconsumed_tail
            if not decomp.eof:
                raise ChartError(
                    f"chart archive from {source} is a truncated gzip stream",
                    hint="fetch it again; if the error persists the source serves a broken archive",
                )
            pending = decomp.unused_data
            if not pending.strip(b"\0"):  # tar writers may pad after the last gzip member
                break
    except zlib.error as exc:
        raise ChartError(
            f"chart archive from {source} is not valid gzip data: {exc}",
            hint="fetch it again; if the error persists the source serves a broken archive",
        ) from exc
    return bytes(out)


def _too_big(source: str) -> ChartError:
    return ChartError(
        f"chart archive from {source} unpacks to more than {MAX_UNPACKED_BYTES // (1024 * 1024)} MiB",
        hint="this is far beyond any real chart (a decompression bomb?); do not use it",
    )


def _safe_path(member: tarfile.TarInfo, source: str) -> str:
    """The member's normalised path, or a ChartError for every unsafe kind of member."""
    raw = member.name
    where = f"chart archive from {source}: member {raw!r}"
    if member.issym() or member.islnk():
        kind = "a symbolic link" if member.issym() else "a hard link"
        raise ChartError(f"{where} is {kind} (to {member.linkname!r}); links are refused", hint=_UNSAFE_HINT)
    if member.ischr() or member.isblk() or member.isfifo():
        raise ChartError(f"{where} is a device file or FIFO", hint=_UNSAFE_HINT)
    if not (member.isreg() or member.isdir()):
        raise ChartError(f"{where} has unsupported tar type {member.type!r}", hint=_UNSAFE_HINT)
    if raw.startswith(("/", "\\")) or (len(raw) > 1 and raw[1] == ":"):
        raise ChartError(f"{where} has an absolute path", hint=_UNSAFE_HINT)
    if "\\" in raw:
        raise ChartError(f"{where} contains a backslash", hint=_UNSAFE_HINT)
    parts = [part for part in raw.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ChartError(f"{where} has a '..' component", hint=_UNSAFE_HINT)
    if not parts:
        raise ChartError(f"{where} has an empty path", hint=_UNSAFE_HINT)
    if len(parts) == 1 and not member.isdir():
        raise ChartError(f"{where} is a file outside any top-level directory", hint=_UNSAFE_HINT)
    return "/".join(parts)


def chart_name_version(content: bytes, *, where: str) -> tuple[str, str]:
    """``(name, version)`` from the bytes of a ``Chart.yaml``; ``where`` names it in messages."""
    hint = "Chart.yaml needs a 'name' and a 'version': fix the chart (or report it to its maintainers)"
    try:
        meta = load_yaml_strings(content)
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        problem, line, limit_hint = problem_of(exc)
        at = f" (line {line})" if line is not None else ""
        raise ChartError(f"{where} is not readable YAML{at}: {problem}", hint=limit_hint or hint) from exc
    if not isinstance(meta, dict):
        raise ChartError(f"{where} is not a mapping", hint=hint)
    name, version = meta.get("name"), meta.get("version")
    if not isinstance(name, str) or not name:
        raise ChartError(f"{where} has no 'name'", hint=hint)
    if not isinstance(version, str) or not version:
        raise ChartError(f"{where} has no 'version'", hint=hint)
    return name, version
