"""Discovery on the real AICR catalog (../shared/aicr/recipes): its in-tree image inventory.

Its charts are not here, so only the in-tree manifests are rendered (each component's
manifestFiles, with the component's composed values, in every recipe that uses them). The expected
inventory below was worked out by hand from the manifest files, not from the code:

- gke-nccl-tcpxo/nccl-tcpxo-installer.yaml: DaemonSet nccl-tcpxo-installer (kube-system) has two
  initContainers (``ubuntu:24.04@…`` line 74, ``us-docker.pkg.dev/…/nccl-plugin-gpudirecttcpx-dev``
  line 101) and one container (``gke.gcr.io/pause:3.8@…`` line 122); nri-device-injector.yaml one
  container (line 67). All digest-pinned.
- kubeflow-trainer/torch-distributed-cluster-training-runtime.yaml: a ClusterTrainingRuntime whose
  pod template sits under spec.template.spec.replicatedJobs[0].template.spec.template (line 62),
  ``pytorch/pytorch`` → docker.io/pytorch/pytorch, pinned.
- network-operator/ib-node-config-aks.yaml: DaemonSet ib-node-config, ``busybox:1.38@…`` as init
  container and container (lines 79, 152) → docker.io/library/busybox, pinned.
- network-operator/nic-cluster-policy-aks.yaml: NicClusterPolicy with three operands written as
  repository / image / version (lines 54-58, 84-87, 107-110): doca-driver, k8s-rdma-shared-dev-plugin,
  doca_telemetry; none pinned.
- network-operator-ocp/nicclusterpolicy.yaml: the same shape, fields templated from
  components/network-operator-ocp/values.yaml (ofedDriver, rdmaSharedDevicePlugin, nvIpam at lines
  23-26, 45-48, 61-64); none pinned, and set by our values.
- nodewright-customizations: Skyhook packages as image + version + containerSHA: tuning.yaml
  (nvidia-setup 0.4.0 twice, nvidia-tuned 0.3.1), tuning-gke.yaml (nvidia-tuning-gke 0.1.2 under
  the package key ``tuning``), tuning-generic.yaml (nvidia-tuned 0.3.1), bcm-setup.yaml
  (nvidia-setup 0.3.0, Skyhook ``setup``); all pinned through containerSHA. no-op.yaml
  (shellscript 1.1.1, no containerSHA) is listed by no overlay, so no recipe renders it.
- every other manifest (CRDs, namespaces, OLM subscriptions, ClusterPolicy without image fields,
  ConfigMaps, NodeFeatureDiscovery, ComputeDomain, gateways) names no image.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.images import Origin, format_path
from tests.catalog_render import compose_all, discover_catalog

C = "components/"
NCCL = f"{C}gke-nccl-tcpxo/manifests/nccl-tcpxo-installer.yaml"
NRI = f"{C}gke-nccl-tcpxo/manifests/nri-device-injector.yaml"
TORCH = f"{C}kubeflow-trainer/manifests/torch-distributed-cluster-training-runtime.yaml"
IB = f"{C}network-operator/manifests/ib-node-config-aks.yaml"
NIC_AKS = f"{C}network-operator/manifests/nic-cluster-policy-aks.yaml"
NIC_OCP = f"{C}network-operator-ocp/manifests/nicclusterpolicy.yaml"
SKY = f"{C}nodewright-customizations/manifests/"
POD = "spec.template.spec"
FIELDS = "{repository,image,version}"
PKG = "{image,version,containerSHA}"
SETUP_04 = ("ghcr.io/nvidia/nodewright-packages/nvidia-setup:0.4.0"
            "@sha256:187c56c6d2104d48c7632c293def79c714b04dd85c587b7793818ceba9d4fb04")
TUNED = ("ghcr.io/nvidia/nodewright-packages/nvidia-tuned:0.3.1"
         "@sha256:6dedbbb8627dec88acdfd68867f60a3ddca88e5f4c62beddfb704a8e0cfe51d1")
BUSYBOX = "docker.io/library/busybox:1.38@sha256:fd8d9aa63ba2f0982b5304e1ee8d3b90a210bc1ffb5314d980eb6962f1a9715d"

#: (component, file, resource, field, image), all origin in-tree.
INVENTORY = {
    ("gke-nccl-tcpxo", NCCL, "DaemonSet/kube-system/nccl-tcpxo-installer", f"{POD}.initContainers[0].image",
     "docker.io/library/ubuntu:24.04@sha256:4fbb8e6a8395de5a7550b33509421a2bafbc0aab6c06ba2cef9ebffbc7092d90"),
    ("gke-nccl-tcpxo", NCCL, "DaemonSet/kube-system/nccl-tcpxo-installer", f"{POD}.initContainers[1].image",
     "us-docker.pkg.dev/gce-ai-infra/gpudirect-tcpxo/nccl-plugin-gpudirecttcpx-dev:v1.0.15"
     "@sha256:4c9f0de3f39455a2ea35e844e0fc92564ca5629f6b03250fde40e8160719dae4"),
    ("gke-nccl-tcpxo", NCCL, "DaemonSet/kube-system/nccl-tcpxo-installer", f"{POD}.containers[0].image",
     "gke.gcr.io/pause:3.8@sha256:880e63f94b145e46f1b1082bb71b85e21f16b99b180b9996407d61240ceb9830"),
    ("gke-nccl-tcpxo", NRI, "DaemonSet/kube-system/device-injector", f"{POD}.containers[0].image",
     "gcr.io/gke-release/nri-device-injector:1.0.25-gke.6"
     "@sha256:7704e2bd74b8edbb76b6913c7904cc2362f1fa887c4d4aba7b19778ea353537c"),
    ("kubeflow-trainer", TORCH, "ClusterTrainingRuntime/torch-distributed",
     "spec.template.spec.replicatedJobs[0].template.spec.template.spec.containers[0].image",
     "docker.io/pytorch/pytorch:2.11.0-cuda12.8-cudnn9-runtime"
     "@sha256:eee11b3b3872a8c838e35ef48f08b2d5def2080902c7f666831310ca1a0ef2be"),
    ("network-operator", IB, "DaemonSet/kube-system/ib-node-config", f"{POD}.initContainers[0].image", BUSYBOX),
    ("network-operator", IB, "DaemonSet/kube-system/ib-node-config", f"{POD}.containers[0].image", BUSYBOX),
    ("network-operator", NIC_AKS, "NicClusterPolicy/nic-cluster-policy", f"spec.ofedDriver.{FIELDS}",
     "nvcr.io/nvidia/mellanox/doca-driver:doca3.2.0-25.10-1.2.8.0-2"),
    ("network-operator", NIC_AKS, "NicClusterPolicy/nic-cluster-policy", f"spec.rdmaSharedDevicePlugin.{FIELDS}",
     "nvcr.io/nvidia/mellanox/k8s-rdma-shared-dev-plugin:network-operator-v26.1.0"),
    ("network-operator", NIC_AKS, "NicClusterPolicy/nic-cluster-policy", f"spec.docaTelemetryService.{FIELDS}",
     "nvcr.io/nvidia/doca/doca_telemetry:1.22.5-doca3.1.0-host"),
    ("network-operator-ocp", NIC_OCP, "NicClusterPolicy/nic-cluster-policy", f"spec.ofedDriver.{FIELDS}",
     "nvcr.io/nvidia/mellanox/doca-driver:doca3.3.0-26.01-1.0.0.0-0"),
    ("network-operator-ocp", NIC_OCP, "NicClusterPolicy/nic-cluster-policy", f"spec.rdmaSharedDevicePlugin.{FIELDS}",
     "nvcr.io/nvidia/mellanox/k8s-rdma-shared-dev-plugin:network-operator-v26.1.0"),
    ("network-operator-ocp", NIC_OCP, "NicClusterPolicy/nic-cluster-policy", f"spec.nvIpam.{FIELDS}",
     "nvcr.io/nvidia/mellanox/nvidia-k8s-ipam:network-operator-v26.1.0"),
    ("nodewright-customizations", f"{SKY}tuning.yaml", "Skyhook/skyhook/tuning",
     f"spec.packages.nvidia-setup-kernel.{PKG}", SETUP_04),
    ("nodewright-customizations", f"{SKY}tuning.yaml", "Skyhook/skyhook/tuning", f"spec.packages.nvidia-tuned.{PKG}",
     TUNED),
    ("nodewright-customizations", f"{SKY}tuning.yaml", "Skyhook/skyhook/tuning",
     f"spec.packages.nvidia-setup-full.{PKG}", SETUP_04),
    ("nodewright-customizations", f"{SKY}tuning-gke.yaml", "Skyhook/skyhook/tuning", f"spec.packages.tuning.{PKG}",
     "ghcr.io/nvidia/nodewright-packages/nvidia-tuning-gke:0.1.2"
     "@sha256:6671d49f006afdbeefd8858f1fa1216f7748205bc42edab3340210a2cc459a81"),
    ("nodewright-customizations", f"{SKY}tuning-generic.yaml", "Skyhook/skyhook/tuning",
     f"spec.packages.nvidia-tuned.{PKG}", TUNED),
    ("nodewright-customizations", f"{SKY}bcm-setup.yaml", "Skyhook/skyhook/setup", f"spec.packages.nvidia-setup.{PKG}",
     "ghcr.io/nvidia/nodewright-packages/nvidia-setup:0.3.0"
     "@sha256:f17c951d60b519d097c20a3d9f49668f043a996adb31b9bb4db24a112a8f60a2"),
}


@pytest.mark.shared
def test_aicr_in_tree_image_inventory(aicr_catalog: Path) -> None:
    discoveries = discover_catalog(compose_all(aicr_catalog), manifests_only=True)
    images = [i for d in discoveries.values() for i in d.images]
    assert {(i.component, i.file, str(i.resource), i.field, str(i.ref)) for i in images} == INVENTORY
    assert {i.origin for i in images} == {Origin.IN_TREE}
    assert [r for d in discoveries.values() for r in d.rejected] == []
    # The OpenShift NicClusterPolicy takes every field from our values file: traced, not guessed.
    ocp = next(i for i in images if i.file == NIC_OCP and "ofedDriver" in i.field)
    assert [format_path(p) for p in ocp.set_by] == ["ofedDriver.image", "ofedDriver.repository", "ofedDriver.version"]
    # Unpinned in-tree images: the six NicClusterPolicy operands (five distinct references).
    assert sorted({str(i.ref) for i in images if not i.ref.pinned}) == [
        "nvcr.io/nvidia/doca/doca_telemetry:1.22.5-doca3.1.0-host",
        "nvcr.io/nvidia/mellanox/doca-driver:doca3.2.0-25.10-1.2.8.0-2",
        "nvcr.io/nvidia/mellanox/doca-driver:doca3.3.0-26.01-1.0.0.0-0",
        "nvcr.io/nvidia/mellanox/k8s-rdma-shared-dev-plugin:network-operator-v26.1.0",
        "nvcr.io/nvidia/mellanox/nvidia-k8s-ipam:network-operator-v26.1.0",
    ]


@pytest.mark.shared
def test_aicr_recipes_that_carry_the_nic_cluster_policy(aicr_catalog: Path) -> None:
    discoveries = discover_catalog(compose_all(aicr_catalog), manifests_only=True)
    with_aks_policy = sorted(r for r, d in discoveries.items() if any(i.file == NIC_AKS for i in d.images))
    assert with_aks_policy == ["a100-aks-ubuntu-training-kubeflow", "h100-aks-ubuntu-inference-dynamo",
                               "h100-aks-ubuntu-training-kubeflow"]
