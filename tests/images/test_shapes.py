"""Image blocks recognised by their shape (pipeline/images/_scan.py ``SHAPES``): one test per shape,
shapes where ``name`` is not an image, a chart of our own with a ``{name, repository, tag}`` image
list rendered by the real engine, and the ``--why`` line each shape gives.
"""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.images import Via, discover, explain
from pipeline.images._scan import SHAPES, scan_document, shape_of
from tests.images.test_discover import _component, found, render

SHA = "sha256:" + "c" * 64


def _refs(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """(field, reference text) of every sibling-field candidate of one document."""
    return [(c.field, c.written) for c in scan_document(doc, file="t.yaml") if c.via is Via.FIELDS]


def _cr(spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "t"}, "spec": spec}


@pytest.mark.parametrize(("block", "label", "ref"), [
    ({"repository": "nvcr.io/nvidia", "image": "driver", "version": "580.95.05"},
     "registry/repository/image:version", "nvcr.io/nvidia/driver:580.95.05"),
    ({"registry": "nvcr.io", "repository": "nvidia", "image": "driver", "version": SHA},
     "registry/repository/image:version", f"nvcr.io/nvidia/driver@{SHA}"),
    ({"repository": "ghcr.io/kai-scheduler/kai-scheduler", "name": "binder", "tag": "v0.14.1"},
     "repository/name:tag", "ghcr.io/kai-scheduler/kai-scheduler/binder:v0.14.1"),
    ({"repository": "ghcr.io/kai-scheduler/kai-scheduler", "name": "binder", "tag": "v0.14.1", "pullPolicy": "Always"},
     "repository/name:tag", "ghcr.io/kai-scheduler/kai-scheduler/binder:v0.14.1"),
    ({"repository": "ghcr.io/example/app", "name": "app", "digest": SHA},
     "repository/name:tag", f"ghcr.io/example/app/app@{SHA}"),
    ({"registry": "docker.io", "repository": "bitnami/nginx", "tag": "1.25"},
     "registry/repository:tag", "docker.io/bitnami/nginx:1.25"),
    ({"repository": "quay.io/prometheus/node-exporter", "tag": "v1.8.0"},
     "registry/repository:tag", "quay.io/prometheus/node-exporter:v1.8.0"),
    ({"repository": "quay.io/prometheus/node-exporter", "name": "exporter"},  # no tag: name is not joined
     None, None),
    ({"image": "nvcr.io/nvidia/k8s/dcgm-exporter", "tag": "4.2.3"},
     "registry/image:tag", "nvcr.io/nvidia/k8s/dcgm-exporter:4.2.3"),
    ({"image": "ghcr.io/skyhook/agent", "version": "6.2.0", "containerSHA": SHA},
     "registry/image:tag", f"ghcr.io/skyhook/agent:6.2.0@{SHA}"),
])
def test_each_shape_joins_its_fields(block: dict[str, Any], label: str | None, ref: str | None) -> None:
    shape = shape_of(block)
    assert (shape.label if shape else None) == label
    assert _refs(_cr({"block": block})) == ([] if ref is None else [(_field(block, shape), ref)])


def _field(block: dict[str, Any], shape: Any) -> str:
    keys = ("registry", "repository", "image", "name", "version", "tag", "digest", "containerSHA")
    used = [k for k in keys if k in block and (k in shape.path or k in ("version", "tag", "digest", "containerSHA"))]
    return "spec.block.{" + ",".join(used) + "}"


@pytest.mark.parametrize("block", [
    {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},  # a roleRef
    {"name": "sidecar", "version": "1.0"},  # a plugin or a dependency, not an image
    {"kind": "ServiceAccount", "name": "op", "namespace": "op-system"},  # a RoleBinding subject
])
def test_name_that_is_not_an_image_makes_no_reference(block: dict[str, Any]) -> None:
    assert shape_of(block) is None
    assert _refs(_cr({"ref": block})) == []


def test_a_container_name_next_to_image_is_not_joined() -> None:
    doc = _cr({"sidecar": {"name": "metrics", "image": "quay.io/prometheus/exporter", "tag": "v1"}})
    assert _refs(doc) == [("spec.sidecar.{image,tag}", "quay.io/prometheus/exporter:v1")]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "main", "image": "busybox:1.36"}]}}
    assert [(c.field, c.written) for c in scan_document(pod, file="p.yaml")] == [
        ("spec.containers[0].image", "busybox:1.36")]


def test_every_shape_has_an_example_and_a_distinct_label() -> None:
    assert len({s.label for s in SHAPES}) == len(SHAPES)
    assert all(s.example for s in SHAPES)


KAI_CONFIG = """\
apiVersion: kai.scheduler/v1
kind: Config
metadata:
  name: kai-config
spec:
  services:
{{- range .Values.services }}
    {{ .name }}:
      image:
        repository: {{ $.Values.global.repository }}
        name: {{ .name }}
        tag: {{ $.Values.global.tag }}
{{- end }}
  images:
{{- range .Values.services }}
    - name: {{ .name }}
      repository: {{ $.Values.global.repository }}
      tag: {{ $.Values.global.tag }}
{{- end }}
"""
KAI_VALUES = """\
global:
  repository: ghcr.io/kai-scheduler/kai-scheduler
  tag: v0.14.1
services:
  - name: binder
  - name: scheduler
  - name: podgrouper
"""


def test_a_chart_with_a_name_repository_tag_image_list_yields_one_image_per_entry() -> None:
    _, stream = render({"config.yaml": KAI_CONFIG}, values=KAI_VALUES)
    result = discover(stream, component=_component(), recipe="r")
    repo = "ghcr.io/kai-scheduler/kai-scheduler"
    assert found(result) == [
        *[("op/templates/config.yaml", "Config/kai-config", f"spec.services.{s}.image.{{repository,name,tag}}",
           "fields", f"{repo}/{s}:v0.14.1") for s in ("binder", "scheduler", "podgrouper")],
        *[("op/templates/config.yaml", "Config/kai-config", f"spec.images[{i}].{{repository,name,tag}}",
           "fields", f"{repo}/{s}:v0.14.1") for i, s in enumerate(("binder", "scheduler", "podgrouper"))],
    ]
    assert f"{repo}:v0.14.1" not in {str(i.ref) for i in result.images}  # the image that does not exist
    assert result.images[3].found_at == ("Config/kai-config spec.images[0].{repository,name,tag} "
                                         "(op/templates/config.yaml)")
    why = explain(list(result.images), f"{repo}/binder:v0.14.1")
    assert (f"found in sibling fields, written '{repo}/binder:v0.14.1' from repository='{repo}', name='binder', "
            "tag='v0.14.1', joined as repository/name:tag") in why
