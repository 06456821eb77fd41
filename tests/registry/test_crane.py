"""crane agrees with our locks: for every image of ``lockfiles/``, served by the lab registry on loopback,
``crane digest`` gives the locked digest and ``crane manifest`` the locked media type and per-platform digests.

The lab images are built from ``recipes/images.yaml`` and pushed to a real ``docker-registry`` on
127.0.0.1 (:func:`lab.registry.fill_registry`, what ``python -m lab fill``
does); the locked ``localhost:5001/...`` references are asked of that registry's host instead.
crane is the pinned go-containerregistry binary (``tools/go/tools.json``), an independent client.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from lab.registry import fill_registry
from pipeline.lockfile import load
from pipeline.vocabulary.reference import ImageRef
from tests.servers import Registry
from tests.tools import run_tool, tool

ROOT = Path(__file__).resolve().parents[2]
INDEX_TYPES = ("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json")


def _locked_images() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for path in sorted((ROOT / "lockfiles").glob("*.lock.json")):
        for _, image in load(path).images():
            out[image.ref] = image.as_json()
    return out


def _platform(entry: dict[str, Any]) -> str:
    p = entry["platform"]
    return "/".join([p["os"], p["architecture"], *([p["variant"]] if p.get("variant") else [])])


@pytest.mark.registry
@pytest.mark.tools
def test_crane_agrees_with_every_locked_image(registry: Registry) -> None:
    tool("crane")  # skip (or fail under CI) before building and pushing the lab images
    fill_registry(ROOT / "recipes", registry.url)
    images = _locked_images()
    assert len(images) >= 20, "the committed locks name our lab images"
    problems: list[str] = []
    checked = 0
    for ref_text, locked in sorted(images.items()):
        ref = ImageRef.parse(ref_text)
        assert ref.registry == "localhost:5001", ref_text
        asked = str(ref.with_registry(registry.host))
        digest = run_tool("crane", ["digest", "--insecure", asked]).stdout.decode().strip()
        if digest != locked["digest"]:
            problems.append(f"{ref_text}: crane digest {digest}, lock {locked['digest']}")
        body = run_tool("crane", ["manifest", "--insecure", asked]).stdout
        if "sha256:" + hashlib.sha256(body).hexdigest() != locked["digest"]:
            problems.append(f"{ref_text}: crane manifest bytes do not hash to the locked digest")
        manifest = json.loads(body)
        if manifest.get("mediaType") != locked["mediaType"]:
            problems.append(f"{ref_text}: crane manifest mediaType {manifest.get('mediaType')}, "
                            f"lock {locked['mediaType']}")
        platforms = ({_platform(m): m["digest"] for m in manifest["manifests"]}
                     if locked["mediaType"] in INDEX_TYPES else {})
        if platforms != locked["platforms"]:
            problems.append(f"{ref_text}: crane manifest platforms {platforms}, lock {locked['platforms']}")
        for platform, want in sorted(locked["platforms"].items()):
            got = run_tool("crane", ["digest", "--insecure", "--platform", platform, asked]).stdout.decode().strip()
            if got != want:
                problems.append(f"{ref_text}: crane digest --platform {platform} {got}, lock {want}")
        checked += 1
    assert problems == []
    assert checked == len(images)
