"""The Dagger backend: runs a stage in a container through the Dagger Python SDK (``dagger-io``).

The only module that imports ``dagger``. Input: a :class:`~.interface.Plan`. What it asks the engine
for, in order (:func:`build_base` once, :func:`build_container` per step):

1. ``container(platform).from(<base image>@sha256:…)`` — the pinned base image; the engine checks the
   digest when it pulls;
2. ``withEnvVariable`` for every variable of the plan's allow-list;
3. the wheelhouse mounted read-only, then ``pip install --no-index --find-links … --require-hashes``;
4. this package's source mounted read-only; the content-addressed cache copied in (writable inside
   the container, never written back);
5. per :class:`~.interface.Step` (one recipe): the catalog directory holding only that recipe's
   inputs (``include``) and its own files (``reproduce``: the recipe's lockfile) mounted read-only,
   ``withWorkdir`` and ``withExec(python -m pipeline lock|reproduce … --recipe R)`` accepting any
   exit code;
6. per step, concurrently: ``exitCode``, ``stdout``, ``stderr``, and for ``lock`` the ``entries`` and
   ``contents`` of the output directory; :func:`~.plan.assemble` puts them together on the host.

Steps 1 to 4 are one shared prefix of every step's query, so the engine builds it once and caches it by
content, like each step (whose key covers only its recipe's inputs): a second run with nothing
changed is served from the engine's cache.

No service bindings, no proxies, no secrets: the stage needs no network (render workers inside the
container isolate themselves as they do on the host). Outputs are verified against the plan by
digest (:func:`~.plan.check_outputs`) before the CLI writes anything.

Connection (:func:`find_engine`, checked before anything else, in well under a second): an existing
session from ``DAGGER_SESSION_PORT``/``DAGGER_SESSION_TOKEN`` (what ``dagger run …`` provides; the
port must accept a TCP connection), or a dagger CLI (``_EXPERIMENTAL_DAGGER_CLI_BIN`` or ``dagger``
on ``PATH``) with a container runtime to start its engine. Otherwise :class:`~pipeline.errors.BackendError`
(exit 2) says no engine is reachable and how to get one. The SDK is never allowed to download a CLI.

Errors: :class:`~pipeline.errors.BackendError` for an engine that cannot be reached or refuses the
plan, an input that changed under the plan, or a failed wheel install (with the stderr tail);
:class:`~.interface.OutputMismatchError` when the outputs differ from the plan's expectations.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import anyio
import dagger

from ..errors import BackendError
from .interface import Backend, BackendName, Mount, Outputs, Plan, StagePlan, Step, container_plan, tail
from .plan import assemble, verify_inputs

__all__ = ["ENGINE_HINT", "DaggerBackend", "EngineRoute", "build_base", "build_container", "build_export",
           "find_engine"]

ENGINE_HINT = (
    "install Docker or Podman and the dagger CLI (https://docs.dagger.io/install), then run "
    "'dagger run python -m pipeline … --backend dagger' (or 'dagger run nox -s reproduce -- --backend dagger'); "
    "or set DAGGER_SESSION_PORT and DAGGER_SESSION_TOKEN to a running session; or drop '--backend dagger' "
    "to use the local backend"
)
#: Seconds to wait for a TCP connection to DAGGER_SESSION_PORT in the pre-check.
PROBE_SECONDS = 2.0
#: Seconds to attach to an existing session (introspection included).
SESSION_CONNECT_SECONDS = 10.0
#: Seconds for a dagger CLI to start its engine (the first start pulls the engine image).
CLI_CONNECT_SECONDS = 300.0
_RUNTIMES = ("docker", "podman", "nerdctl", "finch")
_CLI_VARIABLE = "_EXPERIMENTAL_DAGGER_CLI_BIN"


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineRoute:
    """How this process reaches an engine: an existing ``session`` (port) or a ``cli`` (path)."""

    kind: Literal["session", "cli"]
    where: str
    connect_seconds: float


def find_engine(environ: Mapping[str, str]) -> EngineRoute:
    """Decide how to reach a Dagger engine, quickly, or raise :class:`BackendError` saying none is reachable."""
    port = environ.get("DAGGER_SESSION_PORT", "").strip()
    if port:
        if not environ.get("DAGGER_SESSION_TOKEN"):
            raise BackendError("DAGGER_SESSION_PORT is set but DAGGER_SESSION_TOKEN is not",
                               hint="set both (as 'dagger run' does), or neither")
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise BackendError(f"DAGGER_SESSION_PORT {port!r} is not a TCP port", hint=ENGINE_HINT)
        try:
            with socket.create_connection(("127.0.0.1", int(port)), timeout=PROBE_SECONDS):
                pass
        except OSError as exc:
            raise BackendError(
                f"no Dagger engine is reachable: nothing accepts connections on 127.0.0.1:{port} "
                f"(DAGGER_SESSION_PORT): {exc.strerror or exc}",
                hint="the session has ended; " + ENGINE_HINT,
            ) from exc
        return EngineRoute(kind="session", where=f"127.0.0.1:{port}", connect_seconds=SESSION_CONNECT_SECONDS)
    path = environ.get("PATH", os.defpath)
    cli = environ.get(_CLI_VARIABLE) or shutil.which("dagger", path=path)
    if not cli:
        raise BackendError(
            "no Dagger engine is reachable: DAGGER_SESSION_PORT is not set and no dagger CLI is installed "
            "(none on PATH)",
            hint=ENGINE_HINT,
        )
    if not (Path(cli).is_file() and os.access(cli, os.X_OK)):
        raise BackendError(f"no Dagger engine is reachable: the dagger CLI {cli!r} is not an executable file",
                           hint=ENGINE_HINT)
    if not environ.get("_EXPERIMENTAL_DAGGER_RUNNER_HOST") and not any(
        shutil.which(runtime, path=path) for runtime in _RUNTIMES
    ):
        raise BackendError(
            f"no Dagger engine is reachable: the dagger CLI {cli} needs a container runtime to start its engine, "
            f"and none of {', '.join(_RUNTIMES)} is installed",
            hint=ENGINE_HINT,
        )
    return EngineRoute(kind="cli", where=cli, connect_seconds=CLI_CONNECT_SECONDS)


def _place(ctr: dagger.Container, host: dagger.Host, mount: Mount) -> dagger.Container:
    source = host.directory(str(mount.source), exclude=[f"**/{name}" for name in mount.skip])
    if mount.read_only:
        return ctr.with_mounted_directory(str(mount.target), source, read_only=True)
    return ctr.with_directory(str(mount.target), source)


def build_base(client: dagger.Client, plan: Plan) -> dagger.Container:
    """The container every step starts from, as a lazy SDK query chain (building it does no I/O)."""
    host = client.host()
    ctr = client.container(platform=dagger.Platform(plan.platform)).from_(str(plan.base_image))
    for name, value in plan.environment:
        ctr = ctr.with_env_variable(name, value)
    ctr = _place(ctr, host, plan.wheels.wheelhouse)
    ctr = ctr.with_exec(list(plan.wheels.install))
    for mount in (plan.project, *plan.inputs):
        ctr = _place(ctr, host, mount)
    return ctr


def build_container(client: dagger.Client, plan: Plan, step: Step, *, base: dagger.Container | None = None,
                    ) -> dagger.Container:
    """The container of one step: the shared base, the step's own files read-only, its command."""
    ctr = base if base is not None else build_base(client, plan)
    host = client.host()
    if step.catalog:
        inputs = [f.target.relative_to(plan.catalog).as_posix() for f in step.catalog]
        source = host.directory(str(plan.workspace.catalog.resolve()), include=inputs)
        ctr = ctr.with_mounted_directory(str(plan.catalog), source, read_only=True)
    for file in step.files:
        only = host.directory(str(file.source.parent), include=[file.source.name])
        ctr = ctr.with_mounted_directory(str(file.target.parent), only, read_only=True)
    ctr = ctr.with_workdir(str(plan.workdir))
    return ctr.with_exec(list(step.argv), expect=dagger.ReturnType.ANY)


