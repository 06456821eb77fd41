"""Resolving 200 distinct tags from a local registry: the pipeline against a sequential skopeo loop.

A fresh ``docker-registry`` on 127.0.0.1 (port chosen by the kernel) is filled with 200 small,
deterministic two-platform images (``lab.images``), each under its own tag. Measured
in the same run on the same registry: the pipeline's concurrent resolver (one HTTP client,
connection reuse, 16 workers), the same resolver with one worker, and ``skopeo inspect`` called
once per tag, sequentially (what a shell script around skopeo does). ``run()`` returns printable
lines and never asserts.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from lab.images import ImageFile, ImageSpec, Platform, build_image, push_image
from lab.registry import start_local_registry
from pipeline.errors import ResolveError
from pipeline.images import ImageRef
from pipeline.registry import RegistryClient, Transport, resolve_all

__all__ = ["run"]

PLATFORMS = (Platform(os="linux", architecture="amd64"), Platform(os="linux", architecture="arm64", variant="v8"))


def _fill(url: str, host: str, count: int) -> list[ImageRef]:
    refs = []
    with httpx.Client(timeout=30.0, trust_env=False) as client:
        for index in range(count):
            ref = ImageRef.parse(f"{host}/bench/app{index % 10}:v{index}")
            spec = ImageSpec(ref=ref, platforms=PLATFORMS,
                             files=(ImageFile(path=f"etc/bench/{index}", content=f"image {index}\n".encode()),))
            push_image(build_image(spec), url, client=client)
            refs.append(ref)
    return refs


def _retag(url: str, host: str, count: int) -> list[ImageRef]:
    """``count`` tags over 10 images (releases re-tag the same bytes): manifests are shared."""
    refs = []
    with httpx.Client(timeout=30.0, trust_env=False) as client:
        built = []
        for index in range(10):
            ref = ImageRef.parse(f"{host}/retag/app{index}:base")
            spec = ImageSpec(ref=ref, platforms=PLATFORMS,
                             files=(ImageFile(path=f"etc/retag/{index}", content=f"retag {index}\n".encode()),))
            built.append(build_image(spec))
            push_image(built[-1], url, client=client)
        for index in range(count):
            image = built[index % 10]
            client.put(f"{url}/v2/retag/app{index % 10}/manifests/t{index}", content=image.top.data,
                       headers={"Content-Type": image.top.media_type}).raise_for_status()
            refs.append(ImageRef.parse(f"{host}/retag/app{index % 10}:t{index}"))
    return refs


def _skopeo(refs: list[ImageRef], home: str) -> float:
    env = {"PATH": "/usr/bin:/bin", "HOME": home}
    skopeo = shutil.which("skopeo") or "skopeo"
    start = time.perf_counter()
    for ref in refs:
        subprocess.run([skopeo, "inspect", "--tls-verify=false", f"docker://{ref}"],
                       capture_output=True, check=True, env=env)
    return time.perf_counter() - start


def _resolve(refs: list[ImageRef], workers: int) -> float:
    with RegistryClient(transport=Transport(error=ResolveError, max_connections=workers)) as client:
        start = time.perf_counter()
        resolved = resolve_all(refs, client=client, max_workers=workers)
        elapsed = time.perf_counter() - start
    assert len(resolved) == len(refs)
    return elapsed


def run(*, count: int = 200, repeat: int = 3) -> list[str]:
    if shutil.which("skopeo") is None or shutil.which("docker-registry") is None:
        return ["## resolve: skipped (needs skopeo and docker-registry: apt-get install skopeo docker-registry)"]
    with tempfile.TemporaryDirectory(prefix="bench-resolve-") as tmp:
        registry = start_local_registry(address="127.0.0.1:0", storage=Path(tmp) / "registry")
        try:
            host = registry.address
            lines: list[str] = []
            for label, refs in (("distinct two-platform images", _fill(f"http://{host}", host, count)),
                                ("tags over 10 two-platform images", _retag(f"http://{host}", host, count))):
                concurrent = statistics.median(_resolve(refs, 16) for _ in range(repeat))
                sequential = statistics.median(_resolve(refs, 1) for _ in range(repeat))
                skopeo = _skopeo(refs, tmp)
                lines += [
                    f"## resolve: {count} tags, {label}, from a local registry (median of {repeat})",
                    f"  baseline: sequential 'skopeo inspect' loop {skopeo:8.3f} s",
                    f"  pipeline resolver, 1 worker               {sequential:8.3f} s   "
                    f"{skopeo / sequential:6.1f} x faster",
                    f"  pipeline resolver, 16 workers             {concurrent:8.3f} s   "
                    f"{skopeo / concurrent:6.1f} x faster",
                ]
        finally:
            registry.stop()
    return lines
