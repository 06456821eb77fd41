"""Gates 1 and 2 on whole catalogs: ours (recipes/) and the real AICR one (../shared/aicr/recipes).

The real catalog's findings were worked out by hand:

- gate 1: overlays pin the registry default everywhere (base.yaml repeats every default; eks.yaml,
  the dynamo/nim overlays, kind.yaml, oke-ol.yaml, monitoring-hpa.yaml and the platform-inference
  mixin write the same versions), except overlays/aks.yaml line 78, which pins kube-prometheus-stack
  to "83.7.0" while registry.yaml line 351 says 84.4.0, with no exemption (it has no exemptions file).
- gate 2: of its in-tree images (see tests/images/test_aicr.py) only the NicClusterPolicy operands
  lack a digest: nic-cluster-policy-aks.yaml writes three (version lines 58, 87, 110), and
  network-operator-ocp's nicclusterpolicy.yaml templates three from its values file (version lines
  30, 38, 43 of the manifest; the versions themselves are at values.yaml lines 26, 48, 64).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.gates import GateName, run_gates
from tests.catalog_render import compose_all, discover_catalog

OURS = Path(__file__).resolve().parents[2] / "recipes"


def _findings(root: Path, *, manifests_only: bool) -> list[tuple[str, str, int | None, str]]:
    recipes = compose_all(root)
    images = {name: d.images for name, d in discover_catalog(recipes, manifests_only=manifests_only).items()}
    return [(f.gate.value, f.file, f.line, f.message) for f in run_gates(root, recipes=recipes, images=images)]


def test_our_catalog_passes_gates_1_and_2() -> None:
    assert _findings(OURS, manifests_only=False) == []


NIC_AKS = "components/network-operator/manifests/nic-cluster-policy-aks.yaml"
NIC_OCP = "components/network-operator-ocp/manifests/nicclusterpolicy.yaml"
OCP_VALUES = "components/network-operator-ocp/values.yaml"
AKS = "recipes: a100-aks-ubuntu-training-kubeflow, h100-aks-ubuntu-inference-dynamo, h100-aks-ubuntu-training-kubeflow"
OCP = "recipes: ocp-inference, ocp-training"
FIELDS = "{repository,image,version}"
DIGESTS = GateName.IN_TREE_DIGESTS.value


@pytest.mark.shared
def test_aicr_catalog_findings(aicr_catalog: Path) -> None:
    assert _findings(aicr_catalog, manifests_only=True) == [
        (DIGESTS, NIC_OCP, 30, "in-tree image 'nvcr.io/nvidia/mellanox/doca-driver:doca3.3.0-26.01-1.0.0.0-0' has "
         f"no sha256 digest (NicClusterPolicy/nic-cluster-policy spec.ofedDriver.{FIELDS}; {OCP}; set by our values "
         f"at {OCP_VALUES}:26)"),
        (DIGESTS, NIC_OCP, 38, "in-tree image 'nvcr.io/nvidia/mellanox/k8s-rdma-shared-dev-plugin:network-operator-"
         f"v26.1.0' has no sha256 digest (NicClusterPolicy/nic-cluster-policy spec.rdmaSharedDevicePlugin.{FIELDS}; "
         f"{OCP}; set by our values at {OCP_VALUES}:48)"),
        (DIGESTS, NIC_OCP, 43, "in-tree image 'nvcr.io/nvidia/mellanox/nvidia-k8s-ipam:network-operator-v26.1.0' has "
         f"no sha256 digest (NicClusterPolicy/nic-cluster-policy spec.nvIpam.{FIELDS}; {OCP}; set by our values at "
         f"{OCP_VALUES}:64)"),
        (DIGESTS, NIC_AKS, 58, "in-tree image 'nvcr.io/nvidia/mellanox/doca-driver:doca3.2.0-25.10-1.2.8.0-2' has "
         f"no sha256 digest (NicClusterPolicy/nic-cluster-policy spec.ofedDriver.{FIELDS}; {AKS})"),
        (DIGESTS, NIC_AKS, 87, "in-tree image 'nvcr.io/nvidia/mellanox/k8s-rdma-shared-dev-plugin:network-operator-"
         f"v26.1.0' has no sha256 digest (NicClusterPolicy/nic-cluster-policy spec.rdmaSharedDevicePlugin.{FIELDS}; "
         f"{AKS})"),
        (DIGESTS, NIC_AKS, 110, "in-tree image 'nvcr.io/nvidia/doca/doca_telemetry:1.22.5-doca3.1.0-host' has no "
         f"sha256 digest (NicClusterPolicy/nic-cluster-policy spec.docaTelemetryService.{FIELDS}; {AKS})"),
        (GateName.CHART_VERSIONS.value, "overlays/aks.yaml", 78,
         "component 'kube-prometheus-stack' is pinned to chart version '83.7.0' here, but registry.yaml:351 pins "
         "'84.4.0': a recipe-specific chart version needs a reviewed exemption"),
    ]
