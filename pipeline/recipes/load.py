"""Parse the files of an AICR-format catalog into validated records.

Inputs: a catalog root holding ``registry.yaml`` (kind ``ComponentRegistry``), ``overlays/*.yaml``
(kind ``RecipeMetadata``, ``base.yaml`` among them), ``mixins/*.yaml`` (kind ``RecipeMixin``) and
the values and manifest files they name under ``components/``. Both apiVersions
``aicr.nvidia.com/v1alpha1`` and ``aicr.run/v1alpha2`` are read.

Outputs: frozen records (:class:`Registry`, :class:`Overlay`, :class:`Mixin`, :class:`ComponentRef`,
:class:`Constraint`) and the parsed values files as plain ``dict`` trees. A record that exists is
valid: documents are checked strictly (unknown keys, wrong types), every componentRef names a
registry component, every values and manifest file exists inside the catalog, every ``base`` and
mixin exists, and every inheritance chain is acyclic and at most :data:`MAX_CHAIN_DEPTH` deep.

Errors: :class:`~pipeline.errors.RecipeError` with the catalog-relative ``path``, the ``line`` and a
``hint`` with the fix. Each file is parsed once; nothing but the catalog directory is read.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from .._checks import check_keys, line_of, suggest, type_name
from .._yaml import YamlMap, load_file
from ..errors import RecipeError
from .model import CRITERIA_FIELDS, ComponentType, Criteria

__all__ = [
    "AICR_API_VERSIONS",
    "BASE_OVERLAY",
    "MAX_CHAIN_DEPTH",
    "ComponentRef",
    "Constraint",
    "Mixin",
    "Overlay",
    "Registry",
    "RegistryEntry",
    "load_mixins",
    "load_overlays",
    "load_registry",
    "load_values",
    "resolve_chains",
]

#: apiVersions of catalog documents this reader understands (upstream's old and current group).
AICR_API_VERSIONS: tuple[str, ...] = ("aicr.nvidia.com/v1alpha1", "aicr.run/v1alpha2")
#: The root overlay every chain starts from (``overlays/base.yaml``).
BASE_OVERLAY = "base"
#: Longest inheritance chain (overlays between ``base`` and a leaf, the leaf included).
MAX_CHAIN_DEPTH = 10

REGISTRY_FILE = "registry.yaml"
OVERLAY_DIR = "overlays"
MIXIN_DIR = "mixins"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_HEADER_KEYS = ("apiVersion", "kind", "metadata", "spec")
_OVERLAY_SPEC_KEYS = ("base", "criteria", "mixins", "constraints", "componentRefs", "validation")


def _check_name(name: str, what: str) -> None:
    """A record's own invariant (the loader has already refused such a name with file and line)."""
    if not _NAME.match(name):
        raise ValueError(f"invalid {what} name {name!r}")
_MIXIN_SPEC_KEYS = ("constraints", "componentRefs")
_CONSTRAINT_KEYS = ("name", "value", "severity", "remediation", "unit")
_VALIDATION_PHASES = ("readiness", "deployment", "performance", "conformance")
#: Every componentRef field upstream knows. ``cleanup``, ``expectedResources`` and the health-check
#: fields only steer upstream's validators; they are type-checked and otherwise not used here.
_REF_KEYS = (
    "name", "namespace", "chart", "type", "source", "version", "tag", "valuesFile", "overrides",
    "patches", "dependencyRefs", "manifestFiles", "preManifestFiles", "path", "cleanup",
    "expectedResources", "healthCheckAsserts", "healthCheckSkip",
)
_REF_STR_KEYS = ("namespace", "chart", "type", "source", "version", "tag", "path", "healthCheckAsserts")
#: Fields a mixin may not set on a component the chain already declares, in upstream's order
#: (pkg/recipe/metadata_store.go, mixinComponentRefSafeForMerge). Only ``namespace``,
#: ``manifestFiles`` and ``preManifestFiles`` are safe to add.
IDENTITY_FIELDS: tuple[str, ...] = (
    "chart", "type", "source", "version", "tag", "path", "valuesFile", "overrides", "patches",
    "dependencyRefs", "cleanup", "expectedResources", "healthCheckAsserts", "healthCheckSkip",
)
_REGISTRY_KEYS = ("apiVersion", "kind", "components")
_HELM_KEYS = ("defaultRepository", "defaultChart", "defaultVersion", "defaultNamespace")
_KUSTOMIZE_KEYS = ("defaultSource", "defaultPath", "defaultTag")


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistryEntry:
    """One component of ``registry.yaml``: its type and Helm (or Kustomize) defaults.

    ``repository`` is ``""`` for a manifest-only component. ``chart`` is ``defaultChart`` as
    written (``nvidia/gpu-operator``); :attr:`chart_name` is the bare chart name.
    """

    name: str
    type: ComponentType
    repository: str = ""
    chart: str = ""
    version: str = ""
    namespace: str = ""
    manifest_files: tuple[str, ...] = ()
    kustomize_source: str = ""
    kustomize_path: str = ""
    kustomize_tag: str = ""
    line: int | None = None
    key_lines: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_name(self.name, "component")

    @property
    def chart_name(self) -> str:
        """The chart name without repository alias (``nvidia/gpu-operator`` → ``gpu-operator``)."""
        return self.chart.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True, slots=True, kw_only=True)
