"""The shared transport: backoff, Retry-After, redirects; faults injected by a proxy on loopback."""

from __future__ import annotations

import base64
import logging
import random

import httpx
import pytest

from pipeline.errors import ResolveError
from pipeline.images import ImageRef
from pipeline.registry import DockerConfig, RetryPolicy, TamperingError
from pipeline.registry.transport import _redirect_target, is_loopback
from tests.registry.conftest import ClientFactory
from tests.servers import (
    FaultProxy,
    ProxyFault,
    Registry,
    build_oci_image,
    push_oci_image,
    start_fault_proxy,
    start_object_store,
)

# ---- policy ------------------------------------------------------------------------------------


def test_backoff_is_exponential_with_full_jitter_and_capped() -> None:
    policy = RetryPolicy(attempts=8, base_delay=0.5, max_delay=4.0)
    assert [policy.ceiling(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    rng = random.Random(7)
    for retry in range(1, 7):
        waits = [policy.backoff(retry, rng) for _ in range(200)]
        assert min(waits) >= 0 and max(waits) <= policy.ceiling(retry)
        assert min(waits) < policy.ceiling(retry) / 4, "full jitter reaches down to zero"


@pytest.mark.parametrize(("header", "expected"), [
    (None, None),
    ("3", 3.0),
    (" 12 ", 10.0),  # capped
    ("0", 0.0),
    ("soon", None),
    ("-1", None),
    ("Wed, 25 Nov 2026 00:00:05 GMT", 5.0),
    ("Wed, 25 Nov 2026 00:01:00 GMT", 10.0),  # capped
    ("Tue, 24 Nov 2026 23:00:00 GMT", 0.0),  # in the past
])
def test_retry_after(header: str | None, expected: float | None) -> None:
    now = 1795564800.0  # 2026-11-25T00:00:00Z
    assert RetryPolicy(max_retry_after=10.0).retry_after(header, now=now) == expected


@pytest.mark.parametrize(("host", "loopback"), [
    ("localhost", True), ("LOCALHOST:5000", True), ("127.0.0.1", True), ("127.9.9.9:80", True),
    ("[::1]:5000", True), ("::1", True), ("localhost.example.com", False), ("10.0.0.1:5000", False),
    ("ghcr.io", False), ("[2001:db8::1]:5000", False),
])
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(("current", "location", "message"), [
    ("https://reg.example.com/v2/x", "http://cdn.example.com/blob", "redirects from HTTPS to plain HTTP"),
    ("https://reg.example.com/v2/x", "ftp://cdn.example.com/blob", "redirects to a 'ftp' URL; refused"),
])
def test_unsafe_redirects_are_refused(current: str, location: str, message: str) -> None:
    with pytest.raises(ResolveError, match=message):
        _redirect_target(httpx.URL(current), location, what="blob", fail=ResolveError)


def test_safe_redirects() -> None:
    base = httpx.URL("https://reg.example.com/v2/x/blobs/sha256:1")
    assert str(_redirect_target(base, "/other", what="b", fail=ResolveError)) == "https://reg.example.com/other"
    assert str(_redirect_target(base, "http://127.0.0.1:9/b", what="b", fail=ResolveError)) == "http://127.0.0.1:9/b"


# ---- faults through a proxy on loopback --------------------------------------------------------


def _push(registry: Registry, tag: str = "1.0") -> str:
    return push_oci_image(registry, "demo/app", tag, build_oci_image("faults"))


@pytest.mark.registry
@pytest.mark.fault_proxy
def test_every_kind_of_fault_is_survived(registry: Registry, fault_proxy: FaultProxy,
                                         make_client: ClientFactory) -> None:
    image = build_oci_image("faults")
    push_oci_image(registry, "demo/app", "1.0", image)
    children = r"/manifests/sha256:(" + "|".join(d.removeprefix("sha256:") for d in image.platforms.values()) + ")"
    index = "/manifests/" + image.digest
    fault_proxy.faults.extend([
        ProxyFault(kind="delay", method="HEAD", delay=1.5),                  # beyond the 0.5 s timeout
        ProxyFault(kind="reset", method="HEAD"),                             # connection reset
        ProxyFault(kind="status", status=503, path=index),                   # 5xx
        ProxyFault(kind="corrupt", path=index),                              # body that lies
        ProxyFault(kind="status", status=429, headers={"Retry-After": "30"}, path=children),  # rate limit
        ProxyFault(kind="status", status=500, path=children),
        ProxyFault(kind="corrupt", path=children),
    ])
    planned = len(fault_proxy.faults)
    client = make_client(retry=RetryPolicy(attempts=4, base_delay=0.001, max_delay=0.004, max_retry_after=0.02),
                         timeout=0.5)
    ref = ImageRef.parse(f"{fault_proxy.host}/demo/app:1.0")
    resolved = client.resolve(ref)
    survived = len(fault_proxy.injected)
    assert survived == planned == 7 and not fault_proxy.faults
    assert resolved.digest == image.digest
    assert dict(resolved.platforms) == dict(image.platforms)
    assert dict(resolved.configs) == dict(image.configs)
    assert resolved.ref == ref and resolved.served_by == fault_proxy.host


@pytest.mark.registry
@pytest.mark.fault_proxy
def test_retry_after_is_honoured_up_to_the_cap(registry: Registry, fault_proxy: FaultProxy,
                                               make_client: ClientFactory) -> None:
    _push(registry)
    fault_proxy.faults.extend([
        ProxyFault(kind="status", status=429, headers={"Retry-After": "1"}, method="HEAD"),
        ProxyFault(kind="status", status=503, headers={"Retry-After": "3600"}, method="HEAD"),
        ProxyFault(kind="status", status=503, method="HEAD"),
    ])
    sleeps: list[float] = []
    client = make_client(retry=RetryPolicy(attempts=4, base_delay=0.001, max_retry_after=0.3), sleep=sleeps.append)
    client.resolve(ImageRef.parse(f"{fault_proxy.host}/demo/app:1.0"))
    assert sleeps[:2] == [0.3, 0.3], "Retry-After honoured, capped"
    assert 0 <= sleeps[2] <= 0.004, "no Retry-After: exponential backoff with jitter"
    assert len(fault_proxy.injected) == 3


@pytest.mark.registry
@pytest.mark.fault_proxy
def test_a_persistently_lying_registry_is_refused(registry: Registry, fault_proxy: FaultProxy,
                                                  make_client: ClientFactory) -> None:
    digest = _push(registry)
    fault_proxy.faults.append(ProxyFault(kind="corrupt", path="/manifests/", method="GET", persistent=True))
    with pytest.raises(TamperingError) as caught:
        make_client().resolve(ImageRef.parse(f"{fault_proxy.host}/demo/app:1.0"))
    text = str(caught.value)
    assert text.startswith(f"registry {fault_proxy.host!r} served a manifest of '{fault_proxy.host}/demo/app:1.0' "
                           f"whose bytes do not match the digest: asked for {digest}, received bytes hash to sha256:")
    assert "refused as tampering" in text
    assert len(fault_proxy.injected) == 3, "every attempt was tried before refusing"


@pytest.mark.registry
@pytest.mark.fault_proxy
@pytest.mark.parametrize(("fault", "last"), [
    (ProxyFault(kind="status", status=503, persistent=True), "last answer HTTP 503"),
    (ProxyFault(kind="status", status=429, headers={"Retry-After": "1"}, persistent=True), "last answer HTTP 429"),
    # HEAD passes, GET fails: the error body's code is shown
    (ProxyFault(kind="status", status=502, method="GET", persistent=True),
     "last answer HTTP 502: UNAVAILABLE: injected fault"),
])
def test_giving_up_on_a_failing_status(registry: Registry, fault_proxy: FaultProxy, make_client: ClientFactory,
                                       fault: ProxyFault, last: str) -> None:
    _push(registry)
    fault_proxy.faults.append(fault)
    with pytest.raises(ResolveError) as caught:
        make_client().resolve(ImageRef.parse(f"{fault_proxy.host}/demo/app:1.0"))
    text = str(caught.value)
    url = f"http://{fault_proxy.host}/v2/demo/app/manifests/" + ("1.0" if fault.method is None else "sha256:")
    assert text.startswith(f"registry {fault_proxy.host!r} kept failing for manifest of "
                           f"'{fault_proxy.host}/demo/app:1.0': {last} from {url}")
    assert text.endswith("(gave up after 3 attempts)")
    assert caught.value.hint == "the registry is overloaded or down: retry later, or serve the image from a mirror"
    assert len(fault_proxy.injected) == 3


@pytest.mark.registry
@pytest.mark.fault_proxy
@pytest.mark.parametrize(("fault", "errors"), [
    (ProxyFault(kind="reset", persistent=True), ("RemoteProtocolError", "ReadError", "ConnectError")),
    (ProxyFault(kind="delay", delay=0.5, persistent=True), ("ReadTimeout",)),
])
def test_giving_up_on_transport_errors(registry: Registry, fault_proxy: FaultProxy, make_client: ClientFactory,
                                       fault: ProxyFault, errors: tuple[str, ...]) -> None:
    _push(registry)
    fault_proxy.faults.append(fault)
    client = make_client(retry=RetryPolicy(attempts=2, base_delay=0.001), timeout=0.2)
    with pytest.raises(ResolveError) as caught:
        client.resolve(ImageRef.parse(f"{fault_proxy.host}/demo/app:1.0"))
    text = str(caught.value)
    prefix = (f"cannot fetch manifest of '{fault_proxy.host}/demo/app:1.0' at registry {fault_proxy.host!r} from "
              f"http://{fault_proxy.host}/v2/demo/app/manifests/1.0: ")
    assert text.startswith(prefix)
    assert text[len(prefix):].split(":", maxsplit=1)[0] in errors
    assert text.endswith("(after 2 attempts)")
    assert len(fault_proxy.injected) == 2


@pytest.mark.registry
def test_unreachable_registry(registry: Registry, make_client: ClientFactory) -> None:
    registry.stop()
    with pytest.raises(ResolveError) as caught:
        make_client().resolve(ImageRef.parse(f"{registry.host}/demo/app:1.0"))
    assert str(caught.value).startswith(
        f"cannot fetch manifest of '{registry.host}/demo/app:1.0' at registry {registry.host!r} from "
        f"http://{registry.host}/v2/demo/app/manifests/1.0: ConnectError")
    assert str(caught.value).endswith("(after 3 attempts)")


# ---- redirects ---------------------------------------------------------------------------------


@pytest.mark.registry
def test_authorization_is_not_sent_on_a_redirect_to_another_host(basic_registry: Registry,
                                                                  make_client: ClientFactory,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    image = build_oci_image("redirect", index=False)
    push_oci_image(basic_registry, "demo/app", "1.0", image)
    store = start_object_store()  # 127.0.0.2: another host
    proxy = start_fault_proxy(basic_registry.url, redirect_blobs=store.url)
    try:
        store.objects.update(image.blobs)
        assert basic_registry.credentials is not None
        user, password = basic_registry.credentials
        secret = base64.b64encode(f"{user}:{password}".encode()).decode()
        creds = DockerConfig.from_json({"auths": {proxy.host: {"auth": secret}}})
        client = make_client(credentials=creds)
        repo = ImageRef.parse(f"{proxy.host}/demo/app:1.0")
        config = client.resolve(repo).configs[""]
        assert client.fetch_blob(repo, config) == image.blobs[config]
        blob_requests = [(path, auth) for _, path, auth in proxy.requests if "/blobs/" in path]
        assert blob_requests == [(f"/v2/demo/app/blobs/{config}", True)], "the registry got the credentials"
        [(path, headers)] = store.seen
        assert path == f"/{config}"
        assert "authorization" not in {k.lower() for k in headers}, "object storage never sees them"
        assert password not in caplog.text and secret not in caplog.text
    finally:
        proxy.stop()
        store.stop()
