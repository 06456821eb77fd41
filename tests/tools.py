"""The pinned Go tools (``tools/go/tools.json``) for tests: a path, checked against its recorded sha256.

:func:`tool` returns the binary that ``nox -s tools`` built into ``$PIPELINE_TOOLS_DIR`` (default
``.cache/tools/bin``) after checking its sha256 against tools.json. A missing, unrecorded or
mismatching binary skips the test with the reason and the fix, except under ``CI=true``, where it
fails: CI builds the tools (``.ci/run``) and must never skip a test that needs one.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from tests.needs import missing

ROOT = Path(__file__).resolve().parent.parent
TOOLS_JSON = ROOT / "tools" / "go" / "tools.json"

__all__ = ["TOOLS_JSON", "run_tool", "tool", "tools_dir"]


def tools_dir() -> Path:
    """``$PIPELINE_TOOLS_DIR``, or ``.cache/tools/bin`` of this checkout."""
    env = os.environ.get("PIPELINE_TOOLS_DIR")
    return Path(env).resolve() if env else ROOT / ".cache" / "tools" / "bin"


@functools.cache
def _checked(name: str) -> tuple[Path | None, str]:
    """The binary of ``name`` when it matches tools.json, else ``None`` and why."""
    entry = json.loads(TOOLS_JSON.read_text(encoding="utf-8"))["tools"].get(name)
    if entry is None:
        return None, f"tool {name!r} is not declared in {TOOLS_JSON.relative_to(ROOT)}"
    binary = tools_dir() / name
    if not binary.is_file():
        return None, f"the pinned {name} {entry['version']} is not built at {binary} (run 'nox -s tools')"
    recorded = entry.get("sha256")
    if not recorded:
        return None, (f"{TOOLS_JSON.relative_to(ROOT)} records no sha256 for {name} "
                      "(run 'python tools/go/build.py --record' and commit)")
    got = "sha256:" + hashlib.sha256(binary.read_bytes()).hexdigest()
    if got != recorded:
        return None, (f"{binary} is {got}, not the recorded {recorded} of {name} {entry['version']} "
                      "(run 'nox -s tools' to rebuild it)")
    return binary, ""


def tool(name: str) -> Path:
    """The checked binary of the pinned tool ``name``; skips (fails under ``CI=true``) when unusable."""
    binary, reason = _checked(name)
    if binary is None:
        missing(reason, ci="CI must build the tools first")
    return binary


def run_tool(name: str, args: Sequence[str], *, env: dict[str, str] | None = None,
             check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    """Run the pinned ``name`` with ``args`` in a minimal environment (fresh ``HOME`` unless given)."""
    argv = [str(tool(name)), *args]
    proc = subprocess.run(argv, env=env if env is not None else {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"},
                          capture_output=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip()[-2000:]
        raise AssertionError(f"{' '.join(argv)} exited {proc.returncode}: {tail}")
    return proc
