"""Every command of the three guides (docs/air-gap.md, docs/security-review.md, docs/compliance.md) runs.

The fenced ``sh`` blocks are parsed; each command must be one this test knows, and each is run with
bash exactly as written: the air-gap guide's in order against the two registries of the air-gap
world (``$MIRROR`` = the far-side registry, ``$DIGEST`` = a signed image), the others in a clean copy
of the repository.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.bundle.world import LAB, ROOT, World
from tests.tools import tool, tools_dir

GUIDES = ("docs/air-gap.md", "docs/security-review.md", "docs/compliance.md")
_BLOCK = re.compile(r"^```sh\n(.*?)^```", re.MULTILINE | re.DOTALL)
AIR_GAP = [
    "python -m pipeline bundle export --out bundle.tar",
    "python -m pipeline bundle verify bundle.tar",
    'python -m pipeline bundle import bundle.tar --to "$MIRROR" --prefix airgap --hosts-dir hosts.d',
    "python -m pipeline lock",
    "python -m pipeline provenance --verify",
    'cosign verify --key cosign.pub --insecure-ignore-tlog --allow-insecure-registry '
    '"$MIRROR/airgap/localhost_5001/recipe-lab/accel-driver@$DIGEST"',
    "helm pull oci://$MIRROR/airgap/charts/local/accel-operator --version v1.4.2 --plain-http",
]
CLEAN_CHECKOUT = ["python -m pipeline reproduce", "python -m pipeline bom --check", "python -m pipeline qualify"]


def documented(guide: str) -> list[str]:
    """The commands of ``guide``'s ``sh`` blocks (comments and blank lines dropped, continuations joined)."""
    text = (ROOT / guide).read_text()
    out: list[str] = []
    for block in _BLOCK.findall(text):
        for raw in block.replace("\\\n", " ").splitlines():
            line = raw.split(" #", 1)[0].strip()
            if line and not line.startswith("#"):
                out.append(line)
    return out


def _run(command: str, *, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", command], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == 0, f"{command}\nstdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"
    return done


def _env(home: Path) -> dict[str, str]:
    return {"PATH": os.pathsep.join([str(Path(sys.executable).parent), str(tools_dir()), "/usr/bin", "/bin"]),
            "PYTHONPATH": str(ROOT), "HOME": str(home), "LANG": "C.UTF-8", "TUF_ROOT": str(home / "tuf")}


def test_every_documented_command_is_run_here() -> None:
    found = [c for guide in GUIDES for c in documented(guide)]
    assert documented("docs/air-gap.md") == AIR_GAP
    assert sorted(set(found)) == sorted(set(AIR_GAP) | set(CLEAN_CHECKOUT))


@pytest.mark.registry
@pytest.mark.tools
def test_the_air_gap_guide_runs(world: World, tmp_path: Path) -> None:
    tool("helm")
    checkout = tmp_path / "checkout"
    shutil.copytree(world.catalog, checkout / "recipes")
    shutil.copytree(world.lockdir, checkout / "lockfiles")
    for name in ("bom", "policies", "docs"):
        shutil.copytree(ROOT / name, checkout / name)
    shutil.copy(world.key_dir / "cosign.pub", checkout / "cosign.pub")
    env = _env(tmp_path) | {"MIRROR": world.target.host, "DIGEST": world.signed["recipe-lab/accel-driver"]}
    for command in AIR_GAP:
        done = _run(command, cwd=checkout, env=env)
        if command.startswith("python -m pipeline bundle import"):
            # the guide's manual step: merge the printed spec into recipes/pipeline.yaml
            printed = done.stdout.split("(merge into spec)\n", 1)[1].split("# ---", 1)[0]
            spec = yaml.safe_load(printed)["spec"]
            config = yaml.safe_load((checkout / "recipes/pipeline.yaml").read_text())
            config["spec"].update(spec)
            (checkout / "recipes/pipeline.yaml").write_text(yaml.safe_dump(config, sort_keys=True))
            assert (checkout / "hosts.d/localhost_5001_/hosts.toml").is_file()
    locked = (checkout / "lockfiles/h100-kind-inference.lock.json").read_text()
    assert f'"servedBy": "{world.target.host}"' in locked and LAB in locked
    assert any(checkout.glob("accel-operator-*.tgz"))


def test_the_review_and_compliance_commands_run_in_a_clean_checkout(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    for name in ("recipes", "lockfiles", "bom", "policies", "docs"):
        shutil.copytree(ROOT / name, checkout / name)
    env = _env(tmp_path)
    for command in CLEAN_CHECKOUT:
        _run(command, cwd=checkout, env=env)
