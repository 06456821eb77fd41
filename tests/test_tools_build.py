"""tools/go/build.py and tools/go/tools.json: the pinned Go tool set is complete and well-formed.

Building takes minutes (``nox -s tools``); these tests check what the script reads and refuses, and
that every tool's digest and Go version are recorded (the tests in ``tests/tools.py`` rely on them).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tools" / "go" / "build.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("tools_go_build", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


build = _script()


def test_every_pinned_tool_is_recorded() -> None:
    data, tools = build.load()
    assert [t.name for t in tools] == ["cosign", "crane", "helm", "kyverno"]
    assert data["toolchain"] == "local"
    by_name = {t.name: t for t in tools}
    assert by_name["helm"].version == "v4.2.3", "the Helm version the pinned engine embeds"
    assert by_name["kyverno"].build == "module-source", "kyverno's go.mod has replace directives"
    for tool in tools:
        assert tool.sha256 is not None and tool.sha256.startswith("sha256:") and len(tool.sha256) == 71, tool
        assert tool.go is not None and tool.go.startswith("go1."), tool


def test_tools_json_is_canonical() -> None:
    text = build.TOOLS_JSON.read_text(encoding="utf-8")
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"


BASE = {"module": "example.com/m", "package": "example.com/m/cmd/x", "version": "v1.0.0", "build": "install"}


@pytest.mark.parametrize(("change", "message"), [
    ({"version": "latest"}, "tools.json: tool 'x': version 'latest' is not an exact v-version"),
    ({"version": "1.0.0"}, "tools.json: tool 'x': version '1.0.0' is not an exact v-version"),
    ({"build": "make"}, "tools.json: tool 'x': build 'make' is not one of ('install', 'module-source')"),
    ({"package": "other.com/cmd/x"}, "tools.json: tool 'x': package 'other.com/cmd/x' is not in 'example.com/m'"),
    ({"module": ""}, "tools.json: tool 'x': 'module' must be a non-empty string"),
])
def test_malformed_entries_are_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(build.ToolError) as caught:
        build.Tool.from_json("x", {**BASE, **change})
    assert str(caught.value) == message


def test_the_stamp_key_ignores_recorded_outputs() -> None:
    one = build.Tool.from_json("x", {**BASE, "sha256": "sha256:" + "0" * 64, "go": "go1.26.8"})
    two = build.Tool.from_json("x", BASE)
    assert one.key("local") == two.key("local") != two.key("go1.27.3")


def test_the_build_environment_is_explicit(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GOFLAGS", "-race")
    monkeypatch.setenv("CGO_ENABLED", "1")
    monkeypatch.setenv("GOAMD64", "v3")
    env = build._env(tmp_path, "local")
    assert env["GOFLAGS"] == "-trimpath -buildvcs=false"
    assert env["CGO_ENABLED"] == "0"
    assert "GOAMD64" not in env
    assert (env["GOBIN"], env["GOTOOLCHAIN"]) == (str(tmp_path), "local")


def test_tools_dir_honours_the_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PIPELINE_TOOLS_DIR", str(tmp_path))
    assert build.tools_dir() == tmp_path
    monkeypatch.delenv("PIPELINE_TOOLS_DIR")
    assert build.tools_dir() == ROOT / ".cache" / "tools" / "bin"
