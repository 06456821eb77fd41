"""Across the gap and back: export from one real registry, verify, import into another, relock.

The world (tests/bundle/world.py): our catalog's images in a ``docker-registry`` on 127.0.0.1, two
of them signed with the pinned cosign, the catalog locked against it; an empty second registry.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from pipeline.__main__ import main
from tests.bundle.world import (
    LAB,
    ROOT,
    World,
    catalog_with_mirrors,
    cosign,
    lock_images,
    served_by,
)
from tests.servers import start_registry
from tests.tools import run_tool

pytestmark = [pytest.mark.registry, pytest.mark.tools]
PREFIX = "airgap"
KIND = "dev.recipe-pipeline.bundle.kind"


@pytest.fixture(scope="module")
def exported(world: World) -> Path:
    out = world.root / "bundle"
    assert main(["bundle", "export", *world.args("--out", str(out))]) == 0
    return out


@pytest.fixture(scope="module")
def imported(world: World, exported: Path) -> str:
    """The import into the target registry: its stdout (mirrors block and hosts.toml files)."""
    args = ["bundle", "import", str(exported), "--to", world.target.host, "--prefix", PREFIX]
    done = subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _index(bundle: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((bundle / "index.json").read_text())
    return data


def _entries(bundle: Path, kind: str) -> list[dict[str, Any]]:
    return [e for e in _index(bundle)["manifests"] if e["annotations"]["dev.recipe-pipeline.bundle.kind"] == kind]


def test_committed_locks_and_the_source_agree(world: World) -> None:
    assert lock_images(world.lockdir) == lock_images(ROOT / "lockfiles")
    assert served_by(world.lockdir) == {world.source.host}


def test_relock_against_the_imported_mirror_gives_identical_digests(world: World, imported: str) -> None:
    block = imported.split("# recipes/pipeline.yaml: lock against the mirror (merge into spec)\n", 1)[1]
    spec = yaml.safe_load(block.split("# ---", 1)[0])["spec"]
    mirror = spec["registries"]["mirrors"][LAB]
    assert mirror == {"endpoints": [f"http://{world.target.host}/{PREFIX}/localhost_5001"], "skipUpstream": True}
    far = world.root / "far"
    catalog = catalog_with_mirrors(far, spec)
    assert main(["lock", *world.args("--workers", "1", catalog=catalog, lockdir=far / "locks")]) == 0
    assert lock_images(far / "locks") == lock_images(world.lockdir) == lock_images(ROOT / "lockfiles")
    assert served_by(far / "locks") == {world.target.host}  # only who served the bytes differs
    assert "# --- containerd: localhost_5001_/hosts.toml" in imported
    assert f'[host."http://{world.target.host}/v2/{PREFIX}/localhost_5001"]' in imported
    assert "override_path = true" in imported


def test_the_layout_holds_every_lock_entry_and_signature(world: World, exported: Path) -> None:
    assert json.loads((exported / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    images = {e["annotations"]["org.opencontainers.image.ref.name"]: e["digest"] for e in _entries(exported, "image")}
    for lock in lock_images(world.lockdir).values():
        for component in lock.values():
            for image in component["images"]:
                assert images[image["ref"]] == image["digest"]
    for repository, digest in world.signed.items():
        hexpart = digest.split(":")[1]
        about = {(e["annotations"][KIND], e["annotations"].get("dev.recipe-pipeline.bundle.tag"))
                 for e in _index(exported)["manifests"]
                 if e["annotations"].get("dev.recipe-pipeline.bundle.subject") == digest}
        assert about & {("referrers", f"sha256-{hexpart}"), ("signature", f"sha256-{hexpart}.sig")}, repository
    charts = _entries(exported, "chart")
    assert {c["annotations"]["org.opencontainers.image.ref.name"] for c in charts} >= {
        "charts/local/accel-operator:v1.4.2"}
    manifest = json.loads((exported / "blobs/sha256" / charts[0]["digest"].split(":")[1]).read_text())
    assert manifest["config"]["mediaType"] == "application/vnd.cncf.helm.config.v1+json"
    assert manifest["layers"][0]["mediaType"] == "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
    meta = _entries(exported, "metadata")[0]
    titles = {layer["annotations"]["org.opencontainers.image.title"]
              for layer in json.loads((exported / "blobs/sha256" / meta["digest"].split(":")[1]).read_text())["layers"]}
    assert {"lockfiles/h100-kind-inference.lock.json", "sigstore/production/trusted_root.json",
            "sigstore/staging/trusted_root.json"} <= titles
    assert any(t.startswith("bom/") for t in titles) and any(t.startswith("policies/") for t in titles)


def test_verify_passes(exported: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bundle", "verify", str(exported)]) == 0
    assert "bundle verify: PASS" in capsys.readouterr().out


def test_export_is_deterministic_and_a_tar_holds_the_same_layout(world: World, exported: Path) -> None:
    tars = [world.root / "one.tar", world.root / "two.tar"]
    for tar in tars:
        assert main(["bundle", "export", *world.args("--out", str(tar))]) == 0
    assert tars[0].read_bytes() == tars[1].read_bytes()
    again = world.root / "again"
    assert main(["bundle", "export", *world.args("--out", str(again))]) == 0
    assert (again / "index.json").read_bytes() == (exported / "index.json").read_bytes()
    assert sorted(p.name for p in (again / "blobs/sha256").iterdir()) == sorted(
        p.name for p in (exported / "blobs/sha256").iterdir())
    assert main(["bundle", "verify", str(tars[0])]) == 0
    assert not (world.root / ".one.tar.partial").exists()


def test_skopeo_and_crane_read_the_layout(world: World, exported: Path, tmp_path: Path) -> None:
    image = _entries(exported, "image")[0]
    ref = image["annotations"]["org.opencontainers.image.ref.name"]
    out = tmp_path / "copy"
    done = subprocess.run(["skopeo", "copy", "--all", "--preserve-digests", f"oci:{exported}:{ref}", f"dir:{out}"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "sha256:" + hashlib.sha256((out / "manifest.json").read_bytes()).hexdigest() == image["digest"]
    # crane reads the layout's index and pushes every entry to a third registry, digests unchanged
    third = start_registry(tmp_path / "third")
    try:
        run_tool("crane", ["push", "--insecure", "--index", str(exported), f"{third.host}/crane/all:bundle"])
        listed = run_tool("crane", ["manifest", "--insecure", f"{third.host}/crane/all:bundle"]).stdout
        assert {m["digest"] for m in json.loads(listed)["manifests"]} == {
            m["digest"] for m in _index(exported)["manifests"]}
    finally:
        third.stop()


def test_platform_selection_is_recorded_and_verified(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    out = world.root / "amd64"
    assert main(["bundle", "export", *world.args("--out", str(out), "--platform", "linux/amd64")]) == 0
    index = _index(out)
    assert index["annotations"]["dev.recipe-pipeline.bundle.platforms"] == "linux/amd64"
    indexes = [e for e in _entries(out, "image") if e["mediaType"] == "application/vnd.oci.image.index.v1+json"]
    assert len(indexes) >= 10
    for entry in indexes:
        assert entry["annotations"]["dev.recipe-pipeline.bundle.platforms"] == "linux/amd64"
        children = json.loads((out / "blobs/sha256" / entry["digest"].split(":")[1]).read_text())["manifests"]
        present = {c["platform"]["architecture"] for c in children
                   if (out / "blobs/sha256" / c["digest"].split(":")[1]).exists()}
        assert present == {"amd64"}
    assert main(["bundle", "verify", str(out)]) == 0
    capsys.readouterr()
    assert main(["bundle", "export", *world.args("--out", str(world.root / "x"), "--platform", "linux/s390x")]) == 2
    assert "error: --platform 'linux/s390x' is not a platform of any locked image" in capsys.readouterr().err


def test_signatures_verify_with_cosign_on_the_far_side(world: World, imported: str) -> None:
    for repository, digest in world.signed.items():
        far = f"{world.target.host}/{PREFIX}/localhost_5001/{repository}@{digest}"
        done = cosign(["verify", "--key", "cosign.pub", "--insecure-ignore-tlog", "--allow-insecure-registry", far],
                      cwd=world.key_dir)
        assert done.returncode == 0, done.stderr
        assert digest in done.stdout


def test_helm_pulls_the_chart_from_the_far_side(world: World, imported: str, tmp_path: Path) -> None:
    lock = json.loads((world.lockdir / "h100-kind-inference.lock.json").read_text())
    chart = lock["components"]["accel-operator"]["chart"]
    run_tool("helm", ["pull", f"oci://{world.target.host}/{PREFIX}/charts/local/accel-operator",
                      "--version", chart["version"], "--plain-http", "--destination", str(tmp_path)],
             env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    archive = next(tmp_path.glob("*.tgz")).read_bytes()
    assert "sha256:" + hashlib.sha256(archive).hexdigest() == chart["archive"]


def _blob(bundle: Path, digest: str) -> Path:
    return bundle / "blobs/sha256" / digest.split(":")[1]


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.chmod(0o644)
    path.write_bytes(bytes(data))


def _samples(bundle: Path) -> dict[str, str]:
    """One blob of each kind: a layer, a platform manifest, an image index, a chart archive, a signature blob."""
    image = _entries(bundle, "image")[0]
    index = json.loads(_blob(bundle, image["digest"]).read_text())
    platform = index["manifests"][0]["digest"]
    layer = json.loads(_blob(bundle, platform).read_text())["layers"][0]["digest"]
    chart = json.loads(_blob(bundle, _entries(bundle, "chart")[0]["digest"]).read_text())["layers"][0]["digest"]
    sig = next(e for e in _index(bundle)["manifests"]
               if e["annotations"]["dev.recipe-pipeline.bundle.kind"] == "signature")
    payload = json.loads(_blob(bundle, sig["digest"]).read_text())["layers"][0]["digest"]
    return {"layer": layer, "platform manifest": platform, "image index": image["digest"], "chart archive": chart,
            "signature payload": payload}


@pytest.mark.parametrize("what", ["layer", "platform manifest", "image index", "chart archive", "signature payload"])
def test_a_flipped_byte_fails_verify_and_import(world: World, exported: Path, tmp_path: Path, what: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(exported, bad)
    digest = _samples(bad)[what]
    _flip(_blob(bad, digest))
    capsys.readouterr()
    assert main(["bundle", "verify", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"blob {digest}: its bytes hash to sha256:" in err
    assert "hint: do not import it: export it again and carry a good copy across" in err
    fresh = start_registry(tmp_path / "fresh")
    try:
        assert main(["bundle", "import", str(bad), "--to", fresh.host, "--prefix", PREFIX]) == 2
        err = capsys.readouterr().err
        assert f"{digest} hashes to sha256:" in err and "nothing more pushed" in err
        assert not fresh.blob_path(digest).exists()
        pushed = {p.name for p in (fresh.root / "data/docker/registry/v2/blobs/sha256").glob("*/*")}
        # the entries after the bad one were not pushed: the metadata-less last entry's digest is absent
        last = [e for e in _index(bad)["manifests"] if e["annotations"][KIND] != "metadata"][-1]
        assert last["digest"].split(":")[1] not in pushed
    finally:
        fresh.stop()


def test_import_skips_blobs_the_target_has(world: World, exported: Path, imported: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["bundle", "import", str(exported), "--to", world.target.host, "--prefix", PREFIX]) == 0
    out = capsys.readouterr().out
    assert " and 0 blobs (0 bytes) to " in out


def test_an_interrupted_export_leaves_nothing_verify_accepts_and_a_rerun_completes_it(
        world: World, exported: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = world.root / "killed"
    partial = world.root / ".killed.partial"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "pipeline", "bundle", "export", *world.args("--out", str(out))],
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        blobs = list((partial / "blobs/sha256").glob("*")) if partial.exists() else []
        if len(blobs) >= 10:
            break
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not out.exists()
    assert not (partial / "index.json").exists()
    capsys.readouterr()
    assert main(["bundle", "verify", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"error: no bundle at {out}" in err and "was interrupted" in err
    assert main(["bundle", "verify", str(partial)]) == 1
    assert "index.json: missing or not an OCI index" in capsys.readouterr().err
    survivor = sorted((partial / "blobs/sha256").glob("[0-9a-f]*"))[0]
    _flip(survivor)  # a leftover is re-hashed before it is reused
    assert main(["bundle", "export", *world.args("--out", str(out))]) == 0
    assert "reused from an interrupted export" in capsys.readouterr().out
    assert (out / "index.json").read_bytes() == (exported / "index.json").read_bytes()
    assert main(["bundle", "verify", str(out)]) == 0
    assert not partial.exists()


def test_export_refuses_to_replace_a_directory_that_is_not_a_bundle(world: World, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("mine")
    assert main(["bundle", "export", *world.args("--out", str(precious))]) == 2
    assert f"error: {precious} exists and is not a bundle; refusing to replace it" in capsys.readouterr().err
    assert (precious / "notes.txt").read_text() == "mine"


def test_target_registry_answers(world: World, imported: str) -> None:
    tags = httpx.get(f"{world.target.url}/v2/{PREFIX}/localhost_5001/recipe-lab/accel-driver/tags/list").json()
    assert any(t.startswith("sha256-") for t in tags["tags"])


def _edited(exported: Path, tmp_path: Path, edit: Any) -> Path:
    copy = tmp_path / "edited"
    shutil.copytree(exported, copy)
    index = _index(copy)
    edit(index)
    (copy / "index.json").write_text(json.dumps(index))
    return copy


def test_verify_names_a_missing_lock_entry_and_a_detached_signature(world: World, exported: Path, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    def edit(index: dict[str, Any]) -> None:
        driver = next(e for e in index["manifests"] if e["annotations"][KIND] == "image"
                      and "accel-validator" in e["annotations"]["org.opencontainers.image.ref.name"])
        index["manifests"].remove(driver)
        sig = next(e for e in index["manifests"] if e["annotations"][KIND] == "signature")
        sig["annotations"]["dev.recipe-pipeline.bundle.tag"] = "sha256-" + "0" * 64 + ".sig"

    bad = _edited(exported, tmp_path, edit)
    capsys.readouterr()
    assert main(["bundle", "verify", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "image localhost:5001/recipe-lab/accel-validator" in err and "is not in the bundle" in err
    assert "signature localhost:5001/recipe-lab/accel-validator:sha256-" in err
    assert "which is no image of localhost:5001/recipe-lab/accel-validator in the bundle" in err
    assert "is not referenced by index.json" in err


def test_verify_names_a_signature_moved_off_its_digest(world: World, exported: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    wrong = "sha256-" + "0" * 64 + ".sig"

    def edit(index: dict[str, Any]) -> None:
        sig = next(e for e in index["manifests"] if e["annotations"][KIND] == "signature")
        sig["annotations"]["dev.recipe-pipeline.bundle.tag"] = wrong

    bad = _edited(exported, tmp_path, edit)
    capsys.readouterr()
    assert main(["bundle", "verify", str(bad)]) == 1
    digest = world.signed["recipe-lab/accel-validator"]
    assert (f"is tagged {wrong!r}, not 'sha256-{digest.split(':')[1]}.sig': detached from {digest}"
            in capsys.readouterr().err)
