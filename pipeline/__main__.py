"""``python -m pipeline <command>``: parse arguments, call the library, map errors to exit codes.

Exit codes: 0 all good; 1 a gate failed (divergence, stale or tampered lock); 2 bad input or usage;
3 an internal error (a bug: one line, the traceback with ``-v``); 130 interrupted (SIGINT at any
moment, imports included: nothing is written, every write being atomic).
Data goes to stdout; logs go to stderr (``-v`` for more). ``lock`` and ``reproduce`` take
``--backend local|dagger|podman|docker``: the stage runs in-process (default) or in containers (pipeline.backends).
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
import re
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .errors import PipelineError, UsageError
from .gates import load_exemptions
from .images import explain, format_inventory
from .pin import PinnedRender
from .progress import SILENT, Progress
from .recipes import environment_file
from .registry import DockerConfig, docker_config_path
from .render.identity import ENGINE_NAME, ENGINES
from .stages import (
    CHECKS,
    LockResult,
    PublishedPaths,
    ReproduceResult,
    Workspace,
    catalog_charts,
    check_published,
    compose_recipes,
    diff_catalog,
    drift_catalog,
    fresh_locks,
    load_workspace_catalog,
    pinned_recipe,
    post_render,
    qualify_catalog,
    render_recipe,
)
from .vocabulary.files import atomic_write, atomic_write_many

log = logging.getLogger("pipeline")


def _relative(path: str) -> str:
    """``path`` relative to the working directory when below it (``/work/recipes`` in a container whose
    working directory is ``/work`` is ``recipes``, as it is outside)."""
    try:
        return Path(path).resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path


def for_catalog(text: str, args: argparse.Namespace) -> str:
    """``text`` with the nox sessions of this project's own catalog (``nox -s lock``, ``nox -s bom``)
    replaced by the command for the catalog in use, when it is another one."""
    catalog, lockdir = (_relative(getattr(args, "catalog", "recipes")),
                        _relative(getattr(args, "lockdir", "lockfiles")))
    if (catalog, lockdir) == ("recipes", "lockfiles"):
        return text
    where = f"--catalog {catalog}" + (f" --lockdir {lockdir}" if lockdir != "lockfiles" else "")
    for session in ("lock", "bom", "provenance", "policies", "qualify", "reproduce"):
        # nox passes what follows '--' to the session; the pipeline command takes it directly
        text = text.replace(f"nox -s {session} -- ", f"python -m pipeline {session} {where} ")
        text = text.replace(f"'nox -s {session}'", f"'python -m pipeline {session} {where}'")
        text = text.replace(f"nox -s {session}", f"python -m pipeline {session} {where}")
    return text.replace("commit lockfiles/", f"commit {lockdir}/")


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
    engine = getattr(args, "engine", ENGINE_NAME)
    if engine != ENGINE_NAME and getattr(args, "backend", "local") != "local":
        raise UsageError(f"--engine {engine} runs only on the local backend",
                         hint="leave out --backend, or render with the default engine")
    return Workspace(catalog=Path(args.catalog), lockdir=Path(args.lockdir), cache=Path(args.cache),
                     workers=args.workers, engine=engine, resolve=not getattr(args, "no_resolve", False),
                     environment=environment_file(args.config, os.environ),
                     registry_timeout=getattr(args, "registry_timeout", None))


def cmd_charts(args: argparse.Namespace) -> int:
    charts = catalog_charts(_workspace(args))
    if args.json:
        data = [{"repository": c.repository, "chart": c.name, "version": c.version, "servedFrom": c.served_from,
                 "components": list(c.components), "pinnedAt": list(c.pinned_at), "recipes": list(c.recipes)}
                for c in charts]
        print(json.dumps(data, indent=2, sort_keys=True))
        return 0
    rows = [[c.repository, c.name, c.version, c.served_from or "-", ",".join(c.components), ",".join(c.pinned_at),
             ",".join(c.recipes)] for c in charts]
    print(_table(["REPOSITORY", "CHART", "VERSION", "MIRROR", "COMPONENTS", "PINNED AT", "RECIPES"], rows))
    print(f"\n{len(charts)} charts from {len({c.repository for c in charts})} repositories "
          "(charts inside the catalog are not listed)")
    return 0


def cmd_recipes(args: argparse.Namespace) -> int:
    _, recipes = compose_recipes(Path(args.catalog), environment=_workspace(args).environment)
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
    _print_reproduce(result.reproduce, elapsed=time.monotonic() - started, args=args)
    print()
    if result.findings:
        _print_findings(result.findings, args)
    else:
        print("pinning gates: chart versions pinned, in-tree images digest-pinned, locked images have digests")
    ok = result.ok
    if result.reproduce.ok and not args.recipe:
        # The published artifacts are checked against the (now verified) locks.
        schemas = Path(args.schemas)
        paths = PublishedPaths(bom=Path(args.bom), inventory=_inventory_path(args, args.docs_images),
                               provenance=Path(args.docs_provenance), policies=Path(args.policies),
                               schemas=schemas if (schemas / "kyverno").is_dir() else None,
                               lockdir=_lockdir_name(args))
        for check in check_published(_workspace(args), paths):
            for note in check.notes:
                print(f"  note: {note}")
            print(f"{check.name}: " + ("ok" if not check.problems else "FAIL"))
            for problem in check.problems:
                print(f"  {for_catalog(problem, args)}")
            ok = ok and not check.problems
        if args.attestation:
            problems = _check_attestation(args)
            print("signed attestation: " + ("ok" if not problems else "FAIL"))
            for problem in problems:
                print(f"  {problem}")
            ok = ok and not problems
    print("qualify: " + ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


_NO_DIGEST = re.compile(r"^component '(?P<component>[^']+)': \S+ image '(?P<ref>[^']+)' has no digest in the lock$")


def _print_findings(findings: Sequence[Any], args: argparse.Namespace) -> None:
    """Summary first; images without a digest (a ``lock --no-resolve`` lock holds hundreds) grouped by
    component and registry with one hint; every other finding in full."""
    from .gates.interface import GateName
    from .vocabulary.reference import ImageRef

    groups: dict[tuple[str, str], list[Any]] = {}
    others = []
    for finding in findings:
        match = _NO_DIGEST.match(finding.message) if finding.gate is GateName.LOCKED_IMAGES else None
        if match is None:
            others.append(finding)
            continue
        registry = ImageRef.parse(match["ref"]).registry
        groups.setdefault((match["component"], registry), []).append(finding)
    undigested = sum(len(g) for g in groups.values())
    print(f"pinning gates: {len(findings)} finding(s): {len(others)} to fix one by one, {undigested} locked "
          f"image(s) without a digest in {len({f.file for g in groups.values() for f in g})} lock(s)")
    for finding in others:
        print(for_catalog(finding.diagnostics(), args))
    if groups:
        print(f"\nimages without a digest, by component and registry ({len(groups)} groups):")
        for (component, registry), items in sorted(groups.items()):
            refs = sorted({_NO_DIGEST.match(f.message)["ref"] for f in items})  # type: ignore[index]
            print(f"  {component:<24} {registry:<24} {len(refs)} image(s), {len(items)} place(s): "
                  + ", ".join(refs[:3]) + (f", … (+{len(refs) - 3})" if len(refs) > 3 else ""))
        print("hint: " + for_catalog(next(iter(groups.values()))[0].hint, args))


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
    from .registry import RegistryClient  # here: httpx slows the start of commands without network

    catalog = Path(args.catalog)
    locks = fresh_locks(_workspace(args))
    if not args.verify:
        _publish_provenance(catalog, locks, document=Path(args.doc))
        return 0
    check_provenance(catalog, locks)
    config = load_workspace_catalog(catalog, _workspace(args).environment).config.registries
    with RegistryClient(config=config) as client, tempfile.TemporaryDirectory() as tmp:
        result = provenance(catalog, locks, document=Path(tmp) / "matrix.md", source=RegistryArtifactSource(client))
    counts: dict[str, int] = {}
    for item in result.results or ():
        counts[item.signature.status.value] = counts.get(item.signature.status.value, 0) + 1
    print("signatures: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())))
    require_verified(result.results or ())
    return 0


def _publish_provenance(catalog: Path, locks: Sequence[Any], *, document: Path) -> None:
    """docs/provenance-matrix.md from the (fresh) locks, its declarations checked first."""
    from .provenance import check_provenance, provenance

    check_provenance(catalog, locks)
    result = provenance(catalog, locks, document=document, source=None)
    print(f"wrote {result.document}" if result.written else f"unchanged {result.document}")


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
    _publish_policies(Path(args.catalog), fresh_locks(_workspace(args)), out=Path(args.out),
                      kyverno=args.kyverno_api)
    return 0


def _publish_policies(catalog: Path, locks: Sequence[Any], *, out: Path, kyverno: str | None = None) -> None:
    """Write the admission policies; ``kyverno`` (``--kyverno-api``) overrides the matrix's
    ``spec.policies.kyvernoApi`` for this run only, with a note: every other command (``upgrade``,
    ``nox -s lock``, ``qualify``) follows the recorded setting."""
    from .provenance import KyvernoApi, load_matrix, policies

    chosen = KyvernoApi(kyverno) if kyverno else None
    if chosen is not None:
        matrix = load_matrix(catalog)
        if chosen is not KyvernoApi.of(matrix):
            print(f"note: --kyverno-api {chosen.value} writes the allow-list as {chosen.kind}, but {matrix.path} "
                  f"records spec.policies.kyvernoApi: {matrix.kyverno_api}; qualify, upgrade and 'nox -s lock' "
                  f"follow the file, so set it there to keep this form", file=sys.stderr)
    result = policies(catalog, locks, out=out, kyverno=chosen)
    _print_writes(result.written, result.unchanged, result.removed)


def _inventory_path(args: argparse.Namespace, given: str | None) -> Path:
    """``--docs`` as given, else ``docs/container-images.md`` beside the catalog (``<catalog>/../docs``):
    the inventory of another catalog never lands in the working directory's ``docs/``."""
    if given is not None:
        return Path(given)
    return Path(args.catalog).resolve().parent / "docs" / "container-images.md"


