"""Mirrors are environment, not input: an environment file (``--config``, ``$PIPELINE_CONFIG``, the
user file) is merged over the catalog's ``pipeline.yaml``, and neither its mirrors nor the catalog's
make a lock stale. A lock made against upstream reproduces behind a mirror, with upstream gone.

Real parts: chart repositories are directories served over HTTP on 127.0.0.1 by the test
(tests/servers.py); the pipeline runs in-process through its CLI.
"""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest

from pipeline.__main__ import main
from pipeline.errors import RecipeError
from pipeline.recipes import environment_file, load_environment
from pipeline.stages import Workspace, fresh_locks
from tests import factories
from tests.servers import HttpRepo, start_http_repo, write_index

pytestmark = pytest.mark.http_repo

CONFIG_HEAD = "apiVersion: pipeline.recipes.dev/v1\nkind: PipelineConfig\n"


def _publish(directory: Path) -> None:
    archive = directory / "app-1.0.0.tgz"
    directory.mkdir(parents=True, exist_ok=True)
    archive.write_bytes(factories.chart_archive("app", "1.0.0"))
    write_index(directory, [archive])


def _catalog(root: Path, upstream: str, *, pipeline_yaml: str | None = None) -> Path:
    extra: dict[str, str] = {}
    if pipeline_yaml is not None:
        extra["pipeline.yaml"] = pipeline_yaml
    return factories.catalog(root / "catalog", extra=extra, repository=upstream)


def _mirror_config(path: Path, upstream: str, mirror: str) -> Path:
    path.write_text(CONFIG_HEAD + f"spec:\n  mirrors:\n    {upstream}: {mirror}\n")
    return path


def _args(command: str, root: Path, *extra: str, cache: str = "cache", lockdir: str = "locks") -> list[str]:
    out = [command, "--catalog", str(root / "catalog"), "--lockdir", str(root / lockdir),
           "--cache", str(root / cache), "--workers", "1", *extra]
    return [*out, "--no-resolve"] if command == "lock" else out


def _without_served_by(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _without_served_by(v) for k, v in data.items() if k not in {"servedBy", "digest"}}
    if isinstance(data, list):
        return [_without_served_by(v) for v in data]
    return data


def _upstream_gone(tmp_path: Path, upstream: HttpRepo) -> HttpRepo:
    """Stop upstream; serve a copy of its charts on another port (the mirror)."""
    shutil.copytree(upstream.directory, tmp_path / "mirror-dir")
    upstream.stop()
    return start_http_repo(tmp_path / "mirror-dir")


@pytest.mark.parametrize("how", ["--config", "PIPELINE_CONFIG"])
def test_a_lock_made_against_upstream_reproduces_behind_a_mirror_with_upstream_gone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], how: str) -> None:
    _publish(tmp_path / "upstream-dir")
    upstream = start_http_repo(tmp_path / "upstream-dir")
    _catalog(tmp_path, upstream.url)
    assert main(_args("lock", tmp_path)) == 0
    made = json.loads((tmp_path / "locks/eks.lock.json").read_text())
    assert made["components"]["app"]["chart"]["servedBy"] == upstream.url
    upstream_url = upstream.url
    with _upstream_gone(tmp_path, upstream) as mirror:
        config = _mirror_config(tmp_path / "env.yaml", upstream_url, mirror.url)
        flag = ["--config", str(config)] if how == "--config" else []
        if how == "PIPELINE_CONFIG":
            monkeypatch.setenv("PIPELINE_CONFIG", str(config))
        capsys.readouterr()
        # An empty cache: the chart can only come from the mirror.
        assert main(_args("reproduce", tmp_path, *flag, cache="cache-2")) == 0, capsys.readouterr().out
        assert "/app-1.0.0.tgz" in mirror.requests
        # Locked again behind the mirror: the same lock, byte for byte, apart from servedBy.
        assert main(_args("lock", tmp_path, *flag, cache="cache-3", lockdir="locks-2")) == 0
    again = json.loads((tmp_path / "locks-2/eks.lock.json").read_text())
    assert again["components"]["app"]["chart"]["servedBy"] == mirror.url
    assert _without_served_by(again) == _without_served_by(made)


