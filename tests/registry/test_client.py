"""The distribution client against a real docker-registry on loopback, cross-checked with skopeo."""

from __future__ import annotations

import hashlib

import pytest

from pipeline.images import ImageRef
from pipeline.registry import NotFoundError, RegistryConfig, ResolvedImage, TamperingError
from pipeline.registry.client import Endpoint
from pipeline.registry.interface import OCI_INDEX, OCI_MANIFEST
from pipeline.registry_config import Capability
from tests.registry.conftest import ClientFactory
from tests.registry.skopeo import require_skopeo, skopeo
from tests.servers import (
    OciImage,
    Registry,
    build_oci_image,
    push_oci_image,
    start_fault_proxy,
    tamper_blob,
)

pytestmark = pytest.mark.registry


def _ref(registry: Registry, rest: str) -> ImageRef:
    return ImageRef.parse(f"{registry.host}/{rest}")


def _expect(resolved: ResolvedImage, image: OciImage, ref: ImageRef, served_by: str) -> None:
    assert resolved.ref == ref
    assert resolved.digest == image.digest
    assert resolved.media_type == image.media_type
    assert resolved.size == len(image.top)
    assert dict(resolved.platforms) == dict(image.platforms)
    assert dict(resolved.configs) == dict(image.configs)
    assert dict(resolved.attestations) == dict(image.attestations)
    assert resolved.served_by == served_by


@pytest.mark.parametrize(("kind", "image"), [
    ("oci index + attestation", build_oci_image("a", attestation=True)),
    ("oci index, three platforms", build_oci_image("b", platforms=("linux/amd64", "linux/arm64/v8", "linux/arm/v7"))),
    ("docker manifest list", build_oci_image("c", docker=True)),
    ("oci manifest", build_oci_image("d", index=False)),
    ("docker manifest", build_oci_image("e", index=False, docker=True)),
])
def test_resolve_by_tag(registry: Registry, make_client: ClientFactory, kind: str, image: OciImage) -> None:
    push_oci_image(registry, "demo/app", "1.0", image)
    ref = _ref(registry, "demo/app:1.0")
    _expect(make_client().resolve(ref), image, ref, registry.host)


def test_index_records_platforms_configs_and_attestations_apart(registry: Registry,
                                                                make_client: ClientFactory) -> None:
    image = build_oci_image("x", attestation=True)
    push_oci_image(registry, "demo/app", "1.0", image)
    resolved = make_client().resolve(_ref(registry, "demo/app:1.0"))
    assert resolved.media_type == OCI_INDEX
    assert sorted(resolved.platforms) == ["linux/amd64", "linux/arm64"], "unknown/unknown is not a platform"
    assert sorted(resolved.configs) == ["linux/amd64", "linux/arm64"]
    [(attestation, describes)] = resolved.attestations.items()
    assert describes == resolved.platforms["linux/amd64"]
    assert attestation not in resolved.platforms.values()
    assert resolved.pinned == _ref(registry, f"demo/app:1.0@{image.digest}")
    assert resolved.as_json()["servedBy"] == registry.host


def test_resolve_by_digest_fetches_by_digest_and_keeps_the_reference(registry: Registry,
                                                                     make_client: ClientFactory) -> None:
    image = build_oci_image("digest")
    push_oci_image(registry, "demo/app", "1.0", image)
    proxy = start_fault_proxy(registry.url)
    try:
        for text in (f"demo/app@{image.digest}", f"demo/app:stale-label@{image.digest}"):
            ref = ImageRef.parse(f"{proxy.host}/{text}")
            _expect(make_client().resolve(ref), image, ref, proxy.host)
        # by digest only: no tag is ever asked for, and no HEAD is needed
        assert all("/manifests/sha256:" in path for _, path, _ in proxy.requests)
        assert {method for method, _, _ in proxy.requests} == {"GET"}
    finally:
        proxy.stop()


