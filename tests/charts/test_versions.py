"""Helm's version rules for chart pins (pipeline/charts/versions.py), table-driven.

The expectations were read from Helm v4.2.3 (``IndexFile.Get``, ``ValidateReference``) and
Masterminds semver v3.5.0; ``test_helm_binary_agrees_on_an_http_repository`` checks the HTTP rules
against the pinned ``helm`` binary itself (``helm pull --version`` from a loopback repository).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.charts import OciChartSource
from pipeline.charts.versions import match_index_version, nearest_versions, oci_tag, parse_semver
from pipeline.errors import ChartVersionError
from pipeline.recipes.model import ChartRef
from tests import factories
from tests.servers import HttpRepo, Registry, push_oci_chart, write_index
from tests.tools import run_tool


@pytest.mark.parametrize(("pin", "offered", "served"), [
    ("1.2.3", ["1.2.3", "v1.2.3"], "1.2.3"),            # exact string first
    ("v1.2.3", ["1.2.3", "v1.2.3"], "v1.2.3"),
    ("v1.2.3", ["1.2.3"], "1.2.3"),                     # a leading v ignored on the pin ...
    ("1.2.3", ["v1.2.3"], "v1.2.3"),                    # ... and on the index
    ("1.2.3", ["1.2.3+up1"], "1.2.3+up1"),              # build metadata ignored
    ("1.2.3+a", ["1.2.3+b"], "1.2.3+b"),
    ("1.2.3", ["1.2.3-rc.1"], None),                    # a pre-release is another version
    ("1.2.3-rc.1", ["1.2.3-rc.1+b", "1.2.3"], "1.2.3-rc.1+b"),
    ("1.2.3", ["01.2.3"], "01.2.3"),                    # Helm coerces leading zeros
    ("1.2.3", ["1.2"], None),
    ("1.2.0", ["1.2"], "1.2"),                          # a partial index version is x.y.0
    ("1.2.3", ["1.2.30", "1.2.4"], None),
    ("1.2", ["1.2.9"], None),                           # a range: only by exact string (the gate refuses it)
    ("^1.2.3", ["1.2.9"], None),
    ("1.2.3", ["1.2.3+b", "1.2.3+a"], "1.2.3+b"),      # ties keep the index order
])
def test_match_index_version(pin: str, offered: list[str], served: str | None) -> None:
    assert match_index_version(pin, offered) == served


@pytest.mark.parametrize(("pin", "tag"), [("1.2.3", "1.2.3"), ("v1.2.3", "v1.2.3"), ("1.2.3+up.1", "1.2.3_up.1")])
def test_oci_tag_is_the_pin_verbatim(pin: str, tag: str) -> None:
    assert oci_tag(pin) == tag


def test_nearest_versions() -> None:
    offered = ["0.9.0", "1.0.0", "1.1.0", "1.10.0", "2.0.0", "v3.0.0", "3.1.0-rc.1", "junk"]
    assert nearest_versions("1.5.0", offered) == ["1.0.0", "1.1.0", "1.10.0", "2.0.0", "v3.0.0"]
    assert nearest_versions("0.1.0", offered, count=3) == ["0.9.0", "1.0.0", "1.1.0"]
    assert nearest_versions("9.0.0", offered, count=2) == ["v3.0.0", "3.1.0-rc.1"]
    assert nearest_versions("nonsense", ["1.0.0"]) == ["1.0.0"]


@pytest.mark.parametrize(("text", "ok"), [
    ("v1.2.3", True), ("1", True), ("1.2.3-rc.01", False), ("1.2.3-", False), ("1.2.3+", False),
    ("V1.2.3", False), ("1.2.3.4", False), ("x" * 257, False),
])
def test_parse_semver(text: str, ok: bool) -> None:
    assert (parse_semver(text) is not None) is ok


# ---- the real helm binary agrees ----------------------------------------------------------------

@pytest.mark.http_repo
@pytest.mark.tools
@pytest.mark.parametrize(("published", "pin", "served"), [
    (["1.2.3", "1.2.4"], "v1.2.3", "1.2.3"),
    (["v1.2.3", "1.2.4"], "1.2.3", "v1.2.3"),
    (["1.2.3+up1", "1.2.4"], "1.2.3", "1.2.3+up1"),
    (["1.2.3-rc.1", "1.2.4"], "1.2.3", None),
    (["1.2.4"], "1.2.3", None),
])
def test_helm_binary_agrees_on_an_http_repository(http_repo: HttpRepo, tmp_path: Path, published: list[str],
                                                  pin: str, served: str | None) -> None:
    archives = []
    for version in published:
        path = http_repo.directory / f"app-{version}.tgz"
        path.write_bytes(factories.chart_archive("app", version))
        archives.append(path)
    write_index(http_repo.directory, archives)
    assert match_index_version(pin, published) == served
    out = tmp_path / "out"
    out.mkdir()
    home = tmp_path / "home"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "HELM_CACHE_HOME": str(home / "cache"),
           "HELM_CONFIG_HOME": str(home / "config"), "HELM_DATA_HOME": str(home / "data")}
    proc = run_tool("helm", ["pull", "app", "--repo", http_repo.url, "--version", pin, "--destination", str(out)],
                    env=env, check=False)
    pulled = sorted(p.name for p in out.iterdir())
    if served is None:
        assert proc.returncode != 0, pulled
        assert pulled == []
    else:
        assert proc.returncode == 0, proc.stderr.decode()
        assert pulled == [f"app-{served}.tgz"]


@pytest.mark.registry
@pytest.mark.tools
@pytest.mark.parametrize(("pushed", "pin", "served"), [
    ("1.2.3", "1.2.3", "1.2.3"),
    ("1.2.3+up1", "1.2.3+up1", "1.2.3+up1"),     # the tag is 1.2.3_up1
    ("1.2.3", "v1.2.3", None),                   # OCI: the pin is the tag, verbatim
    ("v1.2.3", "1.2.3", None),
])
def test_helm_binary_agrees_on_an_oci_registry(registry: Registry, tmp_path: Path, pushed: str, pin: str,
                                               served: str | None) -> None:
    push_oci_chart(registry, "charts", "app", pushed, factories.chart_archive("app", pushed))
    ref = ChartRef(repository=registry.oci("charts"), name="app", version=pin)
    with OciChartSource() as source:
        if served is None:
            with pytest.raises(ChartVersionError) as caught:
                source.fetch(ref)
            assert caught.value.diagnostics() == (
                f"chart 'app' version {pin!r} ({registry.host}/charts/app:{pin}): the registry has no tag {pin!r} "
                f"(it has 1 versions; nearest: {pushed!r})\n"
                f"hint: Helm uses a pinned version as the OCI tag verbatim, so {pin!r} does not find {pushed!r}: "
                f"pin {pushed!r}")
        else:
            assert source.served_version(ref) == served
            assert source.fetch(ref) == factories.chart_archive("app", pushed)
    out = tmp_path / "out"
    out.mkdir()
    home = tmp_path / "home"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "HELM_CACHE_HOME": str(home / "cache"),
           "HELM_CONFIG_HOME": str(home / "config"), "HELM_DATA_HOME": str(home / "data")}
    proc = run_tool("helm", ["pull", f"{registry.oci('charts')}/app", "--version", pin, "--plain-http",
                             "--destination", str(out)], env=env, check=False)
    pulled = sorted(p.name for p in out.iterdir())
    if served is None:
        assert proc.returncode != 0, pulled
        assert b"not found" in proc.stderr, proc.stderr
    else:
        assert proc.returncode == 0, proc.stderr.decode()
        assert pulled == [f"app-{served}.tgz"]
