"""The BOM tests' fixtures, built with the shared lock factory (tests/locks.py).

``demo_lock()`` is the fixture behind the golden BOM (see its docstring). ``catalog_locks(n)``
makes a generated catalog of ``n`` images for scale tests. ``DEMO_EXEMPTIONS`` exempts the demo's
in-tree image that has a tag only in the catalog. The factory's names the BOM tests use are
re-exported, so a test reads ``f.demo_lock()`` and ``f.edited(...)`` from one module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.images import ImageRef
from pipeline.lockfile import Lockfile
from tests.locks import (
    INDEX,
    MANIFEST,
    chart,
    component,
    edited,
    fake_digest,
    image,
    lock_body,
    seal,
    tampered,
    unpin,
    write_lock,
)

__all__ = [
    "DEMO_EXEMPTIONS",
    "INDEX",
    "MANIFEST",
    "Exempt",
    "catalog_locks",
    "demo_lock",
    "edited",
    "fake_digest",
    "tampered",
    "unpin",
    "write_lock",
]


def demo_lock(name: str = "demo") -> Lockfile:
    """The golden fixture: one recipe with a chart from an HTTP repository, one from an OCI registry,
    one from the catalog, a manifest-only component with an image and one without, one image used by
    two components with two origins, an image pinned in its reference, an index with platforms, an
    exempted image and a declared volatile field. Every image with a digest is resolved (servedBy its
    registry host); references are in normal form, as the lock stage writes them."""
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
            image("docker.io/library/busybox:1.36", origin="in-tree", found_at=(
                "Job/demo/app-pre spec.template.spec.containers[0].image (app/templates/hook.yaml)",
                "Pod/demo/app-test spec.containers[0].image (app/templates/tests/t.yaml)")),
        ]),
        "oci-app": component("oci-app", namespace="demo", chart=chart("oci://registry.example.com/charts", "oci-app",
                                                                      "0.4.0"), images=[
            image("docker.io/library/busybox:1.36"),
            image(pinned_ref),
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
