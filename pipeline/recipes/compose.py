"""Compose recipes: criteria → overlay chains + mixins + values precedence → :class:`Recipe`.

Inputs: a catalog root (``load_catalog``), then a loaded :class:`Catalog` and a
:class:`~pipeline.recipes.model.RecipeQuery`. Output: a :class:`~pipeline.recipes.model.Recipe`
whose components carry the chart to render (or none, for manifest-only and Kustomize
components), the fully merged values as plain data, their in-tree manifests and the catalog files
they came from, in deployment order. The result is a pure function of the catalog files and the
query: no clock, no network, no environment.

The semantics follow upstream AICR's ``pkg/recipe`` (``criteria.go``, ``metadata_store.go``,
``metadata.go``, ``components.go`` and ``resolveComponentValues``):

1. Matching is asymmetric and case-insensitive: an overlay field that is empty or ``any``
   matches every query value; a specific overlay field matches only that value (never a query
   ``any`` or absent field).
2. Of all matching overlays, those that are an ancestor (via ``base``) of another match are
   dropped. The remaining leaves are ordered by specificity (number of specific criteria), ties
   by name, and each leaf's chain ``base → … → leaf`` is merged in that order, every overlay once.
3. Constraints merge by name; componentRefs field by field (later non-empty ``type``, ``chart``,
   ``source``, ``version``, ``tag``, ``path``, ``namespace``, ``valuesFile`` win; ``overrides``
   deep-merge; ``dependencyRefs``, ``manifestFiles``, ``preManifestFiles`` are unioned).
4. Mixins named anywhere in the merged chain are applied last, in order of first mention. A mixin
   constraint already set by the chain (or an earlier mixin), or a mixin componentRef that sets
   anything but ``namespace``/``manifestFiles``/``preManifestFiles`` on a component the chain
   declares, is a conflict.
5. Registry defaults fill what the chain left empty (``defaultRepository``, ``defaultChart`` →
   bare chart name, ``defaultVersion``, ``defaultNamespace``, ``manifestFiles``).
6. Values, last wins: ``components/<name>/values.yaml`` (when the chosen ``valuesFile`` is another
   file of that component) → the chosen ``valuesFile`` → the merged inline ``overrides``. Mappings
   merge recursively; lists and scalars replace; a ``null`` stays ``null`` (Helm removes the key
   when it coalesces the values with the chart's).
7. A component whose merged ``overrides`` say ``enabled: false`` is left out (``Recipe.disabled``);
   edges to it count as satisfied. The rest come out in dependency order, ties by name.

Errors: :class:`~pipeline.errors.RecipeError` naming the recipe, the catalog file and line that
caused it, with a hint.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._yaml import set_limits
from ..errors import RecipeError
from .config import PipelineConfig, load_config
from .load import (
    BASE_OVERLAY,
    IDENTITY_FIELDS,
    ComponentRef,
    Constraint,
    Mixin,
    Overlay,
    Registry,
    load_mixins,
    load_overlays,
    load_registry,
    load_values,
    normalize_criterion,
    resolve_chains,
    to_plain,
)
from .model import CRITERIA_FIELDS, ChartRef, Component, ComponentType, Criteria, Recipe, RecipeQuery

__all__ = ["Catalog", "catalog_recipes", "compose", "deep_merge", "load_catalog"]

_SAFE_MIXIN_FIELDS = ("namespace", "manifestFiles", "preManifestFiles")


@dataclass(frozen=True, slots=True, kw_only=True)
class Catalog:
    """A loaded, cross-checked catalog: everything :func:`compose` needs, parsed once.

    ``chains`` maps each overlay name to its inheritance chain (root first, ``base`` excluded,
    the overlay itself last). ``values`` holds every values file, parsed into plain data, by
    catalog-relative path. ``criteria_values`` lists, per criteria field, the specific values
    overlays use (the vocabulary a query may use).
    """

    root: Path
    registry: Registry
    overlays: Mapping[str, Overlay]
    mixins: Mapping[str, Mixin]
    chains: Mapping[str, tuple[str, ...]]
    values: Mapping[str, Mapping[str, Any]]
    config: PipelineConfig = field(default_factory=PipelineConfig)
    criteria_values: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.root.is_absolute():
            raise ValueError("Catalog.root must be absolute")
        if BASE_OVERLAY not in self.overlays:
            raise ValueError("a catalog needs the base overlay")
        if set(self.chains) != set(self.overlays):
            raise ValueError("every overlay needs a resolved chain")

    @property
    def base(self) -> Overlay:
        return self.overlays[BASE_OVERLAY]


def load_catalog(root: Path) -> Catalog:
    """Load and cross-check the catalog at ``root`` (registry, overlays, mixins, values, config).

    Raises :class:`RecipeError` for the first problem found, with its file and line.
    """
    if not root.is_dir():
        raise RecipeError(f"catalog directory {str(root)!r} not found",
                          hint="pass the directory that holds registry.yaml, overlays/ and components/")
    root = root.resolve()
    set_limits()  # pipeline.yaml itself is read within the default limits
    config = load_config(root)  # first: its limits bound every other file of the catalog
    set_limits(files=config.limits.yaml, rendered=config.limits.rendered)
    registry = load_registry(root)
    overlays = load_overlays(root, registry)
    mixins = load_mixins(root, registry)
    chains = resolve_chains(overlays, mixins)
    refs = [ref for o in overlays.values() for ref in o.component_refs]
    refs += [ref for m in mixins.values() for ref in m.component_refs]
    files = {ref.values_file for ref in refs if ref.values_file}
    files |= {_default_values(n) for n in registry.components if (root / _default_values(n)).is_file()}
    catalog = Catalog(
        root=root, registry=registry, overlays=overlays, mixins=mixins, chains=chains,
        values=load_values(root, files), config=config, criteria_values=_criteria_values(overlays),
    )
    for query in config.recipes or ():
        _check_query(catalog, query, path=config.path, line=config.recipe_lines.get(query.name))
    return catalog


def catalog_recipes(catalog: Catalog) -> tuple[RecipeQuery, ...]:
    """The catalog's recipes: those of ``pipeline.yaml``, else one per leaf overlay.

    A leaf overlay is one no other overlay inherits from; its recipe is named after it and
    queries its own criteria. Sorted by name.
    """
    if catalog.config.recipes is not None:
        return catalog.config.recipes
    parents = {o.parent for o in catalog.overlays.values()}
    return tuple(
        RecipeQuery(name=o.name, criteria=o.criteria)
        for name, o in sorted(catalog.overlays.items())
        if o.criteria is not None and name != BASE_OVERLAY and name not in parents
    )


def compose(catalog: Catalog, query: RecipeQuery) -> Recipe:
    """Compose the recipe ``query`` asks for (see the module docstring for the rules)."""
    criteria = _normalize(query.criteria)
    _check_query(catalog, RecipeQuery(name=query.name, criteria=criteria), path=None, line=None)
    merge = _Merge(catalog, recipe=query.name)
    merge.overlay(catalog.base)
    for leaf in _leaves(catalog, criteria):
        for name in catalog.chains[leaf.name]:
            if name not in merge.applied:
                merge.overlay(catalog.overlays[name])
    merge.apply_mixins()
    return merge.result(criteria)


def deep_merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """``top`` over ``base``: mappings merge recursively, anything else in ``top`` replaces.

    A ``None`` in ``top`` is kept as ``None``. Neither input is modified; unchanged subtrees are
    shared with the inputs, so copy the result (``to_plain``) before handing it out.
    """
    out = dict(base)
    for key, value in top.items():
        old = out.get(key)
        if isinstance(value, Mapping) and isinstance(old, Mapping):
            out[key] = deep_merge(old, value)
        else:
            out[key] = value
    return out


# --------------------------------------------------------------------------------------------
# Matching
# --------------------------------------------------------------------------------------------


def _normalize(criteria: Criteria) -> Criteria:
    return Criteria(**{name: normalize_criterion(getattr(criteria, name)) for name in CRITERIA_FIELDS})


def _matches(overlay: Criteria, query: Criteria) -> bool:
    for name in CRITERIA_FIELDS:
        want = getattr(overlay, name)
        if want is not None and want != getattr(query, name):
            return False
    return True


def _specificity(criteria: Criteria) -> int:
    return sum(getattr(criteria, name) is not None for name in CRITERIA_FIELDS)


def _leaves(catalog: Catalog, criteria: Criteria) -> list[Overlay]:
    matches = [
        o for name, o in catalog.overlays.items()
        if name != BASE_OVERLAY and o.criteria is not None and _matches(o.criteria, criteria)
    ]
    ancestors = {a for o in matches for a in catalog.chains[o.name][:-1]}
    leaves = [o for o in matches if o.name not in ancestors]
    leaves.sort(key=lambda o: (_specificity(o.criteria or Criteria()), o.name))
    return leaves


def _criteria_values(overlays: Mapping[str, Overlay]) -> dict[str, frozenset[str]]:
    seen: dict[str, set[str]] = {name: set() for name in CRITERIA_FIELDS}
    for overlay in overlays.values():
        if overlay.criteria is not None:
            for name, value in overlay.criteria.as_dict().items():
                seen[name].add(value)
    return {name: frozenset(values) for name, values in seen.items()}


def _check_query(catalog: Catalog, query: RecipeQuery, *, path: str | None, line: int | None) -> None:
    """A query value no overlay uses can only be a typo (upstream validates against the same set)."""
    for name, value in _normalize(query.criteria).as_dict().items():
        known = catalog.criteria_values.get(name, frozenset())
        if name == "nodes" or value in known:
            continue
        choices = ", ".join(sorted(known)) or "none"
        raise RecipeError(
            f"recipe {query.name!r}: {name} {value!r} is not used by any overlay",
            path=path, line=line, hint=f"use one of: {choices} (or leave {name} unset to match any)",
        )


# --------------------------------------------------------------------------------------------
# Merging
# --------------------------------------------------------------------------------------------


def _default_values(component: str) -> str:
    return f"components/{component}/values.yaml"


@dataclass(slots=True)
class _Draft:
    """A component while the chain is merged: the last non-empty value of each field, and where."""

    name: str
    type: ComponentType | None = None
    chart: str = ""
    source: str = ""
    version: str = ""
    namespace: str = ""
    values_file: str = ""
    overrides: dict[str, Any] = field(default_factory=dict)
    overrides_from: list[str] = field(default_factory=list)
    dependencies: dict[str, tuple[str, int | None]] = field(default_factory=dict)
    manifest_files: list[str] = field(default_factory=list)
    pre_manifest_files: list[str] = field(default_factory=list)
    origins: list[ComponentRef] = field(default_factory=list)
    source_at: tuple[str, int | None] | None = None

    def merge(self, ref: ComponentRef) -> None:
        self.origins.append(ref)
        if ref.type is not None:
            self.type = ref.type
        for attr in ("chart", "version", "namespace", "values_file"):
            value = getattr(ref, attr)
            if value:
                setattr(self, attr, value)
        if ref.source:
            self.source = ref.source
            self.source_at = (ref.path, ref.line_of("source"))
        if ref.overrides:
            self.overrides = deep_merge(self.overrides, ref.overrides)
            if ref.path not in self.overrides_from:
                self.overrides_from.append(ref.path)
        for dep in ref.dependency_refs:
            self.dependencies.setdefault(dep, (ref.path, ref.line_of("dependencyRefs")))
        _extend(self.manifest_files, ref.manifest_files)
        _extend(self.pre_manifest_files, ref.pre_manifest_files)

    @property
    def first(self) -> ComponentRef:
        return self.origins[0]


def _extend(items: list[str], more: tuple[str, ...]) -> None:
    for item in more:
        if item not in items:
            items.append(item)


class _Merge:
    """The mutable state of one composition; :meth:`result` freezes it into a Recipe."""

    def __init__(self, catalog: Catalog, *, recipe: str) -> None:
        self.catalog = catalog
        self.recipe = recipe
        self.applied: list[str] = []
        self.mixins: list[str] = []
        self.constraints: dict[str, Constraint] = {}
        self.drafts: dict[str, _Draft] = {}
        self.files: set[str] = {catalog.registry.path}

    def overlay(self, overlay: Overlay) -> None:
        self.applied.append(overlay.name)
        self.files.add(overlay.path)
        for constraint in overlay.constraints:
            self.constraints[constraint.name] = constraint
        for ref in overlay.component_refs:
            self.drafts.setdefault(ref.name, _Draft(name=ref.name)).merge(ref)
        _extend(self.mixins, overlay.mixins)

    def apply_mixins(self) -> None:
        for name in self.mixins:
            mixin = self.catalog.mixins[name]
            self.files.add(mixin.path)
            for constraint in mixin.constraints:
                if constraint.name in self.constraints:
                    taken = self.constraints[constraint.name]
                    raise RecipeError(
                        f"recipe {self.recipe!r}: mixin {name!r} constraint {constraint.name!r} "
                        f"conflicts with the one in {taken.path}:{taken.line}",
                        path=mixin.path, line=constraint.line,
                        hint="a mixin may not redefine a constraint: drop it from the overlay or the mixin",
                    )
            for ref in mixin.component_refs:
                draft = self.drafts.get(ref.name)
                offending = next((f for f in IDENTITY_FIELDS if f in ref.set_fields), None)
                if draft is not None and offending is not None:
                    raise RecipeError(
                        f"recipe {self.recipe!r}: mixin {name!r} sets {offending!r} on component "
                        f"{ref.name!r}, which the overlay chain already declares "
                        f"({draft.first.path}:{draft.first.line})",
                        path=mixin.path, line=ref.line_of(offending),
                        hint=f"a mixin may only add {', '.join(_SAFE_MIXIN_FIELDS)} to a component an "
                        f"overlay declares; set {offending!r} in an overlay instead",
                    )
            for constraint in mixin.constraints:
                self.constraints[constraint.name] = constraint
            for ref in mixin.component_refs:
                self.drafts.setdefault(ref.name, _Draft(name=ref.name)).merge(ref)

    def result(self, criteria: Criteria) -> Recipe:
        disabled = [n for n in sorted(self.drafts) if self.drafts[n].overrides.get("enabled") is False]
        enabled = set(self.drafts) - set(disabled)
        components = tuple(self._component(self.drafts[name], enabled) for name in self._order(enabled))
        for comp in components:
            self.files.update(comp.values_files, comp.manifest_files, comp.pre_manifest_files)
        return Recipe(
            name=self.recipe, catalog=self.catalog.root, criteria=criteria, overlays=tuple(self.applied),
            mixins=tuple(self.mixins), components=components, input_files=tuple(sorted(self.files)),
            kube_version=self.catalog.config.kube_version, api_versions=self.catalog.config.api_versions,
            constraints={n: self.constraints[n].value for n in sorted(self.constraints)},
            disabled=tuple(disabled), config_inputs=self.catalog.config.render_inputs(self.recipe),
        )

    def _component(self, draft: _Draft, enabled: set[str]) -> Component:
        entry = self.catalog.registry.components[draft.name]
        first = draft.first
        what = f"recipe {self.recipe!r}: component {draft.name!r}"
        kind = draft.type or entry.type
        namespace = draft.namespace or entry.namespace
        if not namespace:
            raise RecipeError(
                f"{what} has no namespace", path=first.path, line=first.line,
                hint="set helm.defaultNamespace in registry.yaml or 'namespace:' on the componentRef",
            )
        manifests = tuple(draft.manifest_files) or entry.manifest_files
        chart: ChartRef | None = None
        if kind is ComponentType.HELM:
            repository = draft.source or entry.repository
            if repository:
                version = draft.version or entry.version
                if not version:
                    raise RecipeError(
                        f"{what}: chart from {repository!r} has no version", path=first.path, line=first.line,
                        hint="pin it: 'version:' on the componentRef or helm.defaultVersion in registry.yaml",
                    )
                self._check_local(repository, draft, what=what)
                chart = ChartRef(repository=repository, name=draft.chart or entry.chart_name or draft.name,
                                 version=version)
            elif draft.chart:
                raise RecipeError(
                    f"{what}: chart {draft.chart!r} has no source repository", path=first.path,
                    line=first.line, hint="set 'source:' (or helm.defaultRepository), or drop 'chart:'",
                )
            elif not manifests:
                raise RecipeError(
                    f"{what} has nothing to deploy: no chart repository and no manifestFiles",
                    path=first.path, line=first.line,
                    hint="set helm.defaultRepository in registry.yaml, or list manifestFiles",
                )
        values_files: list[str] = []
        if draft.values_file:
            default = _default_values(draft.name)
            if draft.values_file != default and default in self.catalog.values:
                values_files.append(default)
            values_files.append(draft.values_file)
        values: dict[str, Any] = {}
        for rel in values_files:
            values = deep_merge(values, self.catalog.values[rel])
        if draft.overrides:
            values = deep_merge(values, draft.overrides)
        origins: list[str] = []
        _extend(origins, tuple(ref.path for ref in draft.origins))
        return Component(
            name=draft.name, type=kind, namespace=namespace, chart=chart, values=to_plain(values),
            values_files=tuple(values_files), overrides_from=tuple(draft.overrides_from),
            manifest_files=manifests, pre_manifest_files=tuple(draft.pre_manifest_files),
            dependency_refs=tuple(d for d in draft.dependencies if d in enabled), origin_files=tuple(origins),
        )

    def _check_local(self, repository: str, draft: _Draft, *, what: str) -> None:
        """A repository that is not a URL is a catalog-relative directory of charts (our extension)."""
        if repository.startswith(("https://", "http://", "oci://")):
            return
        if draft.source_at is not None:
            path, line = draft.source_at
        else:
            entry = self.catalog.registry.components[draft.name]
            path, line = self.catalog.registry.path, entry.key_lines.get("helm.defaultRepository")
        if "://" in repository or repository.startswith("/") or ".." in repository.split("/"):
            raise RecipeError(
                f"{what}: chart repository {repository!r} is neither an http(s):// or oci:// URL nor a "
                "directory inside the catalog", path=path, line=line,
                hint="use https://…, oci://… or a catalog-relative directory such as ./charts",
            )
        if not (self.catalog.root / repository).is_dir():
            raise RecipeError(
                f"{what}: local chart directory {repository!r} not found", path=path, line=line,
                hint="create the directory (relative to the catalog root) or fix the repository",
            )

    def _order(self, enabled: set[str]) -> list[str]:
        """Deployment order: dependencies first, ties by name; unknown deps and cycles are errors."""
        for name in sorted(self.drafts):
            for dep, (path, line) in self.drafts[name].dependencies.items():
                if dep not in self.drafts:
                    raise RecipeError(
                        f"recipe {self.recipe!r}: component {name!r} depends on {dep!r}, which the "
                        "recipe does not include", path=path, line=line,
                        hint=f"add {dep!r} to an overlay or mixin, or drop it from dependencyRefs",
                    )
        self._check_cycles()
        waiting = {
            name: {d for d in self.drafts[name].dependencies if d in enabled} for name in sorted(enabled)
        }
        ready = [name for name, deps in waiting.items() if not deps]
        heapq.heapify(ready)
        order: list[str] = []
        while ready:
            name = heapq.heappop(ready)
            order.append(name)
            for other, deps in waiting.items():
                if name in deps:
                    deps.discard(name)
                    if not deps:
                        heapq.heappush(ready, other)
        return order

    def _check_cycles(self) -> None:
        state: dict[str, int] = {}  # 1 = on the current path, 2 = done
        path: list[str] = []

        def visit(name: str) -> None:
            state[name] = 1
            path.append(name)
            for dep in self.drafts[name].dependencies:
                if state.get(dep) == 1:
                    loop = [*path[path.index(dep):], dep]
                    where, line = self.drafts[loop[0]].dependencies[loop[1]]
                    raise RecipeError(
                        f"recipe {self.recipe!r}: dependency cycle {' -> '.join(loop)}",
                        path=where, line=line,
                        hint="remove one of these dependencyRefs: components must form an acyclic graph",
                    )
                if dep not in state:
                    visit(dep)
            path.pop()
            state[name] = 2

        for name in sorted(self.drafts):
            if name not in state:
                visit(name)

