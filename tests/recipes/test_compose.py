"""Composition: matching, chains, mixins, values precedence, ordering — on a tiny catalog and on AICR's."""

from __future__ import annotations

import functools
import json
import pickle
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pipeline.errors import RecipeError
from pipeline.recipes import (
    Catalog,
    ChartRef,
    Component,
    ComponentType,
    Criteria,
    Recipe,
    RecipeQuery,
    catalog_recipes,
    compose,
    load_catalog,
)
from pipeline.recipes.compose import deep_merge
from tests.recipes.catalogs import FILES, assert_located, line_of, write_catalog


def edit(path: str, old: str, new: str) -> dict[str, str]:
    assert old in FILES[path], (path, old)
    return {path: FILES[path].replace(old, new, 1)}


def query(name: str = "q", **criteria: str) -> RecipeQuery:
    return RecipeQuery(name=name, criteria=Criteria(**criteria))


@pytest.fixture
def tiny(tmp_path: Path) -> Catalog:
    return load_catalog(write_catalog(tmp_path))


# --------------------------------------------------------------------------------------------
# The tiny catalog (tests/recipes/catalogs.py), rule by rule
# --------------------------------------------------------------------------------------------


def test_compose_full_chain_with_mixin(tiny: Catalog) -> None:
    recipe = compose(tiny, query("svc-train", service="svc", intent="training"))

    assert recipe.name == "svc-train"
    assert recipe.catalog == tiny.root
    assert recipe.criteria == Criteria(service="svc", intent="training")
    # svc matches too, but it is an ancestor of svc-train, so it is merged once, inside the chain.
    assert recipe.overlays == ("base", "svc", "svc-train")
    assert recipe.mixins == ("extra",)
    assert recipe.constraints == {"K8s.server.version": ">= 1.28", "OS.release.ID": "ubuntu"}
    assert recipe.disabled == ()
    assert [c.name for c in recipe.components] == [
        "alpha",
        "beta",
        "delta",
        "gamma",
    ]  # deps first, then by name

    alpha = recipe.component("alpha")
    # registry defaults; the version set by svc-train wins; alias prefix 'example/' stripped.
    assert alpha.chart == ChartRef(
        repository="https://charts.example.com/stable", name="alpha", version="1.1.0"
    )
    assert (alpha.type, alpha.namespace) == (ComponentType.HELM, "alpha-system")
    # svc-train's values file layers on components/alpha/values.yaml; the overrides of *both*
    # overlays beat both files (tag "2.0" from svc beats "1.5" from the later values file).
    assert alpha.values_files == ("components/alpha/values.yaml", "components/alpha/values-train.yaml")
    assert alpha.overrides_from == ("overlays/svc.yaml", "overlays/svc-train.yaml")
    assert alpha.values == {
        "image": {"repository": "example/alpha", "tag": "2.0", "pullPolicy": "Always"},
        "list": ["c"],  # lists replace
        "drop": None,  # null is kept for Helm to delete
        "keep": True,
        "train": True,
    }
    assert alpha.origin_files == ("overlays/base.yaml", "overlays/svc.yaml", "overlays/svc-train.yaml")

    beta = recipe.component("beta")
    assert beta.chart == ChartRef(
        repository="oci://registry.example.com/charts", name="beta-chart", version="v2.0.0"
    )
    assert beta.dependency_refs == ("alpha",)

    delta = recipe.component("delta")  # from the mixin: a chart directory inside the catalog
    assert delta.chart == ChartRef(repository="./charts", name="delta", version="0.1.0")
    assert delta.chart.is_local
    assert (delta.values, delta.origin_files) == ({"size": "small"}, ("mixins/extra.yaml",))

    gamma = recipe.component("gamma")  # manifest-only; the mixin may add a namespace and pre-manifests
    assert gamma.chart is None
    assert gamma.namespace == "gamma-privileged"
    assert gamma.manifest_files == ("components/gamma/manifests/configmap.yaml",)
    assert gamma.pre_manifest_files == ("components/gamma/manifests/namespace.yaml",)
    assert (gamma.values, gamma.values_files, gamma.dependency_refs) == ({}, (), ("beta",))
    assert gamma.origin_files == ("overlays/svc.yaml", "mixins/extra.yaml")

    assert recipe.input_files == (
        "components/alpha/values-train.yaml",
        "components/alpha/values.yaml",
        "components/beta/values.yaml",
        "components/delta/values.yaml",
        "components/gamma/manifests/configmap.yaml",
        "components/gamma/manifests/namespace.yaml",
        "mixins/extra.yaml",
        "overlays/base.yaml",
        "overlays/svc-train.yaml",
        "overlays/svc.yaml",
        "registry.yaml",
    )
    assert (recipe.kube_version, recipe.api_versions) == (
        "1.33.0",
        ("resource.k8s.io/v1", "resource.k8s.io/v1beta1"),
    )


