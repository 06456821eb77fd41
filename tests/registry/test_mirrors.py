"""Registry mirrors: the configuration parser, and mirror-first resolution against real registries."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline._yaml import YamlMap, load_file
from pipeline.errors import RecipeError
from pipeline.images import ImageRef
from pipeline.registry import (
    Capability,
    Mirror,
    MirrorSet,
    NotFoundError,
    RegistryConfig,
    TamperingError,
    parse_registry_config,
)
from tests.registry.conftest import ClientFactory
from tests.servers import Registry, build_oci_image, push_oci_image, start_fault_proxy, start_registry, tamper_blob


def _parse(tmp_path: Path, text: str) -> RegistryConfig:
    path = tmp_path / "pipeline.yaml"
    path.write_text("spec:\n  registries:\n" + "".join(f"    {line}\n" for line in text.splitlines()))
    doc = load_file(path, display="pipeline.yaml")
    node = doc["spec"]["registries"]
    assert node is None or isinstance(node, YamlMap)
    return parse_registry_config(node, path="pipeline.yaml")


# ---- configuration -----------------------------------------------------------------------------


def test_parse_full_config(tmp_path: Path) -> None:
    config = _parse(tmp_path, """\
dockerConfig: /home/ci/.docker/config.json
insecure: [Registry.Internal:5000]
mirrors:
  nvcr.io:
    endpoints:
      - url: http://127.0.0.1:5000/nvcr/
        capabilities: [pull]
      - https://mirror.example.com
      - registry.internal:5000/cache
    skipUpstream: true
  index.docker.io: [localhost:5001/hub]
