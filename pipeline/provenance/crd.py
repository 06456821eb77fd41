"""Validate generated resources against the real CRDs, the way the API server would treat them.

Contract:

- :func:`load_crd` reads a ``CustomResourceDefinition`` YAML and keeps the ``openAPIV3Schema`` of
  every served version;
- :func:`schema_errors` validates a resource with ``jsonschema`` against the schema of its
  ``apiVersion``, after translating Kubernetes' OpenAPI dialect: ``x-kubernetes-int-or-string``
  (integer or string), ``nullable``, ``x-kubernetes-list-type: set`` (unique items) and ``map``
  (unique ``x-kubernetes-list-map-keys``); ``x-kubernetes-preserve-unknown-fields`` and
  ``x-kubernetes-embedded-resource`` add no constraint; ``x-kubernetes-validations`` (CEL rules)
  are not evaluated (the shared Kyverno and policy-controller CRDs have none);
- :func:`unknown_fields` lists every field the API server would *silently prune*: a key that the
  schema node does not declare under ``properties``, unless the node has
  ``x-kubernetes-preserve-unknown-fields: true`` or ``additionalProperties``; at the root,
  ``apiVersion`` and ``kind`` are always kept and ``metadata`` is checked against ObjectMeta's
  fields (CRDs declare it as a bare object, or not at all);
- :func:`validate_resources` runs both over documents (:func:`validate_files` over YAML files)
  and raises :class:`~pipeline.errors.GateError` naming the file, the resource and each problem
  with its JSON path.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .._yaml import parse
from ..errors import GateError, PipelineError

__all__ = ["Crd", "load_crd", "schema_errors", "unknown_fields", "validate_files", "validate_resources"]

_OBJECT_META = frozenset({"name", "namespace", "labels", "annotations", "generateName", "finalizers",
                          "ownerReferences"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Crd:
    """One CRD: its group, kind and the schema of each served version (``version → schema``)."""

    group: str
    kind: str
    schemas: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def api_versions(self) -> tuple[str, ...]:
        return tuple(f"{self.group}/{v}" for v in sorted(self.schemas))

    def schema_for(self, api_version: str) -> Mapping[str, Any] | None:
        group, _, version = api_version.partition("/")
        return self.schemas.get(version) if group == self.group else None


def load_crd(path: Path) -> Crd:
    """Read a CRD file; :class:`PipelineError` when it is not one."""
    try:
        doc: Any = parse(path.read_bytes(), section="rendered")
        spec = doc["spec"]
        schemas = {
            str(v["name"]): v["schema"]["openAPIV3Schema"]
            for v in spec["versions"] if v.get("served", False)
        }
        crd = Crd(group=str(spec["group"]), kind=str(spec["names"]["kind"]), schemas=schemas)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise PipelineError(f"{path} is not a readable CustomResourceDefinition ({exc})",
                            hint="point at the CRD YAML files in ../shared/schemas") from exc
    return crd


def _translate(node: Any) -> Any:
    """Kubernetes' OpenAPI v3 schema dialect → plain JSON Schema (see the module contract)."""
    if isinstance(node, list):
        return [_translate(n) for n in node]
    if not isinstance(node, Mapping):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-") or key == "nullable":
            continue
        if key in ("properties", "patternProperties", "definitions"):
            out[key] = {name: _translate(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not", "allOf", "anyOf", "oneOf"):
            out[key] = _translate(value)
        else:
            out[key] = value
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if node.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    if node.get("x-kubernetes-list-type") == "set":
        out["uniqueItems"] = True
    return out


def schema_errors(doc: Mapping[str, Any], crd: Crd) -> list[str]:
    """``jsonschema`` errors of ``doc`` against its served version (``path: message``), sorted."""
    api_version = str(doc.get("apiVersion"))
    schema = crd.schema_for(api_version)
    if schema is None:
        return [f"apiVersion: {api_version!r} is not served by the {crd.kind} CRD "
                f"(served: {', '.join(crd.api_versions())})"]
    validator = jsonschema.Draft4Validator(_translate(schema))
    found = [f"{_path(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)]
    found.extend(_map_key_errors(doc, schema, ""))
    return sorted(found)


def _map_key_errors(doc: Any, schema: Mapping[str, Any], path: str) -> Iterable[str]:
    if isinstance(doc, Mapping):
        for key, value in doc.items():
            sub = (schema.get("properties") or {}).get(key)
            if isinstance(sub, Mapping):
                yield from _map_key_errors(value, sub, f"{path}.{key}")
    elif isinstance(doc, list) and isinstance(schema.get("items"), Mapping):
        keys = schema.get("x-kubernetes-list-map-keys")
        if schema.get("x-kubernetes-list-type") == "map" and keys:
            seen: set[tuple[Any, ...]] = set()
            for index, item in enumerate(doc):
                ident = tuple(item.get(k) for k in keys) if isinstance(item, Mapping) else (item,)
                if ident in seen:
                    yield f"{path or '.'}[{index}]: duplicate list-map key {dict(zip(keys, ident, strict=True))}"
                seen.add(ident)
        for index, item in enumerate(doc):
            yield from _map_key_errors(item, schema["items"], f"{path}[{index}]")


def unknown_fields(doc: Mapping[str, Any], crd: Crd) -> list[str]:
    """JSON paths of the fields the API server would prune from ``doc`` (see the module contract)."""
    schema = crd.schema_for(str(doc.get("apiVersion")))
    if schema is None:
        return []
    out: list[str] = []
    for key, value in doc.items():
        if key == "metadata" and isinstance(value, Mapping):
            out.extend(f".metadata.{k}" for k in value if k not in _OBJECT_META)
        elif key in ("apiVersion", "kind"):
            continue  # the API server keeps these on every object, declared or not
        elif key in (schema.get("properties") or {}):
            _walk(value, schema["properties"][key], f".{key}", out)
        else:
            out.append(f".{key}")
    return sorted(out)


def _walk(doc: Any, schema: Mapping[str, Any], path: str, out: list[str]) -> None:
    properties: Mapping[str, Any] = schema.get("properties") or {}
    preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
    additional = schema.get("additionalProperties")
    if isinstance(doc, Mapping):
        for key, value in doc.items():
            here = f"{path}.{key}"
            if key in properties:
                _walk(value, properties[key], here, out)
            elif isinstance(additional, Mapping):
                _walk(value, additional, here, out)
            elif not preserve and additional is not True:
                out.append(here)
    elif isinstance(doc, list) and isinstance(schema.get("items"), Mapping):
        for index, item in enumerate(doc):
            _walk(item, schema["items"], f"{path}[{index}]", out)


def _path(parts: Iterable[Any]) -> str:
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)
    return text or "."


def validate_resources(documents: Sequence[tuple[str, Mapping[str, Any]]], crds: Iterable[Crd]) -> None:
    """Schema errors and prunable fields of each ``(file, document)``; :class:`GateError` lists them all."""
    by_kind = {crd.kind: crd for crd in crds}
    problems: list[str] = []
    for file, doc in documents:
        kind = str(doc.get("kind"))
        name = (doc.get("metadata") or {}).get("name")
        crd = by_kind.get(kind)
        if crd is None:
            problems.append(f"{file}: {kind}/{name}: no CRD for kind {kind!r} (known: {', '.join(sorted(by_kind))})")
            continue
        problems.extend(f"{file}: {kind}/{name}: {e}" for e in schema_errors(doc, crd))
        problems.extend(f"{file}: {kind}/{name}: {p}: unknown field (the API server would drop it silently)"
                        for p in unknown_fields(doc, crd))
    if problems:
        listing = "\n".join(f"  {p}" for p in problems)
        raise GateError(f"{len(problems)} problem(s) in generated policies against the CRD schemas:\n{listing}",
                        hint="fix the generator in pipeline/provenance/policies.py (never the generated files), "
                             "then run 'python -m pipeline policies'")


def validate_files(paths: Iterable[Path], crds: Iterable[Crd], *, root: Path | None = None) -> int:
    """:func:`validate_resources` over every YAML document of ``paths``; returns how many were checked."""
    documents: list[tuple[str, Mapping[str, Any]]] = []
    for path in sorted(paths):
        shown = str(path.relative_to(root)) if root is not None else str(path)
        try:
            loaded = parse(path.read_bytes(), section="rendered", multi=True)
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise GateError(f"{shown}: not readable YAML ({exc})",
                            hint="regenerate it with 'python -m pipeline policies'") from exc
        for doc in loaded:
            if not isinstance(doc, Mapping):
                raise GateError(f"{shown}: a document is not a mapping", hint="regenerate the policies")
            documents.append((shown, doc))
    validate_resources(documents, crds)
    return len(documents)
