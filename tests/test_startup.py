"""Start-up cost: commands that do not use the network never import ``httpx``.

``httpx`` (with the CLI it imports: click, rich, pygments) is a good part of a command's fixed
start-up time. Only the registry client, the chart sources and the transport need it, so
:mod:`pipeline.registry` and :mod:`pipeline.charts` import their names on first use and the
network's users import them where they use them. Each check runs a fresh interpreter on the
checkout, since this process has long imported everything.
"""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import pipeline.charts
import pipeline.registry

ROOT = Path(__file__).resolve().parents[1]


def _python(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -X importtime <args>`` from the checkout's root (so that it imports this ``pipeline``)."""
    proc = subprocess.run([sys.executable, "-X", "importtime", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def _imported(proc: subprocess.CompletedProcess[str]) -> set[str]:
    """The modules a ``-X importtime`` run imported (its stderr: ``import time: self | total | name``)."""
    return {line.rpartition("|")[2].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}


def _network_modules(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.partition(".")[0] in {"httpx", "httpcore"})


def test_the_cli_and_the_stages_import_without_httpx() -> None:
    proc = _python("-c", "import sys, pipeline.__main__, pipeline.stages; print(pipeline.__file__); "
                         "print(sorted(m for m in sys.modules if m.split('.')[0] in ('httpx', 'httpcore')))")
    where, network = proc.stdout.splitlines()
    assert Path(where).is_relative_to(ROOT / "pipeline")
    assert network == "[]"
    assert "pipeline.stages" in _imported(proc)  # the check itself sees what was imported


@pytest.mark.parametrize("args", [["--help"], ["recipes", "--catalog", "recipes"], ["charts", "--catalog", "recipes"]],
                         ids=["help", "recipes", "charts"])
def test_commands_without_network_do_not_import_httpx(args: list[str]) -> None:
    modules = _imported(_python("-m", "pipeline", *args))
    assert "pipeline.stages" in modules
    assert _network_modules(modules) == []


@pytest.mark.slow
def test_lock_without_resolving_never_imports_httpx(tmp_path: Path) -> None:
    """The catalog's charts are in-tree and ``--no-resolve`` asks no registry: no HTTP client, cold or warm."""
    catalog = tmp_path / "recipes"
    shutil.copytree(ROOT / "recipes", catalog)
    lock = ["-m", "pipeline", "lock", "--no-resolve", "--catalog", str(catalog), "--lockdir", str(tmp_path / "locks"),
            "--cache", str(tmp_path / "cache"), "--workers", "2"]
    cold = _python(*lock)
    warm = _python(*lock)
    assert "(0 from the lock cache)" in cold.stdout
    assert "(3 from the lock cache)" in warm.stdout
    for proc in (cold, warm):
        modules = _imported(proc)
        assert "pipeline.stages" in modules
        assert _network_modules(modules) == []


@pytest.mark.parametrize("package", [pipeline.registry, pipeline.charts], ids=lambda p: p.__name__)
def test_every_exported_name_resolves_to_its_module(package: ModuleType) -> None:
    sources: dict[str, str] = package._SOURCES
    assert sorted(sources) == sorted(package.__all__)
    assert set(package.__all__) <= set(dir(package))
    for name in package.__all__:
        assert getattr(package, name) is getattr(importlib.import_module(sources[name], package.__name__), name)
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        package.nothing  # noqa: B018
