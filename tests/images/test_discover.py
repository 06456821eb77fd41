"""Image discovery over fixture charts rendered by the real Helm engine: one chart per pattern.

Each test renders a tiny chart (tests/factories.py) with ``run_job`` and checks every image found,
with its file, resource and field path, and every placeholder refused, with its reason.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import Any

import pytest

from pipeline.charts import chart_yaml
from pipeline.errors import DiscoveryError
from pipeline.images import (
    AnnotatedImage,
    Discovery,
    ImageRef,
    Origin,
    RejectReason,
    Resource,
    Via,
    annotation_images,
    classify,
    discover,
)
from pipeline.recipes import Component, ComponentType
from pipeline.render.job import RenderJob, run_job
from tests import factories

SHA_A = "sha256:" + "a" * 64
SHA_B = "sha256:" + "b" * 64


def _component(values: Mapping[str, Any] | None = None, *, manifests: tuple[str, ...] = ()) -> Component:
    return Component(name="op", type=ComponentType.HELM, namespace="op-system", chart=None, values=dict(values or {}),
                     manifest_files=manifests)


def render(templates: Mapping[str, str], *, values: str = "{}\n", chart_yaml_extra: str = "",
           overrides: Mapping[str, Any] | None = None,
           manifests: tuple[tuple[str, bytes], ...] = ()) -> tuple[bytes, bytes]:
    """(archive, rendered stream) of a chart ``op`` with ``templates``."""
    archive = factories.chart_archive("op", "1.0.0", templates=templates, values=values,
                                      chart_yaml_extra=chart_yaml_extra)
    job = RenderJob(component="op", what="component 'op'", chart=archive, values=dict(overrides or {}), release="op",
                    namespace="op-system", kube_version="1.33.0", api_versions=(), manifest_chart_version="1.0.0",
                    manifests=manifests)
    return archive, run_job(job).stream


def found(discovery: Discovery) -> list[tuple[str, str, str, str, str]]:
    """(file, resource, field, via, ref) of every image, in stream order."""
    return [(i.file, str(i.resource), i.field, i.via.value, str(i.ref)) for i in discovery.images]


def refused(discovery: Discovery) -> list[tuple[str, str, str]]:
    return [(r.field, r.reason.value, r.written) for r in discovery.rejected]


# ---- a ClusterPolicy-like CR: many sibling-field images and placeholders --------------------

CLUSTER_POLICY = """\
apiVersion: nvidia.com/v1
kind: ClusterPolicy
metadata:
  name: cluster-policy
spec:
  operator:
    defaultRuntime: containerd
  driver:
    enabled: true
    repository: {{ .Values.driver.repository }}
    image: {{ .Values.driver.image }}
    version: {{ .Values.driver.version | quote }}
    env:
      - name: DRIVER_TYPE
        value: gpu
  toolkit:
    repository: nvcr.io/nvidia/k8s
    image: container-toolkit
    version: "{{ .Values.toolkitDigest }}"
  dcgm:
    registry: nvcr.io
    repository: nvidia/cloud-native/dcgm
    tag: 4.2.3-1-ubuntu22.04
  gfd:
    image: nvcr.io/nvidia/gpu-feature-discovery
    tag: v0.17.1
  migManager:
    registry: nvcr.io
    repository: nvidia/cloud-native/k8s-mig-manager
    digest: {{ .Values.migDigest }}
  sandboxDevicePlugin:
    image: nvcr.io/nvidia/kubevirt-gpu-device-plugin:v1.3.1
    version: v9.9.9
  vgpuManager:
    enabled: false
    repository: ""
    image: vgpu-manager
    version: ""
  vgpuDeviceManager:
    repository: ""
    image: ""
    version: ""
  ccManager:
    repository: https://nvcr.io/nvidia/cloud-native
    image: k8s-cc-manager
    version: v0.1.1
  validator:
    repository: nvcr.io/nvidia/cloud-native
    image: gpu-operator-validator
    version: {{ "{{ .Chart.AppVersion }}" | quote }}
  kataManager:
    initImage: /usr/local/bin/kata-init
  psa:
    enabled: false