""")
    assert config == RegistryConfig(
        mirrors={
            "docker.io": MirrorSet(endpoints=(Mirror(scheme="http", host="localhost:5001", prefix="hub"),)),
            "nvcr.io": MirrorSet(endpoints=(
                Mirror(scheme="http", host="127.0.0.1:5000", prefix="nvcr", capabilities=frozenset({Capability.PULL})),
                Mirror(scheme="https", host="mirror.example.com"),
                Mirror(scheme="http", host="registry.internal:5000", prefix="cache"),
            ), skip_upstream=True),
        },
        insecure=frozenset({"registry.internal:5000"}),
        docker_config="/home/ci/.docker/config.json",
    )
    assert config.mirrors_of("nvcr.io").endpoints[0].url == "http://127.0.0.1:5000/nvcr"
    assert config.mirrors_of("ghcr.io") == MirrorSet()
    assert config.plain_http("registry.internal:5000") and config.plain_http("127.0.0.1:1")
    assert not config.plain_http("ghcr.io")


def test_absent_config(tmp_path: Path) -> None:
    assert parse_registry_config(None, path="pipeline.yaml") == RegistryConfig()
    assert _parse(tmp_path, "mirrors: {}") == RegistryConfig()


@pytest.mark.parametrize(("text", "line", "message", "hint"), [
    ("mirror: {}", 3, "unknown key 'mirror' in registries (did you mean 'mirrors'?)",
     "registries takes only: dockerConfig, insecure, mirrors, requestDeadline, imageDeadline"),
    ("insecure: registry.internal", 3, "registries.insecure must be a list of hosts, not a string",
     "write insecure: [registry.internal:5000]"),
    ("insecure: [http://r:5000]", 3, "registries.insecure item 'http://r:5000' is not a registry host",
     "write host[:port] without a scheme or path, e.g. registry.internal:5000"),
    ("dockerConfig: 3", 3, "registries.dockerConfig must be a file path, not 3",
     "write the path of a Docker config.json, e.g. /home/ci/.docker/config.json"),
    ("mirrors: [a]", 3, "registries.mirrors must be a mapping, not a list",
     "map each upstream registry host to its mirror endpoints"),
    ("mirrors:\n  https://nvcr.io: [https://m.example.com]", 4,
     "registries.mirrors: 'https://nvcr.io' is not a registry host",
     "key the mirrors by the registry host of the images, e.g. nvcr.io or docker.io"),
    ("mirrors:\n  nvcr.io: []", 4, "registries.mirrors['nvcr.io'] has no endpoints",
     "list mirror URLs, e.g. endpoints: [http://127.0.0.1:5000/mirror]"),
    ("mirrors:\n  nvcr.io: [http://m.example.com]", 4,
     "registries.mirrors['nvcr.io']: mirror 'http://m.example.com' uses plain HTTP, allowed only for loopback "
     "hosts or insecure registries",
     "use https://, or list 'm.example.com' under registries.insecure if the network is trusted"),
    ("mirrors:\n  nvcr.io: [https://m.example.com/Upper]", 4,
     "registries.mirrors['nvcr.io']: mirror URL 'https://m.example.com/Upper' is malformed",
     "write scheme://host[:port][/prefix] with a lower-case repository prefix, e.g. https://mirror.example.com/nvcr"),
    ("mirrors:\n  nvcr.io: [ftp://m.example.com]", 4,
     "registries.mirrors['nvcr.io']: mirror URL 'ftp://m.example.com' is malformed",
     "write scheme://host[:port][/prefix] with a lower-case repository prefix, e.g. https://mirror.example.com/nvcr"),
    ("mirrors:\n  nvcr.io:\n    endpoints: [https://m.example.com, https://m.example.com/]", 5,
     "registries.mirrors['nvcr.io'] lists mirror 'https://m.example.com' twice", "list each mirror once"),
    ("mirrors:\n  nvcr.io:\n    endpoints:\n      - url: https://m.example.com\n        capabilities: [push]", 7,
     "registries.mirrors['nvcr.io']: unknown capabilities ['push']",
     "a mirror can 'pull' (content by digest) and 'resolve' (tag to digest)"),
    ("mirrors:\n  nvcr.io:\n    endpoints: [https://m.example.com]\n    skipUpstream: yes please", 6,
     "registries.mirrors['nvcr.io'].skipUpstream must be true or false, not 'yes please'", "write skipUpstream: true"),
    ("mirrors:\n  nvcr.io:\n    endpoint: [https://m.example.com]", 5,
     "unknown key 'endpoint' in registries.mirrors['nvcr.io'] (did you mean 'endpoints'?)",
     "registries.mirrors['nvcr.io'] takes only: endpoints, skipUpstream"),
    ("mirrors:\n  docker.io: [https://a.example.com]\n  index.docker.io: [https://b.example.com]", 5,
     "registries.mirrors lists registry 'docker.io' twice (as 'index.docker.io'; first at line 4)",
     "docker.io, index.docker.io and registry-1.docker.io are the same registry: merge them"),
])
def test_bad_config(tmp_path: Path, text: str, line: int, message: str, hint: str) -> None:
    with pytest.raises(RecipeError) as caught:
        _parse(tmp_path, text)
    assert str(caught.value) == f"pipeline.yaml:{line}: {message}"
    assert caught.value.hint == hint


# ---- resolution through mirrors ----------------------------------------------------------------


@pytest.fixture
def mirror(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Registry]:
    """A second registry, the mirror (the ``registry`` fixture is the upstream)."""
    assert request.node.get_closest_marker("registry") is not None
    running = start_registry(tmp_path / "mirror")
    try:
        yield running
    finally:
        running.stop()


def _config(upstream: Registry, *mirrors: str, skip: bool = False,
            capabilities: frozenset[Capability] = frozenset(Capability)) -> RegistryConfig:
    endpoints = tuple(Mirror(scheme="http", host=m.split("/")[0], prefix=m.partition("/")[2],
                             capabilities=capabilities) for m in mirrors)
    return RegistryConfig(mirrors={upstream.host: MirrorSet(endpoints=endpoints, skip_upstream=skip)})


@pytest.mark.registry
def test_mirror_first_upstream_as_fallback(registry: Registry, mirror: Registry, make_client: ClientFactory) -> None:
    both, upstream_only = build_oci_image("both"), build_oci_image("upstream-only")
    push_oci_image(registry, "nvidia/app", "1.0", both)
    push_oci_image(mirror, "hub/nvidia/app", "1.0", both)  # the mirror keeps it under its prefix
    push_oci_image(registry, "nvidia/other", "2.0", upstream_only)
    client = make_client(config=_config(registry, f"{mirror.host}/hub"))
    ref = ImageRef.parse(f"{registry.host}/nvidia/app:1.0")
    served = client.resolve(ref)
    assert (served.ref, served.served_by, served.digest) == (ref, mirror.host, both.digest)
    assert str(served.ref) == f"{registry.host}/nvidia/app:1.0", "the lock keeps the upstream name"
    other = ImageRef.parse(f"{registry.host}/nvidia/other:2.0")
    fallback = client.resolve(other)
    assert (fallback.ref, fallback.served_by, fallback.digest) == (other, registry.host, upstream_only.digest)
    by_digest = ImageRef.parse(f"{registry.host}/nvidia/app@{both.digest}")
    assert client.resolve(by_digest).served_by == mirror.host
    assert client.tags(ImageRef.parse(f"{registry.host}/nvidia/app")) == ("1.0",)
    layer = next(d for d, b in both.blobs.items() if b[:2] == b"\x1f\x8b")
    assert client.fetch_blob(ref, layer) == both.blobs[layer]


@pytest.mark.registry
def test_mirror_down_falls_back_to_upstream(registry: Registry, mirror: Registry,
                                            make_client: ClientFactory) -> None:
    image = build_oci_image("down")
    push_oci_image(registry, "nvidia/app", "1.0", image)
    push_oci_image(mirror, "nvidia/app", "1.0", image)
    mirror.stop()
    client = make_client(config=_config(registry, mirror.host))
    resolved = client.resolve(ImageRef.parse(f"{registry.host}/nvidia/app:1.0"))
    assert (resolved.served_by, resolved.digest) == (registry.host, image.digest)


@pytest.mark.registry
def test_mirrors_in_order_and_skip_upstream(registry: Registry, mirror: Registry, make_client: ClientFactory) -> None:
    image = build_oci_image("order")
    push_oci_image(mirror, "second/nvidia/app", "1.0", image)
    push_oci_image(registry, "nvidia/app", "1.0", image)
    push_oci_image(registry, "nvidia/upstream-only", "1.0", image)
    config = _config(registry, f"{mirror.host}/first", f"{mirror.host}/second", skip=True)
    client = make_client(config=config)
    resolved = client.resolve(ImageRef.parse(f"{registry.host}/nvidia/app:1.0"))
    assert resolved.served_by == mirror.host
    with pytest.raises(NotFoundError) as caught:
        client.resolve(ImageRef.parse(f"{registry.host}/nvidia/upstream-only:1.0"))
    assert str(caught.value) == (
        f"mirror {mirror.host!r} has no manifest of '{registry.host}/nvidia/upstream-only:1.0' (HTTP 404) "
        f"(mirrors tried first: {mirror.host} does not have it)")


@pytest.mark.registry
def test_capabilities(registry: Registry, mirror: Registry, make_client: ClientFactory) -> None:
    image = build_oci_image("caps")
    push_oci_image(registry, "nvidia/app", "1.0", image)
    push_oci_image(mirror, "nvidia/app", "1.0", image)
    proxy = start_fault_proxy(mirror.url)
    try:
        client = make_client(config=_config(registry, proxy.host, capabilities=frozenset({Capability.PULL})))
        tagged = client.resolve(ImageRef.parse(f"{registry.host}/nvidia/app:1.0"))
        assert tagged.served_by == registry.host, "a pull-only mirror does not resolve tags"
        assert proxy.requests == []
        pinned = client.resolve(ImageRef.parse(f"{registry.host}/nvidia/app:1.0@{image.digest}"))
        assert pinned.served_by == proxy.host, "but serves content by digest"
    finally:
        proxy.stop()


@pytest.mark.registry
def test_a_tampering_mirror_stops_the_run(registry: Registry, mirror: Registry, make_client: ClientFactory) -> None:
    image = build_oci_image("evil")
    push_oci_image(registry, "nvidia/app", "1.0", image)
    push_oci_image(mirror, "nvidia/app", "1.0", image)
    tamper_blob(mirror, image.digest, lambda b: b.replace(b"linux", b"LINUX", 1))
    client = make_client(config=_config(registry, mirror.host))
    with pytest.raises(TamperingError, match=rf"^mirror '{mirror.host}' served a manifest of "
                                             rf"'{registry.host}/nvidia/app:1.0' whose bytes do not match"):
        client.resolve(ImageRef.parse(f"{registry.host}/nvidia/app:1.0"))
