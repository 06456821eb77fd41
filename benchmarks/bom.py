"""BOM-stage throughput on a generated catalog (default 2,000 images), against a plain-JSON baseline.

The catalog (``generate``): ``recipes`` lockfiles sealed from the lockfile model's records, whose
components each pin five resolved images (an index with two platforms each), spread over seven
registries, every image used by one recipe.
Figures (best of ``repeat``, in this process): the catalog BOM built with cyclonedx-python-lib,
serialised, and checked by its strict 1.6 JSON schema validator; the inventory section; the JSON
mirror list. Baseline: ``Lockfile.dumps()`` of the same locks (what writing the locks costs).
``run()`` returns printable lines; it never asserts.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pipeline.bom import locked_recipes
from pipeline.bom.cyclonedx import build_catalog_bom, serialize, validate
from pipeline.bom.inventory import render_section
from pipeline.bom.mirror import MirrorFormat, render
from pipeline.images import ImageRef, Origin
from pipeline.lockfile import (
    EngineRecord,
    LockedChart,
    LockedComponent,
    LockedImage,
    LockedInputs,
    LockedRecipe,
    LockedRender,
    Lockfile,
    seal,
)
from pipeline.recipes.model import ComponentType
from pipeline.vocabulary.digest import Digest, sha256

__all__ = ["generate", "run"]

_INDEX = "application/vnd.oci.image.index.v1+json"
_KUBE, _APIS = "1.33.0", ("resource.k8s.io/v1",)


def _digest(text: str) -> Digest:
    return sha256(text.encode())


def _image(n: int, name: str, slot: int) -> LockedImage:
    ref = f"registry{n % 7}.example.com/team{n % 5}/image{n}:v{n % 3}"
    image = ImageRef.parse(ref)
    digest = _digest(ref)
    return LockedImage(ref=ref, image=image, digest=digest, source="registry", origin=Origin.CHART_DEFAULT,
                       found_at=(f"Deployment/{name}/{name} spec.template.spec.containers[{slot}].image "
                                 f"({name}/templates/deployment.yaml)",),
                       media_type=_INDEX, served_by=image.registry,
                       platforms=tuple((p, _digest(f"{digest}/{p}")) for p in ("linux/amd64", "linux/arm64")))


def generate(images: int = 2000, *, recipes: int = 20, per_component: int = 5) -> list[Lockfile]:
    """``recipes`` sealed locks holding ``images`` distinct images between them."""
    per_recipe = images // recipes
    locks = []
    for r in range(recipes):
        components = []
        for c in range(0, per_recipe, per_component):
            name = f"component-{c // per_component:03d}"
            chart = LockedChart(repository="https://charts.example.com", name=name, version=f"1.{r}.0",
                                archive=_digest(f"{name}/{r}/archive"), tree=_digest(f"{name}/{r}/tree"))
            components.append(LockedComponent(
                name=name, type=ComponentType.HELM, release=name, namespace=name, chart=chart,
                values=_digest(f"{name}/values"), values_files=(), pre_manifests=(), post_manifests=(),
                render=LockedRender(files=(), stream=_digest(f"{name}/{r}"), root=_digest(name)),
                images=tuple(_image(r * per_recipe + i, name, i - c)
                             for i in range(c, min(c + per_component, per_recipe)))))
        locks.append(seal(
            recipe=LockedRecipe(name=f"recipe-{r:03d}", criteria=(("accelerator", "h100"),), overlays=("base",),
                                mixins=(), order=tuple(sorted(c.name for c in components))),
            inputs=LockedInputs.of({}, kube_version=_KUBE, api_versions=_APIS),
            engine=EngineRecord(name="helm-python-sdk", version="0.2.2", helm="v4.2.3", library=_digest("lib"),
                                kube_version=_KUBE, api_versions=_APIS),
            components=components, volatile=()))
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
    baseline = _best(repeat, lambda: [lock.dumps() for lock in locks])
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
