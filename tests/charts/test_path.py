"""Local charts: deterministic packing, .helmignore, links refused, version pins checked."""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from pipeline.charts import PathChartSource, inspect_archive, pack_directory
from pipeline.errors import ChartError
from pipeline.recipes.model import ChartRef
from tests import factories
from tests.servers import Member, build_archive


def _chart(root: Path, name: str = "app", version: str = "1.0.0", **extra: str) -> Path:
    files = factories.chart_files(name, version, templates={"deployment.yaml": factories.DEPLOYMENT,
                                                            "sa.yaml": factories.SERVICE_ACCOUNT})
    files.update({k.replace("__", "/"): v for k, v in extra.items()})
    return factories.write_files(root / name, files)


def _members(data: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return tar.getmembers()


def test_two_packs_are_byte_identical_and_walk_order_does_not_matter(tmp_path: Path) -> None:
    chart = _chart(tmp_path, **{"files__b.txt": "b", "files__a.txt": "a", "files__sub__z.txt": "z"})
    first = pack_directory(chart, "app")
    assert pack_directory(chart, "app") == first
    assert pack_directory(chart, "app", walk_order="reversed") == first
    assert pack_directory(chart, "app", walk_order="sorted") == first


def test_pack_ignores_timestamps_permissions_and_location(tmp_path: Path) -> None:
    one = _chart(tmp_path / "one")
    two = _chart(tmp_path / "elsewhere" / "two")
    for path in two.rglob("*"):
        os.utime(path, (1_000_000, 1_000_000))
        if path.is_file():
            path.chmod(0o600)
    assert pack_directory(one, "app") == pack_directory(two, "app")


def test_pack_format(tmp_path: Path) -> None:
    chart = _chart(tmp_path, **{"files__run.sh": "#!/bin/sh\n"})
    (chart / "files" / "run.sh").chmod(0o700)
    data = pack_directory(chart, "app")
    assert data[3] == 0, "gzip header must carry no file name"
    assert data[4:8] == b"\0\0\0\0", "gzip header time must be 0"
    members = _members(data)
    names = [m.name for m in members]
    assert names == sorted(names)
    assert names[0] == "app"
    assert all(n == "app" or n.startswith("app/") for n in names)
    for member in members:
        assert (member.mtime, member.uid, member.gid, member.uname, member.gname) == (0, 0, 0, "", "")
    modes = {m.name: m.mode for m in members}
    assert modes["app"] == modes["app/templates"] == 0o755
    assert modes["app/files/run.sh"] == 0o755
    assert modes["app/Chart.yaml"] == 0o644
    assert inspect_archive(data, source="packed").name == "app"


def test_symlinks_inside_a_chart_directory_are_refused(tmp_path: Path) -> None:
    chart = _chart(tmp_path)
    (chart / "templates" / "evil.yaml").symlink_to("/etc/passwd")
    with pytest.raises(ChartError, match=r"chart 'app': 'templates/evil.yaml' is a symbolic link "
                                         r"\(to '/etc/passwd'\); links inside a chart directory are refused"):
        pack_directory(chart, "app")


def test_helmignore(tmp_path: Path) -> None:
    chart = _chart(tmp_path, **{
        ".helmignore": "# comment\n\n*.tmp\nsecret/\n/docs/*.md\nfiles/[ab].txt\n",
        "notes.tmp": "x", "templates__deep.tmp": "x",
        "secret__key.pem": "x", "files__secret": "a file, not a directory: kept",
        "docs__readme.md": "x", "docs__keep.txt": "x", "docs__sub__readme.md": "kept: * never crosses '/'",
        "files__a.txt": "x", "files__b.txt": "x", "files__c.txt": "kept",
        "templates__.hidden.yaml": "helm's default rule",
    })
    (chart / "linked").mkdir()
    (chart / "linked" / "x").symlink_to("/etc/passwd")
    chart.joinpath(".helmignore").write_text(chart.joinpath(".helmignore").read_text() + "linked/\n")
    info = inspect_archive(pack_directory(chart, "app"), source="packed")
    assert info.members == (
        "app/.helmignore",
        "app/Chart.yaml",
        "app/docs/keep.txt",
        "app/docs/sub/readme.md",
        "app/files/c.txt",
        "app/files/secret",
        "app/templates/deployment.yaml",
        "app/templates/sa.yaml",
        "app/values.yaml",
    )


def test_helmignore_negation_follows_helm(tmp_path: Path) -> None:
    # In Helm a '!pattern' rule ignores every path that does NOT match it (unlike git), directories
    # included: here 'templates' does not match '*.yaml', so the whole directory is left out.
    chart = _chart(tmp_path, **{".helmignore": "!*.yaml\n", "README.md": "x"})
    info = inspect_archive(pack_directory(chart, "app"), source="packed")
    assert info.members == ("app/Chart.yaml", "app/values.yaml")


@pytest.mark.parametrize(("rule", "message"), [
    ("templates/**", "double-star (**) syntax is not supported"),
    ("files/[abc", "unclosed '['"),
    ("bad\\", "trailing backslash"),
])
def test_malformed_helmignore_rules_are_refused(tmp_path: Path, rule: str, message: str) -> None:
    chart = _chart(tmp_path, **{".helmignore": f"# first\n{rule}\n"})
    with pytest.raises(ChartError, match=r"chart 'app': \.helmignore line 2: ") as caught:
        pack_directory(chart, "app")
    assert message in str(caught.value)


def test_source_packs_a_directory_whose_version_matches(tmp_path: Path) -> None:
    _chart(tmp_path / "charts")
    source = PathChartSource(tmp_path)
    data = source.fetch(ChartRef(repository="./charts", name="app", version="1.0.0"))
    assert data == pack_directory(tmp_path / "charts" / "app", "app")
    assert PathChartSource(tmp_path, walk_order="reversed").fetch(
        ChartRef(repository="./charts", name="app", version="1.0.0")) == data


def test_source_refuses_a_directory_whose_version_differs(tmp_path: Path) -> None:
    _chart(tmp_path / "charts", version="1.0.1")
    with pytest.raises(ChartError) as caught:
        PathChartSource(tmp_path).fetch(ChartRef(repository="./charts", name="app", version="1.0.0"))
    assert str(caught.value) == (
        "chart 'app': ./charts/app/Chart.yaml has version '1.0.1' but the catalog pins '1.0.0'")
    assert caught.value.hint is not None
    assert "Chart.yaml" in caught.value.hint


def test_source_reads_archives_as_stored(tmp_path: Path) -> None:
    archive = factories.chart_archive("app", "2.0.0")
    (tmp_path / "charts").mkdir()
    (tmp_path / "charts" / "app-2.0.0.tgz").write_bytes(archive)
    source = PathChartSource(tmp_path)
    assert source.fetch(ChartRef(repository="charts", name="app", version="2.0.0")) == archive


def test_source_names_what_it_looked_for(tmp_path: Path) -> None:
    (tmp_path / "charts").mkdir()
    with pytest.raises(ChartError) as caught:
        PathChartSource(tmp_path).fetch(ChartRef(repository="./charts", name="app", version="1.0.0"))
    assert str(caught.value) == ("chart 'app' version '1.0.0' not found in './charts': looked for "
                                 "./charts/app/Chart.yaml and ./charts/app-1.0.0.tgz")


def test_source_refuses_absolute_repositories(tmp_path: Path) -> None:
    with pytest.raises(ChartError, match="local repository '/srv/charts' is an absolute path"):
        PathChartSource(tmp_path).fetch(ChartRef(repository="/srv/charts", name="app", version="1.0.0"))


def test_versions(tmp_path: Path) -> None:
    _chart(tmp_path / "charts", version="1.2.0")
    for version in ("1.0.0", "1.1.0"):
        (tmp_path / "charts" / f"app-{version}.tgz").write_bytes(factories.chart_archive("app", version))
    (tmp_path / "charts" / "app-extra-9.9.9.tgz").write_bytes(b"another chart")  # 'app-extra' is not 'app'
    versions = PathChartSource(tmp_path).versions(ChartRef(repository="./charts", name="app", version="x"))
    assert versions == ("1.0.0", "1.1.0", "1.2.0")


def test_gzip_level_and_header_are_fixed(tmp_path: Path) -> None:
    data = pack_directory(_chart(tmp_path), "app")
    with gzip.GzipFile(fileobj=io.BytesIO(data)) as gz:
        gz.read()
        assert gz.mtime == 0
    assert data[8] == 2, "XFL=2: maximum compression (level 9)"


def test_a_hostile_local_archive_is_named_by_its_file_and_member(tmp_path: Path) -> None:
    """Issue 17: the message named ``chart archive from ./charts``, not the .tgz file and member."""
    work = tmp_path / "work"
    factories.catalog(work / "recipes")
    for path in (work / "recipes/charts/app").rglob("*"):
        if path.is_file():
            path.unlink()
    (work / "recipes/charts/app/templates").rmdir()
    (work / "recipes/charts/app/crds").rmdir()
    (work / "recipes/charts/app").rmdir()
    (work / "recipes/charts/app-1.0.0.tgz").write_bytes(build_archive([
        Member(name="app/Chart.yaml", data=b"apiVersion: v2\nname: app\nversion: 1.0.0\n"),
        Member(name="app/templates/../../../../etc/cron.d/x", data=b"* * * * * root sh\n"),
    ]))
    factories.write_files(work, {"lockfiles/eks.lock.json": "{\"previous\": true}\n"})
    proc = subprocess.run([sys.executable, "-m", "pipeline", "lock", "--no-resolve", "--catalog", "recipes",
                           "--lockdir", "lockfiles", "--cache", ".cache"], cwd=work, capture_output=True, text=True,
                          timeout=60, check=False,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: registry.yaml:9: recipe 'eks': component 'app': chart archive from "
                                  "./charts/app-1.0.0.tgz: member "
                                  "'app/templates/../../../../etc/cron.d/x'"), proc.stderr
    assert "Traceback" not in proc.stderr
    assert (work / "lockfiles/eks.lock.json").read_bytes() == b"{\"previous\": true}\n"


def test_describe_names_the_directory_or_the_archive(tmp_path: Path) -> None:
    _chart(tmp_path / "charts")
    (tmp_path / "charts/other-2.0.0.tgz").write_bytes(b"")
    source = PathChartSource(tmp_path)
    assert source.describe(ChartRef(name="app", version="1.0.0", repository="./charts")) == "./charts/app/"
    assert source.describe(ChartRef(name="other", version="2.0.0", repository="./charts/")) == \
        "./charts/other-2.0.0.tgz"
