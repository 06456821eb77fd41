"""inspect_archive: what a chart archive holds, its packaging-independent tree, and every refusal."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import pytest

from pipeline.charts import archive as archive_module
from pipeline.charts import inspect_archive, pack_directory
from pipeline.errors import ChartError
from pipeline.vocabulary.digest import sha256_of_entries
from tests import factories
from tests.servers import Member, build_archive


def _files(name: str = "app", version: str = "1.0.0") -> dict[str, bytes]:
    return {f"{name}/{rel}": text.encode() for rel, text in factories.chart_files(name, version).items()}


def test_describes_a_chart_archive() -> None:
    info = inspect_archive(factories.chart_archive("app", "1.0.0"), source="test")
    assert (info.name, info.version) == ("app", "1.0.0")
    assert info.members == ("app/Chart.yaml", "app/templates/deployment.yaml", "app/values.yaml")
    expected = {rel.removeprefix("app/"): data for rel, data in _files().items()}
    assert info.tree == sha256_of_entries(expected.items())


def test_tree_is_independent_of_packaging(tmp_path: Path) -> None:
    chart_dir = factories.write_files(tmp_path / "app", factories.chart_files("app", "1.0.0"))
    packed = pack_directory(chart_dir, "app")
    # Same files, packed as differently as possible: reversed order, GNU format, odd modes and
    # timestamps, no directory entries, another gzip level and header time.
    files = _files()
    other = build_archive(
        [Member(name=p, data=files[p], mode=0o600, mtime=1_700_000_000) for p in sorted(files, reverse=True)],
        level=1, mtime=1_700_000_000,
    )
    assert packed != other
    assert inspect_archive(packed, source="dir").tree == inspect_archive(other, source="tgz").tree
    # and the helper that other tests use agrees too
    assert inspect_archive(factories.chart_archive("app", "1.0.0"), source="f").tree == inspect_archive(
        packed, source="dir").tree


def test_tree_changes_with_content_and_with_paths() -> None:
    files = _files()
    base = inspect_archive(build_archive([Member(name=p, data=d) for p, d in files.items()]), source="a").tree
    edited = dict(files, **{"app/values.yaml": b"replicas: 2\n"})
    moved = {("app/values2.yaml" if p == "app/values.yaml" else p): d for p, d in files.items()}
    for variant in (edited, moved):
        data = build_archive([Member(name=p, data=d) for p, d in variant.items()])
        assert inspect_archive(data, source="a").tree != base


def test_versions_stay_strings_as_written() -> None:
    info = inspect_archive(factories.chart_archive("app", "1.10"), source="x")
    assert info.version == "1.10"  # not the float 1.1


def test_directory_entries_and_dot_prefixes_are_accepted() -> None:
    files = _files()
    members = [Member(name="./app/", kind=tarfile.DIRTYPE, mode=0o755)]
    members += [Member(name=f"./{p}", data=d) for p, d in files.items()]
    info = inspect_archive(build_archive(members), source="x")
    assert info.members == tuple(sorted(files))


CHART_YAML = Member(name="app/Chart.yaml", data=b"apiVersion: v2\nname: app\nversion: 1.0.0\n")

UNSAFE = [
    pytest.param([CHART_YAML, Member(name="/etc/cron.d/evil", data=b"x")],
                 "member '/etc/cron.d/evil' has an absolute path", id="absolute"),
    pytest.param([CHART_YAML, Member(name="app/../../home/evil", data=b"x")],
                 "member 'app/../../home/evil' has a '..' component", id="dotdot"),
    pytest.param([CHART_YAML, Member(name="app/templates/x.yaml", kind=tarfile.SYMTYPE,
                                     linkname="../../../etc/passwd")],
                 "member 'app/templates/x.yaml' is a symbolic link (to '../../../etc/passwd'); "
                 "links are refused",
                 id="symlink-escaping"),
    pytest.param([CHART_YAML, Member(name="app/values.yaml", kind=tarfile.SYMTYPE, linkname="Chart.yaml")],
                 "member 'app/values.yaml' is a symbolic link (to 'Chart.yaml')", id="symlink-inside"),
    pytest.param([CHART_YAML, Member(name="app/copy.yaml", kind=tarfile.LNKTYPE, linkname="app/Chart.yaml")],
                 "member 'app/copy.yaml' is a hard link (to 'app/Chart.yaml')", id="hardlink"),
    pytest.param([CHART_YAML, Member(name="app/dev", kind=tarfile.CHRTYPE)],
                 "member 'app/dev' is a device file or FIFO", id="device"),
    pytest.param([CHART_YAML, Member(name="app/fifo", kind=tarfile.FIFOTYPE)],
                 "member 'app/fifo' is a device file or FIFO", id="fifo"),
    pytest.param([CHART_YAML, Member(name="other/values.yaml", data=b"x")],
                 "member 'other/values.yaml' is outside the archive's top-level directory 'app/'",
                 id="two-top-directories"),
    pytest.param([Member(name="README.md", data=b"x"), CHART_YAML],
                 "member 'README.md' is a file outside any top-level directory", id="top-level-file"),
    pytest.param([CHART_YAML, Member(name="app/Chart.yaml", data=b"name: evil\n")],
                 "member 'app/Chart.yaml' appears twice", id="duplicate"),
    pytest.param([Member(name="app/values.yaml", data=b"x")], "has no app/Chart.yaml", id="no-chart-yaml"),
    pytest.param([Member(name="app/Chart.yaml", data=b"apiVersion: v2\nname: app\n")],
                 "app/Chart.yaml has no 'version'", id="no-version"),
    pytest.param([], "is empty", id="empty"),
]


@pytest.mark.parametrize(("members", "message"), UNSAFE)
def test_refuses_unsafe_archives(members: list[Member], message: str) -> None:
    with pytest.raises(ChartError) as caught:
        inspect_archive(build_archive(members), source="https://charts.example.com/app-1.0.0.tgz")
    text = str(caught.value)
    assert text.startswith("chart archive from https://charts.example.com/app-1.0.0.tgz")
    assert message in text
    assert caught.value.hint


def _plain_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("app/Chart.yaml")
        tar.addfile(info, io.BytesIO(b""))
    return buf.getvalue()


NOT_ARCHIVES = [
    pytest.param(b"<html>Not Found</html>", "is not gzip-compressed (starts with b'<html>No')", id="html"),
    pytest.param(b"", "is not gzip-compressed", id="empty-bytes"),
    pytest.param(_plain_tar(), "is not gzip-compressed", id="uncompressed-tar"),
    pytest.param(gzip.compress(b"hello, world " * 100), "is gzip but not a tar archive", id="gzip-not-tar"),
    pytest.param(factories.chart_archive()[:60], "is a truncated gzip stream", id="truncated-gzip"),
    pytest.param(b"\x1f\x8b" + b"\x00" * 30, "is not valid gzip data", id="corrupt-gzip"),
]


@pytest.mark.parametrize(("data", "message"), NOT_ARCHIVES)
def test_refuses_what_is_not_a_gzip_tar(data: bytes, message: str) -> None:
    with pytest.raises(ChartError, match="chart archive from src ") as caught:
        inspect_archive(data, source="src")
    assert message in str(caught.value)


def test_refuses_decompression_bombs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archive_module, "MAX_UNPACKED_BYTES", 1024 * 1024)
    bomb = build_archive([CHART_YAML, Member(name="app/zeros", data=b"\0" * (2 * 1024 * 1024))], level=9)
    assert len(bomb) < 10_000
    with pytest.raises(ChartError, match=r"chart archive from src unpacks to more than 1 MiB"):
        inspect_archive(bomb, source="src")


def test_refuses_too_many_members(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archive_module, "MAX_MEMBERS", 3)
    members = [CHART_YAML, *(Member(name=f"app/f{i}", data=b"x") for i in range(3))]
    with pytest.raises(ChartError, match="has more than 3 members"):
        inspect_archive(build_archive(members), source="src")
