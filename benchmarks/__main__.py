"""``python -m benchmarks``: reproduce wall time and peak memory against a bare Helm render loop.

Baseline (measured in the same run, on the same machine): a minimal loop in one process that
calls the Helm engine directly, two renders per (recipe, component), nothing else — no sandbox,
no workers, no deduplication, no hashing, no comparison. The pipeline figure is the whole
``python -m pipeline reproduce`` process (compose, fetch, two sandboxed renders, hashing, checks).
Each measurement runs in a fresh child process; peak RSS is the largest resident set of that
process tree. Prints a table; never asserts (speed targets live here, not in unit tests).
"""

from __future__ import annotations

import argparse
import pickle
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_BASELINE = textwrap.dedent("""\
    import pickle, sys, time
    from pipeline.render import engine
    jobs = pickle.load(open(sys.argv[1], "rb"))
    start = time.perf_counter()
    for job in jobs:
        for _ in range(2):
            if job.chart is not None:
                engine.render_chart(job.chart, values=job.values, release=job.release, namespace=job.namespace,
                                    kube_version=job.kube_version, api_versions=job.api_versions, what=job.what)
            if job.manifests or job.pre_manifests:
                engine.render_templates(dict((*job.pre_manifests, *job.manifests)), chart_name=job.component,
                                        chart_version=job.manifest_chart_version, values={job.component: job.values},
                                        release=job.release, namespace=job.namespace,
                                        kube_version=job.kube_version, api_versions=job.api_versions, what=job.what)
    print(time.perf_counter() - start)
""")


def _run(argv: list[str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MiB) of the child tree, and stdout of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"benchmark step failed ({proc.returncode}): {' '.join(argv)}\n{proc.stdout}\n{proc.stderr}")
    peak = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    return wall, peak, proc.stdout


def _scaled_catalog(source: Path, target: Path, copies: int) -> Path:
    """Our catalog plus ``copies`` extra leaf overlays, each with its own values (distinct renders)."""
    shutil.copytree(source, target)
    for index in range(copies):
        (target / "overlays" / f"bench-{index:03d}.yaml").write_text(textwrap.dedent(f"""\
            kind: RecipeMetadata
            apiVersion: aicr.run/v1alpha2
            metadata:
              name: bench-{index:03d}
            spec:
              base: h100-eks-ubuntu-training-kubeflow
              criteria:
                service: eks
                accelerator: h100
                os: ubuntu
                intent: training
                platform: kubeflow
                nodes: "{index + 2}"
              componentRefs:
                - name: accel-operator
                  type: Helm
                  overrides:
                    benchReplica: {index}
                - name: telemetry-exporter
                  type: Helm
                  overrides:
                    benchReplica: {index}
            """))
    return target


def _jobs_file(catalog: Path, work: Path) -> tuple[Path, int, int]:
    from pipeline.build import job_for
    from pipeline.charts import ChartStore, fetch_chart
    from pipeline.stages import compose_recipes

    loaded, recipes = compose_recipes(catalog)
    store = ChartStore(work / "cache" / "charts")
    jobs = []
    for recipe in recipes:
        for component in recipe.components:
            chart = None
            if component.chart is not None:
                chart = fetch_chart(component.chart, catalog=recipe.catalog, store=store,
                                    mirrors=loaded.config.mirrors)
            jobs.append(job_for(recipe, component, chart))
    path = work / "jobs.pickle"
    path.write_bytes(pickle.dumps(jobs))
    return path, len(recipes), len(jobs)


def bench_catalog(label: str, catalog: Path, *, repeat: int) -> list[str]:
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        work = Path(tmp)
        jobs, n_recipes, n_jobs = _jobs_file(catalog, work)
        common = ["--catalog", str(catalog), "--lockdir", str(work / "locks"), "--cache", str(work / "cache")]
        # Reproduce compares renders, not digests: the locks it needs are made without asking registries.
        _run([sys.executable, "-m", "pipeline", "lock", "--no-resolve", *common])
        pipeline_runs = [_run([sys.executable, "-m", "pipeline", "reproduce", *common]) for _ in range(repeat)]
        baseline_runs = [_run([sys.executable, "-c", _BASELINE, str(jobs)]) for _ in range(repeat)]
    p_wall = statistics.median(w for w, _, _ in pipeline_runs)
    p_rss = max(r for _, r, _ in pipeline_runs)
    b_wall = statistics.median(w for w, _, _ in baseline_runs)
    b_loop = statistics.median(float(out.strip()) for _, _, out in baseline_runs)
    b_rss = max(r for _, r, _ in baseline_runs)
    return [
        f"## {label}: {n_recipes} recipes, {n_jobs} component renders x 2 (median of {repeat})",
        f"  baseline bare loop, renders only     {b_loop:8.3f} s",
        f"  baseline process (start+import+loop) {b_wall:8.3f} s   peak RSS {b_rss:7.1f} MiB",
        f"  pipeline reproduce (whole process)   {p_wall:8.3f} s   peak RSS {p_rss:7.1f} MiB (largest process)",
        f"  ratio pipeline / baseline process    {p_wall / b_wall:8.2f} x",
        f"  ratio pipeline / bare loop           {p_wall / b_loop:8.2f} x",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scale", type=int, default=98, help="leaf overlays in the scaled catalog (real AICR: 98)")
    parser.add_argument("--only", choices=("bundle", "upstream"), help="run only this benchmark")
    args = parser.parse_args(argv)
    if args.only == "bundle":
        from benchmarks import bundle

        print("\n".join(bundle.run(repeat=args.repeat)))
        return 0
    if args.only == "upstream":
        from benchmarks import upstream

        with tempfile.TemporaryDirectory(prefix="bench-upstream-") as tmp:
            scaled = _scaled_catalog(ROOT / "recipes", Path(tmp) / "recipes", args.scale)
            print("\n".join(upstream.run(scaled, Path(tmp), repeat=args.repeat)))
        return 0
    catalog = ROOT / "recipes"
    from benchmarks import bom, bundle, containers, discovery, engines, relock, resolve, upstream

    lines = bench_catalog("our catalog", catalog, repeat=args.repeat)
    with tempfile.TemporaryDirectory(prefix="bench-catalog-") as tmp:
        scaled = _scaled_catalog(catalog, Path(tmp) / "recipes", args.scale)
        lines += bench_catalog(f"scaled catalog (+{args.scale} leaves)", scaled, repeat=args.repeat)
        lines += relock.run(f"scaled catalog (+{args.scale} leaves)", scaled, repeat=args.repeat)
        lines += upstream.run(scaled, Path(tmp), repeat=args.repeat)

    lines += engines.run(repeat=args.repeat)
    lines += resolve.run(repeat=args.repeat)
    lines += discovery.run()
    lines += bom.run(repeat=args.repeat)
    lines += bundle.run(repeat=args.repeat)
    lines += containers.run()
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