"""

CLUSTER_POLICY_VALUES = f"""\
driver:
  repository: nvcr.io/nvidia
  image: driver
  version: "570.172.08"
toolkitDigest: "{SHA_A}"
migDigest: "{SHA_B}"
"""


def test_cluster_policy_sibling_fields() -> None:
    _, stream = render({"clusterpolicy.yaml": CLUSTER_POLICY}, values=CLUSTER_POLICY_VALUES)
    result = discover(stream, component=_component(), recipe="r")
    where = ("op/templates/clusterpolicy.yaml", "ClusterPolicy/cluster-policy")
    assert found(result) == [
        (*where, "spec.driver.{repository,image,version}", "fields", "nvcr.io/nvidia/driver:570.172.08"),
        (*where, "spec.toolkit.{repository,image,version}", "fields", f"nvcr.io/nvidia/k8s/container-toolkit@{SHA_A}"),
        (*where, "spec.dcgm.{registry,repository,tag}", "fields",
         "nvcr.io/nvidia/cloud-native/dcgm:4.2.3-1-ubuntu22.04"),
        (*where, "spec.gfd.{image,tag}", "fields", "nvcr.io/nvidia/gpu-feature-discovery:v0.17.1"),
        (*where, "spec.migManager.{registry,repository,digest}", "fields",
         f"nvcr.io/nvidia/cloud-native/k8s-mig-manager@{SHA_B}"),
        # a name that already carries a tag is taken as written; the sibling version does not override it
        (*where, "spec.sandboxDevicePlugin.{image,version}", "fields",
         "nvcr.io/nvidia/kubevirt-gpu-device-plugin:v1.3.1"),
    ]
    assert refused(result) == [
        ("spec.vgpuManager.{repository,image,version}", "placeholder", "vgpu-manager"),
        ("spec.vgpuDeviceManager.{repository,image,version}", "empty", ""),
        ("spec.ccManager.{repository,image,version}", "url", "https://nvcr.io/nvidia/cloud-native/k8s-cc-manager:v0.1.1"),
        ("spec.validator.{repository,image,version}", "template",
         "nvcr.io/nvidia/cloud-native/gpu-operator-validator:{{ .Chart.AppVersion }}"),
        ("spec.kataManager.initImage", "path", "/usr/local/bin/kata-init"),
    ]
    driver = result.images[0]
    assert driver.parts == (("repository", "nvcr.io/nvidia"), ("image", "driver"), ("version", "570.172.08"))
    assert driver.resource == Resource(kind="ClusterPolicy", namespace="", name="cluster-policy")
    assert driver.origin is Origin.CHART_DEFAULT
    assert driver.found_at == ("ClusterPolicy/cluster-policy spec.driver.{repository,image,version} "
                               "(op/templates/clusterpolicy.yaml)")
    placeholder = result.rejected[0]
    assert placeholder.message() == (
        "'vgpu-manager' at ClusterPolicy/cluster-policy spec.vgpuManager.{repository,image,version} "
        "(op/templates/clusterpolicy.yaml): a bare name with no registry, tag or digest: a placeholder to fill "
        "in, not an image")


def test_cluster_policy_values_of_ours_make_an_image_in_tree() -> None:
    _, stream = render({"clusterpolicy.yaml": CLUSTER_POLICY}, values=CLUSTER_POLICY_VALUES,
                       overrides={"driver": {"version": "580.95.05"}})
    ours = {"driver": {"version": "580.95.05"}, "dcgm": {"enabled": True}}
    result = discover(stream, component=_component(ours), recipe="r")
    by_field = {i.field.split(".{")[0]: i for i in result.images}
    assert str(by_field["spec.driver"].ref) == "nvcr.io/nvidia/driver:580.95.05"
    assert by_field["spec.driver"].origin is Origin.IN_TREE
    assert by_field["spec.driver"].set_by == (("driver", "version"),)
    assert {f for f, i in by_field.items() if i.origin is Origin.IN_TREE} == {"spec.driver"}


# ---- a NicClusterPolicy-like CR: image / repository / version, nested operands ---------------

NIC_CLUSTER_POLICY = """\
apiVersion: mellanox.com/v1alpha1
kind: NicClusterPolicy
metadata:
  name: nic-cluster-policy
