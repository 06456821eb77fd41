"""The container base image built here: the spec, the normalisation, the deterministic packing, the
package pin check, the machine cache, and a push that a real registry and skopeo agree with.

The full debootstrap build runs in the container tests' ``containers`` fixture (and in
``.ci/run``'s ``nox -s base-image``); two independent builds on this machine gave the same digest.
"""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

import lab.base_image
from lab.__main__ import main as lab_main
from lab.base_image import (
    BaseImage,
    BaseImageError,
    build_base_image,
    check_packages,
    debian_mirror,
    load_base_spec,
    normalise_rootfs,
    pack_rootfs,
    push_base_image,
)
from pipeline.vocabulary.digest import sha256
from tests.registry.skopeo import require_skopeo, skopeo
from tests.servers import Registry


def _tree(root: Path, *, mtime: int, reverse: bool = False) -> Path:
    files = {"usr/bin/python3.11": b"\x7fELF", "etc/os-release": b"bookworm\n", "var/lib/dpkg/status": b""}
    for rel, data in sorted(files.items(), reverse=reverse):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (root / "usr/bin/python").symlink_to("python3.11")
    os.link(root / "usr/bin/python3.11", root / "usr/bin/python3")
    (root / "usr/bin/python3.11").chmod(0o755)
    for path in [root, *root.rglob("*")]:
        os.utime(path, (mtime, mtime), follow_symlinks=False)
    return root


def test_the_spec_pins_every_included_package_and_python_3_11() -> None:
    spec = load_base_spec()
    assert (spec.suite, spec.variant, spec.architecture) == ("bookworm", "minbase", "amd64")
    assert spec.include == ("python3.11", "python3-pip", "python-is-python3")
    assert spec.packages["python3.11"].startswith("3.11.")
    assert spec.packages["libc6"].startswith("2.36-")  # the glibc of [tool.recipe-pipeline.backends.container]
    assert len(spec.key) == 32 and spec.key == load_base_spec().key


def test_packing_is_a_function_of_the_content_only(tmp_path: Path) -> None:
    first = pack_rootfs(_tree(tmp_path / "a", mtime=1_700_000_000))
    second = pack_rootfs(_tree(tmp_path / "b", mtime=5, reverse=True))
    assert first == second
    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == [".", "./etc", "./etc/os-release", "./usr", "./usr/bin", "./usr/bin/python",
                                         "./usr/bin/python3", "./usr/bin/python3.11", "./var", "./var/lib",
                                         "./var/lib/dpkg", "./var/lib/dpkg/status"]
    assert {m.mtime for m in members} == {0} and {(m.uname, m.gname) for m in members} == {("", "")}
    by_name = {m.name: m for m in members}
    assert by_name["./usr/bin/python"].issym() and by_name["./usr/bin/python"].linkname == "python3.11"
    assert by_name["./usr/bin/python3.11"].islnk() and by_name["./usr/bin/python3.11"].linkname == "./usr/bin/python3"
    assert by_name["./usr/bin/python3"].mode == 0o755


