"""The local backend (the default): runs the stage in this process, exactly as the CLI always has.

Input: a :class:`~.interface.StagePlan` (:func:`~.plan.local_plan`, or the host view of any plan):
its stage, workspace, recipes and ``lock`` options (``keep_going``, ``check``). The stage functions
:func:`~pipeline.stages.lock_catalog` and :func:`~pipeline.stages.reproduce_catalog` run here,
rendering in sandboxed worker processes (:mod:`pipeline.render.pool`), reporting progress to the
``progress`` the backend was made with and asking registries with its ``credentials``. The base
image, wheels and container paths of a container plan are the container backends' business and are
ignored. ``lock`` writes its lockfiles itself, all together and atomically, as the stage does.

Output: :class:`LocalOutputs`, the stage's own result record (the CLI prints its report from it:
divergences, cache hits, skipped recipes) with the lockfiles ``lock`` wrote or left unchanged (by
file name) and the exit code the CLI returns: ``lock`` 1 when a recipe was skipped (``keep_going``)
or, with ``check``, when a lockfile would change; ``reproduce`` 1 when a recipe did not reproduce;
0 otherwise. stdout carries a one-line summary. The outputs are checked against the plan like any
backend's.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..progress import SILENT, Progress
from ..registry import DockerConfig
from ..stages import LockResult, ReproduceResult, lock_catalog, reproduce_catalog
from .interface import Backend, BackendName, Outputs, Stage, StagePlan
from .plan import check_outputs

__all__ = ["LocalBackend", "LocalOutputs"]


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalOutputs(Outputs):
    """The local backend's :class:`~.interface.Outputs`, with the stage's own result record."""

    result: LockResult | ReproduceResult


class LocalBackend(Backend):
    """Runs stages in-process with sandboxed render workers (no behaviour change from the CLI)."""

    name = BackendName.LOCAL

    def __init__(self, *, progress: Progress = SILENT, credentials: DockerConfig | None = None) -> None:
        self.progress = progress
        self.credentials = credentials

    def run(self, plan: StagePlan) -> LocalOutputs:
        names = list(plan.recipes) or None
        outputs: LocalOutputs
        match plan.stage:
            case Stage.LOCK:
                locked = lock_catalog(plan.workspace, names, credentials=self.credentials, progress=self.progress,
                                      keep_going=plan.keep_going, check=plan.check, loaded=plan.loaded)
                # With ``check`` nothing was written: only the unchanged lockfiles are on disk as locked.
                kept = locked.unchanged if locked.checked_only else (*locked.written, *locked.unchanged)
                changes = locked.checked_only and bool(locked.written or locked.removed)
                outputs = LocalOutputs(exit_code=1 if locked.skipped or changes else 0, result=locked,
                                       files={p.name: p.read_bytes() for p in kept},
                                       stdout=f"{len(locked.recipes)} recipes locked, {locked.renders} distinct "
                                       "renders\n")
            case Stage.REPRODUCE:
                reproduced = reproduce_catalog(plan.workspace, names, progress=self.progress, loaded=plan.loaded)
                passed = sum(1 for o in reproduced.outcomes if o.ok)
                outputs = LocalOutputs(exit_code=0 if reproduced.ok else 1, result=reproduced,
                                       stdout=f"{passed}/{len(reproduced.outcomes)} recipes reproduced\n")
        # lock_catalog sealed every lockfile it returns (an unchanged one is byte-equal to what it sealed)
        check_outputs(plan, outputs, backend=self.name.value, sealed_here=True)
        return outputs
