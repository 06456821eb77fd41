"""The wrapper chart in-tree manifests render in (upstream AICR's way), built the same for both engines.

Each in-tree file becomes ``templates/mNNNN-<name>`` of a chart named after the component, with no
values of its own (so ``.Values`` is exactly what the caller passes). The archive is deterministic
(sorted PAX entries, mode 0644, gzip mtime 0).
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["WrapperChart", "tar_gz"]


@dataclass(frozen=True, slots=True, kw_only=True)
class WrapperChart:
    """In-tree manifest templates (catalog path → bytes) as the templates of a chart ``name``@``version``."""

    name: str
    version: str
    files: tuple[tuple[str, bytes], ...]

    @classmethod
    def of(cls, files: Mapping[str, bytes], *, name: str, version: str) -> WrapperChart:
        return cls(name=name, version=version, files=tuple(sorted(files.items())))

    @property
    def templates(self) -> dict[str, str]:
        """Template short names (``mNNNN-<file name>``) → catalog paths."""
        return {f"m{index:04d}-{Path(path).name}": path for index, (path, _) in enumerate(self.files)}

    def archive(self, members: Callable[[str, bytes], Mapping[str, bytes]] | None = None) -> bytes:
        """The chart as a deterministic ``.tgz``: ``Chart.yaml``, an empty ``values.yaml``, and for each
        file the ``templates/`` members ``members(short name, bytes)`` gives (default: the file itself)."""
        chart_yaml = json.dumps({"apiVersion": "v2", "name": self.name, "version": self.version,
                                 "type": "application"}).encode()
        out = {f"{self.name}/Chart.yaml": chart_yaml, f"{self.name}/values.yaml": b"{}\n"}
        data = dict(self.files)
        for short, path in self.templates.items():
            made = members(short, data[path]) if members is not None else {short: data[path]}
            out.update({f"{self.name}/templates/{member}": body for member, body in made.items()})
        return tar_gz(out)

    def by_path(self, rendered: Iterable[tuple[str, str]]) -> dict[str, str]:
        """``(template path, text)`` pairs an engine rendered, keyed by catalog path (other templates dropped)."""
        names = self.templates
        out: dict[str, str] = {}
        for key, text in rendered:
            short = key.rsplit("/", 1)[-1]
            if short in names:
                out[names[short]] = text
        return out


def tar_gz(members: Mapping[str, bytes]) -> bytes:
    """A deterministic ``.tgz`` of ``members`` (path → bytes)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(members):
            info = tarfile.TarInfo(name)
            info.size = len(members[name])
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(members[name]))
    return gzip.compress(raw.getvalue(), compresslevel=9, mtime=0)
