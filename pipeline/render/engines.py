"""The engine axis: what renders one job inside a worker.

Two engines take the same inputs and give the same outputs (:class:`Engine`):
:mod:`pipeline.render.engine` (Helm's SDK in this process, ``helm-python-sdk``, the default and the
only module that imports ``helm_python``) and :mod:`pipeline.render.helm_cli` (the pinned ``helm``
binary as ``helm template``, ``helm-cli``). Both render a chart archive for a :class:`RenderTarget`
(release, namespace, kube-version, api-versions) and in-tree manifest templates inside the same
:class:`~pipeline.render.wrapper.WrapperChart`. :func:`load_engine` imports the one asked for (only
worker processes load an engine).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from .wrapper import WrapperChart

__all__ = ["Engine", "RenderTarget", "load_engine"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RenderTarget:
    """What a render fixes besides the chart and its values: the release and the cluster it is for."""

    release: str
    namespace: str
    kube_version: str
    api_versions: tuple[str, ...]


class Engine(Protocol):
    """Renders like ``helm template``; failures are :class:`~pipeline.errors.RenderError` naming ``what``."""

    def template_chart(self, archive: bytes, *, values: Mapping[str, Any], target: RenderTarget, what: str) -> str:
        """What ``helm template RELEASE chart --include-crds`` prints for this chart, byte for byte."""
        ...

    def render_templates(self, chart: WrapperChart, *, values: Mapping[str, Any], target: RenderTarget,
                         what: str) -> dict[str, str]:
        """The wrapper chart's in-tree templates rendered with ``.Values = values``: catalog path → text."""
        ...


def load_engine(name: str) -> Engine:
    """The engine called ``name``: ``helm-cli``, else the in-process ``helm-python-sdk``."""
    from .identity import HELM_CLI

    if name == HELM_CLI:
        from . import helm_cli

        return helm_cli
    from . import engine

    return engine
