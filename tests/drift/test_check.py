"""check_drift against real servers: a docker-registry for images and OCI charts, an HTTP chart repository.

Each test locks a tiny catalog's worth of items (digests from the real client, archives as served),
changes the sources the way upstreams do (retag, delete, re-publish, release), and checks the
classification.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.charts import (
    ChartSource,
    HttpChartSource,
    OciChartSource,
    SourceFactory,
    SourceKind,
    Transport,
    inspect_archive,
)
from pipeline.drift import DriftItem, DriftReport, DriftStatus, ItemKind, Usage, check_drift, format_json
from pipeline.errors import ResolveError
from pipeline.images import ImageRef
from pipeline.lockfile import Lockfile, load
from pipeline.registry import RegistryClient, RetryPolicy
from pipeline.stages import Workspace, fresh_locks, lock_catalog
from pipeline.vocabulary.digest import sha256
from tests import factories, locks
from tests.servers import (
    FaultProxy,
    HttpRepo,
    ProxyFault,
    Registry,
    build_oci_image,
    push_oci_chart,
    push_oci_image,
    write_index,
)

FAST = RetryPolicy(attempts=2, base_delay=0.001, max_delay=0.002, max_retry_after=0.01)


@pytest.fixture
def client() -> Iterator[RegistryClient]:
    transport = Transport(error=ResolveError, retry=FAST, timeout=5.0)
    with RegistryClient(transport=transport) as made:
        yield made
    transport.close()


@pytest.fixture
def sources(client: RegistryClient) -> Iterator[SourceFactory]:
    http = HttpChartSource(transport=Transport(retry=FAST, timeout=5.0))
    with SourceFactory(http=http, oci=OciChartSource(client=client)) as factory:
        yield factory


# ---- locks in the real format (the shared factory, with what the registries answered) ----------


def _image(client: RegistryClient, ref: str) -> dict[str, Any]:
    """An image locked as the lock stage locks it: resolved by the real client (digest, media type,
    platforms, serving host)."""
    answer = client.resolve(ImageRef.parse(ref))
    return locks.image(ref, digest=answer.digest, media_type=answer.media_type, platforms=dict(answer.platforms),
                       served_by=answer.served_by, found_at=("templates/deployment.yaml",))


def _unresolved(ref: str) -> dict[str, Any]:
    return locks.image(ref, digest=None, found_at=("templates/deployment.yaml",))


def _chart(repository: str, name: str, version: str, data: bytes) -> dict[str, str]:
    return locks.chart(repository, name, version, archive=sha256(data), tree=inspect_archive(data, source="test").tree)


def _component(name: str, *, chart: Mapping[str, str] | None = None,
               images: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    return locks.component(name, namespace=f"{name}-system", chart=chart, images=images)


def _lock(directory: Path, recipe: str, components: Mapping[str, dict[str, Any]]) -> Lockfile:
    """A sealed lockfile written in canonical form and read back through the real reader."""
    return load(locks.write_lock(directory, locks.seal(locks.lock_body(recipe, components))))


def _digest_of(client: RegistryClient, ref: str) -> str:
    """What the lock stage records: the digest the registry resolves the tag to."""
    return client.resolve(ImageRef.parse(ref)).digest


def _publish(repo: HttpRepo, data: bytes, name: str, version: str) -> None:
    (repo.directory / f"{name}-{version}.tgz").write_bytes(data)
    write_index(repo.directory, repo.directory.glob("*.tgz"))


def _delete_manifest(registry: Registry, repository: str, digest: str) -> None:
    with httpx.Client(base_url=registry.url, timeout=10.0, trust_env=False) as http:
        response = http.delete(f"/v2/{repository}/manifests/{digest}")
        assert response.status_code == 202, response.text


def _by_reference(report: DriftReport) -> dict[str, DriftItem]:
    items = {i.reference: i for i in report.items}
    assert len(items) == len(report.items)
    return items


# ---- the scenarios -------------------------------------------------------------------------------


@pytest.mark.registry
@pytest.mark.http_repo
def test_every_kind_of_drift_is_classified(tmp_path: Path, registry: Registry, http_repo: HttpRepo,
                                           client: RegistryClient, sources: SourceFactory) -> None:
    host = registry.host
    # images: pushed, then locked with the digests the real client resolves
    pushed = {}
    for repository, seed in (("team/app", "app-1"), ("team/sidecar", "sidecar"), ("team/gone", "gone"),
                             ("team/pinned", "pinned-1"), ("team/kept", "kept"), ("team/dropped", "dropped"),
                             ("team/claimed", "claimed")):
        pushed[repository] = build_oci_image(seed)
        push_oci_image(registry, repository, "1.0", pushed[repository])
    app, sidecar, gone, claimed = (f"{host}/team/{n}:1.0" for n in ("app", "sidecar", "gone", "claimed"))
    pinned = f"{host}/team/pinned:1.0@{_digest_of(client, f'{host}/team/pinned:1.0')}"
    kept = f"{host}/team/kept@{_digest_of(client, f'{host}/team/kept:1.0')}"
    dropped_digest = _digest_of(client, f"{host}/team/dropped:1.0")
    dropped = f"{host}/team/dropped@{dropped_digest}"
    locked = {ref: _digest_of(client, ref) for ref in (app, sidecar, gone, claimed)}
    # charts: an HTTP repository and an OCI registry, as served
    web, api, db, cache, old = (factories.chart_archive(n, "1.0.0") for n in ("web", "api", "db", "cache", "old"))
    for name, data in (("web", web), ("api", api), ("db", db), ("cache", cache), ("old", old)):
        _publish(http_repo, data, name, "1.0.0")
    oci = factories.chart_archive("ocichart", "1.0.0")
    push_oci_chart(registry, "charts", "ocichart", "1.0.0", oci)
    local = factories.chart_archive("app", "1.0.0")

    # a lock that claims another linux/arm64 manifest than the registry serves for the locked digest
    forged = locks.fake_digest("forged")
    claim = _image(client, claimed)
    claim["platforms"]["linux/arm64"] = forged
    images = [_image(client, app), _image(client, sidecar), _image(client, gone), _image(client, pinned),
              _image(client, kept), _image(client, dropped), _unresolved(f"{host}/team/unresolved:1.0"), claim]
    assert [i["digest"] for i in images[:3]] == [locked[app], locked[sidecar], locked[gone]]
    assert [i["source"] for i in images[3:6]] == ["reference"] * 3 and images[5]["digest"] == dropped_digest
    first = _lock(tmp_path, "eks-training", {
        "web": _component("web", chart=_chart(http_repo.url, "web", "1.0.0", web), images=images[:4]),
        "api": _component("api", chart=_chart(http_repo.url, "api", "1.0.0", api), images=images[4:7]),
        "claims": _component("claims", images=images[7:]),
        "db": _component("db", chart=_chart(http_repo.url, "db", "1.0.0", db)),
        "cache": _component("cache", chart=_chart(http_repo.url, "cache", "1.0.0", cache)),
        "old": _component("old", chart=_chart(http_repo.url, "old", "1.0.0", old)),
        "ocichart": _component("ocichart", chart=_chart(registry.oci("charts"), "ocichart", "1.0.0", oci)),
        "app": _component("app", chart=_chart("./charts", "app", "1.0.0", local)),
        "extras": _component("extras"),
    })
    second = _lock(tmp_path, "gke-inference", {"web": _component("web", images=[_image(client, app)])})

    # upstream moves
    moved = push_oci_image(registry, "team/app", "1.0", build_oci_image("app-2"))
    _delete_manifest(registry, "team/gone", locked[gone])
    repinned = push_oci_image(registry, "team/pinned", "1.0", build_oci_image("pinned-2"))
    _delete_manifest(registry, "team/dropped", dropped_digest)
    republished = factories.chart_archive("web", "1.0.0", values="replicas: 3\n")
    _publish(http_repo, republished, "web", "1.0.0")
    repackaged = gzip.compress(gzip.decompress(api), compresslevel=1, mtime=0)
    assert repackaged != api
    _publish(http_repo, repackaged, "api", "1.0.0")
    _publish(http_repo, factories.chart_archive("db", "1.1.0"), "db", "1.1.0")
    _publish(http_repo, factories.chart_archive("db", "v1.10.0"), "db", "v1.10.0")
    _publish(http_repo, factories.chart_archive("db", "2.0.0-rc.1"), "db", "2.0.0-rc.1")
    (http_repo.directory / "old-1.0.0.tgz").unlink()
    write_index(http_repo.directory, http_repo.directory.glob("*.tgz"))
    push_oci_chart(registry, "charts", "ocichart", "1.2.0", factories.chart_archive("ocichart", "1.2.0"))

    report = check_drift([first, second], client=client, charts=sources, catalog=tmp_path / "catalog")
    items = _by_reference(report)
    training = "eks-training"

    def usage(*pairs: tuple[str, str]) -> tuple[Usage, ...]:
        return tuple(Usage(recipe=r, component=c) for r, c in pairs)

    # images
    assert items[app] == DriftItem(
        kind=ItemKind.IMAGE, reference=app, status=DriftStatus.TAG_MOVED, old=locked[app], new=moved,
        used_by=usage((training, "web"), ("gke-inference", "web")),
        detail="tag '1.0' points to another manifest than when the lock was made")
    assert items[sidecar].status is DriftStatus.UNCHANGED
    assert items[sidecar].old == items[sidecar].new == locked[sidecar]
    assert items[gone].status is DriftStatus.DELETED
    assert items[gone].old == locked[gone]
    assert items[gone].new is None
    assert items[gone].detail.startswith(f"registry '{host}' has no manifest of '{gone}' (HTTP 404")
    assert items[pinned] == DriftItem(
        kind=ItemKind.IMAGE, reference=pinned, status=DriftStatus.TAG_MOVED, old=pinned.rpartition("@")[2],
        new=repinned, used_by=usage((training, "web")),
        detail="tag '1.0' no longer points to the digest pinned in the reference")
    assert items[kept].status is DriftStatus.UNCHANGED
    assert items[dropped] == DriftItem(
        kind=ItemKind.IMAGE, reference=dropped, status=DriftStatus.DELETED, old=dropped_digest,
        used_by=usage((training, "api")), detail=f"registry '{host}' no longer has '{dropped}' (HTTP 404)")
    served = pushed["team/claimed"].platforms["linux/arm64"]
    assert items[claimed] == DriftItem(
        kind=ItemKind.IMAGE, reference=claimed, status=DriftStatus.LOCK_MISMATCH, old=locked[claimed],
        new=locked[claimed], used_by=usage((training, "claims")),
        detail=f"the lock claims linux/arm64 is {forged}, the registry serves {served}")
    unresolved = items[f"{host}/team/unresolved:1.0"]
    assert unresolved.status is DriftStatus.ERROR
    assert unresolved.old is None
    assert "the lock records no digest for this image" in unresolved.detail

    # charts
    web_item = items[f"{http_repo.url} web@1.0.0"]
    assert web_item.status is DriftStatus.REPUBLISHED
    assert (web_item.old, web_item.new) == (sha256(web), sha256(republished))
    new_tree = inspect_archive(republished, source="t").tree
    assert web_item.detail == (f"version '1.0.0' was re-published with other content "
                               f"(tree {inspect_archive(web, source='t').tree} → {new_tree})")
    api_item = items[f"{http_repo.url} api@1.0.0"]
    assert api_item.status is DriftStatus.REPUBLISHED
    assert (api_item.old, api_item.new) == (sha256(api), sha256(repackaged))
    assert api_item.detail == ("version '1.0.0' was re-published with other archive bytes but the same files: "
                               "repackaged, same content")
    db_item = items[f"{http_repo.url} db@1.0.0"]
    assert (db_item.status, db_item.old, db_item.new) == (DriftStatus.NEWER_VERSION, "1.0.0", "v1.10.0")
    assert items[f"{http_repo.url} cache@1.0.0"].status is DriftStatus.UNCHANGED
    old_item = items[f"{http_repo.url} old@1.0.0"]
    assert (old_item.status, old_item.old, old_item.new) == (DriftStatus.DELETED, sha256(old), None)
    assert old_item.detail == f"version '1.0.0' of chart 'old' is no longer offered by {http_repo.url}"
    oci_item = items[f"{registry.oci('charts')}/ocichart@1.0.0"]
    assert (oci_item.status, oci_item.old, oci_item.new) == (DriftStatus.NEWER_VERSION, "1.0.0", "1.2.0")
    local_item = items["./charts/app@1.0.0"]
    assert local_item.status is DriftStatus.UNCHANGED
    assert local_item.detail.startswith("local chart: its files are inputs of the lock")

    assert {i.reference for i in report.errors} == {f"{host}/team/unresolved:1.0"}
    assert {i.status for i in report.drifted} == set(DriftStatus) - {DriftStatus.UNCHANGED}
    assert len(report.items) == 15  # 8 images, 6 charts with a source, the local chart; "extras" has no chart


@pytest.mark.registry
@pytest.mark.http_repo
def test_nothing_moved_is_no_drift_and_the_report_is_stable(tmp_path: Path, registry: Registry,
                                                            http_repo: HttpRepo, client: RegistryClient,
                                                            sources: SourceFactory) -> None:
    push_oci_image(registry, "team/app", "1.0", build_oci_image("app"))
    ref = f"{registry.host}/team/app:1.0"
    chart = factories.chart_archive("web", "1.0.0")
    _publish(http_repo, chart, "web", "1.0.0")
    lock = _lock(tmp_path, "r", {"web": _component("web", chart=_chart(http_repo.url, "web", "1.0.0", chart),
                                                   images=[_image(client, ref)])})
    first = check_drift([lock], client=client, charts=sources, catalog=tmp_path)
    assert not first.drifted
    assert [i.status for i in first.items] == [DriftStatus.UNCHANGED] * 2
    second = check_drift([lock], client=client, charts=sources, catalog=tmp_path, max_workers=1)
    assert format_json(second) == format_json(first)


@pytest.mark.registry
@pytest.mark.fault_proxy
@pytest.mark.http_repo
def test_each_distinct_reference_and_chart_is_asked_once(tmp_path: Path, registry: Registry,
                                                         fault_proxy: FaultProxy, http_repo: HttpRepo,
                                                         client: RegistryClient, sources: SourceFactory) -> None:
    push_oci_image(registry, "team/app", "1.0", build_oci_image("app"))
    ref = f"{fault_proxy.host}/team/app:1.0"
    digest = _digest_of(client, ref)
    chart = factories.chart_archive("web", "1.0.0")
    _publish(http_repo, chart, "web", "1.0.0")
    locked_chart = _chart(http_repo.url, "web", "1.0.0", chart)
    locks = [_lock(tmp_path, f"recipe-{n}", {
        "a": _component("a", chart=locked_chart, images=[_image(client, ref)]),
        "b": _component("b", chart=locked_chart, images=[_image(client, ref)]),
    }) for n in range(3)]
    fault_proxy.requests.clear()
    http_repo.requests.clear()
    report = check_drift(locks, client=client, charts=sources, catalog=tmp_path, max_workers=8)
    assert [i.status for i in report.items] == [DriftStatus.UNCHANGED, DriftStatus.UNCHANGED]
    assert all(len(i.used_by) == 6 for i in report.items)
    assert [i.old for i in report.items if i.kind is ItemKind.IMAGE] == [digest]
    heads = [path for method, path, _ in fault_proxy.requests if method == "HEAD"]
    assert heads == ["/v2/team/app/manifests/1.0"]
    assert sorted(http_repo.requests) == ["/index.yaml", "/web-1.0.0.tgz"]


@pytest.mark.registry
@pytest.mark.http_repo
def test_sources_that_are_down_give_error_items(tmp_path: Path, registry: Registry, http_repo: HttpRepo,
                                                client: RegistryClient, sources: SourceFactory) -> None:
    push_oci_image(registry, "team/app", "1.0", build_oci_image("app"))
    ref = f"{registry.host}/team/app:1.0"
    digest = _digest_of(client, ref)
    chart = factories.chart_archive("web", "1.0.0")
    _publish(http_repo, chart, "web", "1.0.0")
    oci = factories.chart_archive("ocichart", "1.0.0")
    push_oci_chart(registry, "charts", "ocichart", "1.0.0", oci)
    lock = _lock(tmp_path, "r", {
        "web": _component("web", chart=_chart(http_repo.url, "web", "1.0.0", chart), images=[_image(client, ref)]),
        "oci": _component("oci", chart=_chart(registry.oci("charts"), "ocichart", "1.0.0", oci)),
    })
    registry.stop()
    http_repo.stop()
    report = check_drift([lock], client=client, charts=sources, catalog=tmp_path)
    assert [i.status for i in report.items] == [DriftStatus.ERROR] * 3
    assert report.errors == report.items == report.drifted
    items = _by_reference(report)
    image = items[ref]
    assert image.old == digest
    assert image.detail.startswith(f"cannot fetch manifest of '{ref}' at registry '{registry.host}' from "
                                   f"http://{registry.host}/v2/team/app/manifests/1.0: ConnectError: ")
    assert image.detail.endswith("(after 2 attempts) (hint: check network access to that host (proxy, firewall, "
                                 "DNS), or serve it from a reachable mirror)")
    assert items[f"{http_repo.url} web@1.0.0"].detail.startswith(
        f"cannot fetch index of chart repository {http_repo.url} from {http_repo.url}/index.yaml: ConnectError: ")
    assert items[f"{registry.oci('charts')}/ocichart@1.0.0"].detail.startswith(
        f"tags of {registry.host}/charts/ocichart: cannot fetch tags of '{registry.host}/charts/ocichart' at "
        f"registry '{registry.host}'")


@pytest.mark.registry
@pytest.mark.fault_proxy
def test_a_registry_that_lies_about_a_digest_is_an_error_not_a_move(tmp_path: Path, registry: Registry,
                                                                     fault_proxy: FaultProxy,
                                                                     client: RegistryClient) -> None:
    push_oci_image(registry, "team/app", "1.0", build_oci_image("app", index=False))
    ref = f"{fault_proxy.host}/team/app:1.0"
    lock = _lock(tmp_path, "r", {"web": _component("web", images=[_image(client, ref)])})
    with RegistryClient(transport=Transport(error=ResolveError, retry=FAST, timeout=5.0),
                        cache_manifests=False) as fresh:
        fault_proxy.faults.append(ProxyFault(kind="corrupt", method="GET", path="/manifests/", persistent=True))
        report = check_drift([lock], client=fresh, catalog=tmp_path)
        fresh.transport.close()
    (item,) = report.items
    assert item.status is DriftStatus.ERROR
    assert "refused as tampering" in item.detail
    assert item.new is None


@pytest.mark.registry
def test_a_pre_release_lock_sees_newer_pre_releases(tmp_path: Path, registry: Registry,
                                                    client: RegistryClient, sources: SourceFactory) -> None:
    rc1 = factories.chart_archive("ocichart", "2.0.0-rc.1")
    push_oci_chart(registry, "charts", "ocichart", "2.0.0-rc.1", rc1)
    push_oci_chart(registry, "charts", "ocichart", "2.0.0-rc.2", factories.chart_archive("ocichart", "2.0.0-rc.2"))
    push_oci_chart(registry, "charts", "ocichart", "1.9.0", factories.chart_archive("ocichart", "1.9.0"))
    lock = _lock(tmp_path, "r", {"c": _component("c", chart=_chart(registry.oci("charts"), "ocichart",
                                                                   "2.0.0-rc.1", rc1))})
    (item,) = check_drift([lock], client=client, charts=sources, catalog=tmp_path).items
    assert (item.status, item.old, item.new) == (DriftStatus.NEWER_VERSION, "2.0.0-rc.1", "2.0.0-rc.2")


@pytest.mark.registry
def test_an_oci_chart_whose_repository_is_gone_is_deleted(tmp_path: Path, registry: Registry,
                                                          client: RegistryClient, sources: SourceFactory) -> None:
    data = factories.chart_archive("vanished", "1.0.0")
    lock = _lock(tmp_path, "r", {"c": _component("c", chart=_chart(registry.oci("charts"), "vanished", "1.0.0",
                                                                   data))})
    (item,) = check_drift([lock], client=client, charts=sources, catalog=tmp_path).items
    assert (item.status, item.old, item.new) == (DriftStatus.DELETED, sha256(data), None)
    assert item.detail.startswith(f"tags of {registry.host}/charts/vanished: registry '{registry.host}' has no "
                                  f"tags of '{registry.host}/charts/vanished' (HTTP 404")


def test_max_workers_must_be_positive(tmp_path: Path, client: RegistryClient) -> None:
    with pytest.raises(ValueError, match="max_workers must be >= 1, got 0"):
        check_drift([], client=client, catalog=tmp_path, max_workers=0)


def test_no_locks_is_an_empty_report(tmp_path: Path, client: RegistryClient) -> None:
    report = check_drift([], client=client, catalog=tmp_path)
    assert report == DriftReport(items=())
    assert not report.drifted


@pytest.mark.http_repo
def test_charts_are_asked_through_mirrors_and_any_source_callable(tmp_path: Path, http_repo: HttpRepo,
                                                                  client: RegistryClient) -> None:
    upstream = "https://charts.example.invalid/stable"
    data = factories.chart_archive("web", "1.0.0")
    _publish(http_repo, data, "web", "1.0.0")
    _publish(http_repo, factories.chart_archive("web", "1.0.1"), "web", "1.0.1")
    lock = _lock(tmp_path, "r", {"web": _component("web", chart=_chart(upstream, "web", "1.0.0", data))})
    asked: list[SourceKind] = []
    with HttpChartSource(transport=Transport(retry=FAST, timeout=5.0)) as http:

        def source(kind: SourceKind) -> ChartSource:
            asked.append(kind)
            return http

        (item,) = check_drift([lock], client=client, charts=source, catalog=tmp_path,
                              mirrors={upstream: http_repo.url}).items
    assert asked == [SourceKind.HTTP]
    assert (item.reference, item.status, item.old, item.new) == (
        f"{upstream} web@1.0.0", DriftStatus.NEWER_VERSION, "1.0.0", "1.0.1")


@pytest.mark.registry
def test_a_retagged_image_in_a_real_lock_is_reported_moved(tmp_path: Path, registry: Registry,
                                                           client: RegistryClient) -> None:
    """The acceptance scenario: lock a catalog against the registry, retag one image, check drift."""
    old_app = push_oci_image(registry, "example/app", "1.1", build_oci_image("app-1.1"))
    busybox = push_oci_image(registry, "library/busybox", "1.36",
                             build_oci_image("busybox-1.36", platforms=("linux/amd64",)))
    catalog = factories.images_on(factories.catalog(tmp_path / "catalog"), registry.host)
    ws = Workspace(catalog=catalog, lockdir=tmp_path / "locks", cache=tmp_path / "cache", workers=1)
    lock_catalog(ws)
    new_app = push_oci_image(registry, "example/app", "1.1", build_oci_image("app-1.1-rebuilt"))

    report = check_drift(fresh_locks(ws), client=client, catalog=catalog)
    items = _by_reference(report)
    app = items[f"{registry.host}/example/app:1.1"]
    assert (app.status, app.old, app.new) == (DriftStatus.TAG_MOVED, old_app, new_app)
    assert app.used_by == (Usage(recipe="eks", component="app"),)
    bb = items[f"{registry.host}/library/busybox:1.36"]
    assert (bb.status, bb.old, bb.new) == (DriftStatus.UNCHANGED, busybox, busybox)
    assert items["./charts/app@1.0.0"].status is DriftStatus.UNCHANGED
    assert report.drifted == (app,)