@pytest.mark.parametrize(
    ("criteria", "overlays"),
    [
        ({}, ("base",)),  # a query of all-any matches only all-any overlays
        ({"service": "svc"}, ("base", "svc")),  # svc-train needs intent=training: no match
        ({"accelerator": "x1"}, ("base", "acc-any")),  # service 'any' matches an absent query service
        ({"service": "svc", "accelerator": "x1"}, ("base", "acc-any", "svc")),  # both specificity 1: by name
        ({"service": "SVC", "accelerator": " X1 "}, ("base", "acc-any", "svc")),  # case-insensitive
        ({"service": "any", "accelerator": "x1"}, ("base", "acc-any")),  # 'any' is no value
        (
            {"service": "svc", "intent": "training", "accelerator": "x1"},
            ("base", "acc-any", "svc", "svc-train"),
        ),
    ],
)
def test_matching_is_asymmetric(tiny: Catalog, criteria: dict[str, str], overlays: tuple[str, ...]) -> None:
    assert compose(tiny, query(**criteria)).overlays == overlays


def test_more_specific_leaves_merge_later(tmp_path: Path) -> None:
    """acc-any (specificity 1) merges before svc-train (2): svc-train's beta override wins."""
    files = edit(
        "overlays/svc-train.yaml",
        "  componentRefs:\n",
        "  componentRefs:\n    - name: beta\n      overrides: {replicas: 3}\n",
    )
    catalog = load_catalog(write_catalog(tmp_path, files=files))
    recipe = compose(catalog, query(service="svc", intent="training", accelerator="x1"))
    assert recipe.overlays == ("base", "acc-any", "svc", "svc-train")
    assert recipe.component("beta").values == {"replicas": 3}
    assert recipe.component("beta").overrides_from == ("overlays/acc-any.yaml", "overlays/svc-train.yaml")


def test_values_file_equal_to_the_default_is_read_once(tiny: Catalog) -> None:
    beta = compose(tiny, query(service="svc")).component("beta")
    assert beta.values_files == ("components/beta/values.yaml",)
    assert beta.values == {"replicas": 1}


def test_component_switched_off_by_an_override(tmp_path: Path) -> None:
    files = edit(
        "overlays/svc.yaml",
        "  componentRefs:\n",
        "  componentRefs:\n    - name: beta\n      overrides:\n        enabled: false\n",
    )
    recipe = compose(load_catalog(write_catalog(tmp_path, files=files)), query(service="svc"))
    assert recipe.disabled == ("beta",)
    assert [c.name for c in recipe.components] == ["alpha", "gamma"]
    assert recipe.component("gamma").dependency_refs == ()  # an edge to a disabled component is satisfied
    assert "components/beta/values.yaml" not in recipe.input_files
    with pytest.raises(KeyError):
        recipe.component("beta")


def test_enabled_true_is_kept_as_a_value(tmp_path: Path) -> None:
    files = edit("overlays/svc.yaml", "        list: [c]\n", "        list: [c]\n        enabled: true\n")
    recipe = compose(load_catalog(write_catalog(tmp_path, files=files)), query(service="svc"))
    assert recipe.component("alpha").values["enabled"] is True


def test_kustomize_component_has_no_chart(tmp_path: Path) -> None:
    files = edit(
        "overlays/svc.yaml",
        "  componentRefs:\n",
        "  componentRefs:\n    - name: epsilon\n      namespace: eps\n",
    )
    epsilon = compose(load_catalog(write_catalog(tmp_path, files=files)), query(service="svc")).component(
        "epsilon"
    )
    assert (epsilon.type, epsilon.chart, epsilon.namespace) == (ComponentType.KUSTOMIZE, None, "eps")


def test_overlay_source_chart_and_namespace_win_over_the_registry(tmp_path: Path) -> None:
    files = edit(
        "overlays/svc-train.yaml",
        "      version: 1.1.0\n",
        "      version: 1.1.0\n      source: oci://mirror.example.com/x\n      chart: alpha-ng\n"
        "      namespace: elsewhere\n",
    )
    alpha = compose(
        load_catalog(write_catalog(tmp_path, files=files)), query(service="svc", intent="training")
    ).component("alpha")
    assert alpha.chart == ChartRef(repository="oci://mirror.example.com/x", name="alpha-ng", version="1.1.0")
    assert alpha.namespace == "elsewhere"


def test_registry_manifest_files_are_the_default(tmp_path: Path) -> None:
    files = edit(
        "registry.yaml",
        "      defaultNamespace: gamma-system\n",
        "      defaultNamespace: gamma-system\n"
        "    manifestFiles: [components/gamma/manifests/namespace.yaml]\n",
    )
    files |= edit(
        "overlays/svc.yaml", "      manifestFiles:\n        - components/gamma/manifests/configmap.yaml\n", ""
    )
    gamma = compose(load_catalog(write_catalog(tmp_path, files=files)), query(service="svc")).component(
        "gamma"
    )
    assert gamma.manifest_files == ("components/gamma/manifests/namespace.yaml",)


def test_manifest_files_and_dependencies_are_unioned_along_the_chain(tmp_path: Path) -> None:
    files = edit(
        "overlays/svc-train.yaml",
        "  componentRefs:\n",
        "  componentRefs:\n    - name: gamma\n      manifestFiles:\n"
        "        - components/gamma/manifests/namespace.yaml\n"
        "        - components/gamma/manifests/configmap.yaml\n      dependencyRefs: [alpha, beta]\n",
    )
    files |= edit(
        "mixins/extra.yaml",
        "      preManifestFiles:\n        - components/gamma/manifests/namespace.yaml\n",
        "",
    )
    gamma = compose(
        load_catalog(write_catalog(tmp_path, files=files)), query(service="svc", intent="training")
    ).component("gamma")
    assert gamma.manifest_files == (
        "components/gamma/manifests/configmap.yaml",
        "components/gamma/manifests/namespace.yaml",
    )
    assert gamma.dependency_refs == ("beta", "alpha")


