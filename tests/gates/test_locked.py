"""Gate 3: every image a lock holds is locked to a digest; findings point at the lock line.

The gate reads verified :class:`~pipeline.lockfile.Lockfile` records: a digest that is not
``sha256:<64 hex>`` or a lock without components never reaches it (the model refuses them where the
lock is read, tested here as the gate's former findings and in tests/test_lockfile.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipeline.errors import IntegrityError, LockError
from pipeline.gates import ChartDefaultImagesLocked, Finding, GateInput, GateName
from pipeline.gates.exemptions import Exemptions
from pipeline.lockfile import Lockfile
from pipeline.recipes import load_catalog
from pipeline.vocabulary.digest import canonical_json
from tests.locks import component, image, lock_body, seal, sealed_bytes
from tests.recipes.catalogs import line_of, write_catalog

SHA = "sha256:" + "d" * 64
LOCK = "lockfiles/r.lock.json"


def _image(ref: str, digest: str | None, origin: str = "chart-default") -> dict[str, Any]:
    return image(ref, digest=digest, origin=origin, found_at=("x",))


def _body(components: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    return lock_body("r", {name: component(name, namespace=name, chart=None, images=images)
                           for name, images in components.items()})


BODY = _body({
    "operator": [_image("nvcr.io/nvidia/gpu-operator:v26.3.2", SHA), _image("nvcr.io/nvidia/driver:580.95.05", None)],
    "exporter": [_image("nvcr.io/nvidia/k8s/dcgm-exporter:4.2.3", SHA),
                 _image("docker.io/library/busybox:1.36", None, origin="in-tree")],
    "empty": [],
})


def _check(tmp_path: Path, lock: Lockfile) -> list[Finding]:
    catalog = load_catalog(write_catalog(tmp_path))
    given = GateInput(catalog=catalog, exemptions=Exemptions(), locks={LOCK: lock})
    return ChartDefaultImagesLocked().check(given)


def test_images_without_a_digest_fail_at_their_lock_line(tmp_path: Path) -> None:
    lock = seal(BODY)
    text = lock.dumps().decode()
    hint = ("run 'python -m pipeline lock' (nox -s lock) to resolve every image against its registry, and commit "
            "lockfiles/")
    assert _check(tmp_path, lock) == [
        Finding(gate=GateName.LOCKED_IMAGES, file=LOCK, line=line_of(text, '"ref": "docker.io/library/busybox'),
                message="component 'exporter': in-tree image 'docker.io/library/busybox:1.36' has no digest in the "
                        "lock", hint=hint),
        Finding(gate=GateName.LOCKED_IMAGES, file=LOCK, line=line_of(text, '"ref": "nvcr.io/nvidia/driver'),
                message="component 'operator': chart-default image 'nvcr.io/nvidia/driver:580.95.05' has no digest "
                        "in the lock", hint=hint),
    ]


@pytest.mark.parametrize(("digest", "message"), [
    ("sha512:" + "e" * 128, f"'sha512:{'e' * 128}' is not a sha256 digest"),
    ("", "not a digest: '' (expected 'sha256:<64 hex characters>')"),
])
def test_a_digest_that_is_not_sha256_is_refused_where_the_lock_is_read(digest: str, message: str) -> None:
    body = _body({"exporter": [_image("nvcr.io/nvidia/k8s/dcgm-exporter:4.2.3", digest)]})
    raw = sealed_bytes(body)
    with pytest.raises(LockError) as caught:
        Lockfile.from_bytes(raw, display=LOCK)
    assert caught.value.message == f"lockfile {LOCK}: components.exporter.images[0].digest: {message}"
    assert caught.value.line == line_of(raw.decode(), '"digest": "' + digest)


def test_a_fully_locked_body_passes(tmp_path: Path) -> None:
    lock = seal(_body({"operator": [_image("nvcr.io/nvidia/gpu-operator:v26.3.2", SHA)]}))
    assert _check(tmp_path, lock) == []


def test_the_same_ref_in_two_components_gets_each_its_own_line(tmp_path: Path) -> None:
    lock = seal(_body({"a": [_image("docker.io/library/busybox:1.36", None)],
                       "b": [_image("docker.io/library/busybox:1.36", None)]}))
    lines = lock.dumps().decode().splitlines()
    expected = [n for n, text in enumerate(lines, start=1) if "busybox" in text]
    assert len(expected) == 2
    assert [f.line for f in _check(tmp_path, lock)] == expected


def test_a_lock_without_components_is_refused_where_it_is_read() -> None:
    body = {k: v for k, v in seal(BODY).body().items() if k != "components"}
    with pytest.raises(IntegrityError) as caught:
        Lockfile.from_bytes(canonical_json(body), display=LOCK)
    assert caught.value.message == f"lockfile {LOCK} is missing 'components'"
