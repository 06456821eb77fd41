"""Local chart source: charts in a catalog-relative directory repository (``./charts``).

Contract:

- input: a :class:`~pipeline.recipes.model.ChartRef` whose ``repository`` is a path relative to the
  catalog root; the chart is either a directory ``<repo>/<name>/`` holding ``Chart.yaml`` (whose
  ``version:`` must equal the pinned version exactly) or an archive ``<repo>/<name>-<version>.tgz``.
  When both carry the pinned version the directory wins: its tree is the truth; when the directory
  carries another version, the archive of the pinned one is used (the repository offers both, as
  :meth:`PathChartSource.versions` lists them);
- output: archive bytes. An archive is returned as stored. A directory is packed by
  :func:`pack_directory` into a **deterministic** archive: the same tree gives the same bytes on
  every machine, whatever the file order on disk, timestamps, owners, umask or walk order;
- errors: :class:`~pipeline.errors.ChartError` for a missing chart, a ``Chart.yaml`` version that
  differs from the pin, an absolute repository path, symbolic links or special files inside a
  chart directory, and malformed ``.helmignore`` rules.

Packing format (the reproduce stage varies ``walk_order`` on purpose and expects equal bytes):
entries under ``<name>/``, directories included, sorted by path; PAX tar; mtime 0, uid/gid 0,
empty uname/gname; mode 0o755 for directories and for files with any execute bit, 0o644 otherwise;
gzip with header mtime 0, no file name, compression level 9.

``.helmignore`` (read from the chart root) follows Helm's own rules (``pkg/ignore``), all of them:
blank lines and ``#`` comments are skipped; leading and trailing spaces are trimmed; patterns are
Go ``filepath.Match`` globs (``*`` and ``?`` never match ``/``, ``[...]`` classes with ``^``
negation, ``\\`` escapes); a pattern without ``/`` is matched against the base name, a pattern
with ``/`` (a leading ``/`` is dropped) against the whole chart-relative path; a trailing ``/``
matches directories only; an ignored directory is skipped entirely; ``!pattern`` ignores every path
that does *not* match (Helm's semantics, not git's); ``**`` is an error, as in Helm. Helm's default
rule ``templates/.?*`` (dotfiles in ``templates/``) is applied after the file's rules.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import stat
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from ..errors import ChartError
from ..recipes.model import ChartRef
from .archive import chart_name_version
from .interface import ChartSource

__all__ = ["GZIP_LEVEL", "PathChartSource", "WalkOrder", "pack_directory"]

WalkOrder = Literal["sorted", "reversed"]

GZIP_LEVEL = 9

_HELMIGNORE = ".helmignore"
_DEFAULT_RULES = ("templates/.?*",)
_VERSIONISH = re.compile(r"^v?[0-9]")

class PathChartSource(ChartSource):
    """Charts from directories and ``.tgz`` files under the catalog root."""

    def __init__(self, catalog: Path, *, walk_order: WalkOrder = "sorted") -> None:
        self._catalog = catalog
        self._walk_order: WalkOrder = walk_order

    def fetch(self, ref: ChartRef) -> bytes:
        repo = self._repo_dir(ref)
        chart_dir = repo / ref.name
        shown = _shown(ref.repository, ref.name)
        archive = repo / f"{ref.name}-{ref.version}.tgz"
        if (chart_dir / "Chart.yaml").is_file():
            found = _chart_yaml_version(chart_dir / "Chart.yaml", f"{shown}/Chart.yaml")
            if found != ref.version and archive.is_file():
                return archive.read_bytes()  # the repository offers the pinned version as an archive
            if found != ref.version:
                raise ChartError(
                    f"chart {ref.name!r}: {shown}/Chart.yaml has version {found!r} but the catalog pins "
                    f"{ref.version!r}",
                    hint="a local chart directory must carry exactly the pinned version: change "
                    f"'version:' in {shown}/Chart.yaml or the pin in the catalog",
                )
            return pack_directory(chart_dir, ref.name, walk_order=self._walk_order)
        if archive.is_file():
            return archive.read_bytes()
        raise ChartError(
            f"chart {ref.name!r} version {ref.version!r} not found in {ref.repository!r}: looked for "
            f"{shown}/Chart.yaml and {_shown(ref.repository, archive.name)}",
            hint="check the chart name and the repository path (relative to the catalog root)",
        )

    def describe(self, ref: ChartRef) -> str:
        """The chart directory (packed here) or the ``.tgz`` file, relative to the catalog root."""
        repo = self._repo_dir(ref)
        if (repo / ref.name / "Chart.yaml").is_file():
            return _shown(ref.repository, f"{ref.name}/")
        return _shown(ref.repository, f"{ref.name}-{ref.version}.tgz")

    def versions(self, ref: ChartRef) -> tuple[str, ...]:
        repo = self._repo_dir(ref)
        found: set[str] = set()
        chart_yaml = repo / ref.name / "Chart.yaml"
        if chart_yaml.is_file():
            found.add(_chart_yaml_version(chart_yaml, _shown(ref.repository, f"{ref.name}/Chart.yaml")))
        prefix = ref.name + "-"
        if repo.is_dir():
            for entry in repo.iterdir():
                stem = entry.name.removesuffix(".tgz")
                if entry.name.endswith(".tgz") and stem.startswith(prefix):
                    version = stem.removeprefix(prefix)
                    if _VERSIONISH.match(version):
                        found.add(version)
        return tuple(sorted(found))

    def _repo_dir(self, ref: ChartRef) -> Path:
        if PurePosixPath(ref.repository).is_absolute() or Path(ref.repository).is_absolute():
            raise ChartError(
                f"chart {ref.name!r}: local repository {ref.repository!r} is an absolute path",
                hint="local chart repositories are relative to the catalog root (e.g. './charts'), "
                "so the lock never holds a machine's paths",
            )
        return self._catalog / ref.repository


def _shown(repository: str, tail: str) -> str:
    return f"{repository.rstrip('/')}/{tail}"


def _chart_yaml_version(path: Path, shown: str) -> str:
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise ChartError(f"cannot read {shown}: {exc.strerror}", hint="check the file's permissions") from exc
    return chart_name_version(content, where=shown)[1]


# --------------------------------------------------------------------------------------------
# deterministic packing


@dataclass(frozen=True, slots=True)
class _Entry:
    path: str  # chart-relative, "/"-separated; "" is the chart root
    is_dir: bool
    executable: bool
    source: Path


def pack_directory(path: Path, name: str, *, walk_order: WalkOrder = "sorted") -> bytes:
    """Pack the chart directory ``path`` into a deterministic ``.tgz`` with entries under ``name/``.

    ``walk_order`` only changes the order in which the filesystem is traversed (the reproduce stage
    varies it on purpose); the bytes returned are identical either way.
    """
    if not path.is_dir():
        raise ChartError(
            f"chart {name!r}: {path.name!r} is not a directory", hint="point at a chart directory"
        )
    rules = _IgnoreRules.load(path, name)
    entries = sorted(_walk(path, name, rules, walk_order), key=lambda e: e.path)
    tar_buf = io.BytesIO()
    with tarfile.open(fileobj=tar_buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            arcname = f"{name}/{entry.path}" if entry.path else name
            info = tarfile.TarInfo(arcname)
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if entry.is_dir:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
                continue
            data = entry.source.read_bytes()
            info.type = tarfile.REGTYPE
            info.mode = 0o755 if entry.executable else 0o644
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    gz_buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=gz_buf, compresslevel=GZIP_LEVEL, mtime=0) as gz:
        gz.write(tar_buf.getvalue())
    return gz_buf.getvalue()


def _walk(root: Path, name: str, rules: _IgnoreRules, walk_order: WalkOrder) -> Iterator[_Entry]:
    yield _Entry(path="", is_dir=True, executable=False, source=root)
    stack: list[tuple[Path, str]] = [(root, "")]
    while stack:
        directory, rel = stack.pop()
        with os.scandir(directory) as scan:
            children = sorted(scan, key=lambda e: e.name, reverse=walk_order == "reversed")
        for child in children:
            child_rel = f"{rel}/{child.name}" if rel else child.name
            st = child.stat(follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                target = str(Path(child.path).readlink())
                raise ChartError(
                    f"chart {name!r}: {child_rel!r} is a symbolic link (to {target!r}); "
                    "links inside a chart directory are refused",
                    hint="replace the link with the file it points to, or list it in .helmignore",
                )
            is_dir = stat.S_ISDIR(st.st_mode)
            if rules.ignores(child_rel, is_dir=is_dir):
                continue
            if is_dir:
                yield _Entry(path=child_rel, is_dir=True, executable=False, source=Path(child.path))
                stack.append((Path(child.path), child_rel))
            elif stat.S_ISREG(st.st_mode):
                executable = bool(st.st_mode & 0o111)
                yield _Entry(path=child_rel, is_dir=False, executable=executable, source=Path(child.path))
            else:
                raise ChartError(
                    f"chart {name!r}: {child_rel!r} is not a regular file (device, FIFO or socket)",
                    hint="remove it from the chart directory, or list it in .helmignore",
                )


# --------------------------------------------------------------------------------------------
# .helmignore, with Helm's semantics (pkg/ignore/rules.go)


@dataclass(frozen=True, slots=True)
class _Rule:
    raw: str
    match: Callable[[str], bool]
    negate: bool
    must_dir: bool


class _IgnoreRules:
    def __init__(self, rules: list[_Rule]) -> None:
        self._rules = rules

    @classmethod
    def load(cls, root: Path, name: str) -> _IgnoreRules:
        lines: list[str] = []
        ignore_file = root / _HELMIGNORE
        if ignore_file.is_file():
            lines = ignore_file.read_text(encoding="utf-8", errors="replace").splitlines()
        rules: list[_Rule] = []
        for number, line in enumerate([*lines, *_DEFAULT_RULES], start=1):
            try:
                rule = _parse_rule(line)
            except ValueError as exc:
                raise ChartError(
                    f"chart {name!r}: .helmignore line {number}: {line.strip()!r}: {exc}",
                    hint="Helm's .helmignore supports Go glob patterns ('*', '?', '[a-z]', '\\\\'), "
                    "a leading '!' or '/', and a trailing '/'; '**' is not supported",
                ) from exc
            if rule is not None:
                rules.append(rule)
        return cls(rules)

    def ignores(self, path: str, *, is_dir: bool) -> bool:
        for rule in self._rules:
            if rule.negate:
                if rule.must_dir and not is_dir:
                    return True
                if not rule.match(path):
                    return True
                continue
            if rule.must_dir and not is_dir:
                continue
            if rule.match(path):
                return True
        return False


def _parse_rule(line: str) -> _Rule | None:
    raw = line.strip()
    if not raw or raw.startswith("#"):
        return None
    if "**" in raw:
        raise ValueError("double-star (**) syntax is not supported")
    _go_glob(raw)  # validate the whole rule, as Helm does
    rule, negate, must_dir = raw, False, False
    if rule.startswith("!"):
        negate, rule = True, rule[1:]
    if rule.endswith("/"):
        must_dir, rule = True, rule[:-1]
    if "/" in rule:
        regex = _go_glob(rule.removeprefix("/"))
        return _Rule(
            raw=raw, match=lambda p: regex.fullmatch(p) is not None, negate=negate, must_dir=must_dir
        )
    regex = _go_glob(rule)
    return _Rule(
        raw=raw,
        match=lambda p: regex.fullmatch(p.rsplit("/", 1)[-1]) is not None,
        negate=negate,
        must_dir=must_dir,
    )


def _go_glob(pattern: str) -> re.Pattern[str]:
    """Translate a Go ``filepath.Match`` pattern to a regex; ``ValueError`` where Go says ErrBadPattern."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "\\":
            i += 1
            if i >= n:
                raise ValueError("syntax error in pattern (trailing backslash)")
            out.append(re.escape(pattern[i]))
        elif char == "[":
            i += 1
            negated = i < n and pattern[i] == "^"
            if negated:
                i += 1
            ranges: list[str] = []
            first = True
            while True:
                if i >= n:
                    raise ValueError("syntax error in pattern (unclosed '[')")
                if pattern[i] == "]" and not first:
                    break
                first = False
                lo, i = _class_char(pattern, i)
                if i < n and pattern[i] == "-":
                    hi, i = _class_char(pattern, i + 1)
                    if hi < lo:
                        raise ValueError(f"syntax error in pattern (range {lo}-{hi} is reversed)")
                    ranges.append(f"{re.escape(lo)}-{re.escape(hi)}")
                else:
                    ranges.append(re.escape(lo))
            out.append(("[^" if negated else "[") + "".join(ranges) + "]")
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def _class_char(pattern: str, i: int) -> tuple[str, int]:
    n = len(pattern)
    if i >= n or pattern[i] in "-]":
        raise ValueError("syntax error in pattern (bad character class)")
    if pattern[i] == "\\":
        i += 1
        if i >= n:
            raise ValueError("syntax error in pattern (trailing backslash)")
    return pattern[i], i + 1
