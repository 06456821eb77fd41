"""BOM-stage throughput on a generated catalog (default 2,000 images), against a plain-JSON baseline.

The catalog (``generate``): ``recipes`` sealed lockfiles whose components each pin five images
(an index with two platforms each), spread over seven registries, every image used by one recipe.
Figures (best of ``repeat``, in this process): the catalog BOM built with cyclonedx-python-lib,
serialised, and checked by its strict 1.6 JSON schema validator; the inventory section; the JSON
mirror list. Baseline: ``canonical_json`` of the same lock bodies (what writing the locks costs).
``run()`` returns printable lines; it never asserts.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

from pipeline.vocabulary.digest import canonical_json, sha256
from pipeline.bom import locked_recipes
from pipeline.bom.cyclonedx import build_catalog_bom, serialize, validate
from pipeline.bom.inventory import render_section
from pipeline.bom.mirror import MirrorFormat, render
from pipeline.lock import Lockfile

__all__ = ["generate", "run"]


def _digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def generate(images: int = 2000, *, recipes: int = 20, per_component: int = 5) -> list[Lockfile]:
    """``recipes`` sealed locks holding ``images`` distinct images between them."""
    per_recipe = images // recipes
    locks = []
    for r in range(recipes):
        components: dict[str, Any] = {}
        for c in range(0, per_recipe, per_component):
            name = f"component-{c // per_component:03d}"
            entries = []
            for i in range(c, min(c + per_component, per_recipe)):
                n = r * per_recipe + i
                ref = f"registry{n % 7}.example.com/team{n % 5}/image{n}:v{n % 3}"
                digest = _digest(ref)
                entries.append({"ref": ref, "digest": digest, "source": "registry", "origin": "chart-default",
                                "mediaType": "application/vnd.oci.image.index.v1+json",
                                "platforms": {p: _digest(f"{digest}/{p}") for p in ("linux/amd64", "linux/arm64")},
                                "foundAt": [f"Deployment/{name}/{name} spec.template.spec.containers[{i - c}].image "
                                            f"({name}/templates/deployment.yaml)"]})
            chart = {"repository": "https://charts.example.com", "name": name, "version": f"1.{r}.0",
                     "archive": _digest(f"{name}/{r}/archive"), "tree": _digest(f"{name}/{r}/tree")}
            components[name] = {"type": "Helm", "release": name, "namespace": name, "chart": chart,
                                "values": _digest(f"{name}/values"), "valuesFiles": [], "manifests": {"pre": [],
                                                                                                     "post": []},
                                "render": {"files": {}, "stream": _digest(f"{name}/{r}"), "root": _digest(name)},
                                "images": entries}
        body: dict[str, Any] = {
            "lockVersion": 1,
            "recipe": {"name": f"recipe-{r:03d}", "criteria": {"accelerator": "h100"}, "overlays": ["base"],
                       "mixins": [], "order": sorted(components)},
            "inputs": {"digest": _digest(f"inputs/{r}"), "files": {}, "options": {}},
            "engine": {"name": "helm-python-sdk", "version": "0.2.2", "helm": "v4.2.3", "library": _digest("lib")},
            "components": components,
            "volatile": [],
        }
        body["digest"] = sha256(canonical_json(body))
        locks.append(Lockfile(recipe=f"recipe-{r:03d}", body=body))
    return locks


def _best(repeat: int, step: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return min(times)


def run(*, images: int = 2000, repeat: int = 3) -> list[str]:
    locks = generate(images)
    recipes = locked_recipes(locks)
    baseline = _best(repeat, lambda: [canonical_json(dict(lock.body)) for lock in locks])
    bom = build_catalog_bom(locks)
    data = serialize(bom)
    build = _best(repeat, lambda: build_catalog_bom(locks))
    write = _best(repeat, lambda: serialize(bom))
    check = _best(1, lambda: validate(data))
    inventory = _best(repeat, lambda: render_section(recipes))
    mirror = _best(repeat, lambda: render(recipes, MirrorFormat.JSON))
    total = build + write + check
    return [
        f"## BOM stage: {len(locks)} locks, {images} images, catalog BOM {len(data) / 1e6:.1f} MB (best of {repeat})",
        f"  baseline canonical JSON of the locks  {baseline:8.3f} s",
        f"  catalog BOM build (cyclonedx-lib)     {build:8.3f} s",
        f"  catalog BOM serialise                 {write:8.3f} s",
        f"  catalog BOM strict schema validation  {check:8.3f} s   (one run)",
        f"  inventory section                     {inventory:8.3f} s",
        f"  mirror list (json)                    {mirror:8.3f} s",
        f"  ratio BOM build+serialise+validate / baseline {total / baseline:8.1f} x",
    ]


if __name__ == "__main__":
    print("\n".join(run()))