def build_export(ctr: dagger.Container, plan: Plan) -> dagger.Directory | None:
    """The directory of ``ctr`` holding the plan's outputs after the run (``None``: the stage has none)."""
    if plan.outputs.directory is None:
        return None
    return ctr.directory(str(plan.outputs.directory))


@contextlib.contextmanager
def _cli_for_sdk(route: EngineRoute) -> Iterator[None]:
    """Point the SDK at the CLI :func:`find_engine` chose, so it never downloads one."""
    if route.kind != "cli" or os.environ.get(_CLI_VARIABLE) == route.where:
        yield
        return
    previous = os.environ.get(_CLI_VARIABLE)
    os.environ[_CLI_VARIABLE] = route.where
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(_CLI_VARIABLE, None)
        else:
            os.environ[_CLI_VARIABLE] = previous


async def _execute(plan: Plan, route: EngineRoute) -> dict[str, Outputs]:
    config = dagger.Config(timeout=dagger.Timeout(None, connect=route.connect_seconds),
                           retry=dagger.Retry(connect=False, execute=True))
    async with contextlib.AsyncExitStack() as stack:
        try:
            with anyio.fail_after(route.connect_seconds):
                await stack.enter_async_context(dagger.connection(config))
        except TimeoutError as exc:
            raise BackendError(f"no Dagger engine answered at {route.where} within {route.connect_seconds:.0f} s",
                               hint=ENGINE_HINT) from exc
        base = build_base(dagger.dag, plan)
        results: dict[str, Outputs] = {}

        async def one(step: Step) -> None:
            results[step.name] = await _run_step(build_container(dagger.dag, plan, step, base=base), plan)

        try:
            async with anyio.create_task_group() as group:
                for step in plan.steps:
                    group.start_soon(one, step)
        except BaseExceptionGroup as failed:  # the first step's failure, as the SDK raised it
            raise failed.exceptions[0] from None
    return results