def test_config_sets_engine_options_and_is_an_input(tmp_path: Path) -> None:
    config = (
        "apiVersion: pipeline.recipes.dev/v1\nkind: PipelineConfig\nspec:\n  kubeVersion: '1.34.0'\n"
        "  apiVersions: [v1]\n"
    )
    recipe = compose(
        load_catalog(write_catalog(tmp_path, files={"pipeline.yaml": config})), query(service="svc")
    )
    assert (recipe.kube_version, recipe.api_versions) == ("1.34.0", ("v1",))
    # Not the file (its mirrors and registries change no byte): its render-relevant parts.
    assert "pipeline.yaml" not in recipe.input_files
    assert recipe.config_inputs == {"spec.kubeVersion": "1.34.0", "spec.apiVersions": ["v1"]}


def test_default_recipes_are_the_leaf_overlays(tiny: Catalog) -> None:
    assert catalog_recipes(tiny) == (
        RecipeQuery(name="acc-any", criteria=Criteria(accelerator="x1")),
        RecipeQuery(name="svc-train", criteria=Criteria(service="svc", intent="training")),
    )


def test_configured_recipes_replace_the_default(tmp_path: Path) -> None:
    config = (
        "apiVersion: pipeline.recipes.dev/v1\nkind: PipelineConfig\nspec:\n  recipes:\n"
        "    - name: plain-svc\n      criteria: {service: svc}\n"
    )
    catalog = load_catalog(write_catalog(tmp_path, files={"pipeline.yaml": config}))
    assert catalog_recipes(catalog) == (RecipeQuery(name="plain-svc", criteria=Criteria(service="svc")),)


def test_recipe_is_deterministic_picklable_and_json_serialisable(tiny: Catalog) -> None:
    first = compose(tiny, query(service="svc", intent="training"))
    again = compose(tiny, query(service="svc", intent="training"))
    assert first == again
    assert pickle.loads(pickle.dumps(first)) == first
    json.dumps([dict(c.values) for c in first.components], sort_keys=True)


def test_component_values_do_not_alias_the_catalog(tiny: Catalog) -> None:
    recipe = compose(tiny, query(service="svc", intent="training"))
    values: Any = recipe.component("alpha").values
    values["image"]["tag"] = "mutated"
    values["list"].append("x")
    assert (
        compose(tiny, query(service="svc", intent="training")).component("alpha").values["image"]["tag"]
        == "2.0"
    )
    assert tiny.values["components/alpha/values.yaml"]["list"] == ["a", "b"]


def test_deep_merge() -> None:
    base = {"a": {"b": 1, "c": [1]}, "d": 1}
    top = {"a": {"c": [2], "e": None}, "d": {"x": 1}}
    assert deep_merge(base, top) == {"a": {"b": 1, "c": [2], "e": None}, "d": {"x": 1}}
    assert base == {"a": {"b": 1, "c": [1]}, "d": 1}  # inputs untouched


# --------------------------------------------------------------------------------------------
# Every composition error, pinned: message, file, line, hint
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    criteria: dict[str, str]
    message: str
    path: str | None
    line: int | str | None  # a str is a marker: the line of `path` that contains it
    hint: str
    files: dict[str, str] = field(default_factory=dict)
    drop: tuple[str, ...] = ()