class Registry:
    """``registry.yaml``: every component a recipe may use, by name."""

    api_version: str
    components: Mapping[str, RegistryEntry]
    path: str = REGISTRY_FILE

    def get(self, name: str) -> RegistryEntry | None:
        return self.components.get(name)


@dataclass(frozen=True, slots=True, kw_only=True)
class Constraint:
    """A named deployment assumption (``K8s.server.version: '>= 1.30'``) and where it was written."""

    name: str
    value: str
    path: str
    line: int | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("constraint without a name")


@dataclass(frozen=True, slots=True, kw_only=True)
class ComponentRef:
    """One ``componentRefs`` entry of an overlay or mixin, as written (empty string = not set).

    ``set_fields`` names the YAML fields given a non-empty value, which is what upstream's mixin
    conflict rule looks at. ``path`` and ``key_lines`` say where each field was written.
    """

    name: str
    path: str
    line: int | None = None
    type: ComponentType | None = None
    chart: str = ""
    source: str = ""
    version: str = ""
    tag: str = ""
    kustomize_path: str = ""
    namespace: str = ""
    values_file: str = ""
    overrides: Mapping[str, Any] = field(default_factory=dict)
    dependency_refs: tuple[str, ...] = ()
    manifest_files: tuple[str, ...] = ()
    pre_manifest_files: tuple[str, ...] = ()
    set_fields: frozenset[str] = frozenset()
    key_lines: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_name(self.name, "component")

    def line_of(self, key: str) -> int | None:
        """Line of ``key`` in :attr:`path`, falling back to the entry's own line."""
        return self.key_lines.get(key, self.line)


@dataclass(frozen=True, slots=True, kw_only=True)
class Overlay:
    """One ``overlays/*.yaml`` document (kind ``RecipeMetadata``).

    ``base`` is the parent as written: ``""`` means the ``base`` overlay (except for the base
    overlay itself, which has no parent). ``criteria`` is ``None`` for an overlay that never
    matches a query (``base``).
    """

    name: str
    path: str
    api_version: str
    base: str = ""
    criteria: Criteria | None = None
    mixins: tuple[str, ...] = ()
    constraints: tuple[Constraint, ...] = ()
    component_refs: tuple[ComponentRef, ...] = ()
    validation: Mapping[str, Any] = field(default_factory=dict)
    key_lines: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_name(self.name, "overlay")
        if self.name == BASE_OVERLAY and self.base:
            raise ValueError("the base overlay has no parent")

    @property
    def parent(self) -> str | None:
        """The overlay this one inherits from; ``None`` for the base overlay."""
        if self.name == BASE_OVERLAY:
            return None
        return self.base or BASE_OVERLAY

    def line_of(self, key: str) -> int | None:
        return self.key_lines.get(key)


@dataclass(frozen=True, slots=True, kw_only=True)
class Mixin:
    """One ``mixins/*.yaml`` document (kind ``RecipeMixin``): constraints and componentRefs only."""

    name: str
    path: str
    api_version: str
    constraints: tuple[Constraint, ...] = ()
    component_refs: tuple[ComponentRef, ...] = ()

    def __post_init__(self) -> None:
        _check_name(self.name, "mixin")


# --------------------------------------------------------------------------------------------
# Small checkers shared with config.py: each raises RecipeError with path, line and hint.
# --------------------------------------------------------------------------------------------


