"""Structural scan of rendered documents for image candidates (no judgement on the text yet).

Input: a rendered stream (``# Source:`` segments, as :func:`pipeline.render.job.assemble` writes
them). Output: :class:`Candidate` records in stream order, one per place that holds, or claims to
hold, an image reference:

- every mapping with a ``containers`` / ``initContainers`` / ``ephemeralContainers`` list, at any
  depth and under any kind: workload pod specs, ``CronJob`` job templates, ``List`` items and
  pod templates embedded in custom resources alike; for each container its ``image``, its
  ``env`` (``RELATED_IMAGE_*``, ``*_IMAGE``) and its ``args``/``command`` (``--image=``,
  ``--<name>-image=``);
- sibling fields an operator joins into one reference, recognised by their shape (:data:`SHAPES`:
  which of ``registry``, ``repository``, ``image``, ``name``, ``tag``, ``version``, ``digest`` make a
  reference) and joined by :func:`combine`;
- lone image-valued fields of custom resources (``image:``, ``<word>Image:``, image volumes'
  ``image.reference``) and ``env`` lists outside containers (operator CRs carry them too).

Only documents whose text mentions ``image`` / ``repository`` are parsed, and never a
``CustomResourceDefinition`` (most of a render's bytes): both checks are substring/regex scans.
Parsing uses libyaml with the base resolver, so every scalar keeps the text written (a tag
``1.10`` stays ``'1.10'``). ``metadata`` and ``status`` are not searched.

Errors: :class:`~pipeline.errors.DiscoveryError` for a document YAML cannot read and for a
``containerSHA`` that is neither empty nor ``sha256:<64 hex>``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from .._yaml import load_strings, problem_of
from ..errors import DiscoveryError
from ..render.job import segments_of
from ..vocabulary.digest import is_sha256
from .model import Resource, Via, join_key

__all__ = ["SHAPES", "Candidate", "Shape", "combine", "resource_of", "scan", "scan_document", "shape_named", "shape_of"]

_CONTAINER_LISTS = frozenset({"containers", "initContainers", "ephemeralContainers"})
_SKIP_KEYS = frozenset({"metadata", "status", "openAPIV3Schema"})
#: Sibling fields an operator joins into one reference, in the order they are joined.
GROUP_KEYS: tuple[str, ...] = ("registry", "repository", "image", "name", "version", "tag", "digest",
                               "containerSHA")
_REF_KEYS = ("version", "tag", "digest", "containerSHA")


@dataclass(frozen=True, slots=True, kw_only=True)
class Shape:
    """One way operators split an image reference into sibling fields.

    A mapping has the shape when every ``required`` field is a string, at least one of ``any_of``
    is (when given), and no ``excluded`` field is. ``path`` lists the fields joined with ``/`` into
    the name, in order (absent ones skipped); ``tag``/``version`` then follow after ``:`` and
    ``digest``/``containerSHA`` after ``@``. ``name`` is part of a reference only in shapes that
    say so: next to ``image`` it names a container, next to ``kind`` a role.
    """

    label: str
    required: frozenset[str]
    any_of: frozenset[str] = frozenset()
    excluded: frozenset[str] = frozenset()
    path: tuple[str, ...]
    example: str

    def matches(self, node: Mapping[str, Any]) -> bool:
        def has(key: str) -> bool:
            return isinstance(node.get(key), str)
        return (all(has(k) for k in self.required) and (not self.any_of or any(has(k) for k in self.any_of))
                and not any(has(k) for k in self.excluded))


_REFS = frozenset(_REF_KEYS)
#: The shapes, first match wins. Data, not code: a new operator's shape is one row and one test.
SHAPES: tuple[Shape, ...] = (
    Shape(label="registry/repository/image:version", required=frozenset({"repository", "image"}),
          path=("registry", "repository", "image"),
          example="GPU operator ClusterPolicy {repository: nvcr.io/nvidia, image: driver, version: 580}"),
    Shape(label="repository/name:tag", required=frozenset({"repository", "name"}), any_of=_REFS,
          excluded=frozenset({"image", "kind"}), path=("repository", "name"),
          example="KAI-Scheduler Config {repository: ghcr.io/kai-scheduler/kai-scheduler, name: binder, tag: v0.14.1}"
          " (KAI's Image.Url(): <repository>/<name>:<tag>)"),
    Shape(label="registry/repository:tag", required=frozenset({"repository"}), any_of=_REFS | {"registry"},
          excluded=frozenset({"image"}), path=("registry", "repository"),
          example="Helm image block {registry: docker.io, repository: bitnami/nginx, tag: 1.25}"),
    Shape(label="registry/image:tag", required=frozenset({"image"}), any_of=_REFS | {"registry"},
          path=("registry", "image"),
          example="{image: nvcr.io/nvidia/k8s/dcgm-exporter, tag: 4.2} or Skyhook {image, version, containerSHA}"),
)


def shape_of(node: Mapping[str, Any]) -> Shape | None:
    """The first shape of :data:`SHAPES` that ``node`` has (``None``: its fields make no reference)."""
    return next((shape for shape in SHAPES if shape.matches(node)), None)


def shape_named(fields: Sequence[str]) -> Shape | None:
    """The shape a candidate's fields (as :attr:`Candidate.parts` keeps them) were joined by."""
    return shape_of(dict.fromkeys(fields, ""))