SVC_TRAIN = {"service": "svc", "intent": "training"}
CASES = [
    Case(
        "query-unknown-value",
        {"service": "svcc"},
        "recipe 'q': service 'svcc' is not used by any overlay",
        None,
        None,
        "use one of: svc (or leave service unset to match any)",
    ),
    Case(
        "mixin-constraint-conflict",
        SVC_TRAIN,
        "recipe 'q': mixin 'extra' constraint 'OS.release.ID' conflicts with the one in "
        "overlays/svc-train.yaml:11",
        "mixins/extra.yaml",
        "- name: OS.release.ID",
        "a mixin may not redefine a constraint",
        files=edit(
            "overlays/svc-train.yaml",
            "  mixins:\n",
            "  constraints:\n    - name: OS.release.ID\n      value: rhel\n  mixins:\n",
        ),
    ),
    Case(
        "mixin-component-conflict",
        SVC_TRAIN,
        "recipe 'q': mixin 'extra' sets 'type' on component 'gamma', which the overlay chain already "
        "declares "
        f"(overlays/svc.yaml:{line_of(FILES['overlays/svc.yaml'], '- name: gamma')})",
        "mixins/extra.yaml",
        "type: Helm  # conflict",
        "a mixin may only add namespace, manifestFiles, preManifestFiles to a component an overlay declares; "
        "set 'type' in an overlay instead",
        files=edit(
            "mixins/extra.yaml",
            "      namespace: gamma-privileged\n",
            "      namespace: gamma-privileged\n      version: 9.9.9\n      type: Helm  # conflict\n",
        ),
    ),
    Case(
        "dependency-unknown",
        {"service": "svc"},
        "recipe 'q': component 'gamma' depends on 'epsilon', which the recipe does not include",
        "overlays/svc.yaml",
        "dependencyRefs:",
        "add 'epsilon' to an overlay or mixin, or drop it from dependencyRefs",
        files=edit("overlays/svc.yaml", "        - beta\n", "        - beta\n        - epsilon\n"),
    ),
    Case(
        "dependency-cycle",
        {"service": "svc"},
        "recipe 'q': dependency cycle alpha -> gamma -> beta -> alpha",
        "overlays/svc.yaml",
        "dependencyRefs: [gamma]",
        "remove one of these dependencyRefs",
        files=edit(
            "overlays/svc.yaml", "        drop: null\n", "        drop: null\n      dependencyRefs: [gamma]\n"
        ),
    ),
    Case(
        "no-version",
        {"service": "svc"},
        "recipe 'q': component 'alpha': chart from 'https://charts.example.com/stable' has no version",
        "overlays/base.yaml",
        "- name: alpha",
        "pin it: 'version:' on the componentRef or helm.defaultVersion",
        files=edit("registry.yaml", "      defaultVersion: 1.0.0\n", ""),
    ),
    Case(
        "no-namespace",
        {"service": "svc"},
        "recipe 'q': component 'gamma' has no namespace",
        "overlays/svc.yaml",
        "- name: gamma",
        "set helm.defaultNamespace in registry.yaml or 'namespace:' on the componentRef",
        files=edit("registry.yaml", "      defaultNamespace: gamma-system\n", ""),
    ),
    Case(
        "nothing-to-deploy",
        {"service": "svc"},
        "recipe 'q': component 'gamma' has nothing to deploy: no chart repository and no manifestFiles",
        "overlays/svc.yaml",
        "- name: gamma",
        "set helm.defaultRepository in registry.yaml, or list manifestFiles",
        files=edit(
            "overlays/svc.yaml",
            "      manifestFiles:\n        - components/gamma/manifests/configmap.yaml\n",
            "",
        ),
    ),
    Case(
        "chart-without-source",
        {"service": "svc"},
        "recipe 'q': component 'gamma': chart 'gamma-chart' has no source repository",
        "overlays/svc.yaml",
        "- name: gamma",
        "set 'source:' (or helm.defaultRepository), or drop 'chart:'",
        files=edit(
            "overlays/svc.yaml", "      manifestFiles:\n", "      chart: gamma-chart\n      manifestFiles:\n"
        ),
    ),
    Case(
        "local-chart-directory-missing",
        SVC_TRAIN,
        "recipe 'q': component 'delta': local chart directory './charts' not found",
        "registry.yaml",
        "defaultRepository: ./charts",
        "create the directory (relative to the catalog root)",
        drop=("charts/delta/Chart.yaml",),
    ),
    Case(
        "repository-not-a-url",
        SVC_TRAIN,
        "recipe 'q': component 'alpha': chart repository 'ftp://example.com/charts' is neither an "
        "http(s):// or "
        "oci:// URL nor a directory inside the catalog",
        "overlays/svc-train.yaml",
        "source:",
        "use https://…, oci://… or a catalog-relative directory",
        files=edit(
            "overlays/svc-train.yaml",
            "      version: 1.1.0\n",
            "      version: 1.1.0\n      source: ftp://example.com/charts\n",
        ),
    ),
    Case(
        "repository-outside-catalog",
        SVC_TRAIN,
        "recipe 'q': component 'alpha': chart repository '../charts' is neither",
        "overlays/svc-train.yaml",
        "source:",
        "catalog-relative directory",
        files=edit(
            "overlays/svc-train.yaml",
            "      version: 1.1.0\n",
            "      version: 1.1.0\n      source: ../charts\n",
        ),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_compose_errors(tmp_path: Path, case: Case) -> None:
    root = write_catalog(tmp_path, files=case.files, drop=case.drop)
    catalog = load_catalog(root)
    with pytest.raises(RecipeError) as info:
        compose(catalog, query(**case.criteria))
    err = info.value
    assert case.message in err.message
    assert_located(err, root, case.path, case.line)
    assert err.hint is not None
    assert case.hint in err.hint


def test_every_case_id_is_unique() -> None:
    assert len({c.id for c in CASES}) == len(CASES)


# --------------------------------------------------------------------------------------------
# The real AICR catalog (../shared/aicr/recipes)
# --------------------------------------------------------------------------------------------


@functools.cache
def _aicr(root: Path) -> Catalog:
    return load_catalog(root)


def _aicr_query(catalog: Catalog, overlay: str) -> RecipeQuery:
    """A query for an overlay's own criteria, named after it (what a default recipe is)."""
    criteria = catalog.overlays[overlay].criteria
    assert criteria is not None
    return RecipeQuery(name=overlay, criteria=criteria)


PROMETHEUS_CHARTS = "https://prometheus-community.github.io/helm-charts"
NGC_CHARTS = "https://helm.ngc.nvidia.com/nvidia"
#: Registry defaults, copied by hand from registry.yaml (defaultRepository, the last path segment
#: of defaultChart, defaultVersion, defaultNamespace). base.yaml's `source`/`version` repeat them.
CHARTS: dict[str, tuple[str | None, str | None, str | None, str]] = {
    "nfd": (
        "https://kubernetes-sigs.github.io/node-feature-discovery/charts",
        "node-feature-discovery",
        "0.18.3",
        "node-feature-discovery",
    ),
    "cert-manager": ("https://charts.jetstack.io", "cert-manager", "v1.20.2", "cert-manager"),
    "gpu-operator": (NGC_CHARTS, "gpu-operator", "v26.3.2", "gpu-operator"),
    "nvsentinel": ("oci://ghcr.io/nvidia", "nvsentinel", "v1.9.0", "nvsentinel"),
    "nodewright-operator": ("oci://ghcr.io/nvidia/nodewright/charts", "nodewright", "v0.17.1", "skyhook"),
    "prometheus-operator-crds": (PROMETHEUS_CHARTS, "prometheus-operator-crds", "28.0.1", "monitoring"),
    "kube-prometheus-stack": (PROMETHEUS_CHARTS, "kube-prometheus-stack", "84.4.0", "monitoring"),
    "k8s-ephemeral-storage-metrics": (
        "https://jmcgrath207.github.io/k8s-ephemeral-storage-metrics/chart",
        "k8s-ephemeral-storage-metrics",
        "1.19.2",
        "monitoring",
    ),
    "nvidia-dra-driver-gpu": (
        "oci://registry.k8s.io/dra-driver-nvidia/charts",
        "dra-driver-nvidia-gpu",
        "0.4.1",
        "nvidia-dra-driver",
    ),
    "kai-scheduler": (
        "oci://ghcr.io/kai-scheduler/kai-scheduler",
        "kai-scheduler",
        "v0.14.1",
        "kai-scheduler",
    ),
    "prometheus-adapter": (PROMETHEUS_CHARTS, "prometheus-adapter", "5.3.0", "monitoring"),
    "aws-ebs-csi-driver": (
        "https://kubernetes-sigs.github.io/aws-ebs-csi-driver",
        "aws-ebs-csi-driver",
        "2.59.0",
        "kube-system",
    ),
    "aws-efa": ("https://aws.github.io/eks-charts", "aws-efa-k8s-device-plugin", "v0.5.29", "kube-system"),
    "network-operator": (NGC_CHARTS, "network-operator", "26.1.1", "nvidia-network-operator"),
    "kubeflow-trainer": ("oci://ghcr.io/kubeflow/charts", "kubeflow-trainer", "2.2.0", "kubeflow"),
    "grove": ("oci://ghcr.io/ai-dynamo/grove", "grove-charts", "v0.1.0-alpha.8", "dynamo-system"),
    "dynamo-platform": (
        "https://helm.ngc.nvidia.com/nvidia/ai-dynamo",
        "dynamo-platform",
        "1.2.1",
        "dynamo-system",
    ),
    "agentgateway-crds": (
        "oci://cr.agentgateway.dev/charts",
        "agentgateway-crds",
        "v2.2.1",
        "agentgateway-system",
    ),
    "agentgateway": ("oci://cr.agentgateway.dev/charts", "agentgateway", "v2.2.1", "agentgateway-system"),
    # manifest-only (defaultRepository: ""): no chart
    "nodewright-customizations": (None, None, None, "skyhook"),
    "nfd-ocp-olm": (None, None, None, "openshift-nfd"),
    "nfd-ocp": (None, None, None, "openshift-nfd"),
    "gpu-operator-ocp-olm": (None, None, None, "gpu-operator"),
    "gpu-operator-ocp": (None, None, None, "gpu-operator"),
    "network-operator-ocp-olm": (None, None, None, "nvidia-network-operator"),
    "network-operator-ocp": (None, None, None, "nvidia-network-operator"),
}
BASE_COMPONENTS = {  # overlays/base.yaml, every one with valuesFile components/<name>/values.yaml
    "nfd",
    "cert-manager",
    "gpu-operator",
    "nvsentinel",
    "nodewright-operator",
    "prometheus-operator-crds",
    "kube-prometheus-stack",
    "k8s-ephemeral-storage-metrics",
    "nvidia-dra-driver-gpu",
    "kai-scheduler",
}
UBUNTU = {
    "OS.release.ID": "ubuntu",
    "OS.release.VERSION_ID": "24.04",
    "OS.sysctl./proc/sys/kernel/osrelease": ">= 6.8",
}
#: h100-eks-ubuntu-training: its overlay chain, its components, and gpu-operator's values files
#: (eks-training's values-eks-training.yaml layered on values.yaml); its kubeflow leaf extends all three.
EKS_TRAINING_CHAIN = (
    "base",
    "monitoring-hpa",
    "h100-any",
    "eks",
    "eks-training",
    "h100-eks-training",
    "h100-eks-ubuntu-training",
)
EKS_TRAINING_COMPONENTS = BASE_COMPONENTS | {"prometheus-adapter", "aws-ebs-csi-driver", "aws-efa",
                                             "nodewright-customizations"}
EKS_TRAINING_VALUES: dict[str, tuple[str, ...]] = {
    "gpu-operator": ("components/gpu-operator/values.yaml", "components/gpu-operator/values-eks-training.yaml"),
}


def _check_components(recipe: Recipe, names: set[str], values_files: dict[str, tuple[str, ...]]) -> None:
    """Names, charts and namespaces from CHARTS; values files default to (components/<n>/values.yaml,)."""
    assert {c.name for c in recipe.components} == names
    for comp in recipe.components:
        repository, chart, version, namespace = CHARTS[comp.name]
        expected = (
            ChartRef(repository=repository, name=chart, version=version)
            if repository and chart and version
            else None
        )
        assert (comp.name, comp.chart, comp.namespace) == (comp.name, expected, namespace)
        default = (
            ()
            if repository is None and comp.name == "nodewright-customizations"
            else (f"components/{comp.name}/values.yaml",)
        )
        assert (comp.name, comp.values_files) == (comp.name, values_files.get(comp.name, default))


@pytest.mark.shared
def test_aicr_catalog_loads_and_every_recipe_composes_quickly(aicr_catalog: Path) -> None:
    started = time.perf_counter()
    catalog = load_catalog(aicr_catalog)
    overlays = [name for name, o in catalog.overlays.items() if o.criteria is not None]
    recipes = [compose(catalog, _aicr_query(catalog, name)) for name in overlays]
    defaults = [compose(catalog, q) for q in catalog_recipes(catalog)]
    elapsed = time.perf_counter() - started

    assert len(catalog.overlays) == 98
    assert len(catalog.mixins) == 4
    assert len(catalog.registry.components) == 33
    assert len(recipes) == 97  # every overlay but base, queried with its own criteria
    assert len(defaults) == 43  # the leaf overlays
    assert all(r.components for r in recipes)
    assert elapsed < 3.0, f"loading and composing the AICR catalog took {elapsed:.2f}s"  # ~0.3 s here
    for recipe in defaults:  # every value tree is plain data
        json.dumps([dict(c.values) for c in recipe.components])


@pytest.mark.shared
def test_aicr_h100_eks_ubuntu_training(aicr_catalog: Path) -> None:
    """h100-eks-ubuntu-training, derived by hand.

    Matching overlays for {service: eks, accelerator: h100, os: ubuntu, intent: training}: eks,
    eks-training, h100-eks-training, h100-eks-ubuntu-training (all their fields equal the query),
    h100-any (service any + h100) and monitoring-hpa (intent any). The first three are ancestors of
    h100-eks-ubuntu-training, so the leaves are monitoring-hpa (specificity 0), h100-any (1) and
    h100-eks-ubuntu-training (4), merged in that order; the leaf's chain is eks → eks-training →
    h100-eks-training → h100-eks-ubuntu-training. Only h100-eks-ubuntu-training names a mixin
    (os-ubuntu). Components: base's 10, prometheus-adapter (monitoring-hpa), aws-ebs-csi-driver and
    aws-efa (eks), nodewright-customizations (h100-eks-training). gpu-operator's valuesFile is
    replaced by eks-training's values-eks-training.yaml, which layers on values.yaml. The last
    K8s.server.version is the leaf's '>= 1.32.4'. The order is Kahn's over dependencyRefs with the
    smallest ready name first (base: kps → prometheus-operator-crds; gpu-operator → nfd,
    cert-manager, kps, + nodewright-customizations from h100-eks-training; …).
    """
    catalog = _aicr(aicr_catalog)
    recipe = compose(catalog, _aicr_query(catalog, "h100-eks-ubuntu-training"))
    assert recipe.overlays == EKS_TRAINING_CHAIN
    assert recipe.mixins == ("os-ubuntu",)
    assert recipe.constraints == {"K8s.server.version": ">= 1.32.4", **UBUNTU}
    assert [c.name for c in recipe.components] == [
        "aws-ebs-csi-driver",
        "aws-efa",
        "cert-manager",
        "nfd",
        "nodewright-operator",
        "nodewright-customizations",
        "prometheus-operator-crds",
        "kube-prometheus-stack",
        "gpu-operator",
        "k8s-ephemeral-storage-metrics",
        "kai-scheduler",
        "nvidia-dra-driver-gpu",
        "nvsentinel",
        "prometheus-adapter",
    ]
    _check_components(recipe, EKS_TRAINING_COMPONENTS, EKS_TRAINING_VALUES)
    gpu = recipe.component("gpu-operator")
    assert gpu.dependency_refs == (
        "nfd",
        "cert-manager",
        "kube-prometheus-stack",
        "nodewright-customizations",
    )
    assert gpu.overrides_from == ("overlays/h100-eks-training.yaml",)
    # values.yaml (fullnameOverride, gdrcopy) + values-eks-training.yaml (cdi) + the h100-eks-training
    # overrides (cdi.enabled, gdrcopy.enabled): files layer, overrides win.
    assert gpu.values["fullnameOverride"] == "gpu-operator"
    assert gpu.values["cdi"] == {"enabled": True, "default": False}
    assert gpu.values["gdrcopy"] == {"enabled": True}
    # eks.yaml's override of kube-prometheus-stack: emptyDir (from values.yaml) nulled, a PVC added.
    kps = recipe.component("kube-prometheus-stack")
    assert kps.overrides_from == ("overlays/eks.yaml",)
    assert kps.values["prometheus"]["prometheusSpec"]["storageSpec"] == {
        "emptyDir": None,
        "volumeClaimTemplate": {
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "50Gi"}}},
        },
    }
    dra = recipe.component("nvidia-dra-driver-gpu")
    assert dra.values["controller"]["affinity"] == {"nodeAffinity": None}
    custom = recipe.component("nodewright-customizations")
    assert custom.manifest_files == ("components/nodewright-customizations/manifests/tuning.yaml",)
    assert custom.values == {"service": "eks", "accelerator": "h100", "intent": "multiNodeTraining"}
    assert custom.dependency_refs == ("nodewright-operator",)
    assert (
        "overlays/eks-training.yaml" in recipe.input_files
    )
    assert (
        "mixins/os-ubuntu.yaml" in recipe.input_files
    )


