"""``python -m lab``: the local registry that serves our catalog's images.

Commands (defaults: ``--catalog recipes``, ``--address 127.0.0.1:5001``,
``--storage .pipeline-cache/registry``):

- ``start``: start the registry detached (or reuse the one already running from ``--storage``),
  then push every image of ``<catalog>/images.yaml`` (``--no-fill`` to skip).
- ``fill``: build and push every image to the registry at ``--address``.
- ``status``: exit 0 when the registry of ``--storage`` runs and answers, 1 otherwise.
- ``stop``: stop the registry of ``--storage`` and wait for it to exit.
- ``run -- COMMAND...``: serve the images while ``COMMAND`` runs, then stop (a registry already
  running from ``--storage`` is used as it is, not refilled, and left running); exits with
  ``COMMAND``'s status.
- ``base-image``: build the container backends' base image from Debian packages (cached under
  ``~/.cache/recipe-pipeline/base-image``; :mod:`lab.base_image`), push it to the registry at
  ``--address`` unless ``--no-push``, and print its reference pinned by digest.

Only argument parsing and printing live here; the work is :mod:`lab.registry`.
Exit codes: 0 ok; 1 ``status`` found no registry; 2 bad input or a registry error (with a hint).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from pipeline.errors import PipelineError, UsageError

from .images import PushReport
from .registry import (
    DEFAULT_ADDRESS,
    DEFAULT_STORAGE,
    LocalRegistry,
    fill_registry,
    registry_status,
    running_registry,
    serve_catalog_images,
    start_local_registry,
)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, run the command, map a :class:`PipelineError` to its exit code."""
    args = _parser().parse_args(argv)
    try:
        match args.command:
            case "start":
                return _start(args)
            case "fill":
                _print_pushes(fill_registry(args.catalog, f"http://{args.address}"))
                return 0
            case "status":
                status = registry_status(args.storage)
                if status.running:
                    print(f"running at http://{status.address} (pid {status.pid}, storage {status.storage})")
                    return 0
                print(f"not running: {status.reason}")
                return 1
            case "stop":
                registry = running_registry(args.storage)
                if registry is None:
                    print(f"not running (no registry process recorded in {args.storage})")
                    return 0
                registry.stop()
                print(f"stopped the registry at http://{registry.address} (pid {registry.pid})")
                return 0
            case "run":
                return _run(args)
            case "base-image":
                return _base_image(args)
            case _:  # pragma: no cover - argparse restricts the choices
                raise UsageError(f"unknown command {args.command!r}")
    except PipelineError as exc:
        print(exc.diagnostics(), file=sys.stderr)
        return exc.exit_code


def _start(args: argparse.Namespace) -> int:
    registry = running_registry(args.storage)
    if registry is not None and registry.address != args.address:
        raise UsageError(f"a registry from {registry.storage} already runs at {registry.address}, "
                         f"not at {args.address}", hint="stop it first: 'python -m lab stop'")
    if registry is None:
        registry = start_local_registry(address=args.address, storage=args.storage, detach=True)
        print(f"started the registry at {registry.url} (pid {registry.pid}, storage {registry.storage})")
    else:
        print(f"the registry at {registry.url} is already running (pid {registry.pid})")
    if not args.no_fill:
        _print_pushes(fill_registry(args.catalog, registry.url))
    return 0


def _run(args: argparse.Namespace) -> int:
    command = list(args.cmd)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        raise UsageError("'run' needs a command after '--'",
                         hint="python -m lab run -- python -m pipeline lock")
    existing = running_registry(args.storage)
    registry: LocalRegistry | None = None
    if existing is not None and existing.address == args.address:
        # A registry the user started (nox -s registry) is used as it is, not refilled: what was
        # pushed or re-tagged there since (to try drift, say) must stay as it is.
        print(f"using the registry already running at {existing.url} while: {' '.join(command)}", file=sys.stderr)
    else:
        registry = serve_catalog_images(args.catalog, address=args.address, storage=args.storage)
        print(f"serving {args.catalog}/images.yaml at {registry.url} while: {' '.join(command)}", file=sys.stderr)
    try:
        return subprocess.run(command, check=False).returncode
    except FileNotFoundError as exc:
        raise UsageError(f"command not found: {command[0]!r}") from exc
    finally:
        if registry is not None:
            registry.stop()


def _base_image(args: argparse.Namespace) -> int:
    from .base_image import build_base_image, default_cache, load_base_spec, push_base_image

    started = time.monotonic()
    built = build_base_image(load_base_spec(), cache=args.cache or default_cache(), mirror=args.mirror)
    print(f"built {built.spec.repository}:{built.spec.tag}@{built.digest} "
          f"({built.layer.size} byte layer, {time.monotonic() - started:.1f} s)", file=sys.stderr)
    if args.no_push:
        print(f"{built.spec.repository}:{built.spec.tag}@{built.digest}")
        return 0
    _print_pushes([push_base_image(built, args.address)])
    print(built.reference(args.address))
    return 0


def _print_pushes(reports: Sequence[PushReport]) -> None:
    for report in reports:
        print(f"pushed {report.reference} ({len(report.uploaded)} blobs uploaded, "
              f"{len(report.skipped)} already present)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lab",
                                     description="The local registry that serves the catalog's own images.")
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, text: str, *, catalog: bool = False, storage: bool = True) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=text, description=text)
        if catalog:
            sub.add_argument("--catalog", type=Path, default=Path("recipes"),
                             help="catalog directory holding images.yaml (default: recipes)")
        sub.add_argument("--address", default=DEFAULT_ADDRESS, help=f"loopback host:port (default: {DEFAULT_ADDRESS})")
        if storage:
            sub.add_argument("--storage", type=Path, default=DEFAULT_STORAGE,
                             help=f"registry storage directory (default: {DEFAULT_STORAGE})")
        return sub

    command("start", "start the registry in the background and push the catalog's images",
            catalog=True).add_argument("--no-fill", action="store_true", help="start without pushing images")
    command("fill", "build and push the catalog's images to a running registry", catalog=True, storage=False)
    command("status", "exit 0 when the registry runs and answers, 1 otherwise")
    command("stop", "stop the registry and wait for it to exit")
    command("run", "serve the catalog's images while a command runs",
            catalog=True).add_argument("cmd", nargs=argparse.REMAINDER, help="-- COMMAND [ARG...]")
    base = command("base-image", "build the container base image from Debian packages and push it", storage=False)
    base.add_argument("--no-push", action="store_true", help="build (or find in the cache) only")
    base.add_argument("--cache", type=Path, default=None,
                      help="machine cache directory (default: ~/.cache/recipe-pipeline)")
    base.add_argument("--mirror", default=None, help="Debian mirror URL (default: this machine's apt sources)")
    return parser


if __name__ == "__main__":
    sys.exit(main())