spec:
  ofedDriver:
    image: doca-driver
    repository: nvcr.io/nvidia/mellanox
    version: doca3.2.0-25.10-1.2.8.0-2
    upgradePolicy:
      autoUpgrade: true
  rdmaSharedDevicePlugin:
    image: k8s-rdma-shared-dev-plugin
    repository: nvcr.io/nvidia/mellanox
    version: network-operator-v26.1.0
    config: |
      {"configList": [{"resourceName": "rdma_shared_device_a", "image": "not/parsed:inside-a-string"}]}
  secondaryNetwork:
    multus:
      image: multus-cni
      repository: ghcr.io/k8snetworkplumbingwg
      version: v4.1.0
    ipamPlugin:
      image: whereabouts
      repository: ghcr.io/k8snetworkplumbingwg
      version: {{ .Values.ipamDigest }}
  nvIpam:
    image: nvidia-k8s-ipam
    repository: nvcr.io/nvidia/mellanox
    version: ""
"""


def test_nic_cluster_policy_sibling_fields() -> None:
    _, stream = render({"nic.yaml": NIC_CLUSTER_POLICY}, values=f'ipamDigest: "{SHA_A}"\n')
    result = discover(stream, component=_component(), recipe="r")
    where = ("op/templates/nic.yaml", "NicClusterPolicy/nic-cluster-policy")
    assert found(result) == [
        (*where, "spec.ofedDriver.{repository,image,version}", "fields",
         "nvcr.io/nvidia/mellanox/doca-driver:doca3.2.0-25.10-1.2.8.0-2"),
        (*where, "spec.rdmaSharedDevicePlugin.{repository,image,version}", "fields",
         "nvcr.io/nvidia/mellanox/k8s-rdma-shared-dev-plugin:network-operator-v26.1.0"),
        (*where, "spec.secondaryNetwork.multus.{repository,image,version}", "fields",
         "ghcr.io/k8snetworkplumbingwg/multus-cni:v4.1.0"),
        (*where, "spec.secondaryNetwork.ipamPlugin.{repository,image,version}", "fields",
         f"ghcr.io/k8snetworkplumbingwg/whereabouts@{SHA_A}"),
        # a registry and no tag: an image (pulled as :latest), not a placeholder
        (*where, "spec.nvIpam.{repository,image,version}", "fields", "nvcr.io/nvidia/mellanox/nvidia-k8s-ipam"),
    ]
    assert result.rejected == ()


# ---- a Skyhook-like CR: image (no tag) + version + containerSHA ------------------------------

SKYHOOK = """\
apiVersion: skyhook.nvidia.com/v1alpha1
kind: Skyhook
metadata:
  name: tuning
  namespace: {{ .Release.Namespace }}
spec:
  packages:
    {{- range $name, $pkg := .Values.packages }}
    {{ $name }}:
      image: {{ $pkg.image }}
      version: {{ $pkg.version | quote }}
      containerSHA: {{ $pkg.containerSHA | default "" | quote }}
      dependsOn:
        other: "1.0.0"
    {{- end }}
