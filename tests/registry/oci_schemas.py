"""The OCI image-spec JSON schemas (v1.1.1, in ``../shared/schemas/oci-image-spec``) as validators.

The schemas are draft-04 and refer to each other by relative file name under ``id`` base URIs
that do not all share a directory (``.../schema/image/index`` and ``.../schema/descriptor``), so
every reference is retrieved by the file name it ends with. ``validate`` raises
``jsonschema.ValidationError`` on the first error.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

#: ``<repo>/../shared/schemas/oci-image-spec``, computed from this file.
OCI_SCHEMAS = Path(__file__).resolve().parents[3] / "shared" / "schemas" / "oci-image-spec"

SCHEMA_FILES = {
    "index": "image-index-schema.json",
    "manifest": "image-manifest-schema.json",
    "config": "config-schema.json",
    "descriptor": "content-descriptor.json",
}


def _load(name: str) -> Any:
    return json.loads((OCI_SCHEMAS / name).read_text())


def _retrieve(uri: str) -> Resource[Any]:
    name = uri.rsplit("/", 1)[-1].split("#", 1)[0]
    if not (OCI_SCHEMAS / name).is_file():
        raise LookupError(f"no OCI schema file {name!r} for {uri!r}")
    return Resource.from_contents(_load(name), default_specification=DRAFT4)


@cache
def validator(kind: str) -> jsonschema.Draft4Validator:
    """A validator for ``kind`` (index, manifest, config, descriptor) with format checks on."""
    schema = _load(SCHEMA_FILES[kind])
    registry: Registry[Any] = Registry(retrieve=_retrieve)  # type: ignore[call-arg]
    return jsonschema.Draft4Validator(schema, registry=registry,
                                      format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)


def validate(kind: str, document: Any) -> None:
    validator(kind).validate(document)
