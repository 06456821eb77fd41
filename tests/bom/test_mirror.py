"""The mirror list in every format lists exactly the locks' images and charts; hosts.toml files."""

from __future__ import annotations

import json
import tomllib
from pathlib import PurePosixPath
from typing import Any

import pytest
import yaml

from pipeline.bom import BomError, locked_recipes
from pipeline.bom.mirror import HAULER_API_VERSION, FormatOutput, MirrorFormat, hosts_toml, mirror_list, render
from pipeline.lockfile import Lockfile
from tests.bom import locks as f


def _recipes() -> list[Lockfile]:
    return locked_recipes([f.demo_lock(), f.demo_lock(name="other"), *f.catalog_locks(40, recipes=4)])


def _expected(recipes: list[Lockfile]) -> set[str]:
    return {f"{i.image.name}@{i.digest}" for r in recipes for c, i in r.images()}


def _charts(recipes: list[Lockfile]) -> set[tuple[str, str, str, str]]:
    return {(c.chart.repository, c.chart.name, c.chart.version, c.chart.archive) for r in recipes
            for c in r.ordered() if c.chart is not None}


def test_text_lists_exactly_the_locked_images_and_charts() -> None:
    recipes = _recipes()
    text = render(recipes, MirrorFormat.TEXT).decode()
    sections = {block.split("\n", 1)[0]: block.split("\n")[1:] for block in text.strip().split("\n\n")}
    registries, images, charts = sections.values()
    assert set(images) == _expected(recipes) and len(images) == len(set(images))
    assert set(registries) == {i.split("/", 1)[0] for i in images}
    assert {tuple(line.split(" ")) for line in charts} == {(a, r, n, v) for r, n, v, a in _charts(recipes)}
    assert text.endswith("\n") and "\r" not in text


def test_json_lists_exactly_the_locked_images_with_tags_platforms_and_uses() -> None:
    recipes = _recipes()
    doc = json.loads(render(recipes, MirrorFormat.JSON))
    assert {i["reference"] for i in doc["images"]} == _expected(recipes)
    busybox = next(i for i in doc["images"] if i["name"] == "docker.io/library/busybox")
    assert busybox["tags"] == ["1.36"]
    assert busybox["usedBy"] == ["demo/app", "demo/oci-app", "other/app", "other/oci-app"]
    app = next(i for i in doc["images"] if i["name"] == "ghcr.io/example/app")
    assert sorted(app["platforms"]) == ["linux/amd64", "linux/arm64"] and app["mediaType"] == f.INDEX
    assert {(c["repository"], c["name"], c["version"], c["archive"]) for c in doc["charts"]} == _charts(recipes)
    assert doc["registries"] == sorted({i["registry"] for i in doc["images"]})


def test_hauler_manifest_has_images_by_digest_and_charts() -> None:
    recipes = _recipes()
    data = render(recipes, MirrorFormat.HAULER, name="recipes").decode()
    images, charts = yaml.safe_load_all(data)
    assert images["apiVersion"] == charts["apiVersion"] == HAULER_API_VERSION
    assert (images["kind"], charts["kind"]) == ("Images", "Charts")
    assert images["metadata"]["name"] == "recipes-images"
    assert {i["name"] for i in images["spec"]["images"]} == _expected(recipes)
    by_name = {c["name"]: c for c in charts["spec"]["charts"]}
    assert by_name["app"] == {"name": "app", "repoURL": "https://charts.example.com/stable", "version": "1.2.3"}
    assert by_name["oci-app"]["repoURL"] == "oci://registry.example.com/charts"
    assert by_name["charts/agent"] == {"name": "charts/agent", "repoURL": ".", "version": "v2.0.0"}
    for _, name, version, archive in _charts(recipes):
        assert f"#   {name} {version} " in data and archive in data  # digests ride along as comments


