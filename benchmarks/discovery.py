"""Image discovery throughput over a large generated render, against a parse-only baseline.

The render (``generate``) is a deterministic stream of ``# Source:`` segments shaped like real
operator charts, by bytes: about 60% CustomResourceDefinitions (big OpenAPI schemas whose
descriptions mention images), 15% RBAC, 15% workloads (Deployments, DaemonSets, CronJobs with
``RELATED_IMAGE_*`` env and ``--*-image=`` args), 5% ClusterPolicy-like custom resources with
sibling image fields, 5% ConfigMaps. Baseline: the same bytes parsed by PyYAML's C loader and
nothing else (``pipeline._yaml.load_all_bytes``). Figure: MB/s of each (best of ``repeat``), and
their ratio. ``run()`` returns printable lines; it never asserts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pipeline._yaml import load_all_bytes
from pipeline.images import discover
from pipeline.recipes import Component, ComponentType

__all__ = ["generate", "run"]

MB = 1_000_000


def _crd(index: int) -> str:
    props = "".join(
        f"""
                    field{n}:
                      description: >-
                        Field {n} of the operand; the image to pull is set by the operator, and an empty
                        repository means the default registry. Changing it restarts the pods using the image.
                      type: string
                    nested{n}:
                      type: object
                      properties:
                        image: {{type: string, description: image reference}}
                        repository: {{type: string}}
                        version: {{type: string}}"""
        for n in range(40)
    )
    return f"""apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: policies{index}.example.dev
spec:
  group: example.dev
  names: {{kind: Policy{index}, plural: policies{index}}}
  scope: Cluster
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                operands:
                  type: object
                  properties:{props}
"""


def _rbac(index: int) -> str:
    rules = "".join(
        f"""
  - apiGroups: ["", "apps", "example.dev"]
    resources: ["pods", "deployments", "daemonsets", "policies{n}"]
    verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]"""
        for n in range(12)
    )
    return f"""apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: operator-{index}
  labels: {{app.kubernetes.io/name: operator, app.kubernetes.io/instance: r{index}}}
rules:{rules}
"""


def _deployment(index: int) -> str:
    env = "".join(
        f"""
            - name: RELATED_IMAGE_OPERAND_{n}
              value: "nvcr.io/nvidia/operand-{n}:v{index % 7}.{n}.0"
            - name: LOG_LEVEL_{n}
              value: info"""
        for n in range(8)
    )
    return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: operator-{index}
  namespace: ops
spec:
  replicas: 1
  selector: {{matchLabels: {{app: operator-{index}}}}}
  template:
    metadata: {{labels: {{app: operator-{index}}}}}
    spec:
      serviceAccountName: operator
      initContainers:
        - name: wait
          image: busybox:1.36
      containers:
        - name: operator
          image: nvcr.io/nvidia/gpu-operator:v26.3.{index % 9}
          args:
            - --leader-elect
            - --metrics-bind-address=:8080
            - --device-plugin-image=nvcr.io/nvidia/k8s-device-plugin:v0.17.{index % 5}
          env:{env}
          resources: {{requests: {{cpu: 100m, memory: 128Mi}}}}
"""


def _policy(index: int) -> str:
    operands = "".join(
        f"""
  operand{n}:
    enabled: true
    repository: nvcr.io/nvidia
    image: operand-{n}
    version: "v{index % 7}.{n}.0"
    env: [{{name: OPERAND, value: "{n}"}}]"""
        for n in range(15)
    )
    return f"""apiVersion: nvidia.com/v1
kind: ClusterPolicy
metadata:
  name: cluster-policy-{index}
spec:{operands}
  vgpuManager: {{repository: "", image: vgpu-manager, version: ""}}
"""


def _configmap(index: int) -> str:
    lines = "".join(f"    DCGM_FI_DEV_METRIC_{n}, gauge, Metric number {n} of exporter {index}.\n" for n in range(60))
    return f"""apiVersion: v1
kind: ConfigMap
metadata:
  name: metrics-{index}
data:
  counters.csv: |
{lines}"""


_KINDS: tuple[tuple[str, Callable[[int], str], float], ...] = (
    ("crds", _crd, 0.60), ("rbac", _rbac, 0.15), ("workloads", _deployment, 0.15), ("policies", _policy, 0.05),
    ("configmaps", _configmap, 0.05),
)


def generate(size: int = 50 * MB) -> bytes:
    """A deterministic render of at least ``size`` bytes (see the module docstring for the mix)."""
    parts: list[str] = []
    written = dict.fromkeys((k for k, _, _ in _KINDS), 0)
    total = index = 0
    while total < size:
        for name, make, share in _KINDS:
            if written[name] <= share * total or total == 0:
                segment = f"---\n# Source: bench/templates/{name}-{index}.yaml\n{make(index)}"
                parts.append(segment)
                written[name] += len(segment)
                total += len(segment)
        index += 1
    return "".join(parts).encode()


def _best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def run(size: int = 50 * MB, repeat: int = 2) -> list[str]:
    """Discovery and parse-only throughput on one generated render, as printable lines."""
    stream = generate(size)
    megabytes = len(stream) / MB
    component = Component(name="bench", type=ComponentType.HELM, namespace="ops", chart=None,
                          values={"operand3": {"version": "v1.3.0"}})
    parse_seconds, documents = _best(lambda: len(load_all_bytes(stream)), repeat)
    discover_seconds, found = _best(lambda: discover(stream, component=component, recipe="bench"), repeat)
    parse_rate, discover_rate = megabytes / parse_seconds, megabytes / discover_seconds
    return [
        f"discovery over a generated render: {megabytes:.1f} MB, {documents} documents "
        f"(~60% CRDs, 15% RBAC, 15% workloads, 5% operator CRs, 5% ConfigMaps)",
        f"  baseline  PyYAML C loader, parse only : {parse_rate:7.1f} MB/s ({parse_seconds:.2f} s)",
        f"  discovery images + rejected + origin : {discover_rate:7.1f} MB/s ({discover_seconds:.2f} s), "
        f"{len(found.images)} images, {len(found.rejected)} rejected",
        f"  ratio discovery / baseline            : {discover_rate / parse_rate:7.2f}x",
    ]


if __name__ == "__main__":  # pragma: no cover - manual run
    print("\n".join(run()))
