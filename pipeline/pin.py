"""The pinned render: the lock's digests written into every place discovery found an image.

Contract of :func:`pin_render` (pure):

- inputs: a component's rendered :class:`~pipeline.render.job.ComponentRender`, the images
  discovery found in it (:class:`~pipeline.images.FoundImage`: file, resource, field path, pattern),
  the locked digest of each reference, and the catalog's :class:`PinRules`;
- output: a :class:`PinnedRender`: the stream with ``registry/repo:tag@sha256:<locked digest>``
  written into container ``image`` fields (init and ephemeral too), ``RELATED_IMAGE_*``/``*_IMAGE``
  environment values, ``--image=``/``--<name>-image=`` arguments and lone image fields of custom
  resources; for custom resources that split an image into sibling fields, the digest goes into the
  field the reviewed table ``<catalog>/digest-fields.yaml`` names for the kind (``version: sha256:…``
  for a gpu-operator-like policy, ``containerSHA`` for a Skyhook-like one). A kind whose fields
  cannot carry a digest is left as it is and listed (:attr:`PinnedRender.unpinned`, with the table's
  reason and the exemption in ``exemptions.yaml`` ``unpinnedFields``); the ``helm.sh/images``
  annotation lives in ``Chart.yaml``, not in the render, so there is nothing to rewrite for it;
- guarantees: only the scalar that holds the reference changes, spliced in place at the position
  the YAML parser reports, in its own quoting style; every other byte of the stream (other
  documents, comments, key order, indentation) is kept; each edited document is parsed again and
  every edited field checked to read back as the pinned value. Equal inputs give equal bytes.
- errors: :class:`~pipeline.errors.PinError` (exit 2): an image with no locked digest (or, for
  ``post-render``, one the lock does not know), a sibling-field kind with no table entry, an
  unpinnable field with no exemption.

:func:`read_stream` reads ``helm template`` / Helm post-renderer input as it is: the render is
byte for byte Helm's (README "Helm parity"), so ``post-render`` of Helm's output gives the bytes of
``render --pinned`` with nothing normalised.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ._checks import check_keys, line_of, type_name
from ._yaml import YamlMap, compose_strings, load_file, load_strings, problem_of
from .errors import PinError, RecipeError
from .images import FoundImage, ImageRef, Via, join_key, resource_of
from .recipes.load import check_header, expect_mapping, get_str
from .render.job import ComponentRender, assemble, segments_of
from .vocabulary.digest import Digest

__all__ = [
    "DIGEST_FIELDS_FILE",
    "Admission",
    "DigestField",
    "PinRules",
    "PinnedRender",
    "Unpinned",
    "UnpinnedFieldExemption",
    "load_pin_rules",
    "parse_unpinned_fields",
    "pin_render",
    "read_stream",
]

DIGEST_FIELDS_FILE = "digest-fields.yaml"
_API_VERSION = "pipeline.recipes.dev/v1"
_KIND = "DigestFields"
_EXEMPTIONS_FILE = "exemptions.yaml"
_FIELD_KEYS = ("kind", "digestField", "reason")
_UNPINNED_KEYS = ("component", "kind", "reason", "tracking", "admission")
_TABLE_HINT = (f"add the kind to {DIGEST_FIELDS_FILE} ('- kind: <Kind>', 'digestField: <field that takes "
               "sha256:…>' or 'digestField: null' when none does, 'reason: …'), after checking the operator's CRD")


class Admission(enum.StrEnum):
    """How the admission policies treat an image whose field cannot carry a digest."""

    #: the policy admits the image at the tag the lock records (and at its locked digests), nothing else
    ALLOW_LOCKED_TAG = "allow-locked-tag"


@dataclass(frozen=True, slots=True, kw_only=True)
class DigestField:
    """A reviewed entry: which sibling field of ``kind`` takes ``sha256:…`` (``None``: none does)."""

    kind: str
    field: str | None
    reason: str
    line: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class UnpinnedFieldExemption:
    """``exemptions.yaml`` ``unpinnedFields``: images of ``component``'s ``kind`` resources stay by tag."""

    component: str
    kind: str
    reason: str
    tracking: str
    admission: Admission
    line: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class PinRules:
    """The catalog's digest-field table and unpinned-field exemptions."""

    fields: Mapping[str, DigestField]
    exemptions: tuple[UnpinnedFieldExemption, ...] = ()

    def exemption(self, component: str, kind: str) -> UnpinnedFieldExemption | None:
        return next((e for e in self.exemptions if e.component == component and e.kind == kind), None)


