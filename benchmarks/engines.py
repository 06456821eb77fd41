"""Render time of our catalog through ``--engine helm-cli`` (the pinned helm binary) against in-process.

Two figures, each the median of ``repeat`` runs, both engines measured in the same run:

* the render loop alone: every distinct component job of ``recipes/`` rendered once with
  :func:`pipeline.render.job.run_job` in one process (in-process engine vs one ``helm template``
  process per chart and per in-tree manifest set);
* the whole ``python -m pipeline lock --no-resolve`` process (compose, fetch, sandboxed workers,
  render, discover, write), with ``--engine helm-cli`` and with the default engine.

Skipped with a note when the pinned helm binary is not built (``nox -s tools``).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_LOOP = textwrap.dedent("""\
    import sys, time
    from pathlib import Path
    sys.path.insert(0, ".")
    from tests.catalog_render import distinct_jobs
    from pipeline.render.job import run_job
    jobs = distinct_jobs(Path("recipes"))
    run_job(next(iter(jobs.values())), sys.argv[1])  # load the engine (or the page cache) once
    start = time.perf_counter()
    for job in jobs.values():
        run_job(job, sys.argv[1])
    print(len(jobs), time.perf_counter() - start)
""")


def _wall(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, check=False, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark step failed ({proc.returncode}): {' '.join(argv)}\n{proc.stderr[-2000:]}")
    return time.perf_counter() - start, proc.stdout


def run(*, repeat: int) -> list[str]:
    import os

    from pipeline.errors import PipelineError
    from pipeline.render.identity import helm_binary

    try:
        helm = helm_binary()
    except PipelineError as exc:
        return ["## render engines: skipped", f"  {exc.message} ({exc.hint})"]
    env = {**os.environ, "PIPELINE_HELM": str(helm), "PIPELINE_TOOLS_DIR": str(helm.parent)}
    loops: dict[str, list[float]] = {}
    count = 0
    for engine in ("helm-python-sdk", "helm-cli"):
        for _ in range(repeat):
            _, out = _wall([sys.executable, "-c", _LOOP, engine], env)
            count, seconds = int(out.split()[0]), float(out.split()[1])
            loops.setdefault(engine, []).append(seconds)
    whole: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-engines-") as tmp:
        for engine in ("helm-python-sdk", "helm-cli"):
            for index in range(repeat):
                common = ["--lockdir", f"{tmp}/{engine}-{index}", "--cache", f"{tmp}/cache-{engine}-{index}"]
                seconds, _ = _wall([sys.executable, "-m", "pipeline", "lock", "--no-resolve", "--engine", engine,
                                    *common], env)
                whole.setdefault(engine, []).append(seconds)
    loop_sdk, loop_cli = statistics.median(loops["helm-python-sdk"]), statistics.median(loops["helm-cli"])
    whole_sdk, whole_cli = statistics.median(whole["helm-python-sdk"]), statistics.median(whole["helm-cli"])
    return [
        f"## render engines, our catalog: {count} distinct component renders (median of {repeat})",
        f"  render loop, in-process engine        {loop_sdk:8.3f} s",
        f"  render loop, helm-cli engine          {loop_cli:8.3f} s",
        f"  ratio helm-cli / in-process (loop)    {loop_cli / loop_sdk:8.2f} x",
        f"  lock --no-resolve, in-process         {whole_sdk:8.3f} s",
        f"  lock --no-resolve, --engine helm-cli  {whole_cli:8.3f} s",
        f"  ratio helm-cli / in-process (lock)    {whole_cli / whole_sdk:8.2f} x",
    ]


if __name__ == "__main__":
    print("\n".join(run(repeat=int(sys.argv[1]) if len(sys.argv) > 1 else 3)))