"""


def _skyhook_values(sha: str) -> str:
    return textwrap.dedent(f"""\
        packages:
          pinned:
            image: ghcr.io/nvidia/nodewright-packages/nvidia-setup
            version: "0.4.0"
            containerSHA: "{SHA_A}"
          unpinned:
            image: ghcr.io/nvidia/skyhook-packages/shellscript
            version: "1.1.1"
            containerSHA: "{sha}"
        """)


def test_skyhook_container_sha_is_the_digest_and_empty_means_unpinned() -> None:
    _, stream = render({"skyhook.yaml": SKYHOOK}, values=_skyhook_values(""))
    result = discover(stream, component=_component(), recipe="r")
    where = ("op/templates/skyhook.yaml", "Skyhook/op-system/tuning")
    assert found(result) == [
        (*where, "spec.packages.pinned.{image,version,containerSHA}", "fields",
         f"ghcr.io/nvidia/nodewright-packages/nvidia-setup:0.4.0@{SHA_A}"),
        (*where, "spec.packages.unpinned.{image,version,containerSHA}", "fields",
         "ghcr.io/nvidia/skyhook-packages/shellscript:1.1.1"),
    ]
    assert result.images[0].ref.pinned
    assert not result.images[1].ref.pinned
    assert result.rejected == ()


@pytest.mark.parametrize("sha", ["sha256:abc", "md5:0123", "SHA256:" + "a" * 64, "sha512:" + "a" * 128, "latest"])
def test_skyhook_container_sha_that_is_not_sha256_is_an_error(sha: str) -> None:
    _, stream = render({"skyhook.yaml": SKYHOOK}, values=_skyhook_values(sha))
    with pytest.raises(DiscoveryError) as info:
        discover(stream, component=_component(), recipe="r")
    error = info.value
    assert str(error) == (f"op/templates/skyhook.yaml: containerSHA {sha!r} at Skyhook/op-system/tuning "
                          "spec.packages.unpinned.{image,version,containerSHA} is not sha256:<64 lowercase hex "
                          "characters>")
    assert error.hint is not None and "containerSHA: sha256:<64 hex>" in error.hint


# ---- a Deployment with RELATED_IMAGE_* env and --image= args ---------------------------------

OPERATOR = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: operator
  namespace: {{ .Release.Namespace }}
spec:
  template:
    spec:
      containers:
        - name: operator
          image: nvcr.io/nvidia/gpu-operator:v26.3.2
          command: ["gpu-operator", "--image=nvcr.io/nvidia/cmd-image:1.0"]
          args:
            - --leader-elect
            - --image-pull-policy=IfNotPresent
            - --device-plugin-image=nvcr.io/nvidia/k8s-device-plugin:v0.17.4
            - --sidecar_image=ghcr.io/example/sidecar:2
            - --image=
          env:
            - name: RELATED_IMAGE_DRIVER
              value: "nvcr.io/nvidia/driver:580.95.05"
            - name: related_image_toolkit
              value: "nvcr.io/nvidia/k8s/container-toolkit:v1.17.8"
            - name: VALIDATOR_IMAGE
              value: "nvcr.io/nvidia/cloud-native/gpu-operator-validator:v26.3.2"
            - name: RELATED_IMAGE_VGPU
              value: vgpu-manager
            - name: RELATED_IMAGE_EMPTY
              value: ""
            - name: RELATED_IMAGE_FROM
              valueFrom:
                configMapKeyRef: {name: images, key: driver}
            - name: IMAGE_PULL_POLICY
              value: Always
            - name: CONFIG_PATH_IMAGE
              value: /etc/images
"""


def test_operator_env_and_args() -> None:
    _, stream = render({"operator.yaml": OPERATOR})
    result = discover(stream, component=_component(), recipe="r")
    container = "spec.template.spec.containers[0]"
    where = ("op/templates/operator.yaml", "Deployment/op-system/operator")
    assert found(result) == [
        (*where, f"{container}.image", "container", "nvcr.io/nvidia/gpu-operator:v26.3.2"),
        (*where, f"{container}.env[RELATED_IMAGE_DRIVER].value", "env", "nvcr.io/nvidia/driver:580.95.05"),
        (*where, f"{container}.env[related_image_toolkit].value", "env",
         "nvcr.io/nvidia/k8s/container-toolkit:v1.17.8"),
        (*where, f"{container}.env[VALIDATOR_IMAGE].value", "env",
         "nvcr.io/nvidia/cloud-native/gpu-operator-validator:v26.3.2"),
        (*where, f"{container}.args[2]", "arg", "nvcr.io/nvidia/k8s-device-plugin:v0.17.4"),
        (*where, f"{container}.args[3]", "arg", "ghcr.io/example/sidecar:2"),
        (*where, f"{container}.command[1]", "arg", "nvcr.io/nvidia/cmd-image:1.0"),
    ]
    assert refused(result) == [
        (f"{container}.env[RELATED_IMAGE_VGPU].value", "placeholder", "vgpu-manager"),
        (f"{container}.env[RELATED_IMAGE_EMPTY].value", "empty", ""),
        (f"{container}.env[CONFIG_PATH_IMAGE].value", "path", "/etc/images"),
        (f"{container}.args[4]", "empty", ""),
    ]