def test_normalising_removes_what_differs_between_two_bootstraps(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    for rel in ("etc/resolv.conf", "etc/hostname", "etc/apt/sources.list", "etc/passwd-", "var/log/apt/history.log",
                "var/cache/apt/archives/bash_5.2.deb", "var/lib/apt/lists/x_Packages", "dev/null",
                "usr/lib/python3/dist-packages/pip/__pycache__/x.cpython-311.pyc", "var/lib/dpkg/status-old",
                "usr/lib/python3.11/EXTERNALLY-MANAGED", "var/cache/ldconfig/aux-cache", "usr/bin/python3"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("x")
    (root / "etc/shadow").write_text("root:*:20791:0:99999:7:::\nnobody:*:20791:0:99999:7:::\n")
    normalise_rootfs(root)
    left = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert left == ["etc/shadow", "usr/bin/python3"]
    assert (root / "var/log").is_dir() and (root / "dev").is_dir() and (root / "var/lib/apt/lists").is_dir()
    assert (root / "etc/shadow").read_text() == "root:*::0:99999:7:::\nnobody:*::0:99999:7:::\n"


def test_a_package_set_other_than_the_pins_stops_the_build(tmp_path: Path) -> None:
    spec = load_base_spec()
    status = tmp_path / "var/lib/dpkg/status"
    status.parent.mkdir(parents=True)
    installed = {**spec.packages, "bash": "5.2.99", "extra-tool": "1.0"}
    del installed["zlib1g"]
    status.write_text("\n\n".join(f"Package: {n}\nStatus: install ok installed\nVersion: {v}"
                                  for n, v in sorted(installed.items())) + "\n")
    with pytest.raises(BaseImageError) as caught:
        check_packages(spec, tmp_path)
    assert caught.value.message == (
        "the bootstrapped package set differs from lab/base-image.toml: bash "
        f"{spec.packages['bash']} is pinned but 5.2.99 was installed; extra-tool 1.0 was installed but is not "
        f"pinned; zlib1g {spec.packages['zlib1g']} is pinned but was not installed")
    assert caught.value.hint and "update [packages] in lab/base-image.toml" in caught.value.hint


def test_the_mirror_comes_from_the_machine_s_apt_sources(tmp_path: Path) -> None:
    sources = tmp_path / "sources.list.d"
    sources.mkdir()
    (sources / "debian.sources").write_text("Types: deb\nURIs: http://mirror.invalid/debian-security\n\n"
                                            "Types: deb\nURIs: http://mirror.invalid/debian\nSuites: bookworm\n")
    assert debian_mirror((sources,)) == "http://mirror.invalid/debian"
    legacy = tmp_path / "sources.list"
    legacy.write_text("# comment\ndeb http://other.invalid/debian bookworm main\n")
    assert debian_mirror((tmp_path / "absent", legacy)) == "http://other.invalid/debian"
    with pytest.raises(BaseImageError, match="no Debian mirror found in this machine's apt sources"):
        debian_mirror((tmp_path / "absent",))


def _tiny(tmp_path: Path) -> BaseImage:
    return lab.base_image._image(load_base_spec(), pack_rootfs(_tree(tmp_path / "tiny", mtime=0)))


def test_a_cached_build_is_reused_and_a_torn_cache_is_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    built = _tiny(tmp_path)
    target = tmp_path / "cache/base-image" / built.spec.key
    target.mkdir(parents=True)
    for name, blob in (("layer.tar.gz", built.layer), ("config.json", built.config), ("manifest.json", built.manifest)):
        (target / name).write_bytes(blob.data)
    assert build_base_image(built.spec, cache=tmp_path / "cache").digest == built.digest
    (target / "config.json").write_bytes(b"{}")  # the manifest no longer names this config
    monkeypatch.setattr(lab.base_image, "_DEBOOTSTRAP", "no-such-debootstrap")
    with pytest.raises(BaseImageError) as caught:
        build_base_image(built.spec, cache=tmp_path / "cache")
    assert caught.value.message == ("debootstrap is not installed; the base image is bootstrapped from Debian "
                                    "packages")
    assert caught.value.hint == "apt-get install -y debootstrap"


@pytest.mark.registry
def test_the_push_serves_our_manifest_by_digest_and_skopeo_agrees(tmp_path: Path, registry: Registry) -> None:
    require_skopeo()
    built = _tiny(tmp_path)
    report = push_base_image(built, registry.host)
    assert report.digest == built.digest == sha256(built.manifest.data)
    assert report.reference == f"{registry.host}/recipe-pipeline/base:python3.11-bookworm@{built.digest}"
    assert str(built.reference(registry.host)) == report.reference
    image = f"docker://{registry.host}/recipe-pipeline/base@{built.digest}"
    assert skopeo("--raw", image) == built.manifest.data
    inspected = skopeo("--config", image).decode()
    assert '"created":"1970-01-01T00:00:00Z"' in inspected.replace(" ", "")


def test_the_lab_command_prints_the_cached_image_by_digest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    built = _tiny(tmp_path)
    target = tmp_path / "cache/base-image" / built.spec.key
    target.mkdir(parents=True)
    for name, blob in (("layer.tar.gz", built.layer), ("config.json", built.config), ("manifest.json", built.manifest)):
        (target / name).write_bytes(blob.data)
    assert lab_main(["base-image", "--no-push", "--cache", str(tmp_path / "cache")]) == 0
    out, err = capsys.readouterr()
    assert out == f"recipe-pipeline/base:python3.11-bookworm@{built.digest}\n"
    assert err.startswith(f"built recipe-pipeline/base:python3.11-bookworm@{built.digest} (")
