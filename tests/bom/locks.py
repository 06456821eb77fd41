"""Factories for small, sealed lockfiles in the final lock shape (images resolved to digests).

``demo_lock()`` is the fixture behind the golden BOM: one recipe with a chart from an HTTP
repository, one from an OCI registry, one from the catalog, a manifest-only component with an
image and one without, an image written two ways, an image pinned in its reference, an index with
platforms, an exempted image and a declared volatile field. ``catalog_locks(n)`` makes a generated
catalog of ``n`` images for scale tests. Digests are derived from names (``fake_digest``), so the
fixtures are stable without any registry.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.images import ImageRef
from pipeline.lock import Lockfile, lock_path, read_lockfile
from pipeline.vocabulary.digest import canonical_json, sha256

INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def fake_digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def seal(body: dict[str, Any]) -> Lockfile:
    """A lock whose ``digest`` matches its body, exactly as pipeline.lock seals one."""
    unsigned = {k: v for k, v in body.items() if k != "digest"}
    sealed = {**unsigned, "digest": sha256(canonical_json(unsigned))}
    return Lockfile(recipe=str(sealed["recipe"]["name"]), body=sealed)


def edited(lock: Lockfile, edit: Callable[[dict[str, Any]], None], *, reseal: bool = True) -> Lockfile:
    """A copy of ``lock`` changed by ``edit``; resealed unless ``reseal`` is false (a tampered lock)."""
    body = copy.deepcopy(dict(lock.body))
    edit(body)
    return seal(body) if reseal else Lockfile(recipe=lock.recipe, body=body)


def write_lock(lockdir: Path, lock: Lockfile) -> Path:
    path = lock_path(lockdir, lock.recipe)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(lock.to_bytes())
    assert read_lockfile(path).body == lock.body
    return path


def image(ref: str, *, origin: str = "chart-default", found_at: tuple[str, ...] = (), digest: str | None = "auto",
          platforms: tuple[str, ...] = (), source: str | None = "registry", served_by: str | None = None
          ) -> dict[str, Any]:
    """An image entry; ``digest='auto'`` derives one from the normalised name and tag."""
    parsed = ImageRef.parse(ref)
    if digest == "auto":
        digest = parsed.digest or fake_digest(f"{parsed.name}:{parsed.tag}")
    entry: dict[str, Any] = {
        "ref": ref, "digest": digest, "source": source if digest is not None else None, "origin": origin,
        "foundAt": list(found_at) or [f"Deployment/demo/app spec.template.spec.containers[0].image ({ref})"],
    }
    if digest is not None:
        entry["mediaType"] = INDEX if platforms else MANIFEST
    if platforms:
        entry["platforms"] = {p: fake_digest(f"{digest}/{p}") for p in platforms}
    if served_by is not None:
        entry["servedBy"] = served_by
    return entry


def component(name: str, *, namespace: str, chart: dict[str, str] | None, images: list[dict[str, Any]],
              manifests: tuple[list[str], list[str]] = ([], [])) -> dict[str, Any]:
    return {
        "type": "Helm", "release": name, "namespace": namespace, "chart": chart,
        "values": fake_digest(f"values/{name}"), "valuesFiles": [f"components/{name}/values.yaml"],
        "manifests": {"pre": manifests[0], "post": manifests[1]},
        "render": {"files": {f"{name}/templates/x.yaml": fake_digest(f"file/{name}")},
                   "stream": fake_digest(f"stream/{name}"), "root": fake_digest(f"root/{name}")},
        "images": sorted(images, key=lambda i: str(i["ref"])),
    }


def chart(repository: str, name: str, version: str) -> dict[str, str]:
    return {"repository": repository, "name": name, "version": version,
            "archive": fake_digest(f"archive/{repository}/{name}/{version}"),
            "tree": fake_digest(f"tree/{repository}/{name}/{version}")}


def lock_body(name: str, components: dict[str, dict[str, Any]], *, volatile: list[dict[str, str]] | None = None,
              criteria: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "lockVersion": 1,
        "recipe": {"name": name, "criteria": criteria or {"accelerator": "h100", "service": "eks"},
                   "overlays": ["base", name], "mixins": [], "order": list(components)},
        "inputs": {"digest": fake_digest(f"inputs/{name}"), "files": {"registry.yaml": fake_digest("registry")},
                   "options": {"kubeVersion": "1.33.0", "apiVersions": ["resource.k8s.io/v1"]}},
        "engine": {"name": "helm-python-sdk", "version": "0.2.2", "helm": "v4.2.3",
                   "library": fake_digest("libhelm"), "kubeVersion": "1.33.0",
                   "apiVersions": ["resource.k8s.io/v1"]},
        "components": components,
        "volatile": volatile or [],
    }


def demo_lock(name: str = "demo") -> Lockfile:
    """The golden fixture (see the module docstring)."""
    pinned_ref = "registry.example.com:5000/team/tool@" + fake_digest("tool")
    components = {
        "config": component("config", namespace="kube-system", chart=None, images=[],
                            manifests=(["components/config/manifests/ns.yaml"], [])),
        "tuner": component("tuner", namespace="tuning", chart=None, images=[
            image("ghcr.io/example/tuner:3.1", origin="in-tree",
                  found_at=("Skyhook/tuner spec.packages.tuner.image (components/tuner/manifests/t.yaml)",)),
        ], manifests=([], ["components/tuner/manifests/t.yaml"])),
        "app": component("app", namespace="demo", chart=chart("https://charts.example.com/stable", "app", "1.2.3"),
                         images=[
            image("ghcr.io/example/app:1.0", platforms=("linux/amd64", "linux/arm64"), served_by="ghcr.io"),
            image("busybox:1.36", origin="in-tree", found_at=(
                "Job/demo/app-pre spec.template.spec.containers[0].image (app/templates/hook.yaml)",
                "Pod/demo/app-test spec.containers[0].image (app/templates/tests/t.yaml)")),
        ]),
        "oci-app": component("oci-app", namespace="demo", chart=chart("oci://registry.example.com/charts", "oci-app",
                                                                      "0.4.0"), images=[
            image("docker.io/library/busybox:1.36"),
            image(pinned_ref, source="reference"),
        ]),
        "agent": component("agent", namespace="agents", chart=chart("./charts", "agent", "v2.0.0"), images=[
            image("quay.io/example/agent:v2", origin="in-tree"),
        ]),
    }
    volatile = [{"component": "app", "kind": "Secret", "namespace": "demo", "name": "app-cert",
                 "path": 'data["tls.crt"]', "reason": "genSelfSignedCert makes a new certificate on every render"}]
    return seal(lock_body(name, components, volatile=volatile))


@dataclass(frozen=True, slots=True, kw_only=True)
class Exempt:
    """An exemption record shaped like pipeline.gates.exemptions.ImageExemption."""

    image: ImageRef
    reason: str
    tracking: str


DEMO_EXEMPTIONS = (Exempt(image=ImageRef.parse("quay.io/example/agent:v2"),
                          reason="the vendor rebuilds this tag in place", tracking="https://example.com/issues/7"),)


def catalog_locks(images: int, *, recipes: int = 10, per_component: int = 5) -> list[Lockfile]:
    """A generated catalog: ``recipes`` locks sharing ``images`` distinct images, ``per_component`` per chart."""
    per_recipe = max(1, images // recipes)
    locks = []
    for r in range(recipes):
        components: dict[str, dict[str, Any]] = {}
        refs = [f"registry{(r * per_recipe + i) % 7}.example.com/team{i % 3}/image{r * per_recipe + i}:v{i % 4}"
                for i in range(per_recipe)]
        for c in range(0, len(refs), per_component):
            cname = f"component-{c // per_component}"
            components[cname] = component(cname, namespace=cname, chart=chart("https://charts.example.com", cname,
                                                                               f"1.{r}.0"),
                                          images=[image(ref, platforms=("linux/amd64",)) for ref in
                                                  refs[c:c + per_component]])
        locks.append(seal(lock_body(f"recipe-{r:03d}", components)))
    return locks
