"""Records of a composed recipe: what every later stage consumes.

A :class:`Recipe` is the result of composition: the overlay chain, the criteria, the engine
options, and for each component the chart to render (or none, for manifest-only components), the
merged values, and the in-tree manifest files. Every path is relative to the catalog root and
uses ``/``; ``Recipe.catalog`` is the only absolute path and is never written to a lock.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_API_VERSIONS",
    "DEFAULT_KUBE_VERSION",
    "ChartRef",
    "Component",
    "ComponentType",
    "Criteria",
    "Recipe",
    "RecipeQuery",
]

#: What upstream AICR passes to Helm (`--kube-version 1.33.0 --api-versions ...`).
DEFAULT_KUBE_VERSION = "1.33.0"
DEFAULT_API_VERSIONS: tuple[str, ...] = ("resource.k8s.io/v1", "resource.k8s.io/v1beta1")

CRITERIA_FIELDS: tuple[str, ...] = ("service", "accelerator", "os", "intent", "platform", "nodes")


class ComponentType(enum.StrEnum):
    HELM = "Helm"
    KUSTOMIZE = "Kustomize"


@dataclass(frozen=True, slots=True, kw_only=True)
class Criteria:
    """A criteria set; ``None`` (absent) and ``"any"`` both mean "any" for an overlay."""

    service: str | None = None
    accelerator: str | None = None
    os: str | None = None
    intent: str | None = None
    platform: str | None = None
    nodes: str | None = None

    def as_dict(self) -> dict[str, str]:
        """Only the set fields, lower-cased, for locks and listings."""
        out: dict[str, str] = {}
        for name in CRITERIA_FIELDS:
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class RecipeQuery:
    """A named criteria query: one recipe of the catalog."""

    name: str
    criteria: Criteria


@dataclass(frozen=True, slots=True, kw_only=True)
class ChartRef:
    """Where a component's chart comes from, as written in the catalog.

    ``repository`` is ``https://…`` (an HTTP chart repo), ``oci://…`` (an OCI registry
    namespace) or a catalog-relative directory (``./charts``) holding chart directories or
    ``.tgz`` archives. ``name`` is the bare chart name (alias prefixes such as ``nvidia/`` are
    stripped). ``version`` is exactly as pinned.
    """

    repository: str
    name: str
    version: str

    @property
    def is_oci(self) -> bool:
        return self.repository.startswith("oci://")

    @property
    def is_http(self) -> bool:
        return self.repository.startswith(("https://", "http://"))

    @property
    def is_local(self) -> bool:
        return not (self.is_oci or self.is_http)

    def display(self) -> str:
        sep = "/" if self.is_oci or self.is_local else " "
        return f"{self.repository.rstrip('/')}{sep}{self.name}@{self.version}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Component:
    """One component of a composed recipe.

    ``values`` is the fully merged values mapping (registry/base valuesFile → overlay valuesFile →
    inline overrides), plain dicts and lists only. ``values_files`` lists every values file that
    contributed, in precedence order. ``overrides_from`` lists the overlay/mixin files whose inline
    ``overrides`` contributed. ``origin_files`` are the catalog files that declared this component.
    """

    name: str
    type: ComponentType
    namespace: str
    chart: ChartRef | None
    values: Mapping[str, Any]
    values_files: tuple[str, ...] = ()
    overrides_from: tuple[str, ...] = ()
    manifest_files: tuple[str, ...] = ()
    pre_manifest_files: tuple[str, ...] = ()
    dependency_refs: tuple[str, ...] = ()
    origin_files: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Recipe:
    """A composed recipe: chain, criteria, engine options and components (in deployment order).

    ``input_files`` is every catalog-relative file the recipe depends on (registry, overlays and
    mixins of the chain, values files, manifests; not ``pipeline.yaml``, whose render-relevant parts
    are ``config_inputs``); local chart trees are hashed by the fetch stage.
    """

    name: str
    catalog: Path
    criteria: Criteria
    overlays: tuple[str, ...]
    mixins: tuple[str, ...]
    components: tuple[Component, ...]
    input_files: tuple[str, ...]
    kube_version: str = DEFAULT_KUBE_VERSION
    api_versions: tuple[str, ...] = DEFAULT_API_VERSIONS
    constraints: Mapping[str, str] = field(default_factory=dict)
    #: Components the chain declares but switches off (``overrides: {enabled: false}``); they are
    #: not in ``components`` and are neither rendered nor locked.
    disabled: tuple[str, ...] = ()
    #: The parts of ``pipeline.yaml`` that change the render, by key (``spec.kubeVersion`` …): lock
    #: inputs in place of the file, so mirror and registry settings never make a lock stale.
    config_inputs: Mapping[str, Any] = field(default_factory=dict)

    def component(self, name: str) -> Component:
        for comp in self.components:
            if comp.name == name:
                return comp
        raise KeyError(name)
