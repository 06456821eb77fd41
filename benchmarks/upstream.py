"""What real upstream charts cost to render, next to our lab charts, and the relock with them in.

The upstream charts are the ones ``lab/upstream-charts.json`` declares (the GPU operator, Kueue,
node-feature-discovery), fetched from the Go module proxy (:mod:`lab.upstream_charts`). Two parts:

* render cost per chart: each distinct chart job of the catalog with the upstream charts added,
  rendered by :func:`pipeline.render.job.run_job` in one process (engine loaded once), median of
  ``repeat`` renders, with the bytes rendered;
* the relock benchmark (:mod:`benchmarks.relock`) on the scaled catalog with the three upstream
  charts added to every recipe (chart defaults as values, as most AICR overlays leave them).

Skipped with a note when the charts cannot be fetched (no ``go``, no proxy).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_COSTS = textwrap.dedent("""\
    import statistics, sys, time
    from pathlib import Path
    sys.path.insert(0, ".")
    from tests.catalog_render import distinct_jobs
    from pipeline.render.job import run_job
    jobs = distinct_jobs(Path(sys.argv[1]), charts_only=True)
    run_job(next(iter(jobs.values())))  # load the engine once
    rows = {}
    for job in jobs.values():
        times = []
        for _ in range(int(sys.argv[2])):
            start = time.perf_counter()
            out = run_job(job)
            times.append(time.perf_counter() - start)
        rows.setdefault(job.component, []).append((statistics.median(times), len(out.stream)))
    for name, values in sorted(rows.items()):
        ms = statistics.median(t for t, _ in values) * 1000
        size = max(s for _, s in values)
        print(f"{name}\\t{ms:.1f}\\t{size}\\t{len(values)}")
""")


def run(scaled: Path, work: Path, *, repeat: int) -> list[str]:
    sys.path.insert(0, str(ROOT))
    from benchmarks import relock
    from lab.upstream_charts import UpstreamChartError, catalog_with, declared, fetch

    try:
        charts = fetch(ROOT / ".cache" / "upstream-charts")
    except UpstreamChartError as exc:
        return ["## upstream charts: skipped", f"  {exc}"]
    upstream = {chart.name: chart for chart in declared()}
    catalog = catalog_with(ROOT / "recipes", work / "upstream-catalog", charts)
    proc = subprocess.run([sys.executable, "-c", _COSTS, str(catalog), str(max(repeat, 3))], capture_output=True,
                          text=True, cwd=ROOT, check=False, env=relock._ENV)
    if proc.returncode != 0:
        raise SystemExit(f"upstream render costs failed:\n{proc.stdout}\n{proc.stderr}")
    lines = [f"## render cost per chart, in-process engine (median of {max(repeat, 3)}; lab charts and upstream "
             "charts from the Go module proxy)"]
    for row in proc.stdout.strip().splitlines():
        name, ms, size, distinct = row.split("\t")
        origin = f"upstream {upstream[name].spec}" if name in upstream else "lab chart"
        lines.append(f"  {name:24} {float(ms):8.1f} ms   {int(size):>9,} bytes   "
                     f"({distinct} distinct render{'s' if distinct != '1' else ''}; {origin})")
    lines += relock.run("scaled catalog + 3 upstream charts in every recipe",
                        catalog_with(scaled, work / "scaled-upstream", charts), repeat=repeat)
    return lines
