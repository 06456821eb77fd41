"""The deterministic image builder and its push: bytes, schemas, images.yaml errors, a real registry.

Golden digests below were computed by the builder itself; they are the contract that every
machine builds the same bytes (a change to the builder that moves them moves every in-tree pin
in recipes/, so it must be deliberate).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from lab.images import (
    CREATED,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    BuiltImage,
    ImageFile,
    ImageSpec,
    Platform,
    build_image,
    gzip_stored,
    load_image_specs,
    push_image,
)
from pipeline.errors import RecipeError, ResolveError
from pipeline.vocabulary.reference import ImageRef
from tests.registry.oci_schemas import OCI_SCHEMAS, validate
from tests.registry.skopeo import require_skopeo, skopeo
from tests.servers import HttpRepo, Registry

REPO_ROOT = Path(__file__).resolve().parents[2]
CATALOG_IMAGES = REPO_ROOT / "recipes" / "images.yaml"

AMD64 = Platform.parse("linux/amd64")
ARM64 = Platform.parse("linux/arm64/v8")
GOLDEN_FILES = (ImageFile(path="etc/recipe-lab/golden", content=b"golden\n"),)
GOLDEN = ImageSpec(ref=ImageRef.parse("localhost:5001/recipe-lab/golden:1.0"), platforms=(AMD64, ARM64),
                   files=GOLDEN_FILES)
SINGLE = ImageSpec(ref=ImageRef.parse("localhost:5001/recipe-lab/golden:1.0"), platforms=(AMD64,),
                   files=GOLDEN_FILES)

GOLDEN_INDEX = "sha256:fb9a300cd35e525cfef2c5f9f4edde53b37dcb35e7943d234aaf53e803102289"
GOLDEN_AMD64 = "sha256:730b461dcf79f65a6a7cf30008afc1c153d34ab4eb7bffebd7311ef5a1d73970"
GOLDEN_ARM64 = "sha256:0e01d49b2ebefcb448c496b74c7f1001ec015fa7321da38b42be6f2cd9ace140"


def _json(data: bytes) -> Any:
    return json.loads(data)


def _blob(built: BuiltImage, media_type: str) -> list[bytes]:
    return [b.data for b in built.blobs if b.media_type == media_type]


# ------------------------------------------------------------------------------------------------
# determinism


def test_golden_digests() -> None:
    built = build_image(GOLDEN)
    assert built.digest == GOLDEN_INDEX
    assert built.media_type == OCI_INDEX
    assert dict(built.platforms) == {"linux/amd64": GOLDEN_AMD64, "linux/arm64/v8": GOLDEN_ARM64}
    assert str(built.reference) == f"localhost:5001/recipe-lab/golden:1.0@{GOLDEN_INDEX}"


def test_single_platform_image_is_a_plain_manifest() -> None:
    built = build_image(SINGLE)
    assert built.media_type == OCI_MANIFEST
    assert built.manifests == ()
    # the same manifest as the amd64 entry of the two-platform index
    assert built.digest == GOLDEN_AMD64
    assert dict(built.platforms) == {"linux/amd64": GOLDEN_AMD64}


def test_two_builds_are_byte_identical() -> None:
    first, second = build_image(GOLDEN), build_image(GOLDEN)
    assert first.top.data == second.top.data
    assert [m.data for m in first.manifests] == [m.data for m in second.manifests]
    assert [b.data for b in first.blobs] == [b.data for b in second.blobs]


_BUILD_IN_CHILD = """
import json, sys
from pathlib import Path
from lab.images import build_image, load_image_specs
specs = load_image_specs(Path(sys.argv[1]))
print(json.dumps({str(s.ref): build_image(s).digest for s in specs}, sort_keys=True))
"""


def test_catalog_digests_do_not_depend_on_the_process_environment(tmp_path: Path) -> None:
    here = {str(s.ref): build_image(s).digest for s in load_image_specs(CATALOG_IMAGES)}
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TZ": "Pacific/Chatham", "LC_ALL": "C",
           "PYTHONHASHSEED": "4242", "HOME": str(tmp_path), "PYTHONPATH": str(REPO_ROOT)}
    child = subprocess.run([sys.executable, "-c", _BUILD_IN_CHILD, str(CATALOG_IMAGES)], capture_output=True,
                           env=env, cwd=tmp_path, umask=0o077, check=True, timeout=60)
    assert json.loads(child.stdout) == here


def test_two_tags_of_one_repository_never_share_a_digest() -> None:
    other = ImageSpec(ref=GOLDEN.ref.__class__.parse("localhost:5001/recipe-lab/golden:2.0"),
                      platforms=GOLDEN.platforms, files=GOLDEN.files)
    first, second = build_image(GOLDEN), build_image(other)
    assert first.digest != second.digest
    # the layer is shared: only the configs (which carry the tag) differ
    assert _blob(first, OCI_LAYER_GZIP) == _blob(second, OCI_LAYER_GZIP)


# ------------------------------------------------------------------------------------------------
# layer, config, manifest, index


def test_layer_is_a_sorted_tar_with_fixed_metadata() -> None:
    (layer,) = _blob(build_image(ImageSpec(
        ref=GOLDEN.ref, platforms=(AMD64,),
        files=(ImageFile(path="usr/bin/tool", content=b"#!/bin/sh\n", mode=0o755),
               ImageFile(path="etc/recipe-lab/b", content=b"b\n"), ImageFile(path="etc/recipe-lab/a", content=b"a\n")),
    )), OCI_LAYER_GZIP)
    assert layer[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # gzip: no name, mtime 0, OS unknown
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer)), mode="r:") as tar:
        members = tar.getmembers()
        assert [(m.name, m.type, m.mode) for m in members] == [
            ("etc", tarfile.DIRTYPE, 0o755), ("etc/recipe-lab", tarfile.DIRTYPE, 0o755),
            ("etc/recipe-lab/a", tarfile.REGTYPE, 0o644), ("etc/recipe-lab/b", tarfile.REGTYPE, 0o644),
            ("usr", tarfile.DIRTYPE, 0o755), ("usr/bin", tarfile.DIRTYPE, 0o755),
            ("usr/bin/tool", tarfile.REGTYPE, 0o755),
        ]
        assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, 0, "", "")}
        handle = tar.extractfile("usr/bin/tool")
        assert handle is not None and handle.read() == b"#!/bin/sh\n"


def test_config_records_platform_epoch_labels_and_the_layer_diff_id() -> None:
    built = build_image(GOLDEN)
    (layer,) = _blob(built, OCI_LAYER_GZIP)
    diff_id = "sha256:" + hashlib.sha256(gzip.decompress(layer)).hexdigest()
    configs = sorted((_json(c) for c in _blob(built, OCI_CONFIG)), key=lambda c: c["architecture"])
    assert [(c["os"], c["architecture"], c.get("variant")) for c in configs] == [
        ("linux", "amd64", None), ("linux", "arm64", "v8")]
    for config in configs:
        assert config["created"] == CREATED == "1970-01-01T00:00:00Z"
        assert config["rootfs"] == {"type": "layers", "diff_ids": [diff_id]}
        assert config["config"]["Labels"] == {"org.opencontainers.image.title": "golden",
                                              "org.opencontainers.image.version": "1.0"}
        assert config["history"][0]["created"] == CREATED


def test_index_lists_each_platform_manifest_with_its_descriptor() -> None:
    built = build_image(GOLDEN)
    index = _json(built.top.data)
    assert [(e["digest"], e["platform"]) for e in index["manifests"]] == [
        (GOLDEN_AMD64, {"architecture": "amd64", "os": "linux"}),
        (GOLDEN_ARM64, {"architecture": "arm64", "os": "linux", "variant": "v8"}),
    ]
    for entry, manifest in zip(index["manifests"], built.manifests, strict=True):
        assert entry["size"] == len(manifest.data)
        assert entry["mediaType"] == OCI_MANIFEST
        body = _json(manifest.data)
        blobs = {b.digest: b for b in built.blobs}
        for descriptor in (body["config"], *body["layers"]):
            assert blobs[descriptor["digest"]].size == descriptor["size"]
            assert blobs[descriptor["digest"]].media_type == descriptor["mediaType"]


def test_json_documents_are_canonical() -> None:
    built = build_image(GOLDEN)
    for data in (built.top.data, *(m.data for m in built.manifests), *_blob(built, OCI_CONFIG)):
        assert data == (json.dumps(json.loads(data), sort_keys=True, indent=2) + "\n").encode()


@pytest.mark.parametrize("size", [0, 1, 65535, 65536, 200_000])
def test_stored_gzip_round_trips_across_block_boundaries(size: int) -> None:
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    assert gzip.decompress(gzip_stored(data)) == data


@pytest.fixture
def oci_schemas(request: pytest.FixtureRequest) -> Path:
    if request.node.get_closest_marker("shared") is None:
        pytest.fail("a test using the OCI schemas must be marked @pytest.mark.shared")
    if not (OCI_SCHEMAS / "image-index-schema.json").is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"the OCI image-spec schemas are not at {OCI_SCHEMAS}; CI must check out ../shared")
        pytest.skip(f"the OCI image-spec schemas are not at {OCI_SCHEMAS}")
    return OCI_SCHEMAS


@pytest.mark.shared
@pytest.mark.usefixtures("oci_schemas")
@pytest.mark.parametrize("spec", [GOLDEN, SINGLE, *load_image_specs(CATALOG_IMAGES)], ids=str)
def test_documents_are_valid_against_the_oci_image_spec_schemas(spec: ImageSpec) -> None:
    built = build_image(spec)
    validate("index" if built.media_type == OCI_INDEX else "manifest", _json(built.top.data))
    for manifest in built.manifests:
        validate("manifest", _json(manifest.data))
    for config in _blob(built, OCI_CONFIG):
        validate("config", _json(config))
    for blob in (*built.blobs, *built.manifests, built.top):
        validate("descriptor", blob.descriptor())


@pytest.mark.shared
@pytest.mark.usefixtures("oci_schemas")
def test_schema_check_rejects_a_broken_index() -> None:
    import jsonschema

    index = _json(build_image(GOLDEN).top.data)
    del index["manifests"][0]["platform"]["os"]
    with pytest.raises(jsonschema.ValidationError, match="'os' is a required property"):
        validate("index", index)


# ------------------------------------------------------------------------------------------------
# records and images.yaml


@pytest.mark.parametrize(("text", "message"), [
    ("linux", "is not os/architecture"),
    ("linux/x86_64", "architecture 'x86_64' is not a GOARCH value"),
    ("linus/amd64", "os 'linus' is not one of darwin, freebsd, linux, windows (did you mean 'linux'?)"),
    ("linux/arm64/8", "variant '8' is not of the form v<N>"),
])
def test_bad_platforms_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        Platform.parse(text)


def test_platform_round_trips() -> None:
    assert str(Platform.parse("linux/arm64/v8")) == "linux/arm64/v8"
    assert str(AMD64) == "linux/amd64"


@pytest.mark.parametrize(("path", "message"), [
    ("/etc/x", "must be a normalised relative path"),
    ("etc/../x", "must be a normalised relative path"),
    ("etc//x", "must be a normalised relative path"),
    ("etc/x y", "must be a normalised relative path"),
])
def test_bad_file_paths_are_refused(path: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ImageFile(path=path, content=b"")


def test_a_file_below_another_file_is_refused() -> None:
    with pytest.raises(ValueError, match="'etc/x' is both a file and a directory"):
        ImageSpec(ref=GOLDEN.ref, platforms=(AMD64,),
                  files=(ImageFile(path="etc/x", content=b""), ImageFile(path="etc/x/y", content=b"")))


def test_the_catalog_image_set_loads() -> None:
    specs = load_image_specs(CATALOG_IMAGES)
    refs = [str(s.ref) for s in specs]
    assert len(refs) == len(set(refs))
    assert all(r.startswith("localhost:5001/recipe-lab/") for r in refs)
    assert "localhost:5001/recipe-lab/accel-driver:580.95.05" in refs
    single = [str(s.ref) for s in specs if len(s.platforms) == 1]
    assert single == ["localhost:5001/recipe-lab/busybox:1.36", "localhost:5001/recipe-lab/busybox:1.36.1-1"]


VALID = """\
apiVersion: pipeline.recipes.dev/v1
kind: ImageSet
spec:
  prefix: localhost:5001/lab
  platforms: [linux/amd64]
  images:
    - repository: localhost:5001/lab/app
      tags: ["1.0", "1.1"]
      files:
        - path: /etc/lab/app
          content: "app\\n"
          mode: 0600
