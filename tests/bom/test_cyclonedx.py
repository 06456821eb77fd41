"""The CycloneDX BOM: model, determinism, validation, refusal of bad locks, and the golden bytes.

The golden BOM (tests/bom/golden/demo.cdx.json) is the byte contract; regenerate it only on
purpose with ``PIPELINE_UPDATE_GOLDEN=1 pytest tests/bom`` and review the diff.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from pipeline.bom import BomError, bom_files, build_bom, build_catalog_bom, check_boms_fresh, serialize, write_boms
from pipeline.bom.cyclonedx import BOM_LAYOUT, CATALOG_BOM, loads, validate
from pipeline.errors import IntegrityError
from pipeline.lockfile import load
from pipeline.vocabulary.digest import canonical_json, sha256
from tests.bom import locks as f

GOLDEN = Path(__file__).parent / "golden"
ROOT = Path(__file__).resolve().parent.parent.parent


def _json(data: bytes) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(data)
    return parsed


def _by_ref(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["bom-ref"]: c for c in doc["components"]}


def _props(component: dict[str, Any], name: str) -> list[str]:
    return sorted(p["value"] for p in component.get("properties", []) if p["name"] == f"recipe-pipeline:{name}")


def _edges(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(d["ref"], t) for d in doc["dependencies"] for t in d.get("dependsOn", [])}


def test_golden_bom() -> None:
    data = serialize(build_bom(f.demo_lock(), exemptions=f.DEMO_EXEMPTIONS))
    golden = GOLDEN / "demo.cdx.json"
    if os.environ.get("PIPELINE_UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_bytes(data)
    assert golden.read_bytes() == data, "BOM bytes changed: review, then PIPELINE_UPDATE_GOLDEN=1 to accept"


def test_recipe_is_the_root_and_every_image_a_pinned_container() -> None:
    lock = f.demo_lock()
    doc = _json(serialize(build_bom(lock)))
    root = doc["metadata"]["component"]
    assert root["bom-ref"] == "recipe:demo" and root["type"] == "application" and root["version"] == lock.digest
    containers = [c for c in doc["components"] if c["type"] == "container"]
    # docker.io/library/busybox:1.36 (in app and in oci-app) is one image; the rest are distinct.
    assert sorted(c["name"] for c in containers) == [
        "docker.io/library/busybox", "ghcr.io/example/app", "ghcr.io/example/tuner", "quay.io/example/agent",
        "registry.example.com:5000/team/tool"]
    for c in containers:
        assert c["version"].startswith("sha256:") and c["bom-ref"] == c["purl"]
        assert c["hashes"] == [{"alg": "SHA-256", "content": c["version"].removeprefix("sha256:")}]
        assert c["purl"].startswith(f"pkg:oci/{c['name'].rsplit('/', 1)[-1]}@{c['version']}?repository_url={c['name']}")
    app = next(c for c in containers if c["name"] == "ghcr.io/example/app")
    assert app["purl"].endswith("&tag=1.0")
    assert _props(app, "platform:linux/amd64") == [f.fake_digest(f"{app['version']}/linux/amd64")]
    assert _props(app, "mediaType") == [f.INDEX] and _props(app, "servedBy") == ["ghcr.io"]
    tool = next(c for c in containers if c["name"] == "registry.example.com:5000/team/tool")
    assert "tag=" not in tool["purl"] and _props(tool, "digestSource") == ["reference"]
    assert _props(tool, "servedBy") == ["registry.example.com:5000"] and _props(tool, "mediaType") == [f.MANIFEST]
    assert not any(p["name"].startswith("recipe-pipeline:platform:") for p in tool.get("properties", []))


def test_image_uses_origins_and_places_are_properties() -> None:
    doc = _json(serialize(build_bom(f.demo_lock())))
    busybox = next(c for c in doc["components"] if c["name"] == "docker.io/library/busybox")
    assert _props(busybox, "origin") == ["chart-default", "in-tree"]
    assert _props(busybox, "usage") == ["demo/app: docker.io/library/busybox:1.36 (in-tree)",
                                        "demo/oci-app: docker.io/library/busybox:1.36 (chart-default)"]
    assert "demo/app: Pod/demo/app-test spec.containers[0].image (app/templates/tests/t.yaml)" in _props(
        busybox, "foundAt")


def test_exemption_reasons_and_volatile_fields_are_carried() -> None:
    doc = _json(serialize(build_bom(f.demo_lock(), exemptions=f.DEMO_EXEMPTIONS)))
    agent = next(c for c in doc["components"] if c["name"] == "quay.io/example/agent")
    assert _props(agent, "exemption") == [
        "demo/agent: quay.io/example/agent:v2: the vendor rebuilds this tag in place (https://example.com/issues/7)"]
    app_chart = next(c for c in doc["components"] if c["type"] == "application" and c["name"] == "app")
    assert _props(app_chart, "volatile") == [
        'Secret/demo/app-cert data["tls.crt"]: genSelfSignedCert makes a new certificate on every render']
    # Exemptions are an input of the BOM: they change its serial number, not only its body.
    assert doc["serialNumber"] != _json(serialize(build_bom(f.demo_lock())))["serialNumber"]


def test_charts_are_helm_purls_with_archive_hash_and_tree() -> None:
    doc = _json(serialize(build_bom(f.demo_lock())))
    charts = {c["name"]: c for c in doc["components"] if c.get("purl", "").startswith("pkg:helm/")}
    assert charts["app"]["purl"] == "pkg:helm/app@1.2.3?repository_url=https://charts.example.com/stable"
    assert charts["oci-app"]["purl"] == "pkg:helm/oci-app@0.4.0?repository_url=oci://registry.example.com/charts"
    assert charts["agent"]["purl"] == "pkg:helm/agent@v2.0.0"  # a chart of the catalog: no repository URL
    agent = charts["agent"]
    assert agent["bom-ref"] == "pkg:helm/agent@v2.0.0?recipe=demo&release=agent"
    assert agent["hashes"] == [{"alg": "SHA-256",
                                "content": f.fake_digest("archive/./charts/agent/v2.0.0").removeprefix("sha256:")}]
    assert _props(agent, "chart:tree") == [f.fake_digest("tree/./charts/agent/v2.0.0")]
    assert _props(agent, "chart:repository") == ["./charts"]


def test_dependencies_form_recipe_component_image_graph() -> None:
    doc = _json(serialize(build_bom(f.demo_lock())))
    refs = _by_ref(doc)
    edges = _edges(doc)
    children = {t for s, t in edges if s == "recipe:demo"}
    assert children == {"manifests:demo/config", "manifests:demo/tuner",
                        "pkg:helm/agent@v2.0.0?recipe=demo&release=agent",
                        "pkg:helm/app@1.2.3?recipe=demo&release=app&repository_url=https://charts.example.com/stable",
                        "pkg:helm/oci-app@0.4.0?recipe=demo&release=oci-app"
                        "&repository_url=oci://registry.example.com/charts"}
    tuner_images = {refs[t]["name"] for s, t in edges if s == "manifests:demo/tuner"}
    assert tuner_images == {"ghcr.io/example/tuner"}  # a manifest-only component is its images' parent
    every_container = {r for r, c in refs.items() if c["type"] == "container"}
    assert every_container == {t for s, t in edges if s != "recipe:demo"}
    assert {d["ref"] for d in doc["dependencies"]} >= set(refs) | {"recipe:demo"}


def test_reproducible_serial_timestamp_and_property() -> None:
    lock = f.demo_lock()
    doc = _json(serialize(build_bom(lock)))
    serial = uuid.UUID(doc["serialNumber"].removeprefix("urn:uuid:"))
    assert serial.version == 5
    assert doc["metadata"]["timestamp"] == "1970-01-01T00:00:00+00:00"
    assert {"name": "cdx:reproducible", "value": "true"} in doc["metadata"]["properties"]
    other = _json(serialize(build_bom(f.demo_lock(name="other"))))
    assert other["serialNumber"] != doc["serialNumber"]
    assert BOM_LAYOUT == 1


def test_two_builds_are_byte_identical_in_process() -> None:
    lock = f.demo_lock()
    assert serialize(build_bom(lock)) == serialize(build_bom(lock))
    locks = [f.demo_lock(), f.demo_lock(name="other")]
    assert serialize(build_catalog_bom(locks)) == serialize(build_catalog_bom(list(reversed(locks))))


_CHILD = """
import hashlib, sys
from pipeline.bom import bom_files
from tests.bom import locks as f
files = bom_files([f.demo_lock(), f.demo_lock(name="other")], exemptions=f.DEMO_EXEMPTIONS)
for path, data in sorted(files.items()):
    print(path, hashlib.sha256(data).hexdigest())
