"""Incremental relock: ``lock`` after one values change against a cold ``lock``, in the same run.

Both are whole ``python -m pipeline lock --no-resolve`` processes on the same catalog (image
resolution is left out: it needs the lab registry and is the same work in both). Cold: an empty
cache (charts and renders). Relock: the cache the cold run filled, after one values file changed
(every recipe using that component re-renders it; every other job is a render-cache hit).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _lock(catalog: Path, lockdir: Path, cache: Path) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pipeline", "lock", "--no-resolve", "--catalog", str(catalog),
                           "--lockdir", str(lockdir), "--cache", str(cache)],
                          capture_output=True, text=True, cwd=ROOT, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"lock failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return wall, proc.stdout.strip().splitlines()[-1]


def run(label: str, catalog: Path, *, repeat: int) -> list[str]:
    colds: list[float] = []
    warms: list[float] = []
    summary = ""
    values = catalog / "components" / "dra-driver" / "values.yaml"
    original = values.read_text()
    try:
        for index in range(repeat):
            with tempfile.TemporaryDirectory(prefix="bench-relock-") as tmp:
                work = Path(tmp)
                values.write_text(original)
                cold, _ = _lock(catalog, work / "locks", work / "cache")
                values.write_text(original + f"\nbenchRelock: {index}\n")
                warm, summary = _lock(catalog, work / "locks", work / "cache")
                colds.append(cold)
                warms.append(warm)
    finally:
        values.write_text(original)
    cold, warm = statistics.median(colds), statistics.median(warms)
    return [
        f"## relock after one values change, {label} (median of {repeat})",
        f"  cold lock (empty cache)              {cold:8.3f} s",
        f"  relock (render cache warm)           {warm:8.3f} s   {summary}",
        f"  ratio relock / cold                  {warm / cold:8.2%}   (goal <= 10%)",
    ]
