"""``python -m pipeline <command>``: parse arguments, call the library, map errors to exit codes.

Exit codes: 0 all good; 1 a gate failed (divergence, stale or tampered lock); 2 bad input or usage;
3 an internal error (a bug: one line, the traceback with ``-v``); 130 interrupted (SIGINT at any
moment, imports included: nothing is written, every write being atomic).
Data goes to stdout; logs go to stderr (``-v`` for more). ``lock`` and ``reproduce`` take
``--backend local|dagger``: the stage runs in-process (default) or in containers (pipeline.backends).
"""

from __future__ import annotations

import os
import signal
import sys


def _interrupted_while_starting(signum: int, frame: object) -> None:
    sys.stderr.write("interrupted; nothing was written\n")
    os._exit(130)


# Until main() runs, SIGINT (during the imports below) exits at once: nothing can have been written.
if __name__ == "__main__":
    signal.signal(signal.SIGINT, _interrupted_while_starting)

import argparse
import contextlib
import json
import logging
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .errors import PipelineError
from .gates import load_exemptions
from .images import explain, format_inventory
from .pin import PinnedRender
from .progress import SILENT, Progress
from .recipes import load_catalog
from .registry import DockerConfig, RegistryClient, docker_config_path
from .stages import (
    CHECKS,
    LockResult,
    ReproduceResult,
    Workspace,
    compose_recipes,
    drift_catalog,
    fresh_locks,
    lock_catalog,
    pinned_recipe,
    post_render,
    qualify_catalog,
    render_recipe,
    reproduce_catalog,
)
from .vocabulary.files import atomic_write, atomic_write_many

log = logging.getLogger("pipeline")


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join(lines)


class _Bars:
    """Progress bars on stderr (rich), one per long step; used only when stderr is a terminal."""

    def __init__(self, bars: Any) -> None:
        self.bars = bars

    def task(self, label: str, total: int) -> Callable[[], None]:
        task_id = self.bars.add_task(label, total=total)
        return lambda: self.bars.advance(task_id)


@contextlib.contextmanager
def _progress() -> Iterator[Progress]:
    """Bars on a terminal; nothing in CI or when stderr is redirected (logs stay line-oriented)."""
    if not sys.stderr.isatty():
        yield SILENT
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as RichProgress

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with RichProgress(*columns, console=Console(stderr=True), transient=True) as bars:
        yield _Bars(bars)


def _workspace(args: argparse.Namespace) -> Workspace:
    return Workspace(catalog=Path(args.catalog), lockdir=Path(args.lockdir), cache=Path(args.cache),
                     workers=args.workers, resolve=not getattr(args, "no_resolve", False))


def cmd_recipes(args: argparse.Namespace) -> int:
    _, recipes = compose_recipes(Path(args.catalog))
    if args.json:
        data = [{"name": r.name, "criteria": r.criteria.as_dict(), "overlays": list(r.overlays),
                 "mixins": list(r.mixins), "components": [c.name for c in r.components]} for r in recipes]
        print(json.dumps(data, indent=2, sort_keys=True))
        return 0
    rows = [[r.name, ",".join(f"{k}={v}" for k, v in r.criteria.as_dict().items()), " → ".join(r.overlays),
             ",".join(r.mixins) or "-", str(len(r.components))] for r in recipes]
    print(_table(["RECIPE", "CRITERIA", "CHAIN", "MIXINS", "COMPONENTS"], rows))
    print(f"\n{len(recipes)} recipes in {args.catalog}")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    if args.pinned:
        return _render_pinned(args)
    built = render_recipe(_workspace(args), args.recipe)
    if args.out:

        out = Path(args.out)
        atomic_write_many({out / name / "stream.yaml": r.stream for name, r in built.renders.items()}
                          | {out / name / path: data for name, r in built.renders.items() for path, data in r.files})
        print(f"wrote {len(built.renders)} components to {out}")
        return 0
    for component in built.recipe.components:
        sys.stdout.write(built.renders[component.name].stream.decode())
    return 0


