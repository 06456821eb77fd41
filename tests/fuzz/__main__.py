"""``python -m tests.fuzz [SECONDS]`` (``nox -s fuzz -- SECONDS``): every target under atheris.

Each target of :data:`tests.fuzz.targets.TARGETS` runs in its own process for its share of
``SECONDS`` (default 60), with the corpus in ``.cache/fuzz/<target>`` (kept between runs) and a
2 GiB RSS limit. Exit 0 when no target crashed; 1 (naming the targets and the saved inputs)
otherwise. A crash found this way becomes a regression test in ``tests/test_fuzz_properties.py``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.fuzz.targets import TARGETS

ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str]) -> int:
    total = float(argv[0]) if argv else 60.0
    share = max(1, int(total / len(TARGETS)))
    crashed: list[str] = []
    for name in TARGETS:
        corpus = ROOT / ".cache" / "fuzz" / name
        corpus.mkdir(parents=True, exist_ok=True)
        artifacts = ROOT / ".cache" / "fuzz" / "crashes"
        artifacts.mkdir(parents=True, exist_ok=True)
        print(f"fuzz {name}: {share} s", file=sys.stderr, flush=True)
        proc = subprocess.run(
            [sys.executable, "-m", "tests.fuzz.harness", name, f"-max_total_time={share}", "-rss_limit_mb=2048",
             "-timeout=10", "-max_len=4096", f"-artifact_prefix={artifacts}/{name}-", str(corpus)],
            cwd=ROOT, check=False, capture_output=True, text=True)
        summary = [line for line in proc.stderr.splitlines() if line.startswith(("#", "Done", "=="))][-2:]
        print("\n".join(f"  {line}" for line in summary), file=sys.stderr)
        if proc.returncode != 0:
            crashed.append(name)
            print(proc.stderr[-4000:], file=sys.stderr)
    if crashed:
        print(f"crashed: {', '.join(crashed)}; inputs under {ROOT / '.cache/fuzz/crashes'}", file=sys.stderr)
        return 1
    print(f"no crash in {len(TARGETS)} targets ({share} s each)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
