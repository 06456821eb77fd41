"""HTTP chart repositories against a real server on loopback: index, digest, retries, redaction."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.charts import HttpChartSource, RetryPolicy, Transport, redact_url
from pipeline.charts.http import redact_text
from pipeline.errors import ChartError, ChartVersionError
from pipeline.recipes.model import ChartRef
from tests import factories
from tests.servers import Fault, HttpRepo, start_http_repo, write_index

pytestmark = pytest.mark.http_repo


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def source(sleeps: list[float]) -> Iterator[HttpChartSource]:
    transport = Transport(retry=RetryPolicy(attempts=3, base_delay=0.5, max_retry_after=10.0),
                          sleep=sleeps.append, timeout=5.0)
    with HttpChartSource(transport=transport) as src:
        yield src


def _publish(repo: HttpRepo, *charts: tuple[str, str], subdir: str = "", base_url: str | None = None) -> None:
    paths = []
    for name, version in charts:
        path = repo.directory / subdir / f"{name}-{version}.tgz"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(factories.chart_archive(name, version))
        paths.append(path)
    write_index(repo.directory, paths, base_url)


def test_fetch_checks_the_index_digest_and_caches_the_index(http_repo: HttpRepo,
                                                            source: HttpChartSource) -> None:
    _publish(http_repo, ("app", "1.0.0"), ("app", "1.1.0"), ("other", "0.1.0"), subdir="archives")
    data = source.fetch(ChartRef(repository=http_repo.url, name="app", version="1.0.0"))
    assert data == factories.chart_archive("app", "1.0.0")
    source.fetch(ChartRef(repository=http_repo.url + "/", name="other", version="0.1.0"))
    assert source.versions(ChartRef(repository=http_repo.url, name="app", version="")) == ("1.0.0", "1.1.0")
    assert http_repo.requests == ["/index.yaml", "/archives/app-1.0.0.tgz", "/archives/other-0.1.0.tgz"]


def test_absolute_chart_urls(http_repo: HttpRepo, source: HttpChartSource) -> None:
    _publish(http_repo, ("app", "1.0.0"), base_url=http_repo.url + "/")
    assert source.fetch(ChartRef(repository=http_repo.url, name="app", version="1.0.0")) == (
        factories.chart_archive("app", "1.0.0"))


def test_bytes_that_differ_from_the_index_digest_are_refused(http_repo: HttpRepo,
                                                             source: HttpChartSource) -> None:
    _publish(http_repo, ("app", "1.0.0"))
    # The archive is replaced after indexing (a re-publish, or tampering on the server).
    republished = factories.chart_archive("app", "1.0.0", values="x: 1\n")
    (http_repo.directory / "app-1.0.0.tgz").write_bytes(republished)
    with pytest.raises(ChartError) as caught:
        source.fetch(ChartRef(repository=http_repo.url, name="app", version="1.0.0"))
    text = str(caught.value)
    assert text.startswith(f"chart 'app' version '1.0.0' from {http_repo.url}/app-1.0.0.tgz: bytes differ "
                           "from the index digest (index says 'sha256:")
    assert "downloaded bytes are 'sha256:" in text


def test_missing_chart_and_version(http_repo: HttpRepo, source: HttpChartSource) -> None:
    _publish(http_repo, ("app", "1.0.0"), ("app", "1.1.0"), ("app", "1.2.0"), ("app", "2.0.0"), ("app", "3.0.0"),
             ("app", "4.0.0"))
    with pytest.raises(ChartVersionError) as caught:
        source.served_version(ChartRef(repository=http_repo.url, name="app", version="v1.1.5"))
    assert caught.value.diagnostics() == (
        f"chart 'app' version 'v1.1.5' is not in the repository index {http_repo.url}/index.yaml "
        "(it has 6 versions; nearest: '1.0.0', '1.1.0', '1.2.0', '2.0.0', '3.0.0')\n"
        "hint: pin a version the repository offers; Helm matches the exact string first, then the same "
        "semantic version (a leading 'v' and '+build' metadata do not matter)")
    with pytest.raises(ChartError, match=r"chart 'nope' is not in the repository index"):
        source.fetch(ChartRef(repository=http_repo.url, name="nope", version="1.0.0"))


@pytest.mark.parametrize(("published", "pin", "served"), [
    ("1.2.3", "v1.2.3", "1.2.3"),
    ("v1.2.3", "1.2.3", "v1.2.3"),
    ("1.2.3+up1", "1.2.3", "1.2.3+up1"),
    ("1.2.3", "1.2.3", "1.2.3"),
])
def test_served_version_follows_helm(http_repo: HttpRepo, source: HttpChartSource, published: str, pin: str,
                                     served: str) -> None:
    _publish(http_repo, ("app", published), ("app", "1.2.4"))
    ref = ChartRef(repository=http_repo.url, name="app", version=pin)
    assert source.served_version(ref) == served
    assert source.fetch(ChartRef(repository=http_repo.url, name="app", version=served)) == (
        factories.chart_archive("app", published))


def test_missing_index(http_repo: HttpRepo, source: HttpChartSource) -> None:
    with pytest.raises(ChartError) as caught:
        source.fetch(ChartRef(repository=http_repo.url + "/nothing", name="app", version="1.0.0"))
    assert str(caught.value) == (f"index of chart repository {http_repo.url}/nothing not found at "
                                 f"{http_repo.url}/nothing/index.yaml (HTTP 404)")
    assert caught.value.hint == "check the repository URL: it must be the directory that holds index.yaml"


def test_not_an_index(http_repo: HttpRepo, source: HttpChartSource) -> None:
    (http_repo.directory / "index.yaml").write_text("<html>hello</html>\n")
    with pytest.raises(ChartError, match=r"repository index .*/index.yaml has no 'entries' mapping"):
        source.fetch(ChartRef(repository=http_repo.url, name="app", version="1.0.0"))


def test_retries_5xx_and_429_with_backoff_and_retry_after(http_repo: HttpRepo, source: HttpChartSource,
                                                          sleeps: list[float]) -> None:
    _publish(http_repo, ("app", "1.0.0"))
    index, archive = "/index.yaml", "/app-1.0.0.tgz"
    http_repo.faults.extend([
        Fault(status=503, path=index), Fault(status=429, headers={"Retry-After": "7"}, path=index),
        Fault(status=502, path=archive), Fault(status=429, headers={"Retry-After": "3600"}, path=archive),
    ])
    assert source.fetch(ChartRef(repository=http_repo.url, name="app", version="1.0.0"))
    # index: 503 → backoff (full jitter: 0 to 0.5 s), 429 → Retry-After 7 s, then 200;
    # archive: 502 → backoff, 429 → Retry-After capped at 10 s, then 200.
    assert len(sleeps) == 4
    assert 0 <= sleeps[0] <= 0.5
    assert sleeps[1] == 7.0
    assert 0 <= sleeps[2] <= 0.5
    assert sleeps[3] == 10.0
    assert http_repo.requests == [index] * 3 + [archive] * 3


def test_gives_up_after_the_last_attempt(http_repo: HttpRepo, source: HttpChartSource) -> None:
    _publish(http_repo, ("app", "1.0.0"))
    http_repo.faults.extend([Fault(status=503, body=b"down for maintenance")] * 3)
    with pytest.raises(ChartError) as caught:
        source.fetch(ChartRef(repository=http_repo.url, name="app", version="1.0.0"))
    assert str(caught.value) == (f"index of chart repository {http_repo.url}: unexpected HTTP 503 from "
                                 f"{http_repo.url}/index.yaml: 'down for maintenance'")
    assert http_repo.requests == ["/index.yaml"] * 3


def test_connection_errors_are_retried_then_reported(tmp_path: Path, source: HttpChartSource,
                                                     sleeps: list[float]) -> None:
    repo = start_http_repo(tmp_path / "gone")
    url = repo.url
    repo.stop()
    with pytest.raises(ChartError) as caught:
        source.fetch(ChartRef(repository=url, name="app", version="1.0.0"))
    assert str(caught.value).startswith(
        f"cannot fetch index of chart repository {url} from {url}/index.yaml: ConnectError")
    assert str(caught.value).endswith("(after 3 attempts)")
    assert len(sleeps) == 2
    # full jitter: each wait is drawn from [0, ceiling], and the ceiling doubles
    assert 0 <= sleeps[0] <= 0.5
    assert 0 <= sleeps[1] <= 1.0


def test_credentials_never_reach_messages(http_repo: HttpRepo, source: HttpChartSource) -> None:
    _publish(http_repo, ("app", "1.0.0"))
    secret_url = http_repo.url.replace("http://", "http://robot:s3cr3t-token@")
    with pytest.raises(ChartError) as caught:
        source.fetch(ChartRef(repository=secret_url, name="app", version="9.9.9"))
    assert "s3cr3t" not in caught.value.diagnostics()
    assert "robot" not in caught.value.diagnostics()
    assert http_repo.url in str(caught.value)


def test_redaction_helpers() -> None:
    assert redact_url("https://u:p@charts.example.com/x/index.yaml?token=abc#frag") == (
        "https://charts.example.com/x/index.yaml?<redacted>")
    assert redact_url("oci://user@ghcr.io/org") == "oci://ghcr.io/org"
    assert redact_url("./charts") == "./charts"
    assert redact_text("failed: https://u:p@h/x and http://a@b/c") == "failed: https://h/x and http://b/c"
