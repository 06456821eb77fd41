"""Declared volatile fields: the reviewed exceptions that make an inherently random chart lockable.

Declarations live in ``<catalog>/volatile.yaml`` (our format)::

    apiVersion: pipeline.recipes.dev/v1
    kind: VolatileFields
    spec:
      fields:
        - component: accel-operator          # required
          kind: Secret                       # optional selector parts: kind, name, namespace
          name: accel-operator-webhook-cert
          path: data["tls.crt"]              # dotted path; ["key"] for keys with dots; [N] or [*] for lists
          reason: genSelfSignedCert makes a new certificate on every render; cert-manager rotates it anyway

Before hashing, every matching field is replaced by ``<volatile>`` in the rendered document (the
document is re-serialised with sorted keys; documents that match nothing keep their exact bytes).
The declarations are listed in the lock and the BOM, and are inputs of the lock: editing them makes
the lock stale.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ._yaml import YamlMap, load_all_bytes, load_file
from .errors import RecipeError
from .render.job import ComponentRender, assemble, segments_of

__all__ = ["MASK", "VOLATILE_FILE", "VolatileField", "load_volatile", "mask"]

VOLATILE_FILE = "volatile.yaml"
MASK = "<volatile>"
_PATH_TOKEN = re.compile(r'\.?(?:(?P<key>[A-Za-z0-9_\-/]+)|\["(?P<quoted>[^"]+)"\]|\[(?P<index>\d+|\*)\])')


@dataclass(frozen=True, slots=True, kw_only=True)
class VolatileField:
    """One reviewed declaration: which field of which resource may differ between renders, and why."""

    component: str
    path: str
    reason: str
    kind: str | None = None
    name: str | None = None
    namespace: str | None = None
    steps: tuple[str | int, ...] = ()

    def as_dict(self) -> dict[str, str]:
        out = {"component": self.component, "path": self.path, "reason": self.reason}
        for key in ("kind", "name", "namespace"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out

    def describe(self) -> str:
        """``Kind/namespace/name path: reason`` with absent selector parts left out."""
        selector = "/".join(p for p in (self.kind, self.namespace, self.name) if p) or "*"
        return f"{selector} {self.path}: {self.reason}"

    def selects(self, component: str, doc: dict[str, Any]) -> bool:
        if component != self.component:
            return False
        meta = doc.get("metadata") or {}
        return all(
            want is None or want == got
            for want, got in ((self.kind, doc.get("kind")), (self.name, meta.get("name")),
                              (self.namespace, meta.get("namespace")))
        )


def _parse_path(text: str, *, file: Path, line: int | None) -> tuple[str | int, ...]:
    steps: list[str | int] = []
    pos = 0
    while pos < len(text):
        match = _PATH_TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise RecipeError(f"volatile field path {text!r} cannot be parsed at offset {pos}", path=file, line=line,
                              hint='write paths like data.token, metadata.annotations["checksum/config"], '
                                   "spec.containers[*].env[0].value")
        if match["key"] is not None:
            steps.append(match["key"])
        elif match["quoted"] is not None:
            steps.append(match["quoted"])
        else:
            steps.append(-1 if match["index"] == "*" else int(match["index"]))
        pos = match.end()
    return tuple(steps)


def load_volatile(catalog: Path) -> tuple[VolatileField, ...]:
    """Read ``<catalog>/volatile.yaml``; no file means no declarations."""
    path = catalog / VOLATILE_FILE
    if not path.is_file():
        return ()
    data = load_file(path, display=VOLATILE_FILE)
    where = Path(VOLATILE_FILE)
    if not isinstance(data, YamlMap) or data.get("kind") != "VolatileFields":
        raise RecipeError("expected a document of kind 'VolatileFields'", path=where, line=1,
                          hint="start the file with apiVersion: pipeline.recipes.dev/v1 and kind: VolatileFields")
    spec = data.get("spec") or {}
    entries = spec.get("fields") if isinstance(spec, dict) else None
    if not isinstance(entries, list):
        raise RecipeError("'spec.fields' must be a list", path=where, line=data.line_of("spec"),
                          hint="list each declaration under spec.fields")
    out: list[VolatileField] = []
    for entry in entries:
        line = entry.line if isinstance(entry, YamlMap) else None
        if not isinstance(entry, dict):
            raise RecipeError("each volatile declaration must be a mapping", path=where, line=line)
        unknown = sorted(set(entry) - {"component", "kind", "name", "namespace", "path", "reason"})
        if unknown:
            raise RecipeError(f"unknown key {unknown[0]!r} in a volatile declaration", path=where, line=line,
                              hint="allowed keys: component, kind, name, namespace, path, reason")
        for key in ("component", "path", "reason"):
            if not isinstance(entry.get(key), str) or not entry[key].strip():
                raise RecipeError(f"volatile declaration needs a non-empty {key!r}", path=where, line=line,
                                  hint="every declaration names its component, the field path and the "
                                       "reviewed reason")
        out.append(VolatileField(
            component=entry["component"], path=entry["path"], reason=entry["reason"].strip(),
            kind=entry.get("kind"), name=entry.get("name"), namespace=entry.get("namespace"),
            steps=_parse_path(entry["path"], file=where, line=line),
        ))
    return tuple(out)


def _mask_at(node: Any, steps: Sequence[str | int]) -> bool:
    if not steps:
        return False
    head, rest = steps[0], steps[1:]
    targets: list[tuple[Any, Any]] = []
    if isinstance(head, str) and isinstance(node, dict) and head in node:
        targets = [(node, head)]
    elif isinstance(head, int) and isinstance(node, list):
        indices = range(len(node)) if head == -1 else [head] if head < len(node) else []
        targets = [(node, i) for i in indices]
    changed = False
    for parent, key in targets:
        if rest:
            changed = _mask_at(parent[key], rest) or changed
        elif parent[key] != MASK:
            parent[key] = MASK
            changed = True
    return changed


def mask(component: str, render: ComponentRender, fields: Sequence[VolatileField]) -> ComponentRender:
    """Replace every declared volatile field of ``component`` with ``<volatile>``."""
    relevant = [f for f in fields if f.component == component]
    if not relevant:
        return render
    out: list[tuple[str, str]] = []
    touched = False
    for path, text in segments_of(render.stream):
        body = text
        docs = load_all_bytes(body.encode(), display=path)
        doc = docs[0] if len(docs) == 1 else None
        if isinstance(doc, dict) and any(f.selects(component, doc) for f in relevant):
            changed = False
            for field in relevant:
                if field.selects(component, doc):
                    changed = _mask_at(doc, field.steps) or changed
            if changed:
                body = yaml.safe_dump(doc, sort_keys=True, default_flow_style=False, allow_unicode=True)
                touched = True
        out.append((path, body))
    return assemble(out) if touched else render