def _lockdir_name(args: argparse.Namespace) -> str:
    return Path(args.lockdir).as_posix().rstrip("/") or "."


def cmd_bom(args: argparse.Namespace) -> int:
    from .bom import stale

    locks = fresh_locks(_workspace(args), args.recipe or None)
    exemptions = load_exemptions(Path(args.catalog)).image_pins
    bom_dir, inventory = Path(args.out), _inventory_path(args, args.docs)
    if args.recipe:
        return _bom_of_recipes(args, locks, bom_dir=bom_dir, exemptions=exemptions)
    if args.check:
        problems = stale(locks, bom_dir=bom_dir, inventory=inventory, exemptions=exemptions,
                         allow_unpinned=args.allow_unpinned, lockdir=_lockdir_name(args))
        for problem in problems:
            print(problem)
        if problems:
            print("the BOMs or the inventory are stale: run 'nox -s bom' and commit", file=sys.stderr)
            return 1
        print(f"BOMs in {args.out} and {args.docs} match the locks")
        return 0
    _publish_boms(locks, bom_dir=bom_dir, inventory=inventory, exemptions=exemptions,
                  allow_unpinned=args.allow_unpinned, lockdir=_lockdir_name(args))
    return 0


def _publish_boms(locks: Sequence[Any], *, bom_dir: Path, inventory: Path, exemptions: Any, allow_unpinned: bool,
                  lockdir: str) -> None:
    from .bom import publish

    published = publish(locks, bom_dir=bom_dir, inventory=inventory, exemptions=exemptions,
                        allow_unpinned=allow_unpinned, lockdir=lockdir)
    _print_writes(published.written, published.unchanged, published.removed)