def _pinned_summary(name: str, pinned: PinnedRender) -> list[str]:
    lines = [f"{name}: {len(pinned.rewritten)} image reference(s) pinned, {len(pinned.unpinned)} left by tag"]
    lines += [f"  left by tag: {u.describe()}" for u in pinned.unpinned]
    return lines


def _render_pinned(args: argparse.Namespace) -> int:
    result = pinned_recipe(_workspace(args), args.recipe)
    summary = [line for name, pinned in result.components for line in _pinned_summary(name, pinned)]
    if args.out:
        out = Path(args.out)
        atomic_write_many({out / name / "stream.yaml": p.render.stream for name, p in result.components}
                          | {out / name / path: data for name, p in result.components for path, data in p.render.files})
        print("\n".join(summary))
        print(f"wrote {len(result.components)} pinned components to {out}")
        return 0
    for _, pinned in result.components:
        sys.stdout.buffer.write(pinned.render.stream)
    sys.stdout.flush()
    print("\n".join(summary), file=sys.stderr)
    return 0


def cmd_post_render(args: argparse.Namespace) -> int:
    pinned = post_render(sys.stdin.buffer.read(), lockfile=Path(args.lock), component=args.component,
                         catalog=Path(args.catalog))
    sys.stdout.buffer.write(pinned.render.stream)
    sys.stdout.flush()
    for line in _pinned_summary(args.component, pinned):
        log.info("%s", line)
    for unpinned in pinned.unpinned:
        log.warning("left by tag: %s", unpinned.describe())
    return 0


def cmd_images(args: argparse.Namespace) -> int:
    built = render_recipe(_workspace(args), args.recipe)
    found = [i for c in built.recipe.components for i in built.images[c.name]]
    if args.why:
        print(explain(found, args.why))
        return 0
    rejected = [r for c in built.recipe.components for r in built.rejected[c.name]]
    print(format_inventory(found, rejected))
    return 0


