"""The entry points that read hostile bytes, each wrapped as ``target(data: bytes) -> None``.

A target may raise only what its contract allows (:data:`EXPECTED`): the pipeline's own errors
(:class:`~pipeline.errors.PipelineError`, which carries file, line and hint), and for the bare
YAML parser the ``yaml.YAMLError``/``ValueError`` family it documents. Anything else — a
``RecursionError``, a ``KeyError``, a ``TypeError``, a ``MemoryError`` — is a crash: a bug to turn
into a regression test. The targets are what ``nox -s fuzz`` runs under atheris
(``tests/fuzz/harness.py``) and what ``tests/test_fuzz_properties.py`` runs under Hypothesis.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import yaml

from pipeline import _yaml
from pipeline.charts.archive import inspect_archive
from pipeline.charts.http import _parse_index
from pipeline.errors import PipelineError
from pipeline.registry.client import Endpoint, _config_digest, _index_entries, _json_object, _media_type_of
from pipeline.registry.interface import INDEX_MEDIA_TYPES
from pipeline.vocabulary.reference import ImageRef

__all__ = ["EXPECTED", "TARGETS", "manifest"]

#: What a target may raise; anything else is a crash.
EXPECTED: tuple[type[BaseException], ...] = (PipelineError, ValueError, yaml.YAMLError)

_EP = Endpoint(host="registry.example", base="https://registry.example")
_REF = ImageRef.parse("registry.example/org/app:1.0")


def yaml_loader(data: bytes) -> None:
    """The bounded loader, every flavour, single and multi-document."""
    _yaml.parse(data, loader="lines", section="yaml")
    _yaml.parse(data, loader="strings", section="rendered", multi=True)
    _yaml.parse(data, loader="safe", section="rendered", multi=True)


def image_ref(data: bytes) -> None:
    """``ImageRef.parse`` of any text (``ImageRefError`` is a ``ValueError``)."""
    ref = ImageRef.parse(data.decode("utf-8", "replace"))
    assert ImageRef.parse(str(ref)) == ref  # a parsed reference round-trips


def chart_archive(data: bytes) -> None:
    inspect_archive(data, source="fuzz.tgz")


def index_yaml(data: bytes) -> None:
    _parse_index(data, "http://127.0.0.1/index.yaml")


def manifest(data: bytes, content_type: str = "") -> None:
    """What the registry client does with a manifest or an index it received (after the digest check)."""
    media_type = _media_type_of(data, content_type, _EP, _REF)
    parsed = _json_object(data, _EP, _REF)
    if media_type in INDEX_MEDIA_TYPES:
        _index_entries(parsed, _EP, _REF)
    else:
        _config_digest(parsed, _EP, _REF)


def manifest_json(data: bytes) -> None:
    """:func:`manifest` of bytes made JSON-shaped (raw bytes rarely get past the JSON parser)."""
    try:
        value = json.loads(data.decode("utf-8", "replace"))
    except ValueError:
        value = data.decode("utf-8", "replace")
    body = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": value}
    manifest(json.dumps(body).encode())
    manifest(json.dumps({"schemaVersion": 2, "config": value}).encode())


TARGETS: dict[str, Callable[[bytes], None]] = {
    "yaml": yaml_loader,
    "image_ref": image_ref,
    "chart_archive": chart_archive,
    "index_yaml": index_yaml,
    "manifest": manifest,
    "manifest_json": manifest_json,
}
