"""fetch_chart: source choice, mirrors, the store short-circuit, and refusals against the lock."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.charts import (
    STORE,
    ChartStore,
    HttpChartSource,
    RetryPolicy,
    SourceFactory,
    Transport,
    apply_mirrors,
    fetch_chart,
    inspect_archive,
    pack_directory,
)
from pipeline.errors import ChartError
from pipeline.recipes.model import ChartRef
from pipeline.vocabulary.digest import sha256
from tests import factories
from tests.servers import HttpRepo, Registry, push_oci_chart, write_index

UPSTREAM = "https://charts.example.invalid/stable"
NO_MIRRORS: dict[str, str] = {}


def _sources() -> SourceFactory:
    fast = RetryPolicy(attempts=1)
    return SourceFactory(http=HttpChartSource(transport=Transport(retry=fast, timeout=5.0)))


def _publish(repo: HttpRepo, name: str = "app", version: str = "1.0.0", *, subdir: str = "") -> bytes:
    data = factories.chart_archive(name, version)
    path = repo.directory / subdir / f"{name}-{version}.tgz"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    write_index(repo.directory / subdir, [path])
    return data


def test_local_directory_is_packed_fresh(tmp_path: Path) -> None:
    factories.write_files(tmp_path / "catalog" / "charts" / "app", factories.chart_files("app", "1.0.0"))
    store = ChartStore(tmp_path / "store")
    ref = ChartRef(repository="./charts", name="app", version="1.0.0")
    fetched = fetch_chart(ref, catalog=tmp_path / "catalog", store=store, mirrors=NO_MIRRORS)
    packed = pack_directory(tmp_path / "catalog" / "charts" / "app", "app")
    assert fetched.data == packed
    assert fetched.archive == sha256(packed)
    assert fetched.tree == inspect_archive(packed, source="x").tree
    assert fetched.served_by == "./charts"
    assert fetched.ref == ref
    assert store.get(fetched.archive) == packed
    again = fetch_chart(ref, catalog=tmp_path / "catalog", store=store, mirrors=NO_MIRRORS,
                        expected=fetched.archive, walk_order="reversed")
    assert again == fetched


def test_local_directory_edit_is_refused_against_the_lock(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog"
    chart = factories.write_files(catalog / "charts" / "app", factories.chart_files("app", "1.0.0"))
    store = ChartStore(tmp_path / "store")
    ref = ChartRef(repository="./charts", name="app", version="1.0.0")
    locked = fetch_chart(ref, catalog=catalog, store=store, mirrors=NO_MIRRORS).archive
    (chart / "values.yaml").write_text("replicas: 5\n")
    with pytest.raises(ChartError) as caught:
        fetch_chart(ref, catalog=catalog, store=store, mirrors=NO_MIRRORS, expected=locked)
    fresh = sha256(pack_directory(chart, "app"))
    assert str(caught.value) == (f"chart 'app' version '1.0.0' from ./charts: fetched bytes {fresh} differ "
                                 f"from the lock's {locked}")
    assert caught.value.hint is not None
    assert "the chart's files under './charts' changed" in caught.value.hint


def test_local_archive_whose_chart_yaml_disagrees_with_the_pin(tmp_path: Path) -> None:
    (tmp_path / "charts").mkdir()
    (tmp_path / "charts" / "app-2.0.0.tgz").write_bytes(factories.chart_archive("app", "1.0.0"))
    with pytest.raises(ChartError) as caught:
        fetch_chart(ChartRef(repository="charts", name="app", version="2.0.0"), catalog=tmp_path,
                    store=ChartStore(tmp_path / "store"), mirrors=NO_MIRRORS)
    assert str(caught.value) == ("chart 'app' version '2.0.0' from charts: the archive's Chart.yaml has "
                                 "version '1.0.0', not the pinned '2.0.0'")


def test_local_archive_of_another_chart(tmp_path: Path) -> None:
    (tmp_path / "charts").mkdir()
    (tmp_path / "charts" / "app-1.0.0.tgz").write_bytes(factories.chart_archive("other", "1.0.0"))
    with pytest.raises(ChartError, match=r"the archive's Chart\.yaml names chart 'other'"):
        fetch_chart(ChartRef(repository="charts", name="app", version="1.0.0"), catalog=tmp_path,
                    store=ChartStore(tmp_path / "store"), mirrors=NO_MIRRORS)


@pytest.mark.http_repo
def test_http_through_a_mirror(http_repo: HttpRepo, tmp_path: Path) -> None:
    data = _publish(http_repo, subdir="stable")
    ref = ChartRef(repository=UPSTREAM, name="app", version="1.0.0")
    store = ChartStore(tmp_path / "store")
    mirrors = {"https://charts.example.invalid": http_repo.url, "https://unrelated.example.invalid": "x"}
    with _sources() as sources:
        fetched = fetch_chart(ref, catalog=tmp_path, store=store, mirrors=mirrors, sources=sources)
    assert fetched.data == data
    assert fetched.ref.repository == UPSTREAM, "the lock keeps the upstream URL"
    assert fetched.served_by == f"{http_repo.url}/stable"
    assert store.get(fetched.archive) == data
    assert http_repo.requests == ["/stable/index.yaml", "/stable/app-1.0.0.tgz"]


@pytest.mark.registry
def test_oci_through_a_mirror(registry: Registry, tmp_path: Path) -> None:
    data = factories.chart_archive("app", "1.0.0")
    push_oci_chart(registry, "mirror/nvidia", "app", "1.0.0", data)
    ref = ChartRef(repository="oci://nvcr.example.invalid/nvidia", name="app", version="1.0.0")
    mirrors = {"oci://nvcr.example.invalid": registry.oci("mirror")}
    fetched = fetch_chart(ref, catalog=tmp_path, store=ChartStore(tmp_path / "store"), mirrors=mirrors)
    assert fetched.data == data
    assert fetched.served_by == f"oci://{registry.host}/mirror/nvidia"
    assert fetched.ref == ref


@pytest.mark.http_repo
def test_store_hit_makes_no_network_call(http_repo: HttpRepo, tmp_path: Path) -> None:
    _publish(http_repo)
    ref = ChartRef(repository=http_repo.url, name="app", version="1.0.0")
    store = ChartStore(tmp_path / "store")
    with _sources() as sources:
        first = fetch_chart(ref, catalog=tmp_path, store=store, mirrors=NO_MIRRORS, sources=sources)
    http_repo.stop()
    with _sources() as sources:
        # Without the lock's digest the fetch needs the (stopped) server ...
        with pytest.raises(ChartError, match="ConnectError"):
            fetch_chart(ref, catalog=tmp_path, store=store, mirrors=NO_MIRRORS, sources=sources)
        # ... with it, the store answers alone.
        again = fetch_chart(ref, catalog=tmp_path, store=store, mirrors=NO_MIRRORS, sources=sources,
                            expected=first.archive)
    assert (again.data, again.archive, again.tree) == (first.data, first.archive, first.tree)
    assert again.served_by == STORE
    assert http_repo.requests == ["/index.yaml", "/app-1.0.0.tgz"]


@pytest.mark.http_repo
def test_corrupt_store_entry_is_fetched_again(http_repo: HttpRepo, tmp_path: Path) -> None:
    data = _publish(http_repo)
    ref = ChartRef(repository=http_repo.url, name="app", version="1.0.0")
    store = ChartStore(tmp_path / "store")
    digest = store.put(data)
    (tmp_path / "store" / "sha256" / f"{digest.removeprefix('sha256:')}.tgz").write_bytes(b"rot")
    fetched = fetch_chart(ref, catalog=tmp_path, store=store, mirrors=NO_MIRRORS, expected=digest)
    assert fetched.served_by == http_repo.url
    assert store.get(digest) == data


@pytest.mark.http_repo
def test_bytes_that_differ_from_the_lock_are_refused(http_repo: HttpRepo, tmp_path: Path) -> None:
    data = _publish(http_repo, subdir="stable")
    ref = ChartRef(repository=UPSTREAM, name="app", version="1.0.0")
    store = ChartStore(tmp_path / "store")
    locked = sha256(b"what the upstream served when the lock was made")
    with pytest.raises(ChartError) as caught:
        fetch_chart(ref, catalog=tmp_path, store=store, mirrors={UPSTREAM: f"{http_repo.url}/stable"},
                    expected=locked)
    assert str(caught.value) == (
        f"chart 'app' version '1.0.0' from {UPSTREAM} (served by {http_repo.url}/stable): fetched bytes "
        f"{sha256(data)} differ from the lock's {locked}")
    assert caught.value.hint is not None
    assert "nox -s lock" in caught.value.hint
    assert sha256(data) not in store, "refused bytes do not enter the store"


@pytest.mark.http_repo
def test_upstream_version_mismatch_is_refused(http_repo: HttpRepo, tmp_path: Path) -> None:
    # The index says 1.0.1 but the archive inside says 1.0.0.
    archive = http_repo.directory / "app-1.0.1.tgz"
    archive.write_bytes(factories.chart_archive("app", "1.0.0"))
    write_index(http_repo.directory, [archive])
    index = http_repo.directory / "index.yaml"
    index.write_text(index.read_text().replace("version: 1.0.0", "version: 1.0.1"))
    with pytest.raises(ChartError) as caught:
        fetch_chart(ChartRef(repository=http_repo.url, name="app", version="1.0.1"), catalog=tmp_path,
                    store=ChartStore(tmp_path / "store"), mirrors=NO_MIRRORS)
    assert str(caught.value) == (f"chart 'app' version '1.0.1' from {http_repo.url}: the archive's "
                                 "Chart.yaml has version '1.0.0', not the pinned '1.0.1'")


@pytest.mark.parametrize(("repository", "mirrors", "expected"), [
    ("https://a.example/charts", {"https://a.example": "http://m"}, "http://m/charts"),
    ("https://a.example/charts", {"https://a.example/charts/": "http://m/x/"}, "http://m/x"),
    ("https://a.example/chartsplus", {"https://a.example/charts": "http://m"}, "https://a.example/chartsplus"),
    ("https://a.example/charts/sub",
     {"https://a.example": "http://short", "https://a.example/charts": "http://long"}, "http://long/sub"),
    ("oci://ghcr.io/nvidia", {"oci://ghcr.io": "oci://127.0.0.1:5000/ghcr"}, "oci://127.0.0.1:5000/ghcr/nvidia"),
    ("https://a.example/charts", {}, "https://a.example/charts"),
])
def test_apply_mirrors(repository: str, mirrors: dict[str, str], expected: str) -> None:
    assert apply_mirrors(repository, mirrors) == expected