# ---- a CronJob, a List, init and ephemeral containers, pod templates in CRs ------------------

WORKLOADS = """\
apiVersion: batch/v1
kind: CronJob
metadata:
  name: snapshot
spec:
  schedule: "0 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          initContainers:
            - name: wait
              image: busybox:1.36
          containers:
            - name: snapshot
              image: ghcr.io/example/snapshot:1.0
---
apiVersion: v1
kind: List
items:
  - apiVersion: apps/v1
    kind: StatefulSet
    metadata:
      name: db
      namespace: data
    spec:
      template:
        spec:
          containers:
            - name: db
              image: docker.io/library/postgres:16.4
  - apiVersion: v1
    kind: Pod
    metadata:
      name: debug
    spec:
      containers:
        - name: main
          image: registry.k8s.io/pause:3.10
      ephemeralContainers:
        - name: shell
          image: busybox
      volumes:
        - name: model
          image:
            reference: ghcr.io/example/model-weights:v2
            pullPolicy: IfNotPresent
---
apiVersion: v1
kind: PodTemplate
metadata:
  name: tmpl
template:
  spec:
    containers:
      - name: t
        image: quay.io/example/tmpl:3
---
apiVersion: batch/v1
kind: Job
metadata:
  name: migrate
  annotations:
    example.dev/image: "not/an-image:from-metadata"
spec:
  template:
    spec:
      containers:
        - name: migrate
          image: "{{ "{{ .Values.image }}" }}"
---
apiVersion: trainer.kubeflow.org/v1alpha1
kind: ClusterTrainingRuntime
metadata:
  name: torch-distributed
spec:
  template:
    spec:
      replicatedJobs:
        - name: node
          template:
            spec:
              template:
                spec:
                  containers:
                    - name: node
                      image: pytorch/pytorch:2.7.1-cuda12.8-cudnn9-runtime
"""

CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: policies.example.dev
spec:
  group: example.dev
  versions:
    - name: v1
      schema:
        openAPIV3Schema:
          properties:
            image: {type: string, default: "nvcr.io/never/found:1"}
            containers:
              - image: "nvcr.io/never/found:2"