async def _run_step(ctr: dagger.Container, plan: Plan) -> Outputs:
    exit_code = await ctr.exit_code()
    stdout = await ctr.stdout()
    stderr = await ctr.stderr()
    files: dict[str, bytes] = {}
    directory = build_export(ctr, plan)
    if exit_code == 0 and directory is not None:
        for name in sorted(await directory.entries()):
            files[name] = (await directory.file(name).contents()).encode()
    return Outputs(exit_code=exit_code, files=files, stdout=tail(stdout), stderr=tail(stderr))


class DaggerBackend(Backend):
    """Runs a plan in a container on a Dagger engine (see the module docstring)."""

    name = BackendName.DAGGER

    def check_available(self) -> None:
        find_engine(os.environ)

    def run(self, stage_plan: StagePlan) -> Outputs:
        plan = container_plan(stage_plan, self.name)
        route = find_engine(os.environ)
        verify_inputs(plan)
        try:
            with _cli_for_sdk(route):
                results = anyio.run(_execute, plan, route)
        except dagger.ExecError as exc:
            what = "installing the pinned wheels" if list(exc.command) == list(plan.wheels.install) else "the stage"
            raise BackendError(
                f"{what} failed in the container (exit {exc.exit_code}): {tail(exc.stderr.strip(), 2000)}",
                hint="the base image and the wheels must fit each other: check [tool.recipe-pipeline.backends."
                "container] in pyproject.toml against requirements/run.txt",
            ) from exc
        except dagger.QueryError as exc:
            raise BackendError(f"the Dagger engine at {route.where} refused the plan: {exc}",
                               hint="check the engine's version against dagger-io's (pyproject.toml)") from exc
        except (dagger.DaggerError, OSError) as exc:
            raise BackendError(f"no Dagger engine is reachable at {route.where}: {exc}", hint=ENGINE_HINT) from exc
        return assemble(plan, results, backend=self.name.value)
