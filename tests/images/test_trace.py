"""Origin tracing: which of our values strings went into a reference."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.images import ImageRef
from pipeline.images._trace import ValueTracer

SHA = "sha256:" + "c" * 64


def trace(values: dict[str, Any], written: str, parts: tuple[tuple[str, str], ...] = ()) -> list[str]:
    ref = ImageRef.parse(written)
    return [".".join(str(k) for k in path) for path in ValueTracer(values).trace(written, ref, parts)]


@pytest.mark.parametrize(("values", "written", "expected"), [
    # whole reference under any key, even in a list
    ({"env": [{"name": "X_IMAGE", "value": "ghcr.io/a/b:1"}]}, "ghcr.io/a/b:1", ["env.0.value"]),
    # the familiar spelling of a Docker Hub image
    ({"runtime": "pytorch/pytorch:2.7"}, "docker.io/pytorch/pytorch:2.7", ["runtime"]),
    # helm-style image map: repository and tag
    ({"image": {"repository": "ghcr.io/a/b", "tag": "1.1"}}, "ghcr.io/a/b:1.1", ["image.repository", "image.tag"]),
    # only the tag is ours: still in-tree
    ({"image": {"tag": "1.1"}}, "ghcr.io/a/b:1.1", ["image.tag"]),
    # operator split fields: version override alone
    ({"driver": {"version": "580.95.05", "enabled": True}}, "nvcr.io/nvidia/driver:580.95.05", ["driver.version"]),
    # a registry prefix we set (a mirror)
    ({"global": {"imageRegistry": "mirror.example.com"}}, "mirror.example.com/nvidia/driver:1",
     ["global.imageRegistry"]),
    # a digest, under any key
    ({"pins": {"driver": SHA}}, f"nvcr.io/nvidia/driver@{SHA}", ["pins.driver"]),
    # the same tag under an unrelated key is not ours
    ({"cdiVersion": "1.1", "replicas": "1"}, "ghcr.io/a/b:1.1", []),
    # a sibling image field that names another image vetoes the version
    ({"toolkit": {"image": "container-toolkit", "version": "1.17"}}, "nvcr.io/nvidia/driver:1.17", []),
    # a sibling tag that differs vetoes the repository
    ({"image": {"repository": "ghcr.io/a/b", "tag": "2.0"}}, "ghcr.io/a/b:1.0", []),
    # nothing of ours
    ({}, "ghcr.io/a/b:1", []),
])
def test_trace(values: dict[str, Any], written: str, expected: list[str]) -> None:
    assert trace(values, written) == expected


def test_sibling_version_that_is_a_digest_agrees_with_the_name() -> None:
    values = {"driver": {"repository": "nvcr.io/nvidia", "image": "driver", "version": SHA}}
    parts = (("repository", "nvcr.io/nvidia"), ("image", "driver"), ("version", SHA))
    assert trace(values, f"nvcr.io/nvidia/driver@{SHA}", parts) == [
        "driver.image", "driver.repository", "driver.version"]