@pytest.mark.shared
def test_aicr_h100_eks_ubuntu_training_kubeflow(aicr_catalog: Path) -> None:
    """h100-eks-ubuntu-training-kubeflow, derived by hand.

    As h100-eks-ubuntu-training plus platform: kubeflow, so h100-eks-ubuntu-training-kubeflow (5)
    matches and h100-eks-ubuntu-training becomes its ancestor. Mixins accumulate in chain order:
    os-ubuntu (h100-eks-ubuntu-training, named again by the leaf) then platform-kubeflow, which
    adds kubeflow-trainer (registry chart, values.yaml, one manifest, three dependencies).
    """
    catalog = _aicr(aicr_catalog)
    recipe = compose(catalog, _aicr_query(catalog, "h100-eks-ubuntu-training-kubeflow"))
    assert recipe.overlays == (*EKS_TRAINING_CHAIN, "h100-eks-ubuntu-training-kubeflow")
    assert recipe.mixins == ("os-ubuntu", "platform-kubeflow")
    _check_components(recipe, EKS_TRAINING_COMPONENTS | {"kubeflow-trainer"}, EKS_TRAINING_VALUES)
    trainer = recipe.component("kubeflow-trainer")
    assert trainer.manifest_files == (
        "components/kubeflow-trainer/manifests/torch-distributed-cluster-training-runtime.yaml",
    )
    assert trainer.dependency_refs == ("cert-manager", "kube-prometheus-stack", "gpu-operator")
    assert trainer.origin_files == ("mixins/platform-kubeflow.yaml",)
    assert [c.name for c in recipe.components][-1] == "prometheus-adapter"