"""


def test_workload_kinds_lists_and_pod_templates_in_custom_resources() -> None:
    _, stream = render({"workloads.yaml": WORKLOADS})
    result = discover(stream, component=_component(), recipe="r")
    file = "op/templates/workloads.yaml"
    # Helm sorts the documents of a chart by kind: compare as sets of places.
    assert sorted(found(result)) == sorted([
        (file, "CronJob/snapshot", "spec.jobTemplate.spec.template.spec.initContainers[0].image",
         "container", "docker.io/library/busybox:1.36"),
        (file, "CronJob/snapshot", "spec.jobTemplate.spec.template.spec.containers[0].image", "container",
         "ghcr.io/example/snapshot:1.0"),
        (file, "StatefulSet/data/db", "items[0].spec.template.spec.containers[0].image", "container",
         "docker.io/library/postgres:16.4"),
        (file, "Pod/debug", "items[1].spec.containers[0].image", "container", "registry.k8s.io/pause:3.10"),
        # a bare name in a container is what Kubernetes pulls from Docker Hub: an image, not a placeholder
        (file, "Pod/debug", "items[1].spec.ephemeralContainers[0].image", "container", "docker.io/library/busybox"),
        (file, "Pod/debug", "items[1].spec.volumes[0].image.reference", "field", "ghcr.io/example/model-weights:v2"),
        (file, "PodTemplate/tmpl", "template.spec.containers[0].image", "container",
         "quay.io/example/tmpl:3"),
        (file, "ClusterTrainingRuntime/torch-distributed",
         "spec.template.spec.replicatedJobs[0].template.spec.template.spec.containers[0].image", "container",
         "docker.io/pytorch/pytorch:2.7.1-cuda12.8-cudnn9-runtime"),
    ])
    assert refused(result) == [("spec.template.spec.containers[0].image", "template", "{{ .Values.image }}")]
    assert str(result.rejected[0].resource) == "Job/migrate"


def test_crds_are_not_searched() -> None:
    stream = b"---\n# Source: op/crds/crd.yaml\n" + CRD.encode()
    assert discover(stream, component=_component(), recipe="r") == Discovery()


def test_documents_without_image_words_are_not_parsed() -> None:
    # Not YAML at all, but nothing in it mentions an image: skipped by the text pre-filter.
    stream = b"---\n# Source: op/templates/rbac.yaml\nkind: Role\nrules: [\n"
    assert discover(stream, component=_component(), recipe="r") == Discovery()


def test_a_document_that_is_not_yaml_is_an_error_naming_the_file() -> None:
    stream = b"---\n# Source: op/templates/bad.yaml\nkind: Pod\nspec: {containers: [{image: x}\n"
    with pytest.raises(DiscoveryError, match=r"^op/templates/bad.yaml: rendered document is not YAML"):
        discover(stream, component=_component(), recipe="r")


# ---- the helm.sh/images annotation ------------------------------------------------------------

ANNOTATED = """\
annotations:
  helm.sh/images: |
    - name: operator
      image: nvcr.io/nvidia/gpu-operator:v26.3.2
    - name: driver
      image: nvcr.io/nvidia/driver:580.95.05@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
    - name: licensed
      image: vgpu-manager
    - name: missing
"""


def chart_annotation_images(archive: bytes) -> tuple[AnnotatedImage, ...]:
    """What the build step does: fetch's reader takes Chart.yaml out of the archive, discover parses it."""
    top, meta = chart_yaml(archive)
    return annotation_images(meta, chart=top)


def test_chart_annotation_images() -> None:
    archive, stream = render({"operator.yaml": OPERATOR}, chart_yaml_extra=ANNOTATED)
    annotations = chart_annotation_images(archive)
    assert [(a.chart, a.index, a.name, a.image) for a in annotations] == [
        ("op", 0, "operator", "nvcr.io/nvidia/gpu-operator:v26.3.2"),
        ("op", 1, "driver", f"nvcr.io/nvidia/driver:580.95.05@{SHA_A}"),
        ("op", 2, "licensed", "vgpu-manager"),
        ("op", 3, "missing", ""),
    ]
    result = discover(stream, component=_component(), recipe="r", annotations=annotations)
    tail = [i for i in result.images if i.via is Via.ANNOTATION]
    assert found(Discovery(images=tuple(tail))) == [
        ("op/Chart.yaml", "Chart/op", 'annotations["helm.sh/images"][0].image', "annotation",
         "nvcr.io/nvidia/gpu-operator:v26.3.2"),
        ("op/Chart.yaml", "Chart/op", 'annotations["helm.sh/images"][1].image', "annotation",
         f"nvcr.io/nvidia/driver:580.95.05@{SHA_A}"),
    ]
    assert [r for r in refused(result) if r[0].startswith("annotations")] == [
        ('annotations["helm.sh/images"][2].image', "placeholder", "vgpu-manager"),
        ('annotations["helm.sh/images"][3].image', "empty", ""),
    ]


def test_chart_without_the_annotation_has_no_annotated_images() -> None:
    archive, _ = render({"operator.yaml": OPERATOR})
    assert chart_annotation_images(archive) == ()