def _bom_of_recipes(args: argparse.Namespace, locks: Sequence[Any], *, bom_dir: Path, exemptions: Any) -> int:
    """``bom --recipe``: those recipes' BOMs only (the catalog BOM and the inventory cover every recipe)."""
    from .bom.cyclonedx import bom_files
    from .vocabulary.files import sync_tree

    wanted = {f"recipes/{name}.cdx.json" for name in args.recipe}
    files = {bom_dir / rel: data for rel, data in bom_files(locks, exemptions=exemptions,
                                                            allow_unpinned=args.allow_unpinned).items()
             if rel.as_posix() in wanted}
    if args.check:
        problems = [f"{path} does not match the lockfiles: run 'python -m pipeline bom' and commit it"
                    for path, data in sorted(files.items()) if not path.is_file() or path.read_bytes() != data]
        for problem in problems:
            print(problem)
        return 1 if problems else 0
    synced = sync_tree(files)
    _print_writes(synced.written, synced.unchanged, synced.removed)
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


def _layout(args: argparse.Namespace) -> Any:
    from .attest import Layout

    return Layout(root=Path(args.root), lockdir=Path(args.lockdir), bom=Path(args.bom),
                  inventory=_inventory_path(args, args.docs_images), policies=Path(args.policies))


def _signer(args: argparse.Namespace) -> Any:
    from .attest import AttestError, Instance, KeylessSigner, KeySigner, ambient_token, load_private_key

    if args.keyless:
        instance = Instance.STAGING if args.sigstore_staging else Instance.PRODUCTION
        return KeylessSigner(ambient_token(), instance=instance)
    if args.key_env:
        pem = os.environ.get(args.key_env)
        if not pem:
            raise AttestError(f"environment variable {args.key_env} is not set or empty",
                              hint="put the PEM private key in it (a CI secret), or pass --key FILE")
        return KeySigner(load_private_key(pem.encode(), where=f"${args.key_env}"))
    pem_bytes = _read_pem(args.key, what="key file", hint="pass the path of an ECDSA P-256 private key in PEM")
    return KeySigner(load_private_key(pem_bytes, where=args.key))


def _read_pem(path: str, *, what: str, hint: str) -> bytes:
    from .attest import AttestError

    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise AttestError(f"{what} {path} cannot be read ({exc.strerror})", hint=hint) from exc


def _verifier(args: argparse.Namespace) -> Any:
    from .attest import Instance, KeylessVerifier, KeyVerifier, load_public_key

    keyless = args.certificate_identity is not None or args.certificate_oidc_issuer is not None
    if args.key and keyless:
        raise UsageError("give either --key or --certificate-identity with --certificate-oidc-issuer, not both")
    if args.key:
        pem = _read_pem(args.key, what="public key file", hint="pass the PEM public key of the signing key")
        return KeyVerifier(load_public_key(pem, where=args.key))
    if args.certificate_identity and args.certificate_oidc_issuer:
        return KeylessVerifier(identity=args.certificate_identity, issuer=args.certificate_oidc_issuer,
                               instance=Instance.STAGING if args.sigstore_staging else Instance.PRODUCTION,
                               trusted_root=Path(args.trusted_root) if args.trusted_root else None)
    raise UsageError("verifying an attestation needs --key PUB, or both --certificate-identity and "
                     "--certificate-oidc-issuer",
                     hint="a key-signed attestation: --key cosign.pub; a keyless one from CI: --certificate-identity "
                          "https://github.com/OWNER/REPO/.github/workflows/lock.yml@refs/heads/main "
                          "--certificate-oidc-issuer https://token.actions.githubusercontent.com")