def test_missing_tag_digest_and_repository(registry: Registry, make_client: ClientFactory) -> None:
    push_oci_image(registry, "demo/app", "1.0", build_oci_image("m"))
    client = make_client()
    with pytest.raises(NotFoundError) as caught:
        client.resolve(_ref(registry, "demo/app:9.9"))
    # a HEAD answer has no body, so no error code
    assert str(caught.value) == (f"registry {registry.host!r} has no manifest of '{registry.host}/demo/app:9.9' "
                                 "(HTTP 404)")
    assert caught.value.hint == "check the image name and tag; if a mirror should have it, sync the mirror"
    assert caught.value.exit_code == 2
    missing = "sha256:" + "0" * 64
    with pytest.raises(NotFoundError, match=r"has no manifest of .*@sha256:0000.* \(HTTP 404: MANIFEST_UNKNOWN"):
        client.resolve(_ref(registry, f"demo/app@{missing}"))
    with pytest.raises(NotFoundError, match=r"has no manifest of '.*/nothing/here:1' \(HTTP 404\)"):
        client.resolve(_ref(registry, "nothing/here:1"))
    assert client.manifest_exists(_ref(registry, "demo/app:1.0"))
    assert not client.manifest_exists(_ref(registry, "demo/app:9.9"))
    assert not client.manifest_exists(_ref(registry, f"demo/app@{missing}"))


def test_implicit_latest(registry: Registry, make_client: ClientFactory) -> None:
    image = build_oci_image("latest", index=False)
    push_oci_image(registry, "demo/app", "latest", image)
    ref = _ref(registry, "demo/app")
    _expect(make_client().resolve(ref), image, ref, registry.host)


def test_tampered_index_is_refused(registry: Registry, make_client: ClientFactory) -> None:
    image = build_oci_image("tamper")
    push_oci_image(registry, "demo/app", "1.0", image)
    # Same length, valid JSON: the registry keeps serving it under the original digest.
    tamper_blob(registry, image.digest, lambda b: b.replace(b"linux", b"LINUX", 1))
    with pytest.raises(TamperingError) as caught:
        make_client().resolve(_ref(registry, "demo/app:1.0"))
    text = str(caught.value)
    assert text.startswith(f"registry {registry.host!r} served a manifest of '{registry.host}/demo/app:1.0' whose "
                           f"bytes do not match the digest: asked for {image.digest}, received bytes hash to sha256:")
    assert text.endswith("(in each of 3 attempts); refused as tampering")
    assert caught.value.hint is not None and "tampered" in caught.value.hint


def test_tampered_platform_manifest_is_refused(registry: Registry, make_client: ClientFactory) -> None:
    image = build_oci_image("tamper-child")
    push_oci_image(registry, "demo/app", "1.0", image)
    child = image.platforms["linux/arm64"]
    config = image.configs["linux/arm64"]
    other = config[:-1] + ("0" if config[-1] != "0" else "1")  # still a well-formed manifest
    tamper_blob(registry, child, lambda b: b.replace(config.encode(), other.encode()))
    with pytest.raises(TamperingError, match=rf"linux/arm64 manifest of .*asked for {child}"):
        make_client().resolve(_ref(registry, "demo/app:1.0"))


def test_fetch_manifest_and_blobs_are_verified(registry: Registry, make_client: ClientFactory) -> None:
    image = build_oci_image("blobs", index=False)
    push_oci_image(registry, "demo/app", "1.0", image)
    client = make_client()
    manifest = client.fetch_manifest(_ref(registry, "demo/app:1.0"))
    assert (manifest.digest, manifest.media_type, manifest.body) == (image.digest, OCI_MANIFEST, image.top)
    layer = manifest.json()["layers"][0]
    repo = _ref(registry, "demo/app")
    data = client.fetch_blob(repo, layer["digest"], size=layer["size"])
    assert data == image.blobs[layer["digest"]]
    tamper_blob(registry, layer["digest"], lambda b: b[:-1] + bytes([b[-1] ^ 0xFF]))
    with pytest.raises(TamperingError, match=rf"served blob {layer['digest']} of '{repo.name}' with bytes that do "
                                             r"not match the digest: asked for sha256:"):
        client.fetch_blob(repo, layer["digest"])
    with pytest.raises(NotFoundError, match=r"has no blob sha256:1111.* \(HTTP 404: BLOB_UNKNOWN"):
        client.fetch_blob(repo, "sha256:" + "1" * 64)


