"""CRD validation: Kubernetes' OpenAPI dialect, and the fields the API server would prune silently."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.errors import GateError, PipelineError
from pipeline.provenance import load_crd, schema_errors, unknown_fields, validate_files

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"},
        "spec": {
            "type": "object",
            "required": ["port"],
            "properties": {
                "port": {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                "note": {"type": "string", "nullable": True},
                "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                          "items": {"type": "object", "properties": {"name": {"type": "string"},
                                                                       "value": {"type": "integer"}}}},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                         "properties": {"strict": {"type": "object", "properties": {"a": {"type": "string"}}}}},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "bare": {"type": "object"},
            },
        },
    },
}


@pytest.fixture
def crd_file(tmp_path: Path) -> Path:
    path = tmp_path / "crd.yaml"
    path.write_text(yaml.safe_dump({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "spec": {"group": "example.com", "names": {"kind": "Widget"}, "versions": [
            {"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": SCHEMA}},
            {"name": "v0", "served": False, "storage": False, "schema": {"openAPIV3Schema": SCHEMA}},
        ]},
    }))
    return path


def widget(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"port": 80, **spec}}


def test_only_served_versions_are_kept(crd_file: Path) -> None:
    crd = load_crd(crd_file)
    assert crd.api_versions() == ("example.com/v1",)
    assert schema_errors({**widget(), "apiVersion": "example.com/v0"}, crd) == [
        "apiVersion: 'example.com/v0' is not served by the Widget CRD (served: example.com/v1)"]


def test_kubernetes_openapi_extensions_are_understood(crd_file: Path) -> None:
    crd = load_crd(crd_file)
    assert schema_errors(widget(port="http", note=None, tags=["a", "b"]), crd) == []
    assert schema_errors(widget(port=8080), crd) == []
    assert schema_errors(widget(port=1.5), crd) == [".spec.port: 1.5 is not valid under any of the given schemas"]
    assert schema_errors(widget(tags=["a", "a"]), crd) == [".spec.tags: ['a', 'a'] has non-unique elements"]
    assert schema_errors(widget(ports=[{"name": "x", "value": 1}, {"name": "x", "value": 2}]), crd) == [
        ".spec.ports[1]: duplicate list-map key {'name': 'x'}"]
    doc = widget()
    del doc["spec"]["port"]
    assert schema_errors(doc, crd) == [".spec: 'port' is a required property"]


def test_prunable_fields_are_found_where_the_schema_does_not_keep_them(crd_file: Path) -> None:
    crd = load_crd(crd_file)
    doc = widget(free={"anything": {"goes": 1}, "strict": {"a": "x", "b": "y"}}, labels={"k": "v"},
                 bare={"dropped": True}, typo=1)
    doc["metadata"]["labelz"] = {}
    doc["status"] = {}
    assert unknown_fields(doc, crd) == [".metadata.labelz", ".spec.bare.dropped", ".spec.free.strict.b",
                                        ".spec.typo", ".status"]


def test_files_are_validated_with_names_and_paths(crd_file: Path, tmp_path: Path) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(yaml.safe_dump(widget()))
    bad.write_text(yaml.safe_dump_all([widget(), widget(port=[1], typo=True)]))
    crd = load_crd(crd_file)
    assert validate_files([good], [crd], root=tmp_path) == 1
    with pytest.raises(GateError) as caught:
        validate_files([good, bad], [crd], root=tmp_path)
    assert caught.value.message.splitlines()[1:] == [
        "  bad.yaml: Widget/w: .spec.port: [1] is not valid under any of the given schemas",
        "  bad.yaml: Widget/w: .spec.typo: unknown field (the API server would drop it silently)",
    ]


def test_an_unreadable_crd_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("kind: NotACrd\n")
    with pytest.raises(PipelineError, match="is not a readable CustomResourceDefinition"):
        load_crd(path)