def test_a_mirror_port_change_leaves_every_lock_fresh(tmp_path: Path) -> None:
    _publish(tmp_path / "upstream-dir")
    with start_http_repo(tmp_path / "upstream-dir") as mirror:
        upstream = "https://charts.example.com/stable"
        config = CONFIG_HEAD + f'spec:\n  kubeVersion: "1.33.0"\n  mirrors:\n    {upstream}: {mirror.url}\n'
        catalog = _catalog(tmp_path, upstream, pipeline_yaml=config)
        assert main(_args("lock", tmp_path)) == 0
    ws = Workspace(catalog=catalog, lockdir=tmp_path / "locks", cache=tmp_path / "cache")
    moved = config.replace(mirror.url, "http://127.0.0.1:1")
    (catalog / "pipeline.yaml").write_text(moved)
    assert [lock.name for lock in fresh_locks(ws)] == ["eks"]
    env = _mirror_config(tmp_path / "env.yaml", upstream, "http://127.0.0.1:2/elsewhere")
    assert [lock.name for lock in fresh_locks(Workspace(catalog=catalog, lockdir=ws.lockdir, cache=ws.cache,
                                                        environment=env))] == ["eks"]
    # What changes the render still makes the lock stale, naming pipeline.yaml and the key.
    (catalog / "pipeline.yaml").write_text(moved.replace('"1.33.0"', '"1.34.0"'))
    with pytest.raises(Exception, match=r"input pipeline\.yaml \(spec\.kubeVersion\) changed since the lock"):
        fresh_locks(ws)


def test_the_environment_file_wins_over_the_catalog_and_merges_with_it(tmp_path: Path) -> None:
    catalog_yaml = CONFIG_HEAD + textwrap.dedent("""\
        spec:
          mirrors:
            https://a.example.com: http://127.0.0.1:1/a
            https://b.example.com: http://127.0.0.1:1/b
          registries:
            insecure: [registry.internal:5000]
            mirrors:
              nvcr.io: [http://127.0.0.1:1/nvcr]
        """)
    catalog = _catalog(tmp_path, "https://a.example.com", pipeline_yaml=catalog_yaml)
    env = tmp_path / "env.yaml"
    env.write_text(CONFIG_HEAD + textwrap.dedent("""\
        spec:
          mirrors:
            https://a.example.com: http://127.0.0.1:9/a
          registries:
            dockerConfig: /etc/ci/config.json
            mirrors:
              docker.io: [http://127.0.0.1:9/hub]
        """))
    from pipeline.stages import load_workspace_catalog
    config = load_workspace_catalog(catalog, env).config
    assert dict(config.mirrors) == {"https://a.example.com": "http://127.0.0.1:9/a",
                                    "https://b.example.com": "http://127.0.0.1:1/b"}
    assert sorted(config.registries.mirrors) == ["docker.io", "nvcr.io"]
    assert config.registries.insecure == frozenset({"registry.internal:5000"})
    assert config.registries.docker_config == "/etc/ci/config.json"


def test_which_environment_file_is_read(tmp_path: Path) -> None:
    flag, named, user = tmp_path / "flag.yaml", tmp_path / "named.yaml", tmp_path / "xdg/recipe-pipeline/config.yaml"
    for path in (flag, named, user):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(CONFIG_HEAD)
    env = {"PIPELINE_CONFIG": str(named), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    assert environment_file(str(flag), env) == flag
    assert environment_file(None, env) == named
    assert environment_file(None, {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}) == user
    assert environment_file(None, {"HOME": str(tmp_path / "home")}) is None
    assert environment_file(None, {**env, "PIPELINE_CONFIG": ""}) is None  # empty: the user file is off


@pytest.mark.parametrize(("text", "flag", "message", "line"), [
    (None, "missing.yaml", "environment file 'missing.yaml' (from --config) not found", None),
    (CONFIG_HEAD + 'spec:\n  kubeVersion: "1.34.0"\n', None,
     "spec.kubeVersion cannot be set in an environment file", 4),
    (CONFIG_HEAD + "spec:\n  limits: {}\n", None, "spec.limits cannot be set in an environment file", 4),
    (CONFIG_HEAD + "spec:\n  mirors: {}\n", None,
     "unknown key 'mirors' in the environment file's spec (did you mean 'mirrors'?)", 4),
    (CONFIG_HEAD + "spec:\n  mirrors:\n    https://a.example.com: ftp://x\n", None,
     "mirrors: mirror 'ftp://x' is not an http(s):// or oci:// URL", 5),
])
def test_environment_file_errors_name_the_file_and_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        text: str | None, flag: str | None, message: str,
                                                        line: int | None) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "env.yaml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(RecipeError) as caught:
        load_environment(environment_file(flag or str(path), {}) or path)
    assert message in caught.value.message
    assert caught.value.line == line


def test_the_cli_reports_a_bad_environment_file_with_exit_2(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    _catalog(tmp_path, "https://charts.example.com")
    env = tmp_path / "env.yaml"
    env.write_text(CONFIG_HEAD + "spec:\n  recipes: []\n")
    assert main(["recipes", "--catalog", str(tmp_path / "catalog"), "--config", str(env)]) == 2
    err = capsys.readouterr().err
    assert f"error: {env}:4: spec.recipes cannot be set in an environment file" in err
    assert "hint: recipes changes what is rendered or accepted: set it in the catalog's pipeline.yaml" in err
