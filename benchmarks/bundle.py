"""Air-gap bundle throughput: ``bundle export`` and ``bundle import`` against ``skopeo copy`` of the same images.

A fresh ``docker-registry`` on 127.0.0.1 (kernel-chosen port) is filled with our catalog's images
(:func:`lab.registry.fill_registry`); the committed lockfiles name them as ``localhost:5001/…``,
which the client is told to ask the bench registry for (a mirror with ``skipUpstream``). Measured in
the same run: the export of every locked image (all platforms, with charts, documents and trusted
roots) into an OCI layout directory, against a sequential loop of ``skopeo copy --all
docker://… oci:DIR:REF`` into one layout (skopeo shares blobs within a layout too); and the import
of that bundle into a second empty registry, against ``skopeo copy --all oci:DIR:REF docker://…``
per image. ``run()`` returns printable lines and never asserts.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from lab.registry import fill_registry, start_local_registry
from pipeline.bundle import export_bundle, import_bundle
from pipeline.charts import ChartStore
from pipeline.recipes import load_catalog
from pipeline.registry import Mirror, MirrorSet, Pusher, RegistryClient, RegistryConfig
from pipeline.stages import Workspace, fresh_locks
from pipeline.vocabulary.reference import ImageRef

__all__ = ["run"]

ROOT = Path(__file__).resolve().parents[1]
LAB = "localhost:5001"


def _skopeo(args: list[str], home: str) -> None:
    subprocess.run([shutil.which("skopeo") or "skopeo", *args], capture_output=True, check=True,
                   env={"PATH": "/usr/bin:/bin", "HOME": home})


def _size(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def run(*, repeat: int = 3) -> list[str]:
    if shutil.which("skopeo") is None or shutil.which("docker-registry") is None:
        return ["## bundle: skipped (needs skopeo and docker-registry: apt-get install skopeo docker-registry)"]
    ws = Workspace(catalog=ROOT / "recipes", lockdir=ROOT / "lockfiles", cache=ROOT / ".pipeline-cache")
    locks = fresh_locks(ws)
    refs = sorted({image.ref: image.digest for lock in locks for _, image in lock.images()}.items())
    chart_mirrors = load_catalog(ws.catalog).config.mirrors
    with tempfile.TemporaryDirectory(prefix="bench-bundle-") as tmp:
        work = Path(tmp)
        source = start_local_registry(address="127.0.0.1:0", storage=work / "source")
        target = start_local_registry(address="127.0.0.1:0", storage=work / "target")
        try:
            fill_registry(ROOT / "recipes", source.url)
            config = RegistryConfig(mirrors={LAB: MirrorSet(endpoints=(
                Mirror(scheme="http", host=source.address),), skip_upstream=True)})
            exports, skopeo_exports, imports, skopeo_imports = [], [], [], []
            for attempt in range(repeat):
                out = work / f"bundle-{attempt}"
                with RegistryClient(config=config) as client:
                    start = time.perf_counter()
                    export_bundle(locks, client=client, out=out, catalog=ws.catalog, store=ChartStore(work / "charts"),
                                  chart_mirrors=chart_mirrors)
                    exports.append(time.perf_counter() - start)
                layout = work / f"skopeo-{attempt}"
                start = time.perf_counter()
                for ref, digest in refs:
                    asked = ImageRef.parse(ref).name.replace(LAB, source.address, 1) + f"@{digest}"
                    _skopeo(["copy", "--all", "--preserve-digests", "--src-tls-verify=false", f"docker://{asked}",
                             f"oci:{layout}:{ref}"], tmp)
                skopeo_exports.append(time.perf_counter() - start)
                with RegistryClient(config=RegistryConfig()) as client:
                    start = time.perf_counter()
                    import_bundle(out, pusher=Pusher(client, host=target.address), prefix=f"ours{attempt}")
                    imports.append(time.perf_counter() - start)
                start = time.perf_counter()
                for ref, _ in refs:
                    parsed = ImageRef.parse(ref)
                    name = parsed.name.replace(LAB, f"{target.address}/skopeo{attempt}", 1)
                    destination = f"{name}:{parsed.tag or 'bundle'}"
                    _skopeo(["copy", "--all", "--preserve-digests", "--dest-tls-verify=false", f"oci:{layout}:{ref}",
                             f"docker://{destination}"], tmp)
                skopeo_imports.append(time.perf_counter() - start)
            size = _size(work / "bundle-0" / "blobs")
            entries = len(json.loads((work / "bundle-0" / "index.json").read_text())["manifests"])
        finally:
            source.stop()
            target.stop()
    export, skopeo_export = statistics.median(exports), statistics.median(skopeo_exports)
    imported, skopeo_import = statistics.median(imports), statistics.median(skopeo_imports)
    mib = size / (1024 * 1024)
    return [
        f"## bundle: our catalog's {len(refs)} locked images (two platforms each) + charts + documents, "
        f"{entries} index entries, {mib:.2f} MiB of blobs (median of {repeat})",
        f"  baseline: sequential 'skopeo copy --all' registry -> oci layout {skopeo_export:8.3f} s",
        f"  bundle export (8 workers, verified, atomic)            {export:8.3f} s   "
        f"{mib / export:6.2f} MiB/s   {skopeo_export / export:6.1f} x faster",
        f"  baseline: sequential 'skopeo copy --all' oci layout -> registry {skopeo_import:8.3f} s",
        f"  bundle import (sequential, verified, HEAD-skip)        {imported:8.3f} s   "
        f"{mib / imported:6.2f} MiB/s   {skopeo_import / imported:6.1f} x faster",
    ]