def expect_mapping(value: Any, *, what: str, path: str, line: int | None, hint: str) -> YamlMap:
    """``value`` as a mapping, or a RecipeError saying what it was instead."""
    if isinstance(value, YamlMap):
        return value
    if isinstance(value, dict):  # pragma: no cover - every mapping from load_file is a YamlMap
        out = YamlMap(value)
        out.line = line
        return out
    raise RecipeError(f"{what} must be a mapping, not a {type_name(value)}", path=path, line=line, hint=hint)


def get_str(node: YamlMap, key: str, *, what: str, path: str, required: bool = False) -> str:
    """The string at ``key`` (``''`` when absent or null); numbers and booleans are refused."""
    value = node.get(key)
    if value is None:
        if required:
            raise RecipeError(
                f"{what}: '{key}' is missing", path=path, line=line_of(node),
                hint=f"add '{key}: <value>' to {what}",
            )
        return ""
    if not isinstance(value, str):
        raise RecipeError(
            f"{what}: '{key}' must be a string, not a {type_name(value)} ({value!r})",
            path=path, line=line_of(node, key),
            hint=f"quote the value: {key}: \"{value}\"" if isinstance(value, int | float) else None,
        )
    if required and not value.strip():
        raise RecipeError(f"{what}: '{key}' is empty", path=path, line=line_of(node, key),
                          hint=f"give '{key}' a value")
    return value


def get_str_list(node: YamlMap, key: str, *, what: str, path: str) -> tuple[str, ...]:
    """The list of non-empty strings at ``key`` (``()`` when absent or null)."""
    value = node.get(key)
    if value is None:
        return ()
    if not isinstance(value, list):
        raise RecipeError(
            f"{what}: '{key}' must be a list, not a {type_name(value)}", path=path,
            line=line_of(node, key), hint=f"write '{key}:' followed by '- <item>' lines",
        )
    out: list[str] = []
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise RecipeError(
                f"{what}: every '{key}' item must be a non-empty string, not {item!r}",
                path=path, line=line_of(node, key), hint=f"list only names or paths under '{key}'",
            )
        out.append(item)
    return tuple(out)


def check_header(doc: Any, *, kind: str, api_versions: Iterable[str], path: str, hint: str) -> YamlMap:
    """Check ``apiVersion`` and ``kind`` of a whole document; return it as a mapping."""
    versions = tuple(api_versions)
    node = expect_mapping(doc, what="the document", path=path, line=line_of(doc) or 1,
                          hint=f"a {kind} document is a YAML mapping that starts with apiVersion and kind")
    api_version = node.get("apiVersion")
    if api_version not in versions:
        shown = "missing" if api_version is None else f"{api_version!r} is not supported"
        raise RecipeError(
            f"apiVersion {shown}", path=path, line=line_of(node, "apiVersion"),
            hint=f"set apiVersion to {' or '.join(repr(v) for v in versions)}",
        )
    actual = node.get("kind")
    if actual != kind:
        shown = "missing" if actual is None else f"{actual!r} is not {kind!r}"
        raise RecipeError(f"kind {shown}", path=path, line=line_of(node, "kind"), hint=hint)
    return node


def parse_criteria(value: Any, *, what: str, path: str, line: int | None) -> Criteria:
    """A ``criteria`` mapping as :class:`Criteria`: lower-cased, ``any``/empty/``0`` → ``None``."""
    node = expect_mapping(value, what=f"{what}: criteria", path=path, line=line,
                          hint=f"criteria is a mapping of {', '.join(CRITERIA_FIELDS)}")
    check_keys(node, CRITERIA_FIELDS, what=f"{what}: criteria", path=path)
    fields: dict[str, str | None] = {}
    for name in CRITERIA_FIELDS:
        raw = node.get(name)
        if name == "nodes" and isinstance(raw, int) and not isinstance(raw, bool):
            if raw < 0:
                raise RecipeError(f"{what}: criteria nodes must be 0 or more, not {raw}", path=path,
                                  line=line_of(node, name), hint="use a node count, or 0 for any")
            fields[name] = normalize_criterion(str(raw))
            continue
        if raw is not None and not isinstance(raw, str):
            raise RecipeError(
                f"{what}: criteria {name} must be a string, not a {type_name(raw)} ({raw!r})",
                path=path, line=line_of(node, name), hint=f"quote the value: {name}: \"{raw}\"",
            )
        fields[name] = normalize_criterion(raw) if raw is not None else None
    return Criteria(**fields)