def cmd_attest(args: argparse.Namespace) -> int:
    from .attest import Parameters, attest, git_commit
    from .bom import stale
    from .errors import GateError
    from .provenance import check_policies

    signer = _signer(args)  # a key or token problem is reported before seconds of checks
    ws = _workspace(args)
    layout = _layout(args)
    locks = fresh_locks(ws)
    # Only what the locks give today is signed: stale BOMs, inventory or policies are refused.
    problems = stale(locks, bom_dir=layout.bom, inventory=layout.inventory,
                     exemptions=load_exemptions(ws.catalog).image_pins)
    try:
        check_policies(ws.catalog, locks, out=layout.policies, schemas=None)
    except GateError as exc:
        problems.append(exc.message)
    if problems:
        raise GateError("nothing was signed: what is published from the locks is stale:\n  " + "\n  ".join(problems),
                        hint="run 'nox -s lock' (or 'nox -s bom' and 'nox -s policies'), commit, then attest")
    params = Parameters(catalog=layout.name(ws.catalog), lockdir=layout.name(ws.lockdir), builder_id=args.builder_id,
                        backend="local", commit=git_commit(layout.root))
    result = attest(locks, layout=layout, params=params, signer=signer, out=Path(args.out))
    _print_writes(result.written, result.unchanged, result.removed, removed_why=" (another signer's file)")
    print(f"attested {result.subjects} files and {result.dependencies} dependencies; signed by {result.signer}")
    return 0


def _verify(args: argparse.Namespace, signed: Path) -> Any:
    from .attest import verify_attestation

    return verify_attestation(signed, layout=_layout(args), verifier=_verifier(args),
                              load_locks=lambda: fresh_locks(_workspace(args)))


def cmd_verify_attestation(args: argparse.Namespace) -> int:
    verified = _verify(args, Path(args.attestation))
    print(f"{args.attestation}: signed by {verified.signer}")
    print(f"  {verified.subjects} subjects match the files on disk; the locks of {len(verified.recipes)} recipes are "
          f"fresh; {verified.dependencies} dependencies equal the locks'"
          + (f"; source commit {verified.commit}" if verified.commit else ""))
    return 0


def _check_attestation(args: argparse.Namespace) -> list[str]:
    try:
        _verify(args, Path(args.attestation))
    except PipelineError as exc:
        return [exc.diagnostics()]
    return []


_DEFAULT_INCLUDES = ("bom", "policies", "docs/container-images.md", "docs/provenance-matrix.md")


def cmd_bundle(args: argparse.Namespace) -> int:
    credentials = DockerConfig.load(docker_config_path(os.environ), required=False)
    if args.action == "export":
        return _bundle_export(args, credentials)
    if args.action == "verify":
        return _bundle_verify(args)
    return _bundle_import(args, credentials)


def _bundle_export(args: argparse.Namespace, credentials: DockerConfig | None) -> int:
    from .bundle import collect_files, export_bundle, sigstore_trust_files
    from .registry import RegistryClient  # here: httpx slows the start of commands without network

    ws = _workspace(args)
    locks = fresh_locks(ws)
    config = load_workspace_catalog(ws.catalog, ws.environment).config
    includes = [Path(p) for p in (args.include or _DEFAULT_INCLUDES)]
    files = collect_files(includes, required=bool(args.include)) | sigstore_trust_files()
    started = time.monotonic()
    with RegistryClient(config=ws.registries(config.registries), credentials=credentials) as client:
        result = export_bundle(locks, client=client, out=Path(args.out), catalog=ws.catalog, store=ws.store,
                               chart_mirrors=config.mirrors, platforms=args.platform or (), files=files)
    print(f"wrote {result.path}: {result.images} images, {result.charts} charts, {result.artifacts} signature "
          f"artifacts, {result.blobs} blobs ({result.size} bytes; {result.fetched} fetched, {result.reused} "
          f"reused from an interrupted export); index.json {result.index}")
    log.info("bundle export took %.2f s", time.monotonic() - started)
    return 0


def _bundle_verify(args: argparse.Namespace) -> int:
    from .bundle import BundleInvalid, verify_bundle

    report = verify_bundle(Path(args.path))
    print(f"{report.path}: {report.blobs} blobs, {report.images} images, {report.charts} charts, "
          f"{report.artifacts} signature artifacts, locks: {', '.join(report.locks) or 'none'}")
    if report.problems:
        raise BundleInvalid(f"bundle {report.path} differs from its locks in {len(report.problems)} place(s):\n  "
                            + "\n  ".join(str(p) for p in report.problems),
                            hint="do not import it: export it again and carry a good copy across")
    print("bundle verify: PASS")
    return 0