@pytest.mark.shared
def test_aicr_gb200_oke_ubuntu_inference_dynamo(aicr_catalog: Path) -> None:
    """gb200-oke-ubuntu-inference-dynamo, derived by hand.

    Matches: the leaf (5), its parent gb200-oke-ubuntu-inference (4, an ancestor: dropped),
    gb200-any (1) and monitoring-hpa (0). gb200-oke-inference and the oke-ol overlays say os: ol,
    so they do not match, but they are in the leaf's chain: oke-ol → oke-ol-inference →
    gb200-oke-inference → gb200-oke-ubuntu-inference → leaf. Mixins in chain order:
    platform-inference (oke-ol-inference: agentgateway-crds, agentgateway), os-ubuntu. oke-ol picks
    values-oke.yaml for gpu-operator and nvidia-dra-driver-gpu. The leaf adds grove and
    dynamo-platform and sets K8s.server.version '>= 1.34'.
    """
    catalog = _aicr(aicr_catalog)
    recipe = compose(catalog, _aicr_query(catalog, "gb200-oke-ubuntu-inference-dynamo"))
    assert recipe.overlays == (
        "base",
        "monitoring-hpa",
        "gb200-any",
        "oke-ol",
        "oke-ol-inference",
        "gb200-oke-inference",
        "gb200-oke-ubuntu-inference",
        "gb200-oke-ubuntu-inference-dynamo",
    )
    assert recipe.mixins == ("platform-inference", "os-ubuntu")
    assert recipe.constraints == {"K8s.server.version": ">= 1.34", **UBUNTU}
    _check_components(
        recipe,
        BASE_COMPONENTS
        | {"prometheus-adapter", "grove", "dynamo-platform", "agentgateway-crds", "agentgateway"},
        {
            "gpu-operator": (
                "components/gpu-operator/values.yaml",
                "components/gpu-operator/values-oke.yaml",
            ),
            "nvidia-dra-driver-gpu": (
                "components/nvidia-dra-driver-gpu/values.yaml",
                "components/nvidia-dra-driver-gpu/values-oke.yaml",
            ),
        },
    )
    assert recipe.component("agentgateway").manifest_files == (
        "components/agentgateway/manifests/inference-gateway.yaml",
    )
    assert recipe.component("agentgateway-crds").manifest_files == (
        "components/agentgateway-crds/manifests/gateway-api-crds.yaml",
        "components/agentgateway-crds/manifests/inference-extension-crds.yaml",
    )
    assert recipe.component("dynamo-platform").dependency_refs == (
        "grove",
        "cert-manager",
        "kube-prometheus-stack",
        "gpu-operator",
        "kai-scheduler",
    )
    assert recipe.component("nvidia-dra-driver-gpu").overrides_from == ("overlays/oke-ol.yaml",)
    order = [c.name for c in recipe.components]
    assert order.index("agentgateway-crds") < order.index("agentgateway")
    assert order.index("kai-scheduler") < order.index("dynamo-platform")


