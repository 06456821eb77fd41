"""The Helm engine, wrapped: the only module that imports ``helm_python``.

Inputs are chart archive bytes, a values mapping and the render options a recipe fixes (release
name, namespace, kube-version, api-versions). Outputs are plain text, never engine handles:

Both functions of :class:`~pipeline.render.engines.Engine` are here (the other engine is
:mod:`pipeline.render.helm_cli`):

* :func:`render_chart` gives what ``helm template --include-crds`` prints, byte for byte
  (:attr:`RenderedChart.template`): the kind-sorted manifest of a client-side dry-run install
  (``# Source:`` headers), the CRDs of the chart and its subcharts in ``Chart.CRDObjects`` order
  before it, and the hooks (tests included) that a dry-run install leaves out, taken from the
  engine's raw render and ordered as Helm orders them.
* :func:`render_templates` renders in-tree manifest files the way upstream AICR does: each file is a
  template of a wrapper chart named after the component, with ``.Values = {component: values}``.

Engine handles are not thread-safe (``notes/toolchain-facts.md``): each call loads its own chart
and closes it; parallelism is by process. Engine failures become :class:`RenderError` with Helm's
own message (which carries the template file and line).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python as helm
from helm_python import _native

from ..errors import RenderError
from .engines import RenderTarget
from .helm_output import sort_hooks, template_output
from .identity import ENGINE_NAME, EngineIdentity, library_identity
from .wrapper import WrapperChart

__all__ = [
    "EngineIdentity",
    "RenderedChart",
    "engine_facts",
    "engine_identity",
    "render_chart",
    "render_templates",
    "template_chart",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class RenderedChart:
    """One chart's render: the dry-run manifest, CRDs (``CRDObjects`` order), the raw render by path.

    :attr:`template` is what ``helm template --include-crds`` prints for it, byte for byte
    (:func:`pipeline.render.helm_output.template_output`).
    """

    manifest: str
    crds: tuple[tuple[str, str], ...]
    files: tuple[tuple[str, str], ...]
    chart_name: str
    chart_version: str

    @property
    def template(self) -> str:
        return template_output(self.manifest, self.crds, dict(self.files))

    @property
    def hooks(self) -> tuple[tuple[str, str], ...]:
        """``(template path, hook document)`` in Helm's order."""
        return tuple((hook.path, hook.manifest) for hook in sort_hooks(dict(self.files)))


def engine_facts() -> dict[str, str]:
    """What the loaded engine says of itself, cheaply: name, versions and the native library's path.

    Workers report these; the parent hashes the library once per run (:func:`library_digest`).
    """
    return {"name": ENGINE_NAME, "version": str(helm.__version__), "helm": str(helm.helm_sdk_version()),
            "library_path": str(Path(helm.library_path).resolve())}


def engine_identity() -> EngineIdentity:
    """Identity of the engine loaded in this process."""
    return library_identity(engine_facts())


def _translate(exc: Exception, what: str) -> RenderError:
    message = str(exc).strip() or type(exc).__name__
    return RenderError(f"{what}: Helm refused it: {message}",
                       hint="fix the template or the values named in Helm's message, then re-run")


def _load(archive: bytes, what: str) -> Any:
    try:
        return helm.Chart.load_archive(archive)
    except helm.HelmError as exc:
        raise _translate(exc, what) from exc


def render_chart(archive: bytes, *, values: Mapping[str, Any], target: RenderTarget, what: str) -> RenderedChart:
    """Render a chart archive like ``helm template --include-crds`` for ``target``'s capabilities.

    ``what`` names the chart in error messages (``component 'x' chart 'y@1.0'``).
    """
    chart = _load(archive, what)
    config = helm.Config(storage_driver="memory", namespace=target.namespace)
    try:
        metadata = chart.metadata
        options = {"dry_run": "client", "namespace": target.namespace,
                   "kube_version": target.kube_version, "api_versions": list(target.api_versions)}
        release_json = _native.call_string(
            "helm_install", config._raw(), _native.HANDLE(0), chart._raw(), None, target.release,
            json.dumps(dict(values)), json.dumps(options),
        )
        raw = _raw_render(chart, values, target)
        crds = tuple((str(c["filename"]), str(c["data"])) for c in chart.crds)
    except helm.HelmError as exc:
        raise _translate(exc, what) from exc
    finally:
        chart.close()
        config.close()
    manifest = str(json.loads(release_json)["manifest"])
    return RenderedChart(manifest=manifest, crds=crds, files=tuple(sorted(raw.items())),
                         chart_name=str(metadata["name"]), chart_version=str(metadata["version"]))


def template_chart(archive: bytes, *, values: Mapping[str, Any], target: RenderTarget, what: str) -> str:
    """What ``helm template RELEASE chart --include-crds`` prints for this chart, byte for byte."""
    return render_chart(archive, values=values, target=target, what=what).template


def _raw_render(chart: Any, values: Mapping[str, Any], target: RenderTarget) -> dict[str, str]:
    """``engine.Render`` with the capabilities options the 0.2.2 wrapper does not expose."""
    options = {"name": target.release, "namespace": target.namespace, "is_install": True,
               "kube_version": target.kube_version, "api_versions": list(target.api_versions)}
    rendered = _native.call_string("helm_render", chart._raw(), json.dumps(dict(values)), json.dumps(options))
    result: dict[str, str] = json.loads(rendered)
    return result


def render_templates(chart: WrapperChart, *, values: Mapping[str, Any], target: RenderTarget,
                     what: str) -> dict[str, str]:
    """Render in-tree manifest templates inside their wrapper chart; returns catalog path → text.

    The wrapper chart is built in memory (deterministic tar) and rendered offline with the same
    capabilities as the charts.
    """
    loaded = _load(chart.archive(), what)
    try:
        # The wrapper chart has no values of its own, so `.Values` is exactly `values`, as upstream.
        raw = _raw_render(loaded, values, target)
    except helm.HelmError as exc:
        raise _translate(exc, what) from exc
    finally:
        loaded.close()
    return chart.by_path(raw.items())