_CRD = re.compile(r"^kind:[ \t]*[\"']?CustomResourceDefinition[\"']?[ \t]*$", re.MULTILINE)
_IMAGE_ARG = re.compile(r"^--?(?:[A-Za-z0-9]+[-_.])*image=(.*)$", re.DOTALL)
_DIGEST_LIKE = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}$")
#: YAML spellings of null: the base loader keeps them as text.
_NULLS = frozenset({"", "null", "Null", "NULL", "~"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Candidate:
    """A place that holds, or claims to hold, an image reference.

    ``bare_ok``: a container's ``image`` (and an image volume's reference), where Kubernetes
    itself gives a bare name a meaning (``busybox`` → ``docker.io/library/busybox:latest``);
    elsewhere a bare name is a placeholder.
    """

    file: str
    resource: Resource
    field: str
    via: Via
    written: str
    parts: tuple[tuple[str, str], ...] = ()
    bare_ok: bool = False


def scan(stream: bytes) -> Iterator[Candidate]:
    """Every candidate of a rendered stream, in stream order."""
    for path, body in segments_of(stream):
        if not _may_hold_images(body):
            continue
        try:
            docs = load_strings(body.encode(), section="rendered", multi=True)
        except (UnicodeDecodeError, yaml.YAMLError) as exc:
            problem, line, limit_hint = problem_of(exc)
            where = f" (line {line} of the document)" if line is not None else ""
            raise DiscoveryError(
                f"rendered document is not YAML{where}: {problem}",
                path=path,
                hint=limit_hint
                or "render the component ('python -m pipeline render') and fix the template that wrote it",
            ) from exc
        for doc in docs:
            yield from scan_document(doc, file=path)


def _may_hold_images(body: str) -> bool:
    if "image" not in body and "Image" not in body and "IMAGE" not in body and "repository" not in body:
        return False
    return _CRD.search(body) is None


def scan_document(doc: Any, *, file: str, prefix: str = "") -> Iterator[Candidate]:
    """Candidates of one parsed document (``List`` kinds are opened item by item)."""
    if not isinstance(doc, dict):
        return
    kind = doc.get("kind")
    if kind == "CustomResourceDefinition":
        return
    items = doc.get("items")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(items, list):
        for index, item in enumerate(items):
            yield from scan_document(item, file=file, prefix=join_key(join_key(prefix, "items"), index))
        return
    walker = _Walker(file=file, resource=_resource(doc))
    yield from walker.mapping(doc, prefix)


def resource_of(doc: Mapping[str, Any]) -> Resource:
    """The :class:`Resource` (kind, namespace, name) of a parsed document, as discovery names it."""
    return _resource(doc)


def _resource(doc: Mapping[str, Any]) -> Resource:
    meta = doc.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    name = _text(meta.get("name")) or _text(meta.get("generateName")) or "?"
    return Resource(kind=_text(doc.get("kind")) or "?", namespace=_text(meta.get("namespace")), name=name)


def _text(value: Any) -> str:
    """A scalar as written; nulls and non-scalars as ``''``."""
    if not isinstance(value, str) or value in _NULLS:
        return ""
    return value


def is_group(node: Mapping[str, Any]) -> bool:
    """Whether ``node`` splits one image into sibling fields (has one of the :data:`SHAPES`)."""
    return shape_of(node) is not None


def _is_image_key(key: str) -> bool:
    return key == "image" or (len(key) > 5 and key.endswith("Image") and key[-6].islower())


def combine(node: Mapping[str, Any], *, where: str, file: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """Join sibling fields into one reference, as the operators that define them do.

    ``registry`` / ``repository`` / ``image`` join with ``/``; then ``tag`` (or ``version``) after
    ``:``, and ``digest`` (or Skyhook's ``containerSHA``, or a ``version`` that is a digest, as the
    GPU operator allows) after ``@``. A name that already carries a tag or digest is taken as is.
    Returns the reference text and the fields as written. A ``containerSHA`` that is neither empty
    nor ``sha256:<64 hex>`` raises :class:`DiscoveryError`.
    """
    shape = shape_of(node)
    used = (*shape.path, *_REF_KEYS) if shape is not None else GROUP_KEYS
    parts = tuple((k, node[k] if node[k] not in _NULLS else "") for k in GROUP_KEYS
                  if k in used and isinstance(node.get(k), str))
    value = dict(parts)
    sha = value.get("containerSHA", "")
    if sha and not is_sha256(sha):
        raise DiscoveryError(
            f"containerSHA {sha!r} at {where} is not sha256:<64 lowercase hex characters>",
            path=file,
            hint="write the image digest as 'containerSHA: sha256:<64 hex>', or leave it empty ('') "
            "to lock it from the registry",
        )
    path = shape.path if shape is not None else ("registry", "repository", "image")
    name = "/".join(p.strip("/") for p in (value.get(k, "") for k in path) if p.strip("/"))
    last = name.rsplit("/", 1)[-1]
    if "@" in name or ":" in last:
        return name, parts
    tag = value.get("tag", "") or value.get("version", "")
    digest = value.get("digest", "") or sha
    if tag and _DIGEST_LIKE.match(tag):
        digest, tag = digest or tag, ""
    text = name
    if tag:
        text += f":{tag}"
    if digest:
        text += f"@{digest}"
    return text, parts


@dataclass(slots=True)
class _Walker:
    file: str
    resource: Resource

    def candidate(self, field: str, via: Via, written: str, *, parts: tuple[tuple[str, str], ...] = (),
                  bare_ok: bool = False) -> Candidate:
        return Candidate(file=self.file, resource=self.resource, field=field, via=via, written=written,
                         parts=parts, bare_ok=bare_ok)

    def mapping(self, node: dict[str, Any], path: str) -> Iterator[Candidate]:
        shape = shape_of(node)
        grouped = shape is not None
        if shape is not None:
            names = [k for k in GROUP_KEYS if k in (*shape.path, *_REF_KEYS) and isinstance(node.get(k), str)]
            field = f"{path}.{{{','.join(names)}}}" if path else f"{{{','.join(names)}}}"
            text, parts = combine(node, where=f"{self.resource} {field}", file=self.file)
            yield self.candidate(field, Via.FIELDS, text, parts=parts)
        for key, value in node.items():
            if not isinstance(key, str) or key in _SKIP_KEYS:
                continue
            sub = join_key(path, key)
            if isinstance(value, str):
                if _is_image_key(key) and not (grouped and key in GROUP_KEYS):
                    yield self.candidate(sub, Via.FIELD, _text(value))
            elif isinstance(value, list):
                if key in _CONTAINER_LISTS:
                    for index, item in enumerate(value):
                        if isinstance(item, dict):
                            yield from self.container(item, join_key(sub, index))
                elif key == "env":
                    yield from self.env(value, sub)
                elif key in ("args", "command"):
                    yield from self.args(value, sub)
                else:
                    yield from self.sequence(value, sub)
            elif isinstance(value, dict):
                reference = value.get("reference")
                if key == "image" and isinstance(reference, str):  # an image volume (ImageVolumeSource)
                    yield self.candidate(join_key(sub, "reference"), Via.FIELD, _text(reference), bare_ok=True)
                else:
                    yield from self.mapping(value, sub)

    def sequence(self, node: list[Any], path: str) -> Iterator[Candidate]:
        for index, item in enumerate(node):
            if isinstance(item, dict):
                yield from self.mapping(item, join_key(path, index))
            elif isinstance(item, list):
                yield from self.sequence(item, join_key(path, index))

    def container(self, node: dict[str, Any], path: str) -> Iterator[Candidate]:
        image = node.get("image")
        if isinstance(image, str):
            yield self.candidate(join_key(path, "image"), Via.CONTAINER, _text(image), bare_ok=True)
        for key in ("env", "args", "command"):
            value = node.get(key)
            if isinstance(value, list):
                sub = join_key(path, key)
                yield from (self.env(value, sub) if key == "env" else self.args(value, sub))

    def env(self, node: list[Any], path: str) -> Iterator[Candidate]:
        for item in node:
            if not isinstance(item, dict):
                continue
            name, value = item.get("name"), item.get("value")
            if not isinstance(name, str) or not isinstance(value, str):
                continue
            upper = name.upper()
            if upper.startswith("RELATED_IMAGE_") or upper.endswith("_IMAGE") or upper == "IMAGE":
                yield self.candidate(f"{path}[{name}].value", Via.ENV, _text(value))

    def args(self, node: list[Any], path: str) -> Iterator[Candidate]:
        for index, item in enumerate(node):
            if isinstance(item, str) and (match := _IMAGE_ARG.match(item)):
                yield self.candidate(join_key(path, index), Via.ARG, match[1])
