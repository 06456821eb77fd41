"""Execution backends: where a stage runs. ``local`` (default, in-process with sandboxed render
workers), ``dagger`` (containers through the Dagger SDK, an optional dependency), and ``podman`` /
``docker`` (containers through the Docker-compatible CLI).

The CLI calls :func:`run_on` for every backend, the local one included: it picks the backend
(:func:`get_backend`, or the one it is handed), checks that the backend can run here (fast, before
any download), builds the plan once on the host (:func:`local_plan` for the local backend,
:func:`plan_for` with its container part for the others) and runs it. The CLI then prints the local
backend's :class:`LocalOutputs` (the stage's own result record), or applies a container backend's
:class:`Outputs` with :func:`write_outputs`. ``dagger`` is imported only when the Dagger backend is
asked for.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..stages import Workspace
from .interface import (
    Backend,
    BackendName,
    ExpectedOutputs,
    Mount,
    OutputMismatchError,
    Outputs,
    Pin,
    Plan,
    Stage,
    StagePlan,
    Step,
    Wheels,
    container_plan,
)
from .local import LocalBackend, LocalOutputs
from .plan import Applied, assemble, build_plan, check_outputs, local_plan, plan_for, verify_inputs, write_outputs
from .settings import ContainerSettings, load_settings
from .wheelhouse import prepare_wheelhouse

__all__ = [
    "Applied",
    "Backend",
    "BackendName",
    "ContainerSettings",
    "ExpectedOutputs",
    "LocalBackend",
    "LocalOutputs",
    "Mount",
    "OutputMismatchError",
    "Outputs",
    "Pin",
    "Plan",
    "Stage",
    "StagePlan",
    "Step",
    "Wheels",
    "assemble",
    "build_plan",
    "check_outputs",
    "container_plan",
    "get_backend",
    "load_settings",
    "local_plan",
    "plan_for",
    "prepare_wheelhouse",
    "run_on",
    "verify_inputs",
    "write_outputs",
]


def get_backend(name: BackendName | str) -> Backend:
    """The backend called ``name``; the Dagger one needs the optional ``dagger`` dependency group."""
    from ..errors import BackendError, UsageError

    try:
        which = BackendName(name)
    except ValueError as exc:
        raise UsageError(f"no backend named {name!r}",
                         hint=f"choose one of {', '.join(b.value for b in BackendName)}") from exc
    match which:
        case BackendName.LOCAL:
            return LocalBackend()
        case BackendName.DAGGER:
            try:
                from .dagger import DaggerBackend
            except ModuleNotFoundError as exc:
                if exc.name is None or exc.name.split(".")[0] not in {"dagger", "anyio"}:
                    raise
                raise BackendError(
                    "the Dagger backend needs the Dagger Python SDK (dagger-io), which is not installed",
                    hint="pip install --require-hashes -r requirements/dagger.txt "
                    "(nox installs it when the session is given '--backend dagger')",
                ) from exc
            return DaggerBackend()
        case BackendName.PODMAN | BackendName.DOCKER:
            from .podman import ContainerCliBackend

            return ContainerCliBackend(which)


def run_on(backend: Backend | BackendName | str, stage: Stage, ws: Workspace, *, recipes: Sequence[str] = (),
           keep_going: bool = False, check: bool = False) -> tuple[StagePlan, Outputs]:
    """Run ``stage`` on ``backend`` (one, or its name): availability first (fails in seconds), then the
    plan, built once on the host, then the run. ``keep_going`` and ``check`` are ``lock``'s options,
    which only the local backend runs (:class:`~.interface.StagePlan`)."""
    chosen = backend if isinstance(backend, Backend) else get_backend(backend)
    chosen.check_available()
    plan: StagePlan
    if chosen.name is BackendName.LOCAL:
        plan = local_plan(stage, ws, recipes=recipes, keep_going=keep_going, check=check)
    else:
        plan = plan_for(stage, ws, recipes=recipes)
    return plan, chosen.run(plan)