"""


def test_a_valid_image_set(tmp_path: Path) -> None:
    path = tmp_path / "images.yaml"
    path.write_text(VALID)
    specs = load_image_specs(path)
    assert [str(s.ref) for s in specs] == ["localhost:5001/lab/app:1.0", "localhost:5001/lab/app:1.1"]
    assert specs[0].files == (ImageFile(path="etc/lab/app", content=b"app\n", mode=0o600),)
    assert specs[0].platforms == (AMD64,)


@pytest.mark.parametrize(("old", "new", "line", "message", "hint"), [
    ("kind: ImageSet", "kind: Images", 2, "kind 'Images' is not 'ImageSet'", "holds one ImageSet document"),
    ("  prefix: localhost:5001/lab\n", "", 4, "spec.prefix must be a registry/namespace string, not missing",
     "set 'prefix: localhost:5001/recipe-lab'"),
    ("  prefix: localhost:5001/lab", "  prefix: lab", 4, "spec.prefix 'lab' does not start with a registry host",
     "host:port/namespace"),
    ("  platforms: [linux/amd64]\n", "", 6, "spec.images[0]: no platforms (and spec.platforms gives no default)",
     "linux/arm64/v8"),
    ("[linux/amd64]", "[linux/x86_64]", 5, "images.yaml spec: architecture 'x86_64' is not a GOARCH value",
     "os/architecture[/variant]"),
    ("localhost:5001/lab/app", "ghcr.io/lab/app", 7,
     "spec.images[0]: repository 'ghcr.io/lab/app' is not under 'localhost:5001/lab'", "spec.prefix"),
    ("lab/app\n", "lab/app:1.0\n", 7, "spec.images[0]: repository 'localhost:5001/lab/app:1.0' carries a tag or digest",
     "under 'tags:'"),
    ("lab/app\n", "lab/App\n", 7, "spec.images[0]: repository in 'localhost:5001/lab/App' must be lower case",
     "repository: localhost:5001/lab/<name>"),
    ('["1.0", "1.1"]', '[1.0, "1.1"]', 8, "spec.images[0]: tag 1.0 must be a string, not a number", 'quote it: "1.0"'),
    ('["1.0", "1.1"]', '["1.0", "1.0"]', 8, "spec.images[0]: tag '1.0' is listed twice", "list each tag once"),
    ('["1.0", "1.1"]', '["-x"]', 8, "spec.images[0]: '-x' is not a valid tag", "1-128 characters"),
    ('["1.0", "1.1"]', "[]", 8, "spec.images[0]: 'tags' must be a non-empty list, not a list", "tags:"),
    ("      tags:", "      tag:", 8, "unknown key 'tag' in spec.images[0] (did you mean 'tags'?)",
     "repository, tags, platforms, files"),
    ("path: /etc/lab/app", "path: /etc/../app", 10,
     "spec.images[0].files[0]: file path 'etc/../app' must be a normalised relative path", "/etc/recipe-lab/"),
    ("mode: 0600", "mode: rw", 12, "spec.images[0].files[0]: 'mode' must be an octal number such as 0644",
     "leading 0 as octal"),
    ('content: "app\\n"', "content: 7", 11, "spec.images[0].files[0]: 'content' must be a string, not a number",
     "quote"),
])
def test_image_set_errors_name_file_line_and_fix(tmp_path: Path, old: str, new: str, line: int, message: str,
                                                 hint: str) -> None:
    assert old in VALID
    path = tmp_path / "images.yaml"
    path.write_text(VALID.replace(old, new, 1))
    with pytest.raises(RecipeError) as caught:
        load_image_specs(path)
    assert caught.value.message.startswith(message), caught.value.message
    assert (str(caught.value.path), caught.value.line) == ("images.yaml", line)
    assert caught.value.hint is not None and hint in caught.value.hint, caught.value.hint


def test_same_tag_in_two_entries_is_refused_with_the_first_line(tmp_path: Path) -> None:
    path = tmp_path / "images.yaml"
    path.write_text(VALID + VALID.split("  images:\n", 1)[1])
    with pytest.raises(RecipeError, match=r"'localhost:5001/lab/app:1.0' is listed twice \(first at line 8\)"):
        load_image_specs(path)


# ------------------------------------------------------------------------------------------------
# push to a real registry


@pytest.mark.registry
def test_push_serves_exactly_our_bytes_and_skopeo_agrees(registry: Registry) -> None:
    require_skopeo()
    built = build_image(GOLDEN)
    report = push_image(built, registry.url)
    assert report.digest == GOLDEN_INDEX
    assert sorted(report.uploaded) == sorted(b.digest for b in built.blobs)
    assert report.skipped == ()
    image = f"docker://{registry.host}/recipe-lab/golden:1.0"
    raw = skopeo("--raw", image)
    assert raw == built.top.data
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == GOLDEN_INDEX
    assert skopeo("--format", "{{.Digest}}", image).decode().strip() == GOLDEN_INDEX
    arm = _json(skopeo("--override-arch", "arm64", "--override-variant", "v8", image))
    assert arm["Architecture"] == "arm64"
    assert arm["Labels"]["org.opencontainers.image.version"] == "1.0"
    with httpx.Client(base_url=registry.url, trust_env=False) as client:
        for platform, digest in built.platforms.items():
            served = client.get(f"/v2/recipe-lab/golden/manifests/{digest}", headers={"Accept": OCI_MANIFEST})
            assert served.status_code == 200, platform
            assert "sha256:" + hashlib.sha256(served.content).hexdigest() == digest


@pytest.mark.registry
def test_single_platform_push_and_skopeo(registry: Registry) -> None:
    require_skopeo()
    built = build_image(SINGLE)
    push_image(built, registry.url)
    image = f"docker://{registry.host}/recipe-lab/golden:1.0"
    assert skopeo("--raw", image) == built.top.data
    assert skopeo("--format", "{{.Digest}}", image).decode().strip() == GOLDEN_AMD64


@pytest.mark.registry
def test_a_second_push_skips_every_blob(registry: Registry) -> None:
    built = build_image(GOLDEN)
    push_image(built, registry.url)
    with httpx.Client(trust_env=False) as client:
        again = push_image(built, registry.url, client=client)
    assert again.uploaded == ()
    assert sorted(again.skipped) == sorted(b.digest for b in built.blobs)


@pytest.mark.registry
def test_the_whole_catalog_pushes_and_resolves_to_its_built_digests(registry: Registry) -> None:
    built = [build_image(s) for s in load_image_specs(CATALOG_IMAGES)]
    with httpx.Client(base_url=registry.url, trust_env=False) as client:
        for image in built:
            push_image(image, registry.url, client=client)
        accept = ", ".join((OCI_INDEX, OCI_MANIFEST))
        for image in built:
            head = client.head(f"/v2/{image.spec.ref.repository}/manifests/{image.spec.tag}",
                               headers={"Accept": accept})
            assert (head.status_code, head.headers.get("docker-content-digest")) == (200, image.digest)


def test_push_to_a_dead_address_is_a_resolve_error() -> None:
    with pytest.raises(ResolveError) as caught:
        push_image(build_image(SINGLE), "http://127.0.0.1:9")
    assert caught.value.message.startswith(
        "pushing localhost:5001/recipe-lab/golden:1.0 to http://127.0.0.1:9: ConnectError")
    assert caught.value.hint is not None and "python -m lab status" in caught.value.hint


@pytest.mark.http_repo
def test_push_to_a_server_that_is_not_a_registry_names_the_refused_step(http_repo: HttpRepo) -> None:
    with pytest.raises(ResolveError) as caught:
        push_image(build_image(SINGLE), http_repo.url)
    assert caught.value.message.startswith(
        f"pushing localhost:5001/recipe-lab/golden:1.0 to {http_repo.url}: POST blob upload answered 501")
    assert caught.value.hint is not None and "registry's log" in caught.value.hint
