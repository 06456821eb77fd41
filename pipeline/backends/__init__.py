"""Execution backends: where a stage runs. ``local`` (default, in-process with sandboxed render
workers), ``dagger`` (containers through the Dagger SDK, an optional dependency), and ``podman`` /
``docker`` (containers through the Docker-compatible CLI).

The CLI calls :func:`run_on`: it picks the backend (:func:`get_backend`), checks that the backend can
run here (fast, before any download), builds the :class:`Plan` (:func:`plan_for`) and runs it; the
CLI then applies the returned :class:`Outputs` with :func:`write_outputs`. ``dagger`` is imported
only when the Dagger backend is asked for.
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
    Step,
    Wheels,
)
from .local import LocalBackend
from .plan import Applied, assemble, build_plan, check_outputs, plan_for, verify_inputs, write_outputs
from .settings import ContainerSettings, load_settings
from .wheelhouse import prepare_wheelhouse

__all__ = [
    "Applied",
    "Backend",
    "BackendName",
    "ContainerSettings",
    "ExpectedOutputs",
    "LocalBackend",
    "Mount",
    "OutputMismatchError",
    "Outputs",
    "Pin",
    "Plan",
    "Stage",
    "Step",
    "Wheels",
    "assemble",
    "build_plan",
    "check_outputs",
    "get_backend",
    "load_settings",
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


def run_on(name: BackendName | str, stage: Stage, ws: Workspace, *,
           recipes: Sequence[str] = ()) -> tuple[Plan, Outputs]:
    """Run ``stage`` on the backend ``name``: availability first (fails in seconds), then plan, then run."""
    backend = get_backend(name)
    backend.check_available()
    plan = plan_for(stage, ws, recipes=recipes)
    return plan, backend.run(plan)