@pytest.mark.shared
def test_aicr_h100_kind_training_kubeflow(aicr_catalog: Path) -> None:
    """h100-kind-training-kubeflow, derived by hand.

    Matches: kind, h100-kind-training (ancestors of the leaf), the leaf (4), h100-any,
    monitoring-hpa. kind.yaml only overrides values of base components, and adds network-operator
    (its own valuesFile = the default file); h100-kind-training adds nothing but a constraint; the
    leaf names platform-kubeflow. kind turns the GPU operator's driver off but keeps values.yaml's
    other driver settings (deep merge).
    """
    catalog = _aicr(aicr_catalog)
    recipe = compose(catalog, _aicr_query(catalog, "h100-kind-training-kubeflow"))
    assert recipe.overlays == (
        "base",
        "monitoring-hpa",
        "h100-any",
        "kind",
        "h100-kind-training",
        "h100-kind-training-kubeflow",
    )
    assert recipe.mixins == ("platform-kubeflow",)
    assert recipe.constraints == {"K8s.server.version": ">= 1.34"}
    _check_components(
        recipe, BASE_COMPONENTS | {"prometheus-adapter", "network-operator", "kubeflow-trainer"}, {}
    )
    gpu = recipe.component("gpu-operator")
    assert gpu.overrides_from == ("overlays/kind.yaml",)
    assert gpu.values["driver"] == {
        "version": "580.126.20",
        "enabled": False,
        "useOpenKernelModules": True,
        "maxParallelUpgrades": 5,
        "rdma": {"enabled": False},
    }
    assert recipe.component("network-operator").dependency_refs == ("nfd", "cert-manager")
    kps = recipe.component("kube-prometheus-stack").values
    assert kps["prometheus"]["prometheusSpec"]["storageSpec"] == {
        "emptyDir": {"medium": "", "sizeLimit": "5Gi"}
    }


