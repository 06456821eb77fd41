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
from collections.abc import Mapping
from pathlib import Path

__all__ = ["tar_gz", "wrapper_chart"]


def wrapper_chart(files: Mapping[str, object], *, chart_name: str,
                  chart_version: str) -> tuple[dict[str, str], dict[str, bytes]]:
    """Template short names → catalog paths, and the chart's fixed members (``Chart.yaml``, ``values.yaml``)."""
    names = {f"m{index:04d}-{Path(path).name}": path for index, path in enumerate(sorted(files))}
    chart_yaml = json.dumps({"apiVersion": "v2", "name": chart_name, "version": chart_version,
                             "type": "application"}).encode()
    return names, {f"{chart_name}/Chart.yaml": chart_yaml, f"{chart_name}/values.yaml": b"{}\n"}


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