def normalize_criterion(value: str | None) -> str | None:
    """Upstream's normalisation: trimmed, lower-case; ``''``, ``any`` and nodes ``0`` mean any."""
    if value is None:
        return None
    text = value.strip().lower()
    return None if text in ("", "any", "0") else text


def catalog_file(root: Path, value: str, *, what: str, path: str, line: int | None) -> str:
    """Normalise a catalog-relative file reference and check it is a file inside the catalog."""
    pure = PurePosixPath(value)
    if "\\" in value or pure.is_absolute() or ".." in pure.parts or not pure.parts:
        raise RecipeError(
            f"{what} {value!r} is not a path inside the catalog", path=path, line=line,
            hint="write paths relative to the catalog root with '/', e.g. components/<name>/values.yaml",
        )
    rel = pure.as_posix()
    target = root / rel
    if not target.is_file():
        raise RecipeError(
            f"{what} {rel!r} not found", path=path, line=line,
            hint=f"create {rel} or fix the path (it is relative to the catalog root)",
        )
    if not target.resolve().is_relative_to(root.resolve()):
        raise RecipeError(f"{what} {rel!r} resolves outside the catalog", path=path, line=line,
                          hint="replace the symbolic link by the file itself")
    return rel


def to_plain(value: Any) -> Any:
    """Copy a parsed YAML tree into plain ``dict``/``list``/scalars with string keys.

    Keys become strings the way Helm's YAML→JSON conversion spells them (``true``, ``1``);
    dates become ISO strings. The result pickles and serialises to JSON.
    """
    if isinstance(value, dict):
        return {_key(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_plain(v) for v in value]
    if isinstance(value, datetime.date):
        return value.isoformat()
    return value


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "null"
    return str(key)


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------


def load_registry(root: Path) -> Registry:
    """Parse ``<root>/registry.yaml`` (kind ``ComponentRegistry``)."""
    path = REGISTRY_FILE
    if not (root / path).is_file():
        raise RecipeError(f"catalog {str(root)!r} has no {path}", path=path,
                          hint="point at a catalog root: registry.yaml, overlays/, mixins/, components/")
    doc = check_header(load_file(root / path, display=path), kind="ComponentRegistry",
                       api_versions=AICR_API_VERSIONS, path=path,
                       hint="registry.yaml holds the ComponentRegistry document (kind: ComponentRegistry)")
    check_keys(doc, _REGISTRY_KEYS, what="registry.yaml", path=path)
    items = doc.get("components")
    if not isinstance(items, list):
        raise RecipeError(f"'components' must be a list, not a {type_name(items)}", path=path,
                          line=line_of(doc, "components"), hint="list components as '- name: <name>' entries")
    entries: dict[str, RegistryEntry] = {}
    for item in items:
        entry = _registry_entry(item, root=root, path=path, line=line_of(doc, "components"))
        if entry.name in entries:
            first = entries[entry.name].line
            raise RecipeError(f"component {entry.name!r} is declared twice (first at line {first})",
                              path=path, line=entry.line, hint="keep one entry per component name")
        entries[entry.name] = entry
    return Registry(api_version=str(doc["apiVersion"]), components=entries)


def _registry_entry(item: Any, *, root: Path, path: str, line: int | None) -> RegistryEntry:
    node = expect_mapping(item, what="a registry component", path=path, line=line_of(item) or line,
                          hint="each component is a mapping with name and helm (or kustomize)")
    name = get_str(node, "name", what="a registry component", path=path, required=True)
    if not _NAME.match(name):
        raise RecipeError(f"component name {name!r} is not a valid name", path=path,
                          line=line_of(node, "name"), hint="use letters, digits, '.', '_' and '-'")
    what = f"component {name!r}"
    helm = _sub_mapping(node, "helm", _HELM_KEYS, what=what, path=path)
    kustomize = _sub_mapping(node, "kustomize", _KUSTOMIZE_KEYS, what=what, path=path)
    values = {k: get_str(helm, k, what=f"{what} helm", path=path) for k in _HELM_KEYS}
    kvalues = {k: get_str(kustomize, k, what=f"{what} kustomize", path=path) for k in _KUSTOMIZE_KEYS}
    if (values["defaultRepository"] or values["defaultChart"]) and kvalues["defaultSource"]:
        raise RecipeError(f"{what} has both helm and kustomize defaults", path=path, line=line_of(node),
                          hint="a component is either a Helm chart or a Kustomize source; keep one")
    manifests = tuple(
        catalog_file(root, f, what=f"{what}: manifest file", path=path, line=line_of(node, "manifestFiles"))
        for f in get_str_list(node, "manifestFiles", what=what, path=path)
    )
    kind = ComponentType.KUSTOMIZE if kvalues["defaultSource"] else ComponentType.HELM
    key_lines = {f"helm.{k}": n for k, n in helm.key_lines.items()}
    return RegistryEntry(
        name=name, type=kind, repository=values["defaultRepository"], chart=values["defaultChart"],
        version=values["defaultVersion"], namespace=values["defaultNamespace"], manifest_files=manifests,
        kustomize_source=kvalues["defaultSource"], kustomize_path=kvalues["defaultPath"],
        kustomize_tag=kvalues["defaultTag"], line=line_of(node), key_lines=key_lines,
    )


def _sub_mapping(node: YamlMap, key: str, allowed: tuple[str, ...], *, what: str, path: str) -> YamlMap:
    value = node.get(key)
    if value is None:
        return YamlMap()
    sub = expect_mapping(value, what=f"{what}: '{key}'", path=path, line=line_of(node, key),
                         hint=f"'{key}' takes {', '.join(allowed)}")
    check_keys(sub, allowed, what=f"{what} {key}", path=path)
    return sub


# --------------------------------------------------------------------------------------------
# Overlays and mixins
# --------------------------------------------------------------------------------------------


def load_overlays(root: Path, registry: Registry) -> dict[str, Overlay]:
    """Parse every ``overlays/*.yaml``, keyed by ``metadata.name``; ``base`` must be among them."""
    overlays: dict[str, Overlay] = {}
    for file in sorted((root / OVERLAY_DIR).glob("*.yaml")):
        path = f"{OVERLAY_DIR}/{file.name}"
        overlay = _overlay(load_file(file, display=path), root=root, path=path, registry=registry)
        if overlay.name in overlays:
            raise RecipeError(
                f"overlay name {overlay.name!r} is also used by {overlays[overlay.name].path}",
                path=path, line=overlay.line_of("name"),
                hint="give every overlay a unique metadata.name (by convention its file name)",
            )
        overlays[overlay.name] = overlay
    if BASE_OVERLAY not in overlays:
        raise RecipeError(f"{OVERLAY_DIR}/base.yaml (the overlay named 'base') not found",
                          path=f"{OVERLAY_DIR}/base.yaml",
                          hint="every catalog needs a base overlay that all chains start from")
    return overlays


def load_mixins(root: Path, registry: Registry) -> dict[str, Mixin]:
    """Parse every ``mixins/*.yaml``, keyed by ``metadata.name``."""
    mixins: dict[str, Mixin] = {}
    for file in sorted((root / MIXIN_DIR).glob("*.yaml")):
        path = f"{MIXIN_DIR}/{file.name}"
        doc = check_header(load_file(file, display=path), kind="RecipeMixin", api_versions=AICR_API_VERSIONS,
                           path=path, hint="mixins/ holds RecipeMixin documents; overlays go in overlays/")
        name = _metadata_name(doc, path=path)
        spec = _spec(doc, path=path, what=f"mixin {name!r}", allowed=_MIXIN_SPEC_KEYS)
        what = f"mixin {name!r}"
        mixin = Mixin(
            name=name, path=path, api_version=str(doc["apiVersion"]),
            constraints=_constraints(spec, what=what, path=path),
            component_refs=_component_refs(spec, what=what, path=path, root=root, registry=registry),
        )
        if name in mixins:
            raise RecipeError(f"mixin name {name!r} is also used by {mixins[name].path}", path=path,
                              line=line_of(doc.get("metadata"), "name"),
                              hint="give every mixin a unique metadata.name (by convention its file name)")
        mixins[name] = mixin
    return mixins


def _overlay(doc: Any, *, root: Path, path: str, registry: Registry) -> Overlay:
    node = check_header(doc, kind="RecipeMetadata", api_versions=AICR_API_VERSIONS, path=path,
                        hint="overlays/ holds RecipeMetadata documents; mixins (RecipeMixin) go in mixins/")
    name = _metadata_name(node, path=path)
    what = f"overlay {name!r}"
    spec = _spec(node, path=path, what=what, allowed=_OVERLAY_SPEC_KEYS)
    base = get_str(spec, "base", what=what, path=path).strip()
    if name == BASE_OVERLAY and base and base != BASE_OVERLAY:
        raise RecipeError(
            f"overlay 'base' cannot inherit from {base!r}", path=path, line=line_of(spec, "base"),
            hint="remove 'base:' from the base overlay: it is the root of every chain",
        )
    if name == BASE_OVERLAY:
        base = ""
    criteria = (
        parse_criteria(spec["criteria"], what=what, path=path, line=line_of(spec, "criteria"))
        if spec.get("criteria") is not None else None
    )
    validation = _validation(spec, what=what, path=path)
    key_lines = {k: n for k, n in spec.key_lines.items() if k in ("base", "mixins", "criteria")}
    key_lines["name"] = line_of(node.get("metadata"), "name") or 1
    return Overlay(
        name=name, path=path, api_version=str(node["apiVersion"]), base=base, criteria=criteria,
        mixins=get_str_list(spec, "mixins", what=what, path=path),
        constraints=_constraints(spec, what=what, path=path),
        component_refs=_component_refs(spec, what=what, path=path, root=root, registry=registry),
        validation=validation, key_lines=key_lines,
    )


def _metadata_name(doc: YamlMap, *, path: str) -> str:
    meta = expect_mapping(doc.get("metadata"), what="metadata", path=path,
                          line=line_of(doc, "metadata") or line_of(doc),
                          hint="add 'metadata: {name: <name>}' (by convention the file name without .yaml)")
    check_keys(meta, ("name",), what="metadata", path=path)
    name = get_str(meta, "name", what="metadata", path=path, required=True).strip()
    if not _NAME.match(name):
        raise RecipeError(
            f"metadata.name {name!r} is not a valid name", path=path, line=line_of(meta, "name"),
            hint="use letters, digits, '.', '_' and '-' (it names lockfiles)",
        )
    return name


def _spec(doc: YamlMap, *, path: str, what: str, allowed: tuple[str, ...]) -> YamlMap:
    check_keys(doc, _HEADER_KEYS, what="the document", path=path)
    spec = doc.get("spec")
    if spec is None:
        out = YamlMap()
        out.line = line_of(doc)
        return out
    node = expect_mapping(spec, what=f"{what}: spec", path=path, line=line_of(doc, "spec"),
                          hint=f"spec is a mapping of {', '.join(allowed)}")
    check_keys(node, allowed, what=f"{what} spec", path=path)
    return node


def _validation(spec: YamlMap, *, what: str, path: str) -> dict[str, Any]:
    value = spec.get("validation")
    if value is None:
        return {}
    node = expect_mapping(value, what=f"{what}: validation", path=path, line=line_of(spec, "validation"),
                          hint=f"validation is a mapping of phases: {', '.join(_VALIDATION_PHASES)}")
    check_keys(node, _VALIDATION_PHASES, what=f"{what} validation", path=path)
    plain: dict[str, Any] = to_plain(node)
    return plain


def _constraints(spec: YamlMap, *, what: str, path: str) -> tuple[Constraint, ...]:
    value = spec.get("constraints")
    if value is None:
        return ()
    if not isinstance(value, list):
        raise RecipeError(
            f"{what}: constraints must be a list, not a {type_name(value)}", path=path,
            line=line_of(spec, "constraints"), hint="write '- name: <name>' / 'value: <value>' entries",
        )
    out: list[Constraint] = []
    seen: dict[str, int | None] = {}
    for item in value:
        node = expect_mapping(item, what=f"{what}: a constraint", path=path,
                              line=line_of(item) or line_of(spec, "constraints"),
                              hint="a constraint is a mapping with name and value")
        check_keys(node, _CONSTRAINT_KEYS, what=f"{what} constraint", path=path)
        name = get_str(node, "name", what=f"{what}: a constraint", path=path, required=True)
        cwhat = f"{what}: constraint {name!r}"
        constraint = Constraint(name=name, value=get_str(node, "value", what=cwhat, path=path, required=True),
                                path=path, line=line_of(node))
        for extra in ("severity", "remediation", "unit"):
            get_str(node, extra, what=cwhat, path=path)
        if name in seen:
            raise RecipeError(f"{what}: constraint {name!r} is listed twice (first at line {seen[name]})",
                              path=path, line=constraint.line, hint="keep one entry per constraint name")
        seen[name] = constraint.line
        out.append(constraint)
    return tuple(out)


def _component_refs(
    spec: YamlMap, *, what: str, path: str, root: Path, registry: Registry
) -> tuple[ComponentRef, ...]:
    value = spec.get("componentRefs")
    if value is None:
        return ()
    if not isinstance(value, list):
        raise RecipeError(
            f"{what}: componentRefs must be a list, not a {type_name(value)}", path=path,
            line=line_of(spec, "componentRefs"), hint="write one '- name: <component>' entry per component",
        )
    out: dict[str, ComponentRef] = {}
    for item in value:
        ref = _component_ref(item, what=what, path=path, root=root, registry=registry,
                             line=line_of(spec, "componentRefs"))
        if ref.name in out:
            raise RecipeError(
                f"{what}: component {ref.name!r} is listed twice (first at line {out[ref.name].line})",
                path=path, line=ref.line, hint="merge the two entries into one",
            )
        out[ref.name] = ref
    return tuple(out.values())


def _component_ref(
    item: Any, *, what: str, path: str, root: Path, registry: Registry, line: int | None
) -> ComponentRef:
    node = expect_mapping(item, what=f"{what}: a componentRef", path=path, line=line_of(item) or line,
                          hint="a componentRef is a mapping with at least 'name'")
    name = get_str(node, "name", what=f"{what}: a componentRef", path=path, required=True).strip()
    if registry.get(name) is None:
        raise RecipeError(
            f"{what}: component {name!r} is not in registry.yaml{suggest(name, registry.components)}",
            path=path, line=line_of(node, "name"),
            hint="add the component to registry.yaml, or fix the name to one the registry declares",
        )
    cwhat = f"{what}: component {name!r}"
    check_keys(node, _REF_KEYS, what=f"{what} componentRef {name!r}", path=path)
    strs = {k: get_str(node, k, what=cwhat, path=path) for k in _REF_STR_KEYS}
    kind: ComponentType | None = None
    if strs["type"]:
        kind = _component_type(strs["type"], what=cwhat, path=path, line=line_of(node, "type"))
    values_file = ""
    if node.get("valuesFile") is not None:
        values_file = catalog_file(root, get_str(node, "valuesFile", what=cwhat, path=path),
                                   what=f"{cwhat}: values file", path=path, line=line_of(node, "valuesFile"))
    overrides: dict[str, Any] = {}
    if node.get("overrides") is not None:
        overrides = to_plain(expect_mapping(
            node["overrides"], what=f"{cwhat}: overrides", path=path, line=line_of(node, "overrides"),
            hint="overrides is a mapping of chart values, merged over the values files"))
        gate = overrides.get("enabled")
        if "enabled" in overrides and not isinstance(gate, bool):
            raise RecipeError(
                f"{cwhat}: overrides.enabled must be true or false, not {gate!r}", path=path,
                line=line_of(node["overrides"], "enabled"),
                hint="write 'enabled: false' (unquoted) to leave the component out of the recipe",
            )
    if node.get("patches"):
        raise RecipeError(f"{cwhat}: 'patches' are not applied by any deployer", path=path,
                          line=line_of(node, "patches"), hint="remove 'patches' (upstream rejects them too)")
    for flag in ("cleanup", "healthCheckSkip"):
        if node.get(flag) is not None and not isinstance(node[flag], bool):
            raise RecipeError(f"{cwhat}: '{flag}' must be true or false, not {node[flag]!r}", path=path,
                              line=line_of(node, flag), hint=f"write '{flag}: true' or remove it")
    expected = node.get("expectedResources")
    if expected is not None and not isinstance(expected, list):
        raise RecipeError(
            f"{cwhat}: 'expectedResources' must be a list, not a {type_name(expected)}", path=path,
            line=line_of(node, "expectedResources"),
            hint="list resources as '- kind: <kind>' / 'name: <name>' entries",
        )
    deps = get_str_list(node, "dependencyRefs", what=cwhat, path=path)
    manifests = tuple(
        catalog_file(root, f, what=f"{cwhat}: manifest file", path=path, line=line_of(node, "manifestFiles"))
        for f in get_str_list(node, "manifestFiles", what=cwhat, path=path)
    )
    pre_line = line_of(node, "preManifestFiles")
    pre_manifests = tuple(
        catalog_file(root, f, what=f"{cwhat}: pre-manifest file", path=path, line=pre_line)
        for f in get_str_list(node, "preManifestFiles", what=cwhat, path=path)
    )
    unset: tuple[Any, ...] = (None, "", [], {}, False)
    set_fields = frozenset(k for k in _REF_KEYS if k != "name" and node.get(k) not in unset)
    return ComponentRef(
        name=name, path=path, line=line_of(node), type=kind, chart=strs["chart"].strip(),
        source=strs["source"].strip(), version=strs["version"].strip(), tag=strs["tag"].strip(),
        kustomize_path=strs["path"].strip(), namespace=strs["namespace"].strip(), values_file=values_file,
        overrides=overrides, dependency_refs=deps, manifest_files=manifests, pre_manifest_files=pre_manifests,
        set_fields=set_fields, key_lines=dict(node.key_lines),
    )


def _component_type(value: str, *, what: str, path: str, line: int | None) -> ComponentType:
    for kind in ComponentType:
        if value.strip().lower() == kind.value.lower():
            return kind
    kinds = ", ".join(repr(k.value) for k in ComponentType)
    raise RecipeError(
        f"{what}: type {value!r} is not one of {kinds}", path=path, line=line,
        hint="write 'type: Helm' (or 'Kustomize'), or leave it to the registry",
    )


# --------------------------------------------------------------------------------------------
# Values files and inheritance chains
# --------------------------------------------------------------------------------------------


def load_values(root: Path, files: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Parse each catalog-relative values file once into a plain mapping (an empty file is ``{}``)."""
    out: dict[str, dict[str, Any]] = {}
    for rel in sorted(set(files)):
        data = load_file(root / rel, display=rel)
        if data is None:
            out[rel] = {}
            continue
        node = expect_mapping(data, what="a values file", path=rel, line=line_of(data) or 1,
                              hint="a values file is a mapping of chart values (key: value at the top level)")
        out[rel] = to_plain(node)
    return out


def resolve_chains(
    overlays: Mapping[str, Overlay], mixins: Mapping[str, Mixin]
) -> dict[str, tuple[str, ...]]:
    """Each overlay's inheritance chain, root first, ``base`` excluded, the overlay itself last.

    Checks that every ``base`` and every mixin named by an overlay exists, that no chain loops
    and that none is deeper than :data:`MAX_CHAIN_DEPTH`.
    """
    chains: dict[str, tuple[str, ...]] = {BASE_OVERLAY: ()}
    for name in sorted(overlays):
        overlay = overlays[name]
        for mixin in overlay.mixins:
            if mixin not in mixins:
                raise RecipeError(
                    f"overlay {name!r}: mixin {mixin!r} not found in {MIXIN_DIR}/{suggest(mixin, mixins)}",
                    path=overlay.path, line=overlay.line_of("mixins"),
                    hint=f"create {MIXIN_DIR}/{mixin}.yaml (kind RecipeMixin) or fix the name",
                )
        if name == BASE_OVERLAY:
            continue
        walk: list[str] = []
        current: Overlay = overlay
        while True:
            if current.name in walk:
                loop = [*walk[walk.index(current.name):], current.name]
                files = " -> ".join(overlays[n].path for n in loop)
                raise RecipeError(
                    f"overlay {name!r}: inheritance cycle {' -> '.join(loop)} ({files})",
                    path=overlay.path, line=overlay.line_of("base"),
                    hint="make one overlay in the cycle inherit from another parent (or from base)",
                )
            walk.append(current.name)
            if len(walk) > MAX_CHAIN_DEPTH:
                raise RecipeError(
                    f"overlay {name!r}: inheritance chain is deeper than {MAX_CHAIN_DEPTH} overlays "
                    f"({' -> '.join(reversed(walk))} -> ...)",
                    path=overlay.path, line=overlay.line_of("base"),
                    hint="flatten the chain: fold intermediate overlays into fewer levels",
                )
            parent = current.parent
            if parent is None or parent == BASE_OVERLAY:
                break
            if parent not in overlays:
                raise RecipeError(
                    f"overlay {current.name!r}: base {parent!r} not found{suggest(parent, overlays)}",
                    path=current.path, line=current.line_of("base"),
                    hint="'base' names another overlay's metadata.name; leave it empty to inherit from base",
                )
            current = overlays[parent]
        chains[name] = tuple(reversed(walk))
    return chains