def _bundle_import(args: argparse.Namespace, credentials: DockerConfig | None) -> int:
    from .bundle import hosts_files, import_bundle, mirrors_yaml
    from .registry import Pusher, RegistryClient, RegistryConfig

    target = args.to.removeprefix("https://").removeprefix("http://").rstrip("/")
    registries = RegistryConfig(insecure=frozenset({target.lower()}) if args.insecure else frozenset())
    started = time.monotonic()
    with RegistryClient(config=registries, credentials=credentials) as client:
        result = import_bundle(Path(args.path), pusher=Pusher(client, host=target), prefix=args.prefix)
    log.info("bundle import took %.2f s", time.monotonic() - started)
    print(f"# pushed {result.manifests} manifests and {result.blobs_pushed} blobs ({result.bytes_pushed} bytes) to "
          f"{result.target}; {result.blobs_skipped} blobs were already there")
    print("# recipes/pipeline.yaml: lock against the mirror (merge into spec)")
    sys.stdout.write(mirrors_yaml(result).decode())
    hosts = hosts_files(result)
    if args.hosts_dir:
        atomic_write_many({Path(args.hosts_dir) / rel: data for rel, data in hosts.items()})
    for rel, data in sorted(hosts.items()):
        print(f"# --- containerd: {rel} (under /etc/containerd/certs.d)")
        sys.stdout.write(data.decode())
    return 0


def _print_lock(result: LockResult) -> None:
    if result.checked_only:
        for path in result.written:
            print(f"would write   {path}")
        for path in result.removed:
            print(f"would remove  {path} (no such recipe any more)")
        print(f"lock --check: {len(result.written) + len(result.removed)} lockfiles would change, "
              f"{len(result.unchanged)} up to date (nothing written)")
        return
    _print_writes(result.written, result.unchanged, result.removed, removed_why=" (no such recipe any more)")
    print(f"{len(result.recipes)} recipes locked ({result.reused_locks} from the lock cache), {result.renders} "
          f"distinct renders ({result.cache_hits} from the render cache, {result.discovery_hits} discoveries "
          f"from the discovery cache), {result.reused_digests} digest-pinned images reused from the previous locks")
    if result.skipped:
        from .build import charts_table

        print(f"\n{len(result.skipped)} recipes skipped (their lockfiles are left as they were): "
              + ", ".join(result.skipped))
        print(charts_table(result.problems))


def _locally(args: argparse.Namespace, stage_name: str, *, credentials: DockerConfig | None = None) -> int:
    """Run ``lock`` or ``reproduce`` on the local backend (progress bars on a terminal), through the same
    backend interface as the others; print the stage's own report from its result record."""
    from .backends import LocalBackend, LocalOutputs, Stage, run_on

    started = time.monotonic()
    with _progress() as progress:
        _, outputs = run_on(LocalBackend(progress=progress, credentials=credentials), Stage(stage_name),
                            _workspace(args), recipes=tuple(args.recipe or ()),
                            keep_going=getattr(args, "keep_going", False), check=getattr(args, "check", False))
    if not isinstance(outputs, LocalOutputs):  # a bug: the local backend hands back its result record
        raise TypeError(f"the local backend returned {type(outputs).__name__}, not LocalOutputs")
    match outputs.result:
        case LockResult() as locked:
            _print_lock(locked)
        case ReproduceResult() as reproduced:
            _print_reproduce(reproduced, elapsed=time.monotonic() - started, args=args)
    log.info("%s took %.2f s", stage_name, time.monotonic() - started)
    return outputs.exit_code


def _on_backend(args: argparse.Namespace, stage_name: str) -> int:
    """Run ``lock`` or ``reproduce`` on a non-local backend: relay its report, write its checked outputs."""
    from .backends import BackendName, Stage, container_plan, run_on, write_outputs

    stage = Stage(stage_name)
    started = time.monotonic()
    planned, outputs = run_on(args.backend, stage, _workspace(args), recipes=tuple(args.recipe or ()))
    plan = container_plan(planned, BackendName(args.backend))
    sys.stderr.write(outputs.stderr)
    if stage is Stage.REPRODUCE:
        sys.stdout.write(outputs.stdout)
    else:
        log.info("%s backend: %s", args.backend, outputs.stdout.strip())
        applied = write_outputs(plan, outputs)
        _print_writes(applied.written, applied.unchanged, applied.removed, removed_why=" (no such recipe any more)")
        if outputs.exit_code == 0:
            print(f"{len(plan.outputs.files)} recipes locked on the {args.backend} backend")
    if outputs.cached:
        print(f"{len(outputs.cached)} of {len(plan.steps)} container steps served from the step cache: "
              f"{', '.join(outputs.cached)}", file=sys.stderr)
    log.info("%s on the %s backend took %.2f s", stage.value, args.backend, time.monotonic() - started)
    return outputs.exit_code


def cmd_lock(args: argparse.Namespace) -> int:
    from ._exclusive import exclusive

    with exclusive(Path(args.cache) / "lock.pid", wait=args.wait, what="lock"):
        return _lock(args)


def _lock(args: argparse.Namespace) -> int:
    if args.check and args.backend != "local":
        raise UsageError("lock --check runs on the local backend only",
                         hint="drop --backend, or drop --check and compare with 'git diff lockfiles/'")
    if args.backend != "local":
        _workspace(args)  # refuses --engine helm-cli with another backend
        return _on_backend(args, "lock")

    # Credentials for registries come from the user's Docker config (DOCKER_CONFIG or ~/.docker);
    # they are used for requests only and never logged or written (see README, security model).
    credentials = DockerConfig.load(docker_config_path(os.environ), required=False)
    return _locally(args, "lock", credentials=credentials)