def test_zarf_package_has_one_component_per_variant_with_chart_and_images() -> None:
    recipes = locked_recipes([f.demo_lock(), f.edited(f.demo_lock(name="other"), lambda b: b["components"][
        "app"].update(namespace="elsewhere"))])
    package = yaml.safe_load(render(recipes, MirrorFormat.ZARF, name="Recipes Catalog"))
    assert package["kind"] == "ZarfPackageConfig" and package["metadata"]["name"] == "recipes-catalog"
    names = [c["name"] for c in package["components"]]
    assert names == ["agent", "app-1-2-3-demo", "app-1-2-3-elsewhere", "config", "oci-app", "tuner"]
    assert all(c.get("required") is True for c in package["components"] if not c["name"].startswith("app-"))
    agent = package["components"][0]
    assert agent["charts"] == [{"name": "agent", "version": "v2.0.0", "localPath": "charts/agent",
                                "namespace": "agents", "releaseName": "agent"}]
    oci = next(c for c in package["components"] if c["name"] == "oci-app")
    assert oci["charts"][0]["url"] == "oci://registry.example.com/charts/oci-app"
    assert oci["images"] == ["docker.io/library/busybox:1.36@" + f.fake_digest("docker.io/library/busybox:1.36"),
                             f"registry.example.com:5000/team/tool@{f.fake_digest('tool')}"]
    app = next(c for c in package["components"] if c["name"] == "app-1-2-3-demo")
    assert app["charts"][0]["url"] == "https://charts.example.com/stable" and "repoName" not in app["charts"][0]
    listed = {i.split(":")[0].rsplit("@")[0] for c in package["components"] for i in c.get("images", [])}
    assert listed == {i.image.name.split(":")[0] for r in recipes for c, i in r.images()}


def test_every_format_is_deterministic_and_an_output() -> None:
    recipes = _recipes()
    for fmt in MirrorFormat:
        output = FormatOutput(fmt)
        assert output.name == fmt.value
        assert output.render(recipes) == output.render(list(reversed(recipes))) == render(recipes, fmt)


def test_unpinned_images_cannot_be_mirrored_by_digest() -> None:
    lock = f.edited(f.demo_lock(), lambda b: f.unpin(b["components"]["agent"]["images"][0]))
    with pytest.raises(BomError) as caught:
        mirror_list(locked_recipes([lock]))
    assert caught.value.message == ("1 image(s) have no digest in the locks, so they cannot be mirrored by digest: "
                                    "recipe 'demo' component 'agent': 'quay.io/example/agent:v2'")
    listing = mirror_list(locked_recipes([lock]), allow_unpinned=True)
    assert "quay.io/example/agent:v2" in {i.by_digest for i in listing.images}


def test_hosts_toml_one_file_per_registry_namespace() -> None:
    recipes = locked_recipes([f.demo_lock()])
    files = hosts_toml(recipes, "mirror.internal:5443")
    assert sorted(map(str, files)) == ["docker.io/hosts.toml", "ghcr.io/hosts.toml", "quay.io/hosts.toml",
                                       "registry.example.com_5000_/hosts.toml"]
    parsed: dict[str, Any] = {str(p.parent): tomllib.loads(data.decode()) for p, data in files.items()}
    assert parsed["docker.io"] == {"server": "https://registry-1.docker.io",
                                   "host": {"https://mirror.internal:5443": {"capabilities": ["pull", "resolve"]}}}
    assert parsed["registry.example.com_5000_"]["server"] == "https://registry.example.com:5000"
    assert parsed["ghcr.io"]["server"] == "https://ghcr.io"
    assert all(data.endswith(b"\n") for data in files.values())


@pytest.mark.parametrize(("mirror", "url"), [("mirror.internal", "https://mirror.internal"),
                                             ("https://mirror.internal:5443/", "https://mirror.internal:5443"),
                                             ("http://127.0.0.1:5000", "http://127.0.0.1:5000")])
def test_hosts_toml_mirror_forms(mirror: str, url: str) -> None:
    files = hosts_toml(locked_recipes([f.demo_lock()]), mirror)
    assert tomllib.loads(files[PurePosixPath("ghcr.io/hosts.toml")].decode())["host"] == {
        url: {"capabilities": ["pull", "resolve"]}}


@pytest.mark.parametrize("mirror", ["https://mirror.internal/v2/ghcr", "ftp://mirror", "user:pw@mirror", ""])
def test_hosts_toml_refuses_what_is_not_a_host(mirror: str) -> None:
    with pytest.raises(BomError) as caught:
        hosts_toml(locked_recipes([f.demo_lock()]), mirror)
    assert caught.value.message == (f"mirror {mirror!r} is not a registry host: write it as host[:port] or "
                                    "https://host[:port]")
