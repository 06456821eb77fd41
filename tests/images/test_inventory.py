"""The inventory table and ``--why IMAGE``: pure text from found images."""

from __future__ import annotations

import pytest

from pipeline.errors import UsageError
from pipeline.images import (
    FoundImage,
    ImageRef,
    Origin,
    Rejected,
    RejectReason,
    Resource,
    Via,
    explain,
    format_inventory,
)

DEPLOY = Resource(kind="Deployment", namespace="ops", name="operator")
POLICY = Resource(kind="ClusterPolicy", namespace="", name="cluster-policy")


def image(ref: str, *, recipe: str = "r1", component: str = "op", origin: Origin = Origin.CHART_DEFAULT,
          via: Via = Via.CONTAINER, resource: Resource = DEPLOY, field: str = "spec.template.spec.containers[0].image",
          file: str = "op/templates/operator.yaml", parts: tuple[tuple[str, str], ...] = (),
          set_by: tuple[tuple[str | int, ...], ...] = ()) -> FoundImage:
    return FoundImage(ref=ImageRef.parse(ref), written=ref, origin=origin, via=via, recipe=recipe,
                      component=component, file=file, resource=resource, field=field, parts=parts, set_by=set_by)


FOUND = [
    image("nvcr.io/nvidia/gpu-operator:v26.3.2"),
    image("nvcr.io/nvidia/gpu-operator:v26.3.2", recipe="r2"),
    image("nvcr.io/nvidia/driver:580.95.05", origin=Origin.IN_TREE, via=Via.FIELDS, resource=POLICY,
          field="spec.driver.{repository,image,version}", file="op/templates/clusterpolicy.yaml",
          parts=(("repository", "nvcr.io/nvidia"), ("image", "driver"), ("version", "580.95.05")),
          set_by=(("driver", "version"),)),
    image("nvcr.io/nvidia/driver:580.95.05", via=Via.ENV,
          field="spec.template.spec.containers[0].env[RELATED_IMAGE_DRIVER].value"),
    image("busybox:1.36", component="exporter", file="components/exporter/manifests/check.yaml",
          origin=Origin.IN_TREE),
]
REFUSED = [
    Rejected(written="vgpu-manager", reason=RejectReason.PLACEHOLDER, detail="a bare name", via=Via.FIELDS,
             recipe="r1", component="op", file="op/templates/clusterpolicy.yaml", resource=POLICY,
             field="spec.vgpuManager.{repository,image,version}"),
]


def test_inventory_lists_each_image_once_sorted_with_origin_components_and_places() -> None:
    assert format_inventory(FOUND, REFUSED) == (
        "IMAGE                                ORIGIN         COMPONENTS  PLACES\n"
        "docker.io/library/busybox:1.36       in-tree        exporter    1\n"
        "nvcr.io/nvidia/driver:580.95.05      in-tree        op          2\n"
        "nvcr.io/nvidia/gpu-operator:v26.3.2  chart-default  op          2\n"
        "3 images\n"
        "\n"
        "not images (1):\n"
        "  op: 'vgpu-manager' at ClusterPolicy/cluster-policy spec.vgpuManager.{repository,image,version} "
        "(op/templates/clusterpolicy.yaml): a bare name\n"
    )


def test_empty_inventory() -> None:
    assert format_inventory([]) == "IMAGE  ORIGIN  COMPONENTS  PLACES\n0 images\n"


def test_why_shows_every_place_and_who_chose_the_image() -> None:
    assert explain(FOUND, "nvcr.io/nvidia/driver:580.95.05") == (
        "nvcr.io/nvidia/driver:580.95.05  (in-tree, not pinned by digest, 2 places)\n"
        "  recipe r1, component op: op/templates/clusterpolicy.yaml\n"
        "    ClusterPolicy/cluster-policy spec.driver.{repository,image,version}\n"
        "    found in sibling fields, written 'nvcr.io/nvidia/driver:580.95.05' from repository='nvcr.io/nvidia', "
        "image='driver', version='580.95.05', joined as registry/repository/image:version\n"
        "    set by our values: driver.version\n"
        "  recipe r1, component op: op/templates/operator.yaml\n"
        "    Deployment/ops/operator spec.template.spec.containers[0].env[RELATED_IMAGE_DRIVER].value\n"
        "    found in an environment variable, written 'nvcr.io/nvidia/driver:580.95.05'\n"
        "    the chart's default\n"
    )


def test_why_accepts_familiar_names_and_names_without_tag() -> None:
    assert explain(FOUND, "busybox:1.36").startswith("docker.io/library/busybox:1.36  (in-tree, not pinned")
    assert "written in our manifest" in explain(FOUND, "busybox:1.36")
    text = explain(FOUND, "nvcr.io/nvidia/gpu-operator")
    assert text.startswith("nvcr.io/nvidia/gpu-operator:v26.3.2  (chart-default, not pinned by digest, 2 places)")
    assert "recipe r1," in text and "recipe r2," in text


def test_why_an_unknown_image_suggests_close_names() -> None:
    with pytest.raises(UsageError) as info:
        explain(FOUND, "nvcr.io/nvidia/drivers:580.95.05")
    assert str(info.value) == "image 'nvcr.io/nvidia/drivers:580.95.05' is not in the render"
    assert info.value.hint is not None
    assert info.value.hint.startswith("did you mean: nvcr.io/nvidia/driver:580.95.05")


def test_why_refuses_text_that_is_not_a_reference() -> None:
    with pytest.raises(UsageError, match="--why 'Not An Image'"):
        explain(FOUND, "Not An Image")