def cmd_diff(args: argparse.Namespace) -> int:
    from .diff import format_json, format_markdown

    result = diff_catalog(_workspace(args), args.source, args.target, rerender=not args.no_render)
    report = format_json(result.diff) if args.format == "json" else format_markdown(result.diff)
    if args.out:
        atomic_write(Path(args.out), report)
    else:
        sys.stdout.buffer.write(report)
    for side, count in sorted(result.rerendered.items()):
        if count:
            log.info("re-rendered %d %s streams the render cache lacked", count, side)
    print(f"diff: {len(result.diff.changed_recipes)} of {len(result.diff.recipes)} recipes change, "
          f"{len(result.diff.rows)} rows", file=sys.stderr)
    return 0 if result.diff.equal else 1


def cmd_upgrade(args: argparse.Namespace) -> int:
    from .diff import LockSet, diff_locks, format_markdown, read_directory
    from .upgrade import upgrade_catalog

    if bool(args.to) == bool(args.latest):
        raise UsageError("upgrade needs exactly one of --to VERSION and --latest",
                         hint="python -m pipeline upgrade COMPONENT --to 1.2.3, or --latest [--pre]")
    if bool(args.all) == bool(args.component):
        raise UsageError("upgrade needs a COMPONENT or --all", hint="python -m pipeline upgrade --all --latest")
    if args.all and args.to:
        raise UsageError("--all moves every chart to its own newest version: use --latest, not --to")
    ws = _workspace(args)
    credentials = DockerConfig.load(docker_config_path(os.environ), required=False)
    result = upgrade_catalog(ws, None if args.all else [args.component], to=args.to, pre=args.pre,
                             credentials=credentials)
    if not result.edits:
        print("nothing to upgrade: every pin is already at the requested version")
        return 0
    for edit in result.edits:
        print(f"{edit.file}:{edit.line}: {edit.component} {edit.before} → {edit.after}")
    if result.lock is not None:
        _print_lock(result.lock)
    if not args.no_publish:
        # What 'bom', 'provenance' and 'policies' publish, from the fresh locks (stale ones are refused).
        if args.no_resolve:  # policies admit images at their locked digests: tags without one cannot be
            print("note: --no-resolve: admission policies not regenerated (they need every image's digest)",
                  file=sys.stderr)
        locks = fresh_locks(ws)
        _publish_boms(locks, bom_dir=Path(args.bom), inventory=_inventory_path(args, args.docs_images),
                      exemptions=load_exemptions(ws.catalog).image_pins, allow_unpinned=args.no_resolve,
                      lockdir=_lockdir_name(args))
        _publish_provenance(ws.catalog, locks, document=Path(args.docs_provenance))
        if not args.no_resolve:
            _publish_policies(ws.catalog, locks, out=Path(args.policies))
    after = read_directory(ws.lockdir)
    diff = diff_locks(LockSet(label="before the upgrade", locks=result.before), after, streams=ws.cached_stream)
    sys.stdout.buffer.write(b"\n" + format_markdown(diff))
    return 0


def _print_reproduce(result: ReproduceResult, *, elapsed: float, args: argparse.Namespace) -> None:
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
            print(for_catalog(divergence.format(), args))
    print(f"\n{len(result.outcomes) - len(failed)}/{len(result.outcomes)} recipes reproduced "
          f"({result.renders} distinct renders in {elapsed:.1f} s)")


def cmd_reproduce(args: argparse.Namespace) -> int:
    if args.backend != "local":
        _workspace(args)
        return _on_backend(args, "reproduce")
    return _locally(args, "reproduce")


def _verification_options(parser: argparse.ArgumentParser) -> None:
    """How an attestation's signature is checked: a public key, or a keyless signer's identity and issuer."""
    parser.add_argument("--key", help="PEM public key (ECDSA P-256) of a key-signed attestation")
    parser.add_argument("--certificate-identity", help="keyless: the signer's identity (certificate SAN)")
    parser.add_argument("--certificate-oidc-issuer", help="keyless: the OIDC issuer of the signer's identity")
    parser.add_argument("--sigstore-staging", action="store_true",
                        help="keyless: Sigstore's staging instance instead of production (for testing)")
    parser.add_argument("--trusted-root", help="keyless: a reviewed Sigstore trusted_root.json (default: the one "
                        "the pinned sigstore wheel ships)")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 3600:  # the same bound as registries.imageDeadline
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds in (0, 3600]")
    return value