@pytest.mark.parametrize(("extra", "why"), [
    ("annotations:\n  helm.sh/images: |\n    name: [unclosed\n", "is not YAML"),
    ("annotations:\n  helm.sh/images: |\n    name: x\n", "is not a list of mappings"),
    ("annotations:\n  helm.sh/images: |\n    - just-a-string\n", "is not a list of mappings"),
])
def test_malformed_annotation_is_an_error(extra: str, why: str) -> None:
    archive, _ = render({"operator.yaml": OPERATOR}, chart_yaml_extra=extra)
    with pytest.raises(DiscoveryError, match=why) as info:
        chart_annotation_images(archive)
    assert str(info.value).startswith("op/Chart.yaml: annotation 'helm.sh/images' in op/Chart.yaml")


# ---- origin: in-tree manifests and our values ------------------------------------------------

IN_TREE = b"""\
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: installer
  namespace: {{ .Release.Namespace }}
spec:
  template:
    spec:
      containers:
        - name: installer
          image: {{ index .Values "op" "installer" | quote }}
"""


def test_images_from_our_manifests_are_in_tree() -> None:
    manifest = "components/op/manifests/installer.yaml"
    ours = {"installer": "ghcr.io/example/installer:1.0"}
    _, stream = render({"operator.yaml": OPERATOR}, overrides=ours, manifests=((manifest, IN_TREE),))
    result = discover(stream, component=_component(ours, manifests=(manifest,)), recipe="r")
    origins = {(i.file, str(i.ref)): i.origin for i in result.images}
    assert origins[(manifest, "ghcr.io/example/installer:1.0")] is Origin.IN_TREE
    assert {o for (file, _), o in origins.items() if file != manifest} == {Origin.CHART_DEFAULT}
    installer = next(i for i in result.images if i.file == manifest)
    assert installer.set_by == (("installer",),)
    assert installer.recipe == "r" and installer.component == "op"


# ---- classification ----------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "bare_ok", "expected"), [
    ("nvcr.io/nvidia/driver:580", False, "nvcr.io/nvidia/driver:580"),
    ("nvcr.io/nvidia/driver", False, "nvcr.io/nvidia/driver"),
    ("localhost:5000/app", False, "localhost:5000/app"),
    ("driver:580", False, "docker.io/library/driver:580"),
    (f"driver@{SHA_A}", False, f"docker.io/library/driver@{SHA_A}"),
    ("busybox", True, "docker.io/library/busybox"),
    ("busybox", False, RejectReason.PLACEHOLDER),
    ("nvidia/driver", False, RejectReason.PLACEHOLDER),
    ("", False, RejectReason.EMPTY),
    ("  ", True, RejectReason.EMPTY),
    ("{{ .Values.image }}", True, RejectReason.TEMPLATE),
    ("${IMAGE}", False, RejectReason.TEMPLATE),
    ("/usr/bin/x", True, RejectReason.PATH),
    ("./bin/x", False, RejectReason.PATH),
    ("oci://ghcr.io/x/y:1", False, RejectReason.URL),
    ("https://example.com/x", True, RejectReason.URL),
    ("Not An Image", True, RejectReason.INVALID),
])
def test_classify(text: str, bare_ok: bool, expected: str | RejectReason) -> None:
    outcome = classify(text, bare_ok=bare_ok)
    if isinstance(expected, RejectReason):
        assert not isinstance(outcome, ImageRef)
        assert outcome[0] is expected
        assert outcome[1]
    else:
        assert isinstance(outcome, ImageRef)
        assert str(outcome) == expected


def test_discovery_is_deterministic() -> None:
    _, stream = render({"clusterpolicy.yaml": CLUSTER_POLICY, "operator.yaml": OPERATOR, "w.yaml": WORKLOADS},
                       values=CLUSTER_POLICY_VALUES)
    first = discover(stream, component=_component({"driver": {"version": "570.172.08"}}), recipe="r")
    second = discover(stream, component=_component({"driver": {"version": "570.172.08"}}), recipe="r")
    assert first == second
    assert all(i.via in Via for i in first.images)