@dataclass(frozen=True, slots=True, kw_only=True)
class Unpinned:
    """An image left by tag, and why (the table's reason, the exemption)."""

    image: FoundImage
    reason: str
    exemption: UnpinnedFieldExemption

    def describe(self) -> str:
        return (f"{self.image.ref} at {self.image.found_at}: {self.reason} "
                f"(exemptions.yaml: {self.exemption.reason}; {self.exemption.tracking}; "
                f"admission {self.exemption.admission.value})")


@dataclass(frozen=True, slots=True, kw_only=True)
class PinnedRender:
    """The pinned render of one component, what was rewritten and what was left (with why)."""

    render: ComponentRender
    rewritten: tuple[FoundImage, ...]
    unpinned: tuple[Unpinned, ...]


# ---- the catalog's rules -------------------------------------------------------------------------


def load_pin_rules(catalog: Path) -> PinRules:
    """``<catalog>/digest-fields.yaml`` and the ``unpinnedFields`` of ``<catalog>/exemptions.yaml``.

    A missing table means no custom-resource kind is known to take a digest (every sibling-field
    image then needs an entry); a missing exemptions file means no exemptions.
    """
    fields: dict[str, DigestField] = {}
    if (catalog / DIGEST_FIELDS_FILE).is_file():
        path = DIGEST_FIELDS_FILE
        doc = check_header(load_file(catalog / path, display=path), kind=_KIND, api_versions=(_API_VERSION,),
                           path=path, hint=f"{path} starts with 'apiVersion: {_API_VERSION}' and 'kind: {_KIND}'")
        check_keys(doc, ("apiVersion", "kind", "fields"), what=path, path=path)
        for node in _entries(doc, "fields", path):
            entry = _field(node, path)
            if entry.kind in fields:
                raise RecipeError(f"kind {entry.kind!r} is listed twice", path=path, line=entry.line,
                                  hint="keep one entry per kind")
            fields[entry.kind] = entry
    exemptions: tuple[UnpinnedFieldExemption, ...] = ()
    if (catalog / _EXEMPTIONS_FILE).is_file():
        data = load_file(catalog / _EXEMPTIONS_FILE, display=_EXEMPTIONS_FILE)
        if isinstance(data, YamlMap):
            exemptions = parse_unpinned_fields(data, _EXEMPTIONS_FILE)
    return PinRules(fields=fields, exemptions=exemptions)


def _entries(doc: YamlMap, key: str, path: str) -> list[YamlMap]:
    value = doc.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise RecipeError(f"'{key}' must be a list, not a {type_name(value)}", path=path, line=line_of(doc, key),
                          hint=f"write '{key}:' followed by '- ' entries")
    return [expect_mapping(item, what=f"a '{key}' entry", path=path, line=line_of(item) or line_of(doc, key),
                           hint=f"each '{key}' entry is a mapping") for item in value]


def _field(node: YamlMap, path: str) -> DigestField:
    what = "a digest-fields entry"
    check_keys(node, _FIELD_KEYS, what=what, path=path)
    if "digestField" not in node:
        raise RecipeError(f"{what}: 'digestField' is missing", path=path, line=line_of(node),
                          hint="name the field that takes 'sha256:…', or write 'digestField: null' when none does")
    reason = get_str(node, "reason", what=what, path=path, required=True).strip()
    return DigestField(kind=get_str(node, "kind", what=what, path=path, required=True).strip(),
                       field=get_str(node, "digestField", what=what, path=path).strip() or None,
                       reason=reason, line=line_of(node))


def parse_unpinned_fields(doc: YamlMap, path: str) -> tuple[UnpinnedFieldExemption, ...]:
    """The ``unpinnedFields`` entries of an exemptions document (structure checked; a RecipeError
    with file and line otherwise). Each needs a reason, a tracking link and an ``admission``."""
    out: list[UnpinnedFieldExemption] = []
    what = "an unpinnedFields entry"
    for node in _entries(doc, "unpinnedFields", path):
        check_keys(node, _UNPINNED_KEYS, what=what, path=path)
        values = {k: get_str(node, k, what=what, path=path, required=True).strip() for k in _UNPINNED_KEYS}
        try:
            admission = Admission(values["admission"])
        except ValueError:
            raise RecipeError(f"{what}: admission {values['admission']!r} is not one of "
                              f"{', '.join(a.value for a in Admission)}", path=path, line=line_of(node, "admission"),
                              hint="say how the admission policies treat these images: 'allow-locked-tag'") from None
        entry = UnpinnedFieldExemption(component=values["component"], kind=values["kind"], reason=values["reason"],
                                       tracking=values["tracking"], admission=admission, line=line_of(node))
        if any((e.component, e.kind) == (entry.component, entry.kind) for e in out):
            raise RecipeError(f"{what}: component {entry.component!r} kind {entry.kind!r} is listed twice", path=path,
                              line=entry.line, hint="keep one entry per component and kind")
        out.append(entry)
    return tuple(out)


