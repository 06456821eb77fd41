"""The layering of DESIGN.md holds, and each move that made it hold is guarded by a contract.

``lint-imports`` (the contracts in ``pyproject.toml``) runs on the checkout, then on temporary
copies of the package into which one back-edge is injected at a time: every edge the layering
removed (compose → resolve, discover → fetch, fetch/resolve → discover, drift → bom, the vocabulary
importing the pipeline, the product importing the lab, …) must make it fail.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

#: (file that gets the import, the import, the contract that must break): one per removed edge.
BACK_EDGES = [
    pytest.param("pipeline/recipes/config.py", "from ..registry import RegistryClient", "stages",
                 id="compose-imports-resolve"),
    pytest.param("pipeline/recipes/load.py", "from ..registry_config import RegistryConfig\n"
                 "from ..registry.client import RegistryClient", "stages", id="compose-imports-registry-client"),
    pytest.param("pipeline/images/annotation.py", "from ..charts.archive import read_archive", "stages",
                 id="discover-reads-archives"),
    pytest.param("pipeline/charts/oci.py", "from ..images import discover", "stages",
                 id="fetch-imports-discover"),
    pytest.param("pipeline/registry/client.py", "from ..images import discover", "stages",
                 id="resolve-imports-discover"),
    pytest.param("pipeline/registry/resolver.py", "from ..recipes.load import check_header", "stages",
                 id="resolve-imports-compose"),
    pytest.param("pipeline/drift/check.py", "from ..bom import locked_recipes", "layers",
                 id="drift-imports-bom"),
    pytest.param("pipeline/images/discover.py", "from ..lock import Lockfile", "layers",
                 id="stage-imports-lock"),
    pytest.param("pipeline/registry_config.py", "from .registry.auth import Authenticator", "layers",
                 id="support-imports-stage"),
    pytest.param("pipeline/vocabulary/reference.py", "from ..errors import PipelineError", "layers",
                 id="vocabulary-imports-errors"),
    pytest.param("pipeline/vocabulary/digest.py", "from .._yaml import load_file", "layers",
                 id="vocabulary-imports-yaml"),
    pytest.param("pipeline/stages.py", "import lab.images", "lab", id="pipeline-imports-lab"),
]


_LAYERS_NAME = ("pipeline layers point down: cli > orchestration > publishers > lock > stages > support > "
                "vocabulary")


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root, capture_output=True, text=True,
                          timeout=300, check=False)


def _copy(tmp_path: Path) -> Path:
    for name in ("pipeline", "lab"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _inject(path: Path, statement: str) -> None:
    """Add ``statement`` after the module's last top-level import (after its docstring and __future__)."""
    source = path.read_text()
    tree = ast.parse(source)
    last = max(node.end_lineno or node.lineno for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom))
    lines = source.splitlines(keepends=True)
    path.write_text("".join([*lines[:last], statement + "\n", *lines[last:]]))


def test_the_checkout_keeps_every_contract() -> None:
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(("file", "statement", "contract"), BACK_EDGES)
def test_a_back_edge_breaks_its_contract(tmp_path: Path, file: str, statement: str, contract: str) -> None:
    root = _copy(tmp_path)
    _inject(root / file, statement)
    result = _lint_imports(root)
    assert result.returncode == 1, result.stdout + result.stderr
    names = {"layers": _LAYERS_NAME, "stages": "sibling stages do not import each other",
             "lab": "the product never imports the lab"}
    assert f"{names[contract]} BROKEN" in " ".join(result.stdout.split()), result.stdout


def test_a_module_outside_every_layer_breaks_the_layers(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    (root / "pipeline" / "unplaced.py").write_text('"""A module nobody placed in a layer."""\n')
    result = _lint_imports(root)
    assert result.returncode == 1
    assert "unplaced" in result.stdout


def test_no_module_reaches_into_the_registry_clients_private_methods() -> None:
    """provenance/registry.py used ``client._call_url``; the client has a public ``call_url`` now."""
    offenders = []
    for path in sorted((ROOT / "pipeline").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                    and isinstance(node.value, ast.Attribute) and node.value.attr.endswith("client")):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} .{node.value.attr}.{node.attr}")
    assert offenders == []