def cmd_qualify(args: argparse.Namespace) -> int:
    started = time.monotonic()
    with _progress() as progress:
        result = qualify_catalog(_workspace(args), args.recipe or None, progress=progress)
    _print_reproduce(result.reproduce, elapsed=time.monotonic() - started)
    print()
    if result.findings:
        print(f"pinning gates: {len(result.findings)} finding(s)")
        for finding in result.findings:
            print(finding.diagnostics())
    else:
        print("pinning gates: chart versions pinned, in-tree images digest-pinned, locked images have digests")
    ok = result.ok
    if result.reproduce.ok and not args.recipe:
        # The published artifacts are checked against the (now verified) locks.
        for name, check in (("BOMs and inventory", _check_bom), ("provenance matrix", _check_provenance),
                            ("admission policies", _check_policies)):
            problems = check(args)
            print(f"{name}: " + ("ok" if not problems else "FAIL"))
            for problem in problems:
                print(f"  {problem}")
            ok = ok and not problems
    print("qualify: " + ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


def _check_bom(args: argparse.Namespace) -> list[str]:
    from .bom import stale

    try:
        locks = fresh_locks(_workspace(args))
        return stale(locks, bom_dir=Path(args.bom), inventory=Path(args.docs_images),
                     exemptions=load_exemptions(Path(args.catalog)).image_pins)
    except PipelineError as exc:
        return [exc.diagnostics()]


def _check_provenance(args: argparse.Namespace) -> list[str]:
    import tempfile

    from .provenance import check_provenance, provenance

    try:
        locks = fresh_locks(_workspace(args))
        check_provenance(Path(args.catalog), locks)
        document = Path(args.docs_provenance)
        with tempfile.TemporaryDirectory() as tmp:
            expected = provenance(Path(args.catalog), locks, document=Path(tmp) / document.name,
                                  source=None).document.read_bytes()
        if not document.is_file() or document.read_bytes() != expected:
            return [f"{document} does not match the locks and recipes/provenance.yaml: "
                    "run 'nox -s provenance' and commit it"]
    except PipelineError as exc:
        return [exc.diagnostics()]
    return []


def _check_policies(args: argparse.Namespace) -> list[str]:
    from .provenance import check_policies

    schemas: Path | None = Path(args.schemas)
    if not (Path(args.schemas) / "kyverno").is_dir():
        # A clone without ../shared: freshness is still checked; the CRD validation (which the test
        # suite also runs) needs the Kyverno and policy-controller CRDs.
        print(f"  note: CRD schemas not found at {schemas}: policies checked for freshness only "
              "(pass --schemas DIR to validate them against the Kyverno and policy-controller CRDs)")
        schemas = None
    try:
        count = check_policies(Path(args.catalog), fresh_locks(_workspace(args)), out=Path(args.policies),
                               schemas=schemas)
    except PipelineError as exc:
        return [exc.diagnostics()]
    log.info("%d admission policies checked", count)
    return []


def cmd_drift(args: argparse.Namespace) -> int:
    from .drift import format_json, format_markdown

    credentials = DockerConfig.load(docker_config_path(os.environ), required=False)
    report = drift_catalog(_workspace(args), args.recipe or None, credentials=credentials)
    markdown = format_markdown(report)
    if args.json:
        atomic_write(Path(args.json), format_json(report))
    if args.markdown:
        atomic_write(Path(args.markdown), markdown)
    sys.stdout.buffer.write(markdown)
    for item in report.errors:
        log.warning("%s %s could not be checked: %s", item.kind.value, item.reference, item.detail)
    print(f"drift: {len(report.items)} items checked, {len(report.drifted)} drifted, "
          f"{len(report.errors)} could not be checked", file=sys.stderr)
    return 1 if args.fail_on_drift and report.drifted else 0


def cmd_provenance(args: argparse.Namespace) -> int:
    import tempfile

    from .provenance import check_provenance, provenance, require_verified
    from .provenance.registry import RegistryArtifactSource

    catalog, document = Path(args.catalog), Path(args.doc)
    locks = fresh_locks(_workspace(args))
    check_provenance(catalog, locks)
    if not args.verify:
        result = provenance(catalog, locks, document=document, source=None)
        print(f"wrote {result.document}" if result.written else f"unchanged {result.document}")
        return 0
    config = load_catalog(catalog).config.registries
    with RegistryClient(config=config) as client, tempfile.TemporaryDirectory() as tmp:
        result = provenance(catalog, locks, document=Path(tmp) / "matrix.md", source=RegistryArtifactSource(client))
    counts: dict[str, int] = {}
    for item in result.results or ():
        counts[item.signature.status.value] = counts.get(item.signature.status.value, 0) + 1
    print("signatures: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())))
    require_verified(result.results or ())
    return 0


def _print_writes(written: Sequence[Path], unchanged: Sequence[Path], removed: Sequence[Path], *,
                  removed_why: str = "") -> None:
    """One line per file a command wrote, left as it was, or removed."""
    for path in written:
        print(f"wrote     {path}")
    for path in unchanged:
        print(f"unchanged {path}")
    for path in removed:
        print(f"removed   {path}{removed_why}")


def cmd_policies(args: argparse.Namespace) -> int:
    from .provenance import KyvernoApi, policies

    result = policies(Path(args.catalog), fresh_locks(_workspace(args)), out=Path(args.out),
                      kyverno=KyvernoApi(args.kyverno_api))
    _print_writes(result.written, result.unchanged, result.removed)
    return 0


def cmd_bom(args: argparse.Namespace) -> int:
    from .bom import publish, stale

    locks = fresh_locks(_workspace(args))
    exemptions = load_exemptions(Path(args.catalog)).image_pins
    bom_dir, inventory = Path(args.out), Path(args.docs)
    if args.check:
        problems = stale(locks, bom_dir=bom_dir, inventory=inventory, exemptions=exemptions,
                         allow_unpinned=args.allow_unpinned)
        for problem in problems:
            print(problem)
        if problems:
            print("the BOMs or the inventory are stale: run 'nox -s bom' and commit", file=sys.stderr)
            return 1
        print(f"BOMs in {args.out} and {args.docs} match the locks")
        return 0
    published = publish(locks, bom_dir=bom_dir, inventory=inventory, exemptions=exemptions,
                        allow_unpinned=args.allow_unpinned)
    _print_writes(published.written, published.unchanged, published.removed)
    return 0


def cmd_mirror(args: argparse.Namespace) -> int:
    from .bom import MirrorFormat, hosts_toml, locked_recipes, render_mirror_list

    recipes = locked_recipes(fresh_locks(_workspace(args)))
    if args.hosts_toml:

        files = hosts_toml(recipes, args.hosts_toml, allow_unpinned=args.allow_unpinned)
        out = Path(args.out)
        atomic_write_many({out / rel: data for rel, data in files.items()})
        for rel in sorted(files):
            print(f"wrote {out / rel}")
        return 0
    sys.stdout.buffer.write(render_mirror_list(recipes, MirrorFormat(args.format),
                                               allow_unpinned=args.allow_unpinned))
    return 0


def _print_lock(result: LockResult) -> None:
    _print_writes(result.written, result.unchanged, result.removed, removed_why=" (no such recipe any more)")
    print(f"{len(result.recipes)} recipes locked, {result.renders} distinct renders")


def _on_backend(args: argparse.Namespace, stage_name: str) -> int:
    """Run ``lock`` or ``reproduce`` on a non-local backend: relay its report, write its checked outputs."""
    from .backends import Stage, run_on, write_outputs

    stage = Stage(stage_name)
    started = time.monotonic()
    plan, outputs = run_on(args.backend, stage, _workspace(args), recipes=tuple(args.recipe or ()))
    sys.stderr.write(outputs.stderr)
    if stage is Stage.REPRODUCE:
        sys.stdout.write(outputs.stdout)
    else:
        log.info("%s backend: %s", args.backend, outputs.stdout.strip())
        applied = write_outputs(plan, outputs)
        _print_writes(applied.written, applied.unchanged, applied.removed, removed_why=" (no such recipe any more)")
        if outputs.exit_code == 0:
            print(f"{len(plan.outputs.files)} recipes locked on the {args.backend} backend")
    log.info("%s on the %s backend took %.2f s", stage.value, args.backend, time.monotonic() - started)
    return outputs.exit_code


def cmd_lock(args: argparse.Namespace) -> int:
    from ._exclusive import exclusive

    with exclusive(Path(args.cache) / "lock.pid", wait=args.wait, what="lock"):
        return _lock(args)


def _lock(args: argparse.Namespace) -> int:
    if args.backend != "local":
        return _on_backend(args, "lock")

    started = time.monotonic()
    # Credentials for registries come from the user's Docker config (DOCKER_CONFIG or ~/.docker);
    # they are used for requests only and never logged or written (see README, security model).
    credentials = DockerConfig.load(docker_config_path(os.environ), required=False)
    with _progress() as progress:
        result = lock_catalog(_workspace(args), args.recipe or None, credentials=credentials, progress=progress)
    _print_lock(result)
    log.info("lock took %.2f s", time.monotonic() - started)
    return 0


def _print_reproduce(result: ReproduceResult, *, elapsed: float) -> None:
    for name, items in result.variations.items():
        facts = result.sandboxes.get(name, {})
        print(f"variation {name}: " + "; ".join(items) + f"; network {facts.get('network', '?')}")
    short = {"lock integrity": "lock", "engine": "engine", "staleness": "fresh", "A = B": "A=B",
             "render = lock": "=lock", "images = lock": "images"}
    rows = [[o.recipe, str(o.components), str(o.files), str(o.images),
             *[o.checks[c] for c in CHECKS], "PASS" if o.ok else "FAIL"] for o in result.outcomes]
    print()
    print(_table(["RECIPE", "COMP", "FILES", "IMAGES", *[short[c] for c in CHECKS], "RESULT"], rows))
    failed = [o for o in result.outcomes if not o.ok]
    for outcome in failed:
        print()
        for divergence in outcome.divergences:
            print(divergence.format())
    print(f"\n{len(result.outcomes) - len(failed)}/{len(result.outcomes)} recipes reproduced "
          f"({result.renders} distinct renders in {elapsed:.1f} s)")


def cmd_reproduce(args: argparse.Namespace) -> int:
    if args.backend != "local":
        return _on_backend(args, "reproduce")
    started = time.monotonic()
    with _progress() as progress:
        result = reproduce_catalog(_workspace(args), args.recipe or None, progress=progress)
    _print_reproduce(result, elapsed=time.monotonic() - started)
    return 0 if result.ok else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline",
                                     description="Reproducible renders, locks and checks for recipe catalogs.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging on stderr")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--catalog", default="recipes", help="catalog directory (default: recipes)")
    common.add_argument("--lockdir", default="lockfiles", help="lockfile directory (default: lockfiles)")
    common.add_argument("--cache", default=".pipeline-cache", help="chart and render cache (default: .pipeline-cache)")
    common.add_argument("--workers", type=int, default=None, help="render worker processes (default: CPUs)")
    backend = argparse.ArgumentParser(add_help=False)
    backend.add_argument("--backend", choices=("local", "dagger"), default="local",
                         help="where the stage runs: in this process (local, default) or in containers on a "
                         "Dagger engine (dagger; run it under 'dagger run')")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("recipes", parents=[common], help="list the catalog's recipes and their overlay chains")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_recipes)

    p = sub.add_parser("render", parents=[common], help="render one recipe (helm template equivalent)")
    p.add_argument("recipe")
    p.add_argument("--out", help="write files under this directory instead of printing the stream")
    p.add_argument("--pinned", action="store_true",
                   help="write the lock's digests into every image reference (the lock must be fresh); what "
                        "cannot carry a digest is listed with the reason")
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("post-render", help="Helm post-renderer: manifests on stdin, pinned to a lock's digests "
                                           "on stdout")
    p.add_argument("--lock", required=True, metavar="LOCKFILE", help="the recipe's lockfile")
    p.add_argument("--component", required=True, metavar="NAME", help="the component (Helm release) rendered")
    p.add_argument("--catalog", default="recipes",
                   help="catalog with digest-fields.yaml and exemptions.yaml (default: recipes)")
    p.set_defaults(func=cmd_post_render)

    p = sub.add_parser("lock", parents=[common, backend],
                       help="render every recipe, resolve every image, write lockfiles atomically")
    p.add_argument("--recipe", action="append", help="only this recipe (repeatable)")
    p.add_argument("--no-resolve", action="store_true",
                   help="do not ask registries: images keep only the digests their references carry")
    p.add_argument("--wait", action="store_true",
                   help="wait for another lock of this checkout (same --cache) to finish instead of exiting 2")
    p.set_defaults(func=cmd_lock)

    p = sub.add_parser("reproduce", parents=[common, backend],
                       help="render twice under varied sandboxes; compare with each other and the lock")
    p.add_argument("--recipe", action="append", help="only this recipe (repeatable)")
    p.set_defaults(func=cmd_reproduce)

    p = sub.add_parser("bom", parents=[common],
                       help="CycloneDX 1.6 BOMs (per recipe and catalog) and docs/container-images.md from the locks")
    p.add_argument("--out", default="bom", help="BOM directory (default: bom)")
    p.add_argument("--docs", default="docs/container-images.md", help="inventory document")
    p.add_argument("--check", action="store_true", help="only check that the published files match the locks")
    p.add_argument("--allow-unpinned", action="store_true", help="publish images that have no digest")
    p.set_defaults(func=cmd_bom)

    p = sub.add_parser("mirror", parents=[common], help="air-gap mirror list from the locks")
    p.add_argument("action", choices=["list"])
    p.add_argument("--format", choices=["text", "json", "hauler", "zarf"], default="text")
    p.add_argument("--hosts-toml", metavar="MIRROR", help="write containerd hosts.toml files pointing at MIRROR")
    p.add_argument("--out", default="hosts.d", help="directory for --hosts-toml (default: hosts.d)")
    p.add_argument("--allow-unpinned", action="store_true", help="list images that have no digest")
    p.set_defaults(func=cmd_mirror)

    p = sub.add_parser("images", parents=[common], help="the image inventory of one recipe")
    p.add_argument("recipe")
    p.add_argument("--why", metavar="IMAGE", help="every place IMAGE came from, and who chose it")
    p.set_defaults(func=cmd_images)

    p = sub.add_parser("qualify", parents=[common],
                       help="every gate: reproduce, pinning gates, and freshness of BOMs, docs and policies")
    p.add_argument("--recipe", action="append", help="only this recipe (repeatable; skips the freshness checks)")
    p.add_argument("--bom", default="bom", help="BOM directory (default: bom)")
    p.add_argument("--docs-images", default="docs/container-images.md")
    p.add_argument("--docs-provenance", default="docs/provenance-matrix.md")
    p.add_argument("--policies", default="policies", help="admission policy directory (default: policies)")
    p.add_argument("--schemas", default="../shared/schemas", help="CRD schemas to validate policies against")
    p.set_defaults(func=cmd_qualify)

    p = sub.add_parser("drift", parents=[common],
                       help="re-check every locked image tag and chart version against its source")
    p.add_argument("--recipe", action="append", help="only this recipe (repeatable)")
    p.add_argument("--fail-on-drift", action="store_true",
                   help="exit 1 when any item is not unchanged (items that could not be checked included)")
    p.add_argument("--json", metavar="PATH", help="also write the JSON report here")
    p.add_argument("--markdown", metavar="PATH", help="also write the Markdown report here")
    p.set_defaults(func=cmd_drift)

    p = sub.add_parser("provenance", parents=[common],
                       help="docs/provenance-matrix.md from recipes/provenance.yaml and the locks")
    p.add_argument("--doc", default="docs/provenance-matrix.md")
    p.add_argument("--verify", action="store_true",
                   help="check every locked digest's signatures and attestations in its registry (exit 1 on a gap)")
    p.set_defaults(func=cmd_provenance)

    p = sub.add_parser("policies", parents=[common],
                       help="Kyverno and sigstore policy-controller admission policies from the locks")
    p.add_argument("--out", default="policies")
    p.add_argument("--kyverno-api", choices=("imagevalidatingpolicy", "clusterpolicy"), default="imagevalidatingpolicy",
                   help="the digest allow-list as a policies.kyverno.io/v1 ImageValidatingPolicy (default, Kyverno "
                        "1.17+) or a kyverno.io/v1 ClusterPolicy (clusters before 1.17)")
    p.set_defaults(func=cmd_policies)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(message)s", stream=sys.stderr)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        code: int = args.func(args)
    except PipelineError as exc:
        print(f"error: {exc.diagnostics()}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted; nothing was written", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: one line, the traceback only with -v
        detail = " ".join(str(exc).split())[:500]
        print(f"internal error: {type(exc).__name__}: {detail}" if detail else f"internal error: {type(exc).__name__}",
              file=sys.stderr)
        if args.verbose:
            traceback.print_exc(file=sys.stderr)
        else:
            print("hint: run again with -v for the traceback, and report it", file=sys.stderr)
        return 3
    return code


if __name__ == "__main__":
    raise SystemExit(main())
