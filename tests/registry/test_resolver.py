"""resolve_all: bounded concurrency over one pooled client, each distinct reference resolved once."""

from __future__ import annotations

import collections
import logging
import threading
import time

import httpx
import pytest

from pipeline.errors import ResolveError
from pipeline.images import ImageRef
from pipeline.registry import NotFoundError, ResolvedImage, Resolver, resolve_all
from pipeline.registry.interface import OCI_MANIFEST
from pipeline.vocabulary.digest import Digest
from tests.registry.conftest import ClientFactory
from tests.servers import FaultProxy, OciImage, Registry, build_oci_image, push_oci_image


def _tag_many(registry: Registry, images: list[OciImage], count: int, repository: str = "demo/app") -> list[str]:
    """Push ``images`` once, then ``count`` distinct tags over them (manifest PUTs only); the tags."""
    for index, image in enumerate(images):
        push_oci_image(registry, f"{repository}{index}", "base", image)
    tags = []
    with httpx.Client(base_url=registry.url, timeout=10.0, trust_env=False) as client:
        for number in range(count):
            index = number % len(images)
            image = images[index]
            tag = f"{repository}{index}:t{number}"
            name, _, reference = tag.partition(":")
            client.put(f"/v2/{name}/manifests/{reference}", content=image.top,
                       headers={"Content-Type": image.media_type}).raise_for_status()
            tags.append(tag)
    return tags


class _Recorder(Resolver):
    """A fake resolver that records calls (for the ordering and dedup rules, without a network)."""

    def __init__(self, failing: set[str]) -> None:
        self.calls: list[str] = []
        self.failing = failing
        self.lock = threading.Lock()

    def resolve(self, ref: ImageRef) -> ResolvedImage:
        with self.lock:
            self.calls.append(str(ref))
        time.sleep(0.001 * (hash(str(ref)) % 5))  # finish in scrambled order
        if str(ref) in self.failing:
            raise NotFoundError(f"no {ref}", hint="h")
        return ResolvedImage(ref=ref, digest=Digest("sha256:" + "a" * 64), media_type=OCI_MANIFEST, size=1,
                             served_by=ref.registry)


def test_duplicates_once_and_the_first_error_in_input_order(caplog: pytest.LogCaptureFixture) -> None:
    refs = [ImageRef.parse(f"r.example.com/app:{n % 7}") for n in range(40)]
    refs.append(ImageRef.parse("docker.io/library/busybox:1"))
    refs.append(ImageRef.parse("busybox:1"))  # same canonical reference as the previous one
    failing = {"r.example.com/app:5", "r.example.com/app:2"}
    recorder = _Recorder(failing)
    with pytest.raises(NotFoundError) as caught:
        resolve_all(refs, client=recorder, max_workers=8)
    assert str(caught.value) == "no r.example.com/app:2", "app:2 comes before app:5 in the input"
    assert caught.value.__notes__ == ["1 more image(s) failed too: r.example.com/app:5: no r.example.com/app:5"]
    assert sorted(recorder.calls) == sorted({str(r) for r in refs}), "every distinct reference, once each"
    assert "cannot resolve r.example.com/app:5" in caplog.text
    recorder = _Recorder(set())
    resolved = resolve_all(refs, client=recorder, max_workers=8)
    assert list(resolved) == list(dict.fromkeys(refs)), "every input, in input order"
    assert resolved[refs[-1]] is resolved[refs[-2]]
    assert len(recorder.calls) == 8
    assert resolve_all([], client=recorder) == {}
    with pytest.raises(ValueError, match="max_workers must be >= 1"):
        resolve_all(refs, client=recorder, max_workers=0)


@pytest.mark.registry
@pytest.mark.fault_proxy
def test_many_references_bounded_connections_each_resolved_once(registry: Registry, fault_proxy: FaultProxy,
                                                                make_client: ClientFactory) -> None:
    images = [build_oci_image(f"many-{n}") for n in range(4)]
    tags = _tag_many(registry, images, 40)
    refs = [ImageRef.parse(f"{fault_proxy.host}/{tag}") for tag in tags] * 3  # 120 references, 40 distinct
    client = make_client(max_connections=4)
    resolved = resolve_all(refs, client=client, max_workers=8)
    assert len(resolved) == 40
    for tag in tags:
        ref = ImageRef.parse(f"{fault_proxy.host}/{tag}")
        image = images[int(tag.split(":t")[1]) % 4]
        assert (resolved[ref].digest, dict(resolved[ref].platforms)) == (image.digest, dict(image.platforms))
    heads = collections.Counter(path for method, path, _ in fault_proxy.requests if method == "HEAD")
    assert len(heads) == 40 and set(heads.values()) == {1}, "each distinct tag asked for once"
    gets = collections.Counter(path for method, path, _ in fault_proxy.requests if method == "GET")
    # each index and each platform manifest is fetched once: manifests by digest are content-addressed
    assert len(gets) == 4 * 3 and set(gets.values()) <= {1, 2}, gets
    assert fault_proxy.connections <= 4 and fault_proxy.peak <= 4, (fault_proxy.connections, fault_proxy.peak)


@pytest.mark.registry
@pytest.mark.fault_proxy
def test_errors_are_collected_and_raised_after_all_finish(registry: Registry, fault_proxy: FaultProxy,
                                                          make_client: ClientFactory) -> None:
    tags = _tag_many(registry, [build_oci_image("errors")], 10)
    refs = [ImageRef.parse(f"{fault_proxy.host}/{tag}") for tag in tags]
    refs.insert(3, ImageRef.parse(f"{fault_proxy.host}/demo/missing:1"))
    refs.insert(7, ImageRef.parse(f"{fault_proxy.host}/demo/app0:missing"))
    with pytest.raises(NotFoundError) as caught:
        resolve_all(refs, client=make_client(), max_workers=4)
    assert str(caught.value) == (f"registry {fault_proxy.host!r} has no manifest of "
                                 f"'{fault_proxy.host}/demo/missing:1' (HTTP 404)")
    heads = {path for method, path, _ in fault_proxy.requests if method == "HEAD"}
    assert len(heads) == 12, "all references were attempted"


@pytest.mark.registry
def test_200_tags_concurrently_and_sequentially(registry: Registry, make_client: ClientFactory,
                                                caplog: pytest.LogCaptureFixture) -> None:
    """Correctness of a 200-tag run, and its timing (printed; the bench session compares with skopeo)."""
    caplog.set_level(logging.INFO, logger="tests")
    images = [build_oci_image(f"bench-{n}", index=n % 2 == 0) for n in range(8)]
    refs = [ImageRef.parse(f"{registry.host}/{tag}") for tag in _tag_many(registry, images, 200)]
    timings = {}
    results = {}
    for workers in (1, 16):
        client = make_client(max_connections=workers)
        started = time.perf_counter()
        results[workers] = resolve_all(refs, client=client, max_workers=workers)
        timings[workers] = time.perf_counter() - started
    assert results[1] == results[16]
    assert {r.digest for r in results[16].values()} == {image.digest for image in images}
    logging.getLogger("tests").info("200 tags: sequential %.3fs, 16 workers %.3fs", timings[1], timings[16])


def test_resolve_error_is_a_pipeline_error() -> None:
    assert issubclass(NotFoundError, ResolveError) and ResolveError("x").exit_code == 2