"""


def test_two_builds_are_byte_identical_in_two_processes(tmp_path: Path) -> None:
    outputs = []
    for seed, tz in (("1", "UTC"), ("4242", "Pacific/Chatham")):
        env = {"PATH": os.environ.get("PATH", ""), "PYTHONHASHSEED": seed, "TZ": tz, "LC_ALL": "C",
               "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
        result = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True, check=True, env=env,
                                cwd=tmp_path)
        outputs.append(result.stdout)
    assert outputs[0] == outputs[1]
    assert outputs[0].count("\n") == 3


def test_every_bom_passes_the_strict_validator_and_round_trips() -> None:
    files = bom_files([f.demo_lock(), f.demo_lock(name="other")], exemptions=f.DEMO_EXEMPTIONS)
    assert sorted(map(str, files)) == ["catalog.cdx.json", "recipes/demo.cdx.json", "recipes/other.cdx.json"]
    for data in files.values():
        validate(data)
        bom = loads(data)
        assert serialize(bom) == data  # the library reads back exactly what it wrote


def test_validator_refuses_a_broken_bom() -> None:
    doc = _json(serialize(build_bom(f.demo_lock())))
    doc["components"][0]["type"] = "not-a-type"
    with pytest.raises(BomError) as caught:
        validate(json.dumps(doc).encode(), where="BOM recipes/demo.cdx.json")
    assert caught.value.message.startswith("BOM recipes/demo.cdx.json fails the strict CycloneDX 1.6 JSON schema: "
                                           "$.components[0].type: 'not-a-type' is not one of ['application',")


def test_catalog_bom_nests_recipes_and_shares_images() -> None:
    locks = [f.demo_lock(), f.demo_lock(name="other")]
    doc = _json(serialize(build_catalog_bom(locks, name="recipes")))
    assert doc["metadata"]["component"]["bom-ref"] == "catalog:recipes"
    edges = _edges(doc)
    assert {t for s, t in edges if s == "catalog:recipes"} == {"recipe:demo", "recipe:other"}
    containers = [c for c in doc["components"] if c["type"] == "container"]
    assert len(containers) == 5  # the same images, once each, used by both recipes
    busybox = next(c for c in containers if c["name"] == "docker.io/library/busybox")
    assert {u.split(":")[0] for u in _props(busybox, "usage")} == {"demo/app", "demo/oci-app", "other/app",
                                                                    "other/oci-app"}
    refs = {c["bom-ref"] for c in doc["components"]}
    assert len(refs) == len(doc["components"])


def test_unpinned_images_are_refused_by_default() -> None:
    lock = f.edited(f.demo_lock(), lambda b: f.unpin(b["components"]["app"]["images"][0]))
    with pytest.raises(BomError) as caught:
        build_bom(lock)
    assert caught.value.message == (
        "recipe 'demo': 1 image(s) have no digest in the lock: component 'app': 'docker.io/library/busybox:1.36'; "
        "a BOM of unpinned images would not say what runs")
    assert caught.value.hint is not None and "nox -s lock" in caught.value.hint


def test_unpinned_images_can_be_allowed_and_say_so() -> None:
    lock = f.edited(f.demo_lock(), lambda b: f.unpin(b["components"]["agent"]["images"][0]))
    data = serialize(build_bom(lock, allow_unpinned=True))
    validate(data)
    agent = next(c for c in _json(data)["components"] if c["name"] == "quay.io/example/agent")
    assert "version" not in agent and "hashes" not in agent
    assert agent["purl"] == "pkg:oci/agent?repository_url=quay.io/example/agent&tag=v2"
    assert _props(agent, "unpinned") == ["true"]


def test_a_lock_edited_after_sealing_is_refused(tmp_path: Path) -> None:
    # A tampered lock cannot exist in memory: it is refused where it is read, before any BOM.
    lock = f.demo_lock()
    path = tmp_path / "demo.lock.json"
    path.write_bytes(f.tampered(lock, lambda b: b["components"]["app"]["images"][0].update(
        digest=f.fake_digest("evil"))))
    body = json.loads(path.read_bytes())
    actual = sha256(canonical_json({k: v for k, v in body.items() if k != "digest"}))
    with pytest.raises(IntegrityError) as caught:
        build_bom(load(path, display="lockfiles/demo.lock.json"))
    assert caught.value.message == (
        f"lockfile lockfiles/demo.lock.json fails its integrity check: recorded digest {lock.digest} but the body "
        f"hashes to {actual} (edited by hand or corrupted)")


def test_a_tampered_lockfile_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    good = f.write_lock(tmp_path / "locks", f.demo_lock())
    bad = f.write_lock(tmp_path / "locks", f.demo_lock(name="other"))
    text = bad.read_text().replace(f.fake_digest("ghcr.io/example/app:1.0"), f.fake_digest("evil"))
    bad.write_text(text)
    out = tmp_path / "bom"
    with pytest.raises(IntegrityError, match="fails its integrity check"):
        write_boms([load(p) for p in (good, bad)], out)
    assert not out.exists()


def test_one_unpinned_lock_writes_no_bom_at_all(tmp_path: Path) -> None:
    unpinned = f.edited(f.demo_lock(name="other"), lambda b: f.unpin(b["components"]["app"]["images"][0]))
    with pytest.raises(BomError):
        write_boms([f.demo_lock(), unpinned], tmp_path / "bom")
    assert not (tmp_path / "bom").exists()


def test_write_boms_is_idempotent_removes_orphans_and_freshness_checks(tmp_path: Path) -> None:
    out = tmp_path / "bom"
    locks = [f.demo_lock(), f.demo_lock(name="other")]
    first = write_boms(locks, out)
    assert [p.relative_to(out).as_posix() for p in first.written] == [
        "catalog.cdx.json", "recipes/demo.cdx.json", "recipes/other.cdx.json"]
    assert check_boms_fresh(out, locks) == []
    second = write_boms(locks, out)
    assert second.written == () and len(second.unchanged) == 3
    assert check_boms_fresh(out, locks[:1]) == [
        f"{out / CATALOG_BOM} does not match the lockfiles: run 'nox -s bom' and commit it",
        f"{out / 'recipes' / 'other.cdx.json'} has no lockfile: run 'nox -s bom' to remove it"]
    write_boms(locks[:1], out)
    assert sorted(p.name for p in (out / "recipes").iterdir()) == ["demo.cdx.json"]
    (out / "recipes" / "demo.cdx.json").unlink()
    assert check_boms_fresh(out, locks[:1]) == [
        f"{out / 'recipes' / 'demo.cdx.json'} is missing: run 'nox -s bom' and commit it"]


def test_two_locks_of_one_recipe_are_refused() -> None:
    with pytest.raises(BomError, match="two lockfiles describe recipe 'demo'"):
        build_catalog_bom([f.demo_lock(), f.demo_lock()])


# Malformed lock entries (a reference that does not parse, a bad digest or origin, a chart without
# its archive, images that are not a list) no longer reach the BOM: the lockfile model refuses them
# where the lock is read, naming file and line (tests/test_lockfile.py, test_malformed_locks_are_refused).


def test_an_unresolved_lock_gives_a_valid_bom() -> None:
    # A lock made without asking registries (lock --no-resolve) has no mediaType, platforms or servedBy.
    def strip(body: dict[str, Any]) -> None:
        for comp in body["components"].values():
            for entry in comp["images"]:
                for key in ("mediaType", "platforms", "servedBy"):
                    entry.pop(key)
    lock = f.edited(f.demo_lock(), strip)
    assert not any(image.resolved for _, image in lock.images())
    data = serialize(build_bom(lock))
    validate(data)
    assert not any(p["name"].startswith(("recipe-pipeline:servedBy", "recipe-pipeline:mediaType",
                                         "recipe-pipeline:platform:"))
                   for c in _json(data)["components"] for p in c.get("properties", []))


def test_a_generated_catalog_of_2000_images() -> None:
    # Strict validation of this 4.5 MB BOM takes seconds; nox -s bench times it, the tests above cover it.
    locks = f.catalog_locks(2000)
    data = serialize(build_catalog_bom(locks))
    assert sum(1 for c in _json(data)["components"] if c["type"] == "container") == 2000


def test_publish_writes_boms_and_inventory_together_and_stale_reports(tmp_path: Path) -> None:
    from pipeline.bom import publish, stale

    locks = [f.demo_lock(), f.demo_lock(name="other")]
    bom_dir, doc = tmp_path / "bom", tmp_path / "docs" / "container-images.md"
    assert len(stale(locks, bom_dir=bom_dir, inventory=doc)) == 4
    first = publish(locks, bom_dir=bom_dir, inventory=doc)
    assert len(first.written) == 4 and first.removed == ()
    assert stale(locks, bom_dir=bom_dir, inventory=doc) == []
    again = publish(locks[:1], bom_dir=bom_dir, inventory=doc)
    assert again.removed == (bom_dir / "recipes" / "other.cdx.json",)
    assert sorted(p.name for p in again.written) == ["catalog.cdx.json", "container-images.md"]
    unpinned = f.edited(f.demo_lock(), lambda b: f.unpin(b["components"]["app"]["images"][0]))
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    with pytest.raises(BomError):
        publish([unpinned], bom_dir=bom_dir, inventory=doc)
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_unpinned_images_across_recipes_are_all_named_at_once() -> None:
    def unpin(body: dict[str, Any]) -> None:
        f.unpin(body["components"]["agent"]["images"][0])
    with pytest.raises(BomError) as caught:
        bom_files([f.edited(f.demo_lock(), unpin), f.edited(f.demo_lock(name="other"), unpin)])
    assert caught.value.message == (
        "2 image(s) in 2 recipes have no digest in the locks: recipe 'demo' component 'agent': "
        "'quay.io/example/agent:v2'; recipe 'other' component 'agent': 'quay.io/example/agent:v2'; "
        "a BOM of unpinned images would not say what runs")
