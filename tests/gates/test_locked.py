"""Gate 3: every image a lock holds is locked to a sha256 digest; findings point at the lock line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.gates import ChartDefaultImagesLocked, Finding, GateInput, GateName
from pipeline.gates.exemptions import Exemptions
from pipeline.recipes import load_catalog
from pipeline.vocabulary.digest import canonical_json
from tests.recipes.catalogs import line_of, write_catalog

SHA = "sha256:" + "d" * 64
LOCK = "lockfiles/r.lock.json"


def _image(ref: str, digest: Any, origin: str = "chart-default") -> dict[str, Any]:
    return {"ref": ref, "digest": digest, "origin": origin, "foundAt": ["x"], "source": "registry"}


BODY: dict[str, Any] = {
    "lockVersion": 1,
    "components": {
        "operator": {"images": [
            _image("nvcr.io/nvidia/gpu-operator:v26.3.2", SHA),
            _image("nvcr.io/nvidia/driver:580.95.05", None),
        ]},
        "exporter": {"images": [
            _image("nvcr.io/nvidia/k8s/dcgm-exporter:4.2.3", "sha512:" + "e" * 128),
            _image("docker.io/library/busybox:1.36", "", origin="in-tree"),
        ]},
        "empty": {"images": []},
    },
}


def _check(tmp_path: Path, body: dict[str, Any]) -> list[Finding]:
    catalog = load_catalog(write_catalog(tmp_path))
    given = GateInput(catalog=catalog, exemptions=Exemptions(), locks={LOCK: body})
    return ChartDefaultImagesLocked().check(given)


def test_images_without_a_sha256_digest_fail_at_their_lock_line(tmp_path: Path) -> None:
    text = canonical_json(BODY).decode()
    hint = ("run 'python -m pipeline lock' (nox -s lock) to resolve every image against its registry, and commit "
            "lockfiles/")
    assert _check(tmp_path, BODY) == [
        Finding(gate=GateName.LOCKED_IMAGES, file=LOCK, line=line_of(text, "dcgm-exporter"),
                message="component 'exporter': chart-default image 'nvcr.io/nvidia/k8s/dcgm-exporter:4.2.3' is "
                        f"locked to 'sha512:{'e' * 128}', not a sha256:<64 hex> digest", hint=hint),
        Finding(gate=GateName.LOCKED_IMAGES, file=LOCK, line=line_of(text, "busybox"),
                message="component 'exporter': in-tree image 'docker.io/library/busybox:1.36' has no digest in the "
                        "lock", hint=hint),
        Finding(gate=GateName.LOCKED_IMAGES, file=LOCK, line=line_of(text, '"ref": "nvcr.io/nvidia/driver'),
                message="component 'operator': chart-default image 'nvcr.io/nvidia/driver:580.95.05' has no digest "
                        "in the lock", hint=hint),
    ]


def test_a_fully_locked_body_passes(tmp_path: Path) -> None:
    body = {"components": {"operator": {"images": [_image("nvcr.io/nvidia/gpu-operator:v26.3.2", SHA)]}}}
    assert _check(tmp_path, body) == []


def test_the_same_ref_in_two_components_gets_each_its_own_line(tmp_path: Path) -> None:
    body = {"components": {"a": {"images": [_image("docker.io/library/busybox:1.36", None)]},
                           "b": {"images": [_image("docker.io/library/busybox:1.36", None)]}}}
    lines = canonical_json(body).decode().splitlines()
    expected = [n for n, text in enumerate(lines, start=1) if "busybox" in text]
    assert [f.line for f in _check(tmp_path, body)] == expected


def test_a_body_without_components_is_a_finding(tmp_path: Path) -> None:
    assert [f.message for f in _check(tmp_path, {"lockVersion": 1})] == ["lock has no 'components' mapping"]