# ---- planning --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Edit:
    """Write ``value`` into the field at ``path`` of ``resource`` in ``file`` (``suffix``: keep the
    text before the reference, for ``--image=`` arguments)."""

    file: str
    resource: Any
    path: str
    value: str
    arg: bool


def _plan(images: Sequence[FoundImage], digests: Mapping[ImageRef, Digest | None], *, component: str,
          rules: PinRules) -> tuple[list[_Edit], list[FoundImage], list[Unpinned]]:
    edits: list[_Edit] = []
    rewritten: list[FoundImage] = []
    unpinned: list[Unpinned] = []
    for found in images:
        if found.via is Via.ANNOTATION or found.ref.digest is not None:
            continue  # Chart.yaml is not deployed; a reference with a digest is pinned already
        digest = digests.get(found.ref)
        if digest is None:
            raise PinError(
                f"component '{component}': image '{found.ref}' at {found.found_at} has no locked digest",
                hint="lock with registry resolution ('nox -s lock', the registry reachable) so every image has one")
        if found.via is Via.FIELDS:
            entry = rules.fields.get(found.resource.kind)
            if entry is None:
                raise PinError(f"component '{component}': {found.resource.kind} {found.found_at} splits image "
                               f"'{found.ref}' into sibling fields, and {DIGEST_FIELDS_FILE} has no entry for kind "
                               f"{found.resource.kind!r}", hint=_TABLE_HINT)
            group = found.field.rsplit(".{", 1)[0] if ".{" in found.field else ""
            if entry.field is None:
                exemption = rules.exemption(component, found.resource.kind)
                if exemption is None:
                    raise PinError(
                        f"component '{component}': image '{found.ref}' at {found.found_at} cannot carry a digest "
                        f"({entry.reason}) and exemptions.yaml has no unpinnedFields entry for it",
                        hint=f"add '- component: {component}', 'kind: {found.resource.kind}', reason, tracking and "
                             "'admission: allow-locked-tag' under unpinnedFields in exemptions.yaml")
                unpinned.append(Unpinned(image=found, reason=entry.reason, exemption=exemption))
                continue
            edits.append(_Edit(found.file, found.resource, join_key(group, entry.field), digest, arg=False))
        else:
            edits.append(_Edit(found.file, found.resource, found.field, str(found.ref.with_digest(digest)),
                               arg=found.via is Via.ARG))
        rewritten.append(found)
    return edits, rewritten, unpinned


# ---- applying ----------------------------------------------------------------------------------------


def pin_render(render: ComponentRender, images: Sequence[FoundImage], *, digests: Mapping[ImageRef, Digest | None],
               component: str, rules: PinRules) -> PinnedRender:
    """The pinned render of one component (see the module contract)."""
    edits, rewritten, unpinned = _plan(images, digests, component=component, rules=rules)
    by_file: dict[str, list[_Edit]] = {}
    for edit in edits:
        by_file.setdefault(edit.file, []).append(edit)
    applied: set[_Edit] = set()
    segments: list[tuple[str, str]] = []
    for path, body in segments_of(render.stream):
        wanted = by_file.get(path)
        segments.append((path, _apply(path, body, wanted, applied, component) if wanted else body))
    missing = [e for e in edits if e not in applied]
    if missing:
        first = missing[0]
        raise PinError(f"component '{component}': no field {first.path} of {first.resource} in {first.file} "
                       "to write the locked digest into", hint="this is a bug: report it with the rendered stream")
    return PinnedRender(render=assemble(segments), rewritten=tuple(rewritten), unpinned=tuple(unpinned))


def _apply(path: str, body: str, edits: Sequence[_Edit], applied: set[_Edit], component: str) -> str:
    try:
        data = load_strings(body.encode(), section="rendered", multi=True)
        nodes = compose_strings(body.encode())
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        problem, _, hint = problem_of(exc)
        raise PinError(f"component '{component}': rendered document is not YAML: {problem}", path=path,
                       hint=hint or "render the component and fix the template") from exc
    splices: list[tuple[int, int, str]] = []
    checks: list[tuple[Any, str, str]] = []
    for doc, node in zip(data, nodes, strict=True):
        index = dict(_index(doc, node))
        for edit in edits:
            target = index.get((edit.resource, edit.path))
            if target is None:
                continue
            old = str(target.value)
            value = old[: old.index("=") + 1] + edit.value if edit.arg else edit.value
            splices.append((target.start_mark.index, target.end_mark.index, _scalar(value, target.style)))
            checks.append((edit.resource, edit.path, value))
            applied.add(edit)
    text = body
    for start, end, new in sorted(splices, reverse=True):
        text = text[:start] + new + text[end:]
    _verify(path, text, checks, component)
    return text


