"""Real upstream Helm charts, fetched from the Go module proxy at recorded versions.

No chart repository outside this machine is reachable, but the Go module proxy is, and several
projects of the real AICR catalog keep their Helm chart in their Go module (NVIDIA's GPU operator,
Kueue, node-feature-discovery). :func:`fetch` runs ``go mod download -json`` for the modules
declared in ``lab/upstream-charts.json`` with its own module cache (``<cache>/gomod``, under the
ignored ``.cache/``), checks that each module's ``h1:`` sum is the recorded one (the go command
computes it from the zip's bytes and checks the checksum database) and that the chart directory
holds the recorded ``Chart.yaml`` version, and returns the chart directories. Nothing is committed
but the declarations.

:func:`catalog_with` copies a catalog and adds these charts as components every recipe uses (chart
defaults as values), so that the pipeline locks, renders and reproduces real charts:
``tests/render/test_upstream_charts.py`` and ``nox -s bench`` use it.

Errors: :class:`UpstreamChartError` with a hint (no ``go`` on PATH, the proxy refused or is
unreachable, a sum or a chart version that is not the recorded one).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = ["DECLARATIONS", "UpstreamChart", "UpstreamChartError", "catalog_with", "declared", "fetch"]

DECLARATIONS = Path(__file__).with_name("upstream-charts.json")


class UpstreamChartError(Exception):
    """An upstream chart could not be fetched or is not the recorded one."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(f"{message} (hint: {hint})")
        self.message = message
        self.hint = hint


@dataclass(frozen=True, slots=True)
class UpstreamChart:
    """One declared chart: the Go module that holds it and where."""

    name: str
    module: str
    version: str
    sum: str
    path: str
    chart_version: str
    namespace: str

    @property
    def spec(self) -> str:
        return f"{self.module}@{self.version}"


def declared(path: Path = DECLARATIONS) -> list[UpstreamChart]:
    """The charts of ``upstream-charts.json``, in name order."""
    charts = json.loads(path.read_text(encoding="utf-8"))["charts"]
    return [UpstreamChart(name=name, module=entry["module"], version=entry["version"], sum=entry["sum"],
                          path=entry["path"], chart_version=entry["chartVersion"], namespace=entry["namespace"])
            for name, entry in sorted(charts.items())]


def _decode_all(text: str) -> list[dict[str, Any]]:
    """``go mod download -json`` prints one JSON object per module, one after the other."""
    decoder = json.JSONDecoder()
    out: list[dict[str, Any]] = []
    index = 0
    while index < len(text):
        if text[index].isspace():
            index += 1
            continue
        value, index = decoder.raw_decode(text, index)
        out.append(value)
    return out


def fetch(cache: Path, charts: list[UpstreamChart] | None = None, *, timeout: float = 600) -> dict[str, Path]:
    """Download the modules (once; later calls read the module cache) and return name → chart directory."""
    charts = declared() if charts is None else charts
    go = shutil.which("go")
    if go is None:
        raise UpstreamChartError("the go command is not on PATH",
                                 "install Go (the machines of this project have it) to fetch upstream charts")
    cache.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOMODCACHE": str((cache / "gomod").resolve()), "GOFLAGS": "-mod=mod",
           "GOTOOLCHAIN": "local"}
    try:
        proc = subprocess.run([go, "mod", "download", "-json", *(chart.spec for chart in charts)],
                              capture_output=True, text=True, cwd=cache, env=env, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise UpstreamChartError(f"go mod download took longer than {timeout:.0f} s",
                                 "check that the Go module proxy ($GOPROXY) answers") from exc
    try:
        answers = {entry.get("Path", ""): entry for entry in _decode_all(proc.stdout)}
    except json.JSONDecodeError as exc:
        raise UpstreamChartError(f"go mod download printed no JSON (exit {proc.returncode}): "
                                 f"{proc.stderr.strip()[-400:]}", "run the command by hand to see why") from exc
    out: dict[str, Path] = {}
    for chart in charts:
        entry = answers.get(chart.module)
        if entry is None or entry.get("Error"):
            why = (entry or {}).get("Error") or proc.stderr.strip()[-400:] or f"exit {proc.returncode}"
            raise UpstreamChartError(f"{chart.spec}: {why}", "check that the Go module proxy ($GOPROXY) answers")
        if entry.get("Sum") != chart.sum:
            raise UpstreamChartError(f"{chart.spec}: the module's sum is {entry.get('Sum')}, not the recorded "
                                     f"{chart.sum}", f"the proxy served other bytes; do not update {DECLARATIONS.name} "
                                     "unless you meant to change the version")
        directory = Path(entry["Dir"]) / chart.path
        meta = directory / "Chart.yaml"
        found = (yaml.safe_load(meta.read_text(encoding="utf-8")) or {}).get("version") if meta.is_file() else None
        if str(found) != chart.chart_version:
            raise UpstreamChartError(f"{chart.spec}: {chart.path}/Chart.yaml has version {found!r}, not the "
                                     f"recorded {chart.chart_version!r}", f"fix 'path' or 'chartVersion' in "
                                     f"{DECLARATIONS.name}")
        out[chart.name] = directory
    return out


def _writable(root: Path) -> None:
    """The module cache is read-only; a copy of it must be editable and removable."""
    for path in [root, *root.rglob("*")]:
        mode = path.lstat().st_mode
        if not stat.S_ISLNK(mode):
            path.chmod(mode | stat.S_IWUSR)


def catalog_with(source: Path, target: Path, charts: dict[str, Path]) -> Path:
    """A copy of ``source`` at ``target`` whose base overlay adds each chart as a component (chart defaults)."""
    shutil.copytree(source, target)
    by_name = {chart.name: chart for chart in declared()}
    registry_path = target / "registry.yaml"
    registry = yaml.safe_load(registry_path.read_text(encoding="utf-8"))
    base_path = target / "overlays" / "base.yaml"
    base = yaml.safe_load(base_path.read_text(encoding="utf-8"))
    for name, directory in sorted(charts.items()):
        chart = by_name[name]
        destination = target / "charts" / directory.name
        shutil.copytree(directory, destination)
        _writable(destination)
        registry["components"].append({
            "name": name, "displayName": f"{name} (upstream {chart.spec})",
            "valueOverrideKeys": [name.replace("-", "")],
            "helm": {"defaultRepository": "./charts", "defaultChart": directory.name,
                     "defaultVersion": chart.chart_version, "defaultNamespace": chart.namespace}})
        base["spec"]["componentRefs"].append({"name": name, "type": "Helm"})
    registry_path.write_text(yaml.safe_dump(registry, sort_keys=False), encoding="utf-8")
    base_path.write_text(yaml.safe_dump(base, sort_keys=False), encoding="utf-8")
    return target