@pytest.mark.shared
def test_aicr_ocp_training_is_manifest_only(aicr_catalog: Path) -> None:
    """ocp-training, derived by hand.

    Matches: ocp (ancestor), ocp-training (2), monitoring-hpa (0). ocp.yaml adds six manifest-only
    OLM components (registry defaultRepository "") and switches every base component and
    prometheus-adapter off with `overrides: {enabled: false}`. What remains is ordered by the
    ocp dependencyRefs: nfd-ocp-olm → nfd-ocp → {gpu,network}-operator-ocp-olm → their CRs.
    """
    catalog = _aicr(aicr_catalog)
    recipe = compose(catalog, _aicr_query(catalog, "ocp-training"))
    assert recipe.overlays == ("base", "monitoring-hpa", "ocp", "ocp-training")
    assert recipe.mixins == ()
    assert recipe.constraints == {"K8s.server.version": ">= 1.29"}
    assert recipe.disabled == tuple(sorted(BASE_COMPONENTS | {"prometheus-adapter"}))
    assert [c.name for c in recipe.components] == [
        "nfd-ocp-olm",
        "nfd-ocp",
        "gpu-operator-ocp-olm",
        "gpu-operator-ocp",
        "network-operator-ocp-olm",
        "network-operator-ocp",
    ]
    _check_components(recipe, {c.name for c in recipe.components}, {})
    assert all(c.chart is None and c.type is ComponentType.HELM for c in recipe.components)
    assert recipe.component("gpu-operator-ocp").manifest_files == (
        "components/gpu-operator-ocp/manifests/dcgm-exporter-configmap.yaml",
        "components/gpu-operator-ocp/manifests/clusterpolicy.yaml",
    )
    assert not any(f.startswith("components/gpu-operator/") for f in recipe.input_files)


@pytest.mark.shared
def test_aicr_h100_any_wildcard_overlay(aicr_catalog: Path) -> None:
    """h100-any (a default recipe: nothing inherits from it), derived by hand.

    Its query is {accelerator: h100}: the service is absent, so every overlay with a specific
    service is out; h100-any (service any) and monitoring-hpa (intent any) match. So the recipe is
    base + prometheus-adapter with base's values, and kube-prometheus-stack keeps values.yaml's
    emptyDir (no eks override here).
    """
    catalog = _aicr(aicr_catalog)
    recipe = compose(catalog, _aicr_query(catalog, "h100-any"))
    assert recipe.criteria == Criteria(accelerator="h100")
    assert recipe.overlays == ("base", "monitoring-hpa", "h100-any")
    assert recipe.constraints == {"K8s.server.version": ">= 1.25"}
    _check_components(recipe, BASE_COMPONENTS | {"prometheus-adapter"}, {})
    kps = recipe.component("kube-prometheus-stack").values
    assert kps["prometheus"]["prometheusSpec"]["storageSpec"] == {
        "emptyDir": {"medium": "", "sizeLimit": "10Gi"}
    }
    assert recipe.input_files == tuple(
        sorted(
            ["registry.yaml", "overlays/base.yaml", "overlays/monitoring-hpa.yaml", "overlays/h100-any.yaml"]
            + [f"components/{n}/values.yaml" for n in BASE_COMPONENTS | {"prometheus-adapter"}]
        )
    )


@pytest.mark.shared
def test_aicr_default_recipes_are_the_leaves(aicr_catalog: Path) -> None:
    catalog = _aicr(aicr_catalog)
    names = [q.name for q in catalog_recipes(catalog)]
    assert "h100-eks-ubuntu-training-kubeflow" in names
    assert "monitoring-hpa" in names
    assert "h100-eks-ubuntu-training" not in names  # kubeflow and slurm overlays inherit from it
    assert names == sorted(names)


@pytest.mark.shared
def test_aicr_components_are_plain_values(aicr_catalog: Path) -> None:
    catalog = _aicr(aicr_catalog)
    recipe = compose(catalog, _aicr_query(catalog, "gb200-eks-ubuntu-training-slurm"))
    assert isinstance(recipe.components[0], Component)

    def plain(value: Any) -> bool:
        if type(value) is dict:
            return all(type(k) is str and plain(v) for k, v in value.items())
        if type(value) is list:
            return all(plain(v) for v in value)
        return value is None or type(value) in (str, int, float, bool)

    assert all(plain(c.values) for c in recipe.components)
