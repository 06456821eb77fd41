"""``reproduce --backend podman``: a cold run and a second run with nothing changed, against the local backend.

Baseline (same run, same machine, same catalog and committed locks): ``python -m pipeline reproduce``
on the local backend. The podman figures: a cold run (a fresh ``--cache``, so every per-recipe step
runs in its container; the stage image, the base image with the pinned wheels installed, is reused
from the machine's podman store when an earlier run built it, which the line says), then a second
run with nothing changed, served from the step cache (content-addressed: stage image, environment,
command and every input digest). The base image is the one ``lab/base-image.toml`` builds here
(cached under ``~/.cache/recipe-pipeline``), served from a registry on loopback for the run.

Skipped, with the reason, where podman, runc or docker-registry is missing. Never asserts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _timed(argv: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env=env, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"benchmark step failed ({done.returncode}): {' '.join(argv)}\n{done.stdout}\n{done.stderr}")
    return wall, done.stdout


def run() -> list[str]:
    """The figures, as lines for the report."""
    header = "## containers: reproduce on podman (one container per recipe) against the local backend"
    missing = [b for b in ("podman", "runc", "docker-registry") if shutil.which(b) is None]
    if missing:
        return [header, f"  skipped: {', '.join(missing)} not installed "
                "(apt-get install -y podman runc docker-registry)"]
    from lab.base_image import build_base_image, default_cache, load_base_spec, push_base_image
    from lab.registry import start_local_registry

    started = time.perf_counter()
    built = build_base_image(load_base_spec(), cache=default_cache())
    base_seconds = time.perf_counter() - started
    with tempfile.TemporaryDirectory(prefix="bench-containers-") as tmp:
        work = Path(tmp)
        registry = start_local_registry(address="127.0.0.1:0", storage=work / "registry")
        try:
            push_base_image(built, registry.address)
            env = {**os.environ, "RECIPE_PIPELINE_BASE_IMAGE": str(built.reference(registry.address))}
            reproduce = [sys.executable, "-m", "pipeline", "reproduce"]
            from pipeline.backends import load_settings, prepare_wheelhouse

            started = time.perf_counter()
            prepare_wheelhouse(ROOT / "requirements/run.txt", work / "cache-podman", load_settings(ROOT, env))
            wheels = time.perf_counter() - started
            local, _ = _timed([*reproduce, "--cache", str(work / "cache-local")], env)
            cold, _ = _timed([*reproduce, "--backend", "podman", "--cache", str(work / "cache-podman")], env)
            warm, out = _timed([*reproduce, "--backend", "podman", "--cache", str(work / "cache-podman")], env)
        finally:
            registry.stop()
    summary = out.strip().splitlines()[-1]
    return [
        header,
        f"  base image (cached build or debootstrap) {base_seconds:8.3f} s   {built.digest}",
        "  (the stage image, base + pinned wheels, is reused from the podman store when built before)",
        f"  local backend reproduce                 {local:8.3f} s",
        f"  wheelhouse download (pip, once per requirements file) {wheels:8.3f} s",
        f"  podman cold (empty step cache)           {cold:8.3f} s   {cold / local:6.2f} x local",
        f"  podman second run, nothing changed       {warm:8.3f} s   {warm / local:6.2f} x local, "
        f"{warm / cold:6.3f} x cold",
        f"  second run reported: {summary}",
    ]
