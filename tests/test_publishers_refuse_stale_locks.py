"""Every publisher reads locks through the one verified reader: a stale lock stops each of them.

Regression test for issue 10: after a values file changed, ``bom`` and ``mirror list`` refused the
stale locks but ``policies`` and ``provenance`` still published from them. Each command runs as a
user runs it (``python -m pipeline …``) on a copy of our catalog, its locks and its published files.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VALUES = "components/accel-operator/values.yaml"


@pytest.fixture(scope="module")
def stale_checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the catalog, its locks and everything published from them, with one values file edited."""
    root = tmp_path_factory.mktemp("checkout")
    for name in ("recipes", "lockfiles", "bom", "docs", "policies"):
        shutil.copytree(ROOT / name, root / name)
    with (root / "recipes" / VALUES).open("a") as handle:
        handle.write("\nappendedByTheTest: true\n")
    return root


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("command", [
    ["bom"],
    ["mirror", "list"],
    ["mirror", "list", "--hosts-toml", "mirror.example.com:5000", "--out", "hosts.d"],
    ["policies"],
    ["provenance"],
], ids=lambda c: " ".join(c[:2]))
def test_a_publisher_handed_a_stale_lock_exits_1_names_the_input_and_writes_nothing(
        stale_checkout: Path, command: list[str]) -> None:
    before = _tree(stale_checkout)
    done = subprocess.run([sys.executable, "-m", "pipeline", *command], cwd=stale_checkout, capture_output=True,
                          text=True, timeout=120, check=False, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    assert done.returncode == 1, done.stderr
    assert f"input {VALUES} changed since the lock was made" in done.stderr
    assert "hint: run 'nox -s lock'" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert _tree(stale_checkout) == before
