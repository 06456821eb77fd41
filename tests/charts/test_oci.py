"""OCI charts against a real docker-registry on loopback: pull, digests, tampering, bearer tokens."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pipeline.charts import OciChartSource, RetryPolicy, Transport
from pipeline.charts.oci import OciLocation
from pipeline.errors import ChartError, ChartVersionError
from pipeline.recipes.model import ChartRef
from tests import factories
from tests.servers import Registry, push_oci_chart, start_fake_token_gate, tamper_blob


@pytest.fixture
def source() -> Iterator[OciChartSource]:
    with OciChartSource(transport=Transport(retry=RetryPolicy(attempts=2, base_delay=0), timeout=5.0)) as src:
        yield src


@pytest.mark.registry
def test_fetch_and_versions(registry: Registry, source: OciChartSource) -> None:
    archives = {v: factories.chart_archive("app", v) for v in ("1.0.0", "1.1.0", "1.2.0+build.7")}
    for version, data in archives.items():
        push_oci_chart(registry, "charts", "app", version, data)
    for version, data in archives.items():
        assert source.fetch(ChartRef(repository=registry.oci("charts"), name="app", version=version)) == data
    versions = source.versions(ChartRef(repository=registry.oci("charts") + "/", name="app", version=""))
    assert versions == ("1.0.0", "1.1.0", "1.2.0+build.7")


@pytest.mark.registry
def test_missing_tag(registry: Registry, source: OciChartSource) -> None:
    push_oci_chart(registry, "charts", "app", "1.0.0", factories.chart_archive("app", "1.0.0"))
    with pytest.raises(ChartVersionError) as caught:
        source.fetch(ChartRef(repository=registry.oci("charts"), name="app", version="2.0.0"))
    assert caught.value.diagnostics() == (
        f"chart 'app' version '2.0.0' ({registry.host}/charts/app:2.0.0): the registry has no tag '2.0.0' "
        "(it has 1 versions; nearest: '1.0.0')\nhint: pin a version the registry has")


@pytest.mark.registry
def test_tampered_manifest_is_refused(registry: Registry, source: OciChartSource) -> None:
    pushed = push_oci_chart(registry, "charts", "app", "1.0.0", factories.chart_archive("app", "1.0.0"),
                            annotations={"org.example.note": "original"})
    # Same length, still valid JSON: the registry keeps serving it under the original digest.
    tamper_blob(registry, pushed.manifest, lambda b: b.replace(b'"original"', b'"tampere"'))
    with pytest.raises(ChartError) as caught:
        source.fetch(ChartRef(repository=registry.oci("charts"), name="app", version="1.0.0"))
    assert str(caught.value).startswith(
        f"manifest of chart 'app' version '1.0.0' ({registry.host}/charts/app:1.0.0): registry '{registry.host}' "
        f"served a manifest of '{registry.host}/charts/app:1.0.0' whose bytes do not match the digest: asked for "
        f"{pushed.manifest}, received bytes hash to sha256:")
    assert str(caught.value).endswith("refused as tampering")


@pytest.mark.registry
def test_tampered_blob_is_refused(registry: Registry, source: OciChartSource) -> None:
    pushed = push_oci_chart(registry, "charts", "app", "1.0.0", factories.chart_archive("app", "1.0.0"))
    tamper_blob(registry, pushed.layer, lambda b: b[:-1] + bytes([b[-1] ^ 0xFF]))
    with pytest.raises(ChartError) as caught:
        source.fetch(ChartRef(repository=registry.oci("charts"), name="app", version="1.0.0"))
    assert str(caught.value).startswith(
        f"chart layer of chart 'app' version '1.0.0' ({registry.host}/charts/app:1.0.0): registry "
        f"'{registry.host}' served blob {pushed.layer} of '{registry.host}/charts/app' with bytes that do not "
        f"match the digest: asked for {pushed.layer}, received bytes hash to sha256:")


@pytest.mark.registry
def test_an_artifact_that_is_not_a_chart_is_refused(registry: Registry, source: OciChartSource) -> None:
    push_oci_chart(registry, "images", "app", "1.0.0", factories.chart_archive("app", "1.0.0"),
                   config_media_type="application/vnd.oci.image.config.v1+json")
    with pytest.raises(ChartError, match=r"has config media type 'application/vnd.oci.image.config.v1\+json'"
                                         r", not 'application/vnd.cncf.helm.config.v1\+json'"):
        source.fetch(ChartRef(repository=registry.oci("images"), name="app", version="1.0.0"))


@pytest.mark.registry
def test_anonymous_bearer_token_flow(registry: Registry, source: OciChartSource) -> None:
    data = factories.chart_archive("app", "1.0.0")
    push_oci_chart(registry, "charts", "app", "1.0.0", data)
    gate = start_fake_token_gate(registry)
    try:
        ref = ChartRef(repository=gate.oci("charts"), name="app", version="1.0.0")
        assert source.fetch(ref) == data
        assert source.versions(ref) == ("1.0.0",)
        # one token, asked for once with the challenge's service and scope, then reused
        assert gate.token_requests == ["service=fake-gate&scope=repository%3Acharts%2Fapp%3Apull"]
    finally:
        gate.stop()


@pytest.mark.registry
def test_unreachable_registry(registry: Registry, source: OciChartSource) -> None:
    registry.stop()
    assert registry.process.returncode is not None, "stopped and reaped"
    with pytest.raises(ChartError) as caught:
        source.fetch(ChartRef(repository=registry.oci("charts"), name="app", version="1.0.0"))
    assert str(caught.value).startswith(
        f"manifest of chart 'app' version '1.0.0' ({registry.host}/charts/app:1.0.0): cannot fetch manifest of "
        f"'{registry.host}/charts/app:1.0.0' at registry '{registry.host}' from "
        f"http://{registry.host}/v2/charts/app/manifests/1.0.0: ConnectError")


@pytest.mark.parametrize(("repository", "version", "base", "path", "tag"), [
    ("oci://127.0.0.1:5000/charts", "1.0.0", "http://127.0.0.1:5000", "charts/app", "1.0.0"),
    ("oci://127.1.2.3/a/b/", "1.0.0+x.1", "http://127.1.2.3", "a/b/app", "1.0.0_x.1"),
    ("oci://localhost:5000", "1", "http://localhost:5000", "app", "1"),
    ("oci://[::1]:5000/c", "1", "http://[::1]:5000", "c/app", "1"),
    ("oci://ghcr.io/nvidia/charts", "v1", "https://ghcr.io", "nvidia/charts/app", "v1"),
    ("oci://localhost.evil.com/c", "1", "https://localhost.evil.com", "c/app", "1"),
    ("oci://docker.io/bitnamicharts", "1", "https://registry-1.docker.io", "bitnamicharts/app", "1"),
    ("oci://user:pw@127.0.0.1:5000/c", "1", "http://127.0.0.1:5000", "c/app", "1"),
])
def test_locations(repository: str, version: str, base: str, path: str, tag: str) -> None:
    loc = OciLocation.from_ref(ChartRef(repository=repository, name="app", version=version))
    assert (loc.base, loc.repository, loc.tag) == (base, path, tag)


@pytest.mark.parametrize(("repository", "version", "message"), [
    ("oci://", "1", "OCI repository 'oci://' is malformed"),
    ("oci://ghcr.io/Org", "1", "OCI repository path 'Org/app' has upper-case letters"),
    ("oci://ghcr.io/org", "1.0/../x", "version '1.0/../x' cannot be an OCI tag"),
])
def test_bad_locations(repository: str, version: str, message: str) -> None:
    with pytest.raises(ChartError, match="chart 'app': ") as caught:
        OciLocation.from_ref(ChartRef(repository=repository, name="app", version=version))
    assert message in str(caught.value)