def _verify(path: str, text: str, checks: Sequence[tuple[Any, str, str]], component: str) -> None:
    """Every edited field reads back as the value written (a splice that broke YAML is caught here)."""
    try:
        data = load_strings(text.encode(), section="rendered", multi=True)
        nodes = compose_strings(text.encode())
    except (UnicodeDecodeError, yaml.YAMLError) as exc:  # pragma: no cover - quoting keeps YAML valid
        raise PinError(f"component '{component}': the pinned document is not YAML ({problem_of(exc)[0]})",
                       path=path, hint="this is a bug: report it with the rendered stream") from exc
    values = {key: str(n.value) for doc, node in zip(data, nodes, strict=True) for key, n in _index(doc, node)}
    for resource, field, value in checks:
        if values.get((resource, field)) != value:  # pragma: no cover - a guard, not a path
            raise PinError(f"component '{component}': {resource} {field} does not read back as {value!r}",
                           path=path, hint="this is a bug: report it with the rendered stream")


def _scalar(value: str, style: str | None) -> str:
    """``value`` as YAML text in the original quoting style (plain when it stays the same string)."""
    if style == "'":
        return "'" + value.replace("'", "''") + "'"
    if not style and _plain_ok(value):  # plain: libyaml reports the style as '', PyYAML as None
        return value
    return json.dumps(value, ensure_ascii=False)


def _plain_ok(value: str) -> bool:
    if not value or value != value.strip() or any(c in value for c in ",[]{}\n"):
        return False  # the braces and commas would end a plain scalar inside a flow collection
    try:
        return bool(load_strings(f"v: {value}\n".encode()) == {"v": value})
    except yaml.YAMLError:
        return False


def _index(doc: Any, node: Node) -> Iterator[tuple[tuple[Any, str], ScalarNode]]:
    """``((resource, field path), scalar node)`` for every scalar of one document, with the paths
    discovery writes (``List`` items under their own resource, ``env[NAME].value`` for variables)."""
    if not isinstance(doc, dict) or not isinstance(node, MappingNode):
        return
    kind, items = doc.get("kind"), doc.get("items")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(items, list):
        item_nodes = _child(node, "items")
        if isinstance(item_nodes, SequenceNode):
            for position, (item, item_node) in enumerate(zip(items, item_nodes.value, strict=True)):
                if isinstance(item, dict):
                    resource = resource_of(item)
                    for path, scalar in _walk(item_node, join_key("items", position)):
                        yield (resource, path), scalar
        return
    resource = resource_of(doc)
    for path, scalar in _walk(node, ""):
        yield (resource, path), scalar


def _child(node: MappingNode, key: str) -> Node | None:
    return next((v for k, v in node.value if isinstance(k, ScalarNode) and k.value == key), None)


def _walk(node: Node, path: str) -> Iterator[tuple[str, ScalarNode]]:
    stack: list[tuple[Node, str, str | None]] = [(node, path, None)]
    while stack:
        current, where, key = stack.pop()
        if isinstance(current, ScalarNode):
            yield where, current
        elif isinstance(current, MappingNode):
            for k, v in current.value:
                if isinstance(k, ScalarNode):
                    stack.append((v, join_key(where, k.value), k.value))
        elif isinstance(current, SequenceNode):
            for position, item in enumerate(current.value):
                stack.append((item, join_key(where, position), None))
                if key == "env" and isinstance(item, MappingNode):
                    name, value = _child(item, "name"), _child(item, "value")
                    if isinstance(name, ScalarNode) and isinstance(value, ScalarNode):
                        yield f"{where}[{name.value}].value", value


# ---- Helm's stream in the pipeline's form ------------------------------------------------------------


def read_stream(stream: bytes) -> tuple[bytes, ComponentRender]:
    """``helm template`` (or post-renderer) output as a render, without changing a byte.

    Returns what precedes the first ``# Source:`` segment (Helm prints a lone newline for a chart
    with nothing to render; it is handed back unchanged) and the segments as a
    :class:`~pipeline.render.job.ComponentRender` whose stream is the rest of the input, byte for
    byte. Text that is not whitespace outside any segment is refused (Helm always writes the headers).
    """
    try:
        stream.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PinError("the manifests on stdin are not UTF-8 text", hint="pipe Helm's rendered output") from exc
    segments = segments_of(stream)
    render = assemble(segments)
    prefix = stream[: len(stream) - len(render.stream)]
    if prefix.strip() or not stream.endswith(render.stream):
        raise PinError("the manifests on stdin have text outside '# Source:' documents" if segments
                       else "the manifests on stdin have no '# Source:' headers",
                       hint="pipe the output of 'helm template' or Helm's post-renderer input, which carry them")
    return prefix, render
