"""The local backend (the default): runs the stage in this process, exactly as the CLI always has.

Input: a :class:`~.interface.Plan`; only its host view is used (``workspace`` and ``recipes``): the
stage functions :func:`~pipeline.stages.lock_catalog` and :func:`~pipeline.stages.reproduce_catalog`
run here, rendering in sandboxed worker processes (:mod:`pipeline.render.pool`). The base image,
wheels and container paths of the plan are the container backends' business and are ignored.

Output: :class:`~.interface.Outputs` with the lockfiles ``lock`` wrote (by file name), exit code 0,
or for ``reproduce`` exit code 0 when every recipe reproduced and 1 otherwise; stdout carries a
one-line summary. The outputs are checked against the plan like any backend's.
"""

from __future__ import annotations

from ..stages import lock_catalog, reproduce_catalog
from .interface import Backend, BackendName, Outputs, Plan, Stage
from .plan import check_outputs

__all__ = ["LocalBackend"]


class LocalBackend(Backend):
    """Runs stages in-process with sandboxed render workers (no behaviour change from the CLI)."""

    name = BackendName.LOCAL

    def run(self, plan: Plan) -> Outputs:
        names = list(plan.recipes) or None
        match plan.stage:
            case Stage.LOCK:
                locked = lock_catalog(plan.workspace, names)
                files = {p.name: p.read_bytes() for p in (*locked.written, *locked.unchanged)}
                outputs = Outputs(exit_code=0, files=files,
                                  stdout=f"{len(locked.recipes)} recipes locked, {locked.renders} distinct renders\n")
            case Stage.REPRODUCE:
                result = reproduce_catalog(plan.workspace, names)
                passed = sum(1 for o in result.outcomes if o.ok)
                outputs = Outputs(exit_code=0 if result.ok else 1,
                                  stdout=f"{passed}/{len(result.outcomes)} recipes reproduced\n")
        check_outputs(plan, outputs, backend=self.name.value)
        return outputs
