"""The air-gap world the bundle tests share: two real registries, our catalog locked against the first.

``source``: a ``docker-registry`` on 127.0.0.1 filled with our catalog's images
(:func:`lab.registry.fill_registry`), two of them signed with the pinned ``cosign`` (one in cosign
v3's bundle format, found through the referrers tag schema; one in the legacy ``.sig`` tag
format), and a copy of ``recipes/`` whose ``pipeline.yaml`` sends ``localhost:5001`` to it; the
catalog is locked against it. ``target``: an empty ``docker-registry``, the far side of the gap.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lab.registry import fill_registry
from pipeline.__main__ import main
from tests.servers import Registry, start_registry
from tests.tools import tool

ROOT = Path(__file__).resolve().parents[2]
LAB = "localhost:5001"
#: signed at test time: (repository, cosign flags)
SIGNED = {
    "recipe-lab/accel-driver": ["--new-bundle-format=true"],
    "recipe-lab/accel-validator": ["--new-bundle-format=false"],
}


@dataclass(kw_only=True)
class World:
    root: Path
    source: Registry
    target: Registry
    catalog: Path
    lockdir: Path
    cache: Path
    key_dir: Path
    signed: dict[str, str]  # repository → signed digest

    def args(self, *extra: str, catalog: Path | None = None, lockdir: Path | None = None) -> list[str]:
        return ["--catalog", str(catalog or self.catalog), "--lockdir", str(lockdir or self.lockdir),
                "--cache", str(self.cache), *extra]

    def stop(self) -> None:
        self.source.stop()
        self.target.stop()


def catalog_with_mirrors(root: Path, spec: dict[str, Any]) -> Path:
    """A copy of ``recipes/`` whose ``pipeline.yaml`` ``spec`` is extended with ``spec``."""
    catalog = root / "recipes"
    shutil.copytree(ROOT / "recipes", catalog)
    config = yaml.safe_load((catalog / "pipeline.yaml").read_text())
    for key, value in spec.items():
        config["spec"][key] = value
    (catalog / "pipeline.yaml").write_text(yaml.safe_dump(config, sort_keys=True))
    return catalog


def lock_images(lockdir: Path) -> dict[str, dict[str, Any]]:
    """recipe → component → (images without servedBy, chart): what must survive the gap."""
    out: dict[str, Any] = {}
    for path in sorted(lockdir.glob("*.lock.json")):
        body = json.loads(path.read_text())
        out[path.name] = {
            name: {"chart": c["chart"], "render": c["render"],
                   "images": [{k: v for k, v in i.items() if k != "servedBy"} for i in c["images"]]}
            for name, c in body["components"].items()}
    return out


def served_by(lockdir: Path) -> set[str]:
    return {i.get("servedBy") for p in lockdir.glob("*.lock.json")
            for c in json.loads(p.read_text())["components"].values() for i in c["images"]}


def cosign(args: list[str], *, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(cwd), "COSIGN_PASSWORD": "test-only-password",
           "TUF_ROOT": str(cwd / "tuf")}
    return subprocess.run([str(tool("cosign")), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def make_world(root: Path) -> World:
    tool("cosign")  # skip (fail under CI) before starting anything
    source = start_registry(root / "source")
    target = start_registry(root / "target")
    try:
        fill_registry(ROOT / "recipes", source.url)
        catalog = catalog_with_mirrors(root / "a", {"registries": {"mirrors": {
            LAB: {"endpoints": [f"http://{source.host}"], "skipUpstream": True}}}})
        world = World(root=root, source=source, target=target, catalog=catalog, lockdir=root / "a" / "locks",
                      cache=root / "cache", key_dir=root / "keys", signed={})
        assert main(["lock", *world.args("--workers", "1")]) == 0
        world.key_dir.mkdir()
        made = cosign(["generate-key-pair"], cwd=world.key_dir)
        assert made.returncode == 0, made.stderr
        locked = {i["ref"]: i["digest"] for path in sorted(world.lockdir.glob("*.lock.json"))
                  for c in json.loads(path.read_text())["components"].values() for i in c["images"]}
        for repository, flags in SIGNED.items():
            digest = next(d for ref, d in sorted(locked.items()) if ref.startswith(f"{LAB}/{repository}"))
            signed = cosign(["sign", "--key", "cosign.key", "--tlog-upload=false", "--use-signing-config=false",
                             "--allow-insecure-registry", "-y", *flags, f"{source.host}/{repository}@{digest}"],
                            cwd=world.key_dir)
            assert signed.returncode == 0, signed.stderr
            world.signed[repository] = digest
        return world
    except BaseException:
        source.stop()
        target.stop()
        raise