def test_tags_follow_link_pages(registry: Registry, make_client: ClientFactory) -> None:
    image = build_oci_image("tags", index=False)
    tags = [f"v{i}" for i in range(7)]
    for tag in tags:
        push_oci_image(registry, "demo/app", tag, image)
    proxy = start_fault_proxy(registry.url, page_tags=3)
    try:
        found = make_client().tags(ImageRef.parse(f"{proxy.host}/demo/app:ignored"))
        assert found == tuple(sorted(tags))
        pages = [path for _, path, _ in proxy.requests]
        assert pages == ["/v2/demo/app/tags/list", "/v2/demo/app/tags/list?n=3&last=v2",
                         "/v2/demo/app/tags/list?n=3&last=v5"]
    finally:
        proxy.stop()
    with pytest.raises(NotFoundError, match="NAME_UNKNOWN"):
        make_client().tags(_ref(registry, "nothing/here"))


def test_our_digests_equal_skopeos_for_every_image(registry: Registry, make_client: ClientFactory) -> None:
    require_skopeo()
    images = {
        "demo/index:1": build_oci_image("s1", attestation=True),
        "demo/index:2": build_oci_image("s2", platforms=("linux/amd64", "linux/s390x")),
        "demo/list:1": build_oci_image("s3", docker=True),
        "demo/single:1": build_oci_image("s4", index=False),
        "demo/docker:1": build_oci_image("s5", index=False, docker=True),
    }
    for text, image in images.items():
        name, tag = text.split(":")
        push_oci_image(registry, name, tag, image)
    client = make_client()
    checked = 0
    for name in ("demo/index", "demo/list", "demo/single", "demo/docker"):
        for tag in client.tags(_ref(registry, name)):  # every image in the registry, found by listing
            ref = _ref(registry, f"{name}:{tag}")
            resolved = client.resolve(ref)
            raw = skopeo("--raw", f"docker://{ref}")
            assert resolved.digest == "sha256:" + hashlib.sha256(raw).hexdigest(), str(ref)
            assert resolved.size == len(raw)
            assert skopeo("--format", "{{.Digest}}", f"docker://{ref}").decode().strip() == resolved.digest
            assert resolved.digest == images[f"{name}:{tag}"].digest
            checked += 1
    assert checked == len(images)


@pytest.mark.parametrize(("registry_host", "insecure", "base", "served_by"), [
    ("ghcr.io", (), "https://ghcr.io", "ghcr.io"),
    ("docker.io", (), "https://registry-1.docker.io", "docker.io"),
    ("localhost:5000", (), "http://localhost:5000", "localhost:5000"),
    ("127.0.0.2:5000", (), "http://127.0.0.2:5000", "127.0.0.2:5000"),
    ("[::1]:5000", (), "http://[::1]:5000", "[::1]:5000"),
    ("localhost.example.com", (), "https://localhost.example.com", "localhost.example.com"),
    ("registry.internal:5000", ("registry.internal:5000",), "http://registry.internal:5000", "registry.internal:5000"),
])
def test_https_unless_loopback_or_insecure(make_client: ClientFactory, registry_host: str,
                                           insecure: tuple[str, ...], base: str, served_by: str) -> None:
    client = make_client(config=RegistryConfig(insecure=frozenset(insecure)))
    [endpoint] = client.endpoints(ImageRef.parse(f"{registry_host}/org/app:1"), Capability.RESOLVE)
    assert endpoint == Endpoint(host=served_by, base=base)