def _registry_timeout(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--registry-timeout", type=_seconds, metavar="SECONDS",
                        help="seconds for all registry requests about one image (default: registries.imageDeadline "
                        "of pipeline.yaml, 30)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline",
                                     description="Reproducible renders, locks and checks for recipe catalogs.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging on stderr")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--catalog", default="recipes", help="catalog directory (default: recipes)")
    common.add_argument("--lockdir", default="lockfiles", help="lockfile directory (default: lockfiles)")
    common.add_argument("--cache", default=".pipeline-cache", help="chart and render cache (default: .pipeline-cache)")
    common.add_argument("--workers", type=int, default=None, help="render worker processes (default: CPUs)")
    common.add_argument("--config", metavar="FILE", default=None,
                        help="environment file with mirrors, registries and credentials, merged over the catalog's "
                        "pipeline.yaml (default: $PIPELINE_CONFIG, else ~/.config/recipe-pipeline/config.yaml "
                        "if it exists); never a lock input")
    backend = argparse.ArgumentParser(add_help=False)
    backend.add_argument("--backend", choices=("local", "dagger", "podman", "docker"), default="local",
                         help="where the stage runs: in this process (local, default), or one container per recipe "
                         "on a Dagger engine (dagger; run it under 'dagger run') or with the podman or docker CLI")
    engine = argparse.ArgumentParser(add_help=False)
    engine.add_argument("--engine", choices=ENGINES, default=ENGINE_NAME,
                        help="what renders: Helm's SDK in the worker processes (helm-python-sdk, default) or "
                        "the pinned helm binary's 'helm template' in the same sandboxes (helm-cli)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("recipes", parents=[common], help="list the catalog's recipes and their overlay chains")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_recipes)

    p = sub.add_parser("render", parents=[common, engine], help="render one recipe (helm template equivalent)")
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

    p = sub.add_parser("charts", parents=[common],
                       help="every chart the catalog needs (repository, chart, version, recipes), fetching nothing")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_charts)

    p = sub.add_parser("lock", parents=[common, backend, engine],
                       help="render every recipe, resolve every image, write lockfiles atomically")
    p.add_argument("--recipe", action="append", help="only this recipe (repeatable)")
    p.add_argument("--no-resolve", action="store_true",
                   help="do not ask registries: images keep only the digests their references carry")
    p.add_argument("--keep-going", action="store_true",
                   help="lock every recipe whose charts can all be fetched; list the others (exit 1 if any)")
    p.add_argument("--wait", action="store_true",
                   help="wait for another lock of this checkout (same --cache) to finish instead of exiting 2")
    p.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 when any lockfile would change (CI: the lock matches its inputs)")
    _registry_timeout(p)
    p.set_defaults(func=cmd_lock)

    p = sub.add_parser("reproduce", parents=[common, backend, engine],
                       help="render twice under varied sandboxes; compare with each other and the lock")
    p.add_argument("--recipe", action="append", help="only this recipe (repeatable)")
    p.set_defaults(func=cmd_reproduce)

    p = sub.add_parser("bom", parents=[common],
                       help="CycloneDX 1.6 BOMs (per recipe and catalog) and docs/container-images.md from the locks")
    p.add_argument("--out", default="bom", help="BOM directory (default: bom)")
    p.add_argument("--docs", default=None,
                   help="inventory document (default: docs/container-images.md beside the catalog, <catalog>/../docs)")
    p.add_argument("--recipe", action="append",
                   help="only this recipe's BOM (repeatable; the catalog BOM and the inventory are left alone)")
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

    p = sub.add_parser("bundle", parents=[common],
                       help="air-gap bundle: export every locked chart and image by digest, verify it, import it")
    bundle = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    b = bundle.add_parser("export", parents=[common], help="write an OCI image layout (directory or .tar)")
    b.add_argument("--out", required=True, help="bundle directory, or a .tar file")
    b.add_argument("--platform", action="append", help="only this platform's manifests, e.g. linux/amd64 (repeatable)")
    b.add_argument("--include", action="append", metavar="PATH",
                   help="a file or directory to carry (repeatable; default: " + ", ".join(_DEFAULT_INCLUDES) + ")")
    b = bundle.add_parser("verify",
                          help="check every blob, lock entry and signature of a bundle (exit 1 on a difference)")
    b.add_argument("path")
    b = bundle.add_parser("import", help="push a bundle into a registry; print the mirror configuration for it")
    b.add_argument("path")
    b.add_argument("--to", required=True, metavar="REGISTRY", help="target registry host[:port]")
    b.add_argument("--prefix", default="", help="repository prefix in the target registry")
    b.add_argument("--insecure", action="store_true", help="plain HTTP to a non-loopback target")
    b.add_argument("--hosts-dir", metavar="DIR", help="also write the containerd hosts.toml files under DIR")
    p.set_defaults(func=cmd_bundle)

    p = sub.add_parser("images", parents=[common], help="the image inventory of one recipe")
    p.add_argument("recipe")
    p.add_argument("--why", metavar="IMAGE", help="every place IMAGE came from, and who chose it")
    p.set_defaults(func=cmd_images)

    published = argparse.ArgumentParser(add_help=False)
    published.add_argument("--bom", default="bom", help="BOM directory (default: bom)")
    published.add_argument("--docs-images", default=None,
                           help="image inventory document (default: docs/container-images.md beside the catalog)")
    published.add_argument("--policies", default="policies", help="admission policy directory (default: policies)")
    published.add_argument("--root", default=".",
                           help="the checkout's root: attestation subjects are named relative to it (default: .)")

    p = sub.add_parser("qualify", parents=[common, published],
                       help="every gate: reproduce, pinning gates, and freshness of BOMs, docs and policies")
    p.add_argument("--recipe", action="append", help="only this recipe (repeatable; skips the freshness checks)")
    p.add_argument("--docs-provenance", default="docs/provenance-matrix.md")
    p.add_argument("--schemas", default="../shared/schemas", help="CRD schemas to validate policies against")
    p.add_argument("--attestation", metavar="FILE",
                   help="also verify this signed attestation (with --key, or --certificate-identity and "
                        "--certificate-oidc-issuer) against the files and the locks")
    _verification_options(p)
    p.set_defaults(func=cmd_qualify)

    p = sub.add_parser("attest", parents=[common, published],
                       help="sign the locks, BOMs, policies and inventory: an in-toto statement (SLSA provenance)")
    signing = p.add_mutually_exclusive_group(required=True)
    signing.add_argument("--key", metavar="PEM", help="ECDSA P-256 private key file (unencrypted PEM)")
    signing.add_argument("--key-env", metavar="VAR", help="environment variable holding the PEM private key")
    signing.add_argument("--keyless", action="store_true",
                         help="Sigstore keyless signing with the ambient OIDC token (CI with id-token: write)")
    p.add_argument("--out", default="attestations", help="attestation directory (default: attestations)")
    p.add_argument("--builder-id", default="urn:recipe-pipeline:builder:local",
                   help="runDetails.builder.id (CI passes its workflow's URI)")
    p.add_argument("--sigstore-staging", action="store_true",
                   help="keyless: Sigstore's staging instance instead of production (for testing)")
    p.set_defaults(func=cmd_attest)

    p = sub.add_parser("verify-attestation", parents=[common, published],
                       help="check a signed attestation: signature, every subject on disk, fresh locks, dependencies")
    p.add_argument("--attestation", default="attestations/attestation.sigstore.json", metavar="FILE",
                   help="the Sigstore bundle or DSSE envelope (default: attestations/attestation.sigstore.json)")
    _verification_options(p)
    p.set_defaults(func=cmd_verify_attestation)

    p = sub.add_parser("drift", parents=[common],
                       help="re-check every locked image tag and chart version against its source")
    p.add_argument("--recipe", action="append", help="only this recipe (repeatable)")
    p.add_argument("--fail-on-drift", action="store_true",
                   help="exit 1 when any item is not unchanged (items that could not be checked included)")
    p.add_argument("--json", metavar="PATH", help="also write the JSON report here")
    p.add_argument("--markdown", metavar="PATH", help="also write the Markdown report here")
    _registry_timeout(p)
    p.set_defaults(func=cmd_drift)

    p = sub.add_parser("diff", parents=[common],
                       help="what changes between two lock sets: charts, images, rendered resources (1: they differ)")
    p.add_argument("--from", dest="source", required=True, metavar="REF_OR_DIR",
                   help="the old locks: a directory, or a git revision (read from git, no checkout)")
    p.add_argument("--to", dest="target", metavar="DIR", help="the new locks (default: --lockdir)")
    p.add_argument("--format", choices=("markdown", "json"), default="markdown")
    p.add_argument("--out", metavar="FILE", help="write the report here instead of stdout")
    p.add_argument("--no-render", action="store_true",
                   help="compare rendered resources only from the render cache (never re-render)")
    p.set_defaults(func=cmd_diff)

    p = sub.add_parser("upgrade", parents=[common],
                       help="move a chart pin where it is defined, relock what it affects, print the diff")
    p.add_argument("component", nargs="?", help="the component whose chart pin moves")
    p.add_argument("--all", action="store_true", help="every chart component (with --latest)")
    p.add_argument("--to", metavar="VERSION", help="a version the chart's repository offers")
    p.add_argument("--latest", action="store_true", help="the newest version the repository (or its mirror) offers")
    p.add_argument("--pre", action="store_true", help="with --latest: consider pre-releases too")
    p.add_argument("--no-resolve", action="store_true",
                   help="relock without asking registries (images keep only the digests their references carry)")
    p.add_argument("--no-publish", action="store_true",
                   help="do not regenerate the BOMs, inventory, provenance matrix and policies")
    p.add_argument("--bom", default="bom", help="BOM directory (default: bom)")
    p.add_argument("--docs-images", default="docs/container-images.md")
    p.add_argument("--docs-provenance", default="docs/provenance-matrix.md")
    p.add_argument("--policies", default="policies", help="admission policy directory (default: policies)")
    p.set_defaults(func=cmd_upgrade)

    p = sub.add_parser("provenance", parents=[common],
                       help="docs/provenance-matrix.md from recipes/provenance.yaml and the locks")
    p.add_argument("--doc", default="docs/provenance-matrix.md")
    p.add_argument("--verify", action="store_true",
                   help="check every locked digest's signatures and attestations in its registry (exit 1 on a gap)")
    p.set_defaults(func=cmd_provenance)

    p = sub.add_parser("policies", parents=[common],
                       help="Kyverno and sigstore policy-controller admission policies from the locks")
    p.add_argument("--out", default="policies")
    p.add_argument("--kyverno-api", choices=("imagevalidatingpolicy", "clusterpolicy"), default=None,
                   help="this run only: the digest allow-list as a policies.kyverno.io/v1 ImageValidatingPolicy "
                        "(Kyverno 1.17+) or a kyverno.io/v1 ClusterPolicy (clusters before 1.17); default: "
                        "spec.policies.kyvernoApi of the catalog's provenance.yaml (ImageValidatingPolicy when unset)")
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
        print(f"error: {for_catalog(exc.diagnostics(), args)}", file=sys.stderr)
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
