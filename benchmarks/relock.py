"""Incremental relock: ``lock`` after one values change against a cold ``lock``, in the same run.

Both are whole ``python -m pipeline lock --no-resolve`` processes on the same catalog (image
resolution is left out: it needs the lab registry and is the same work in both). Cold: an empty
cache (charts and renders). Relock: the cache the cold run filled, after one values file changed
(every recipe using that component re-renders it; every other job is a render-cache hit). No
change: the same cache and locks again, nothing edited (every recipe is a lock-cache hit). One
recipe: the values of one leaf overlay changed (the other recipes are lock-cache hits).

Every process runs with Python's bytecode cache on (``PYTHONDONTWRITEBYTECODE`` removed from its
environment), as an installed package or a used checkout has it; a shell that sets the variable
would otherwise compile the whole package from source in every process, a cost users do not pay.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: the environment of every measured process: bytecode cache on, as users have it
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # also when run without nox


def _lock(catalog: Path, lockdir: Path, cache: Path) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pipeline", "lock", "--no-resolve", "--catalog", str(catalog),
                           "--lockdir", str(lockdir), "--cache", str(cache)],
                          capture_output=True, text=True, cwd=ROOT, check=False, env=_ENV)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"lock failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return wall, proc.stdout.strip().splitlines()[-1]


def _floor() -> float:
    """The fixed cost of any ``lock`` process: interpreter start and the CLI's imports."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import pipeline.__main__"], cwd=ROOT, check=True, env=_ENV)
    return time.perf_counter() - start


def run(label: str, catalog: Path, *, repeat: int) -> list[str]:
    colds: list[float] = []
    warms: list[float] = []
    noops: list[float] = []
    ones: list[float] = []
    summary = noop_summary = one_summary = ""
    values = catalog / "components" / "dra-driver" / "values.yaml"
    original = values.read_text()
    leaf = next(iter(sorted((catalog / "overlays").glob("bench-*.yaml"))), None)
    leaf_text = leaf.read_text() if leaf is not None else ""
    _floor()  # writes the bytecode cache once, outside the measurements
    try:
        for index in range(repeat):
            with tempfile.TemporaryDirectory(prefix="bench-relock-") as tmp:
                work = Path(tmp)
                values.write_text(original)
                cold, _ = _lock(catalog, work / "locks", work / "cache")
                values.write_text(original + f"\nbenchRelock: {index}\n")
                warm, summary = _lock(catalog, work / "locks", work / "cache")
                noop, noop_summary = _lock(catalog, work / "locks", work / "cache")
                if leaf is not None:
                    leaf.write_text(leaf_text.replace("benchReplica: ", f"benchReplica: 1{index}", 1))
                    one, one_summary = _lock(catalog, work / "locks", work / "cache")
                    leaf.write_text(leaf_text)
                    ones.append(one)
                colds.append(cold)
                warms.append(warm)
                noops.append(noop)
    finally:
        values.write_text(original)
        if leaf is not None:
            leaf.write_text(leaf_text)
    cold, warm, noop = statistics.median(colds), statistics.median(warms), statistics.median(noops)
    floor = statistics.median(_floor() for _ in range(repeat))
    return [
        f"## relock after one values change, {label} (median of {repeat})",
        f"  cold lock (empty cache)              {cold:8.3f} s",
        f"  relock (render cache warm)           {warm:8.3f} s   {summary}",
        f"  ratio relock / cold                  {warm / cold:8.2%}   (goal <= 10%)",
        f"  process floor (start + imports)      {floor:8.3f} s",
        f"  ratio above the floor                {(warm - floor) / (cold - floor):8.2%}   "
        "(relock - floor) / (cold - floor)",
        f"  relock, nothing changed              {noop:8.3f} s   {noop_summary}",
        f"  ratio no-change relock / cold        {noop / cold:8.2%}",
        *([f"  relock, one leaf overlay changed     {statistics.median(ones):8.3f} s   {one_summary}",
           f"  ratio one-recipe relock / cold       {statistics.median(ones) / cold:8.2%}"] if ones else []),
    ]
