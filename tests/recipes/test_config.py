"""``pipeline.yaml``: defaults, a full file, and every error it can raise."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.errors import RecipeError
from pipeline.recipes import (
    DEFAULT_API_VERSIONS,
    DEFAULT_KUBE_VERSION,
    Criteria,
    PipelineConfig,
    RecipeQuery,
    load_catalog,
    load_config,
)
from tests.recipes.catalogs import line_of, write_catalog

FULL = """\
apiVersion: pipeline.recipes.dev/v1
kind: PipelineConfig
spec:
  kubeVersion: "1.34.1"
  apiVersions: [resource.k8s.io/v1, v1]
  recipes:
    - name: svc-train
      criteria: {service: svc, intent: training}
    - name: everything-any
    - name: x1-on-svc
      criteria:
        service: SVC
        accelerator: x1
  mirrors:
    oci://registry.example.com/charts: oci://127.0.0.1:5000/charts
    https://charts.example.com/stable: http://127.0.0.1:8879/stable
"""


def test_defaults_without_a_file(tmp_path: Path) -> None:
    config = load_config(tmp_path)
    assert config == PipelineConfig()
    assert (config.kube_version, config.api_versions, config.recipes, config.mirrors, config.path) == (
        DEFAULT_KUBE_VERSION,
        DEFAULT_API_VERSIONS,
        None,
        {},
        None,
    )
    assert (DEFAULT_KUBE_VERSION, DEFAULT_API_VERSIONS) == (
        "1.33.0",
        ("resource.k8s.io/v1", "resource.k8s.io/v1beta1"),
    )


def test_full_file(tmp_path: Path) -> None:
    (tmp_path / "pipeline.yaml").write_text(FULL)
    config = load_config(tmp_path)
    assert config.kube_version == "1.34.1"
    assert config.api_versions == ("resource.k8s.io/v1", "v1")
    assert config.recipes == (
        RecipeQuery(name="svc-train", criteria=Criteria(service="svc", intent="training")),
        RecipeQuery(name="everything-any", criteria=Criteria()),
        RecipeQuery(name="x1-on-svc", criteria=Criteria(service="svc", accelerator="x1")),
    )
    assert list(config.mirrors.items()) == [  # sorted by upstream URL
        ("https://charts.example.com/stable", "http://127.0.0.1:8879/stable"),
        ("oci://registry.example.com/charts", "oci://127.0.0.1:5000/charts"),
    ]
    assert config.path == "pipeline.yaml"
    assert config.recipe_lines == {"svc-train": 7, "everything-any": 9, "x1-on-svc": 10}


def test_empty_spec_gives_defaults_but_records_the_file(tmp_path: Path) -> None:
    (tmp_path / "pipeline.yaml").write_text("apiVersion: pipeline.recipes.dev/v1\nkind: PipelineConfig\n")
    assert load_config(tmp_path) == PipelineConfig(path="pipeline.yaml")


def test_catalog_uses_the_config(tmp_path: Path) -> None:
    root = write_catalog(tmp_path, files={"pipeline.yaml": FULL})
    catalog = load_catalog(root)
    assert catalog.config.kube_version == "1.34.1"
    assert catalog.config.recipes is not None
    assert len(catalog.config.recipes) == 3


def test_record_refuses_invalid_values() -> None:
    with pytest.raises(ValueError, match="kubeVersion"):
        PipelineConfig(kube_version="latest")
    query = RecipeQuery(name="a", criteria=Criteria())
    with pytest.raises(ValueError, match="duplicate"):
        PipelineConfig(recipes=(query, query))


@dataclass(frozen=True)
class Case:
    id: str
    text: str
    message: str
    line: int | str | None
    hint: str


HEAD = "apiVersion: pipeline.recipes.dev/v1\nkind: PipelineConfig\n"

CASES = [
    Case("not-mapping", "- a\n", "the document must be a mapping, not a list", 1, "PipelineConfig"),
    Case(
        "api-version",
        "apiVersion: pipeline.recipes.dev/v2\nkind: PipelineConfig\n",
        "apiVersion 'pipeline.recipes.dev/v2' is not supported",
        1,
        "'pipeline.recipes.dev/v1'",
    ),
    Case(
        "kind",
        "apiVersion: pipeline.recipes.dev/v1\nkind: Pipeline\n",
        "kind 'Pipeline' is not 'PipelineConfig'",
        2,
        "kind: PipelineConfig",
    ),
    Case(
        "unknown-top-key",
        HEAD + "specs: {}\n",
        "unknown key 'specs' in pipeline.yaml (did you mean 'spec'?)",
        "specs:",
        "apiVersion, kind, spec",
    ),
    Case(
        "spec-not-mapping",
        HEAD + "spec: [a]\n",
        "pipeline.yaml spec must be a mapping, not a list",
        "spec:",
        "kubeVersion, apiVersions, recipes, mirrors",
    ),
    Case(
        "unknown-spec-key",
        HEAD + "spec:\n  kubeversion: '1.33.0'\n",
        "unknown key 'kubeversion' in pipeline.yaml spec (did you mean 'kubeVersion'?)",
        "kubeversion",
        "kubeVersion, apiVersions, recipes, mirrors",
    ),
    Case(
        "kube-version-number",
        HEAD + "spec:\n  kubeVersion: 1.33\n",
        "pipeline.yaml spec: 'kubeVersion' must be a string, not a number (1.33)",
        "kubeVersion",
        'quote the value: kubeVersion: "1.33"',
    ),
    Case(
        "kube-version-format",
        HEAD + "spec:\n  kubeVersion: latest\n",
        "kubeVersion 'latest' is not a Kubernetes version",
        "kubeVersion",
        'write it as "1.33.0"',
    ),
    Case(
        "api-versions-not-list",
        HEAD + "spec:\n  apiVersions: resource.k8s.io/v1\n",
        "apiVersions must be a list, not a string",
        "apiVersions",
        "apiVersions: [resource.k8s.io/v1",
    ),
    Case(
        "api-versions-item",
        HEAD + "spec:\n  apiVersions: [resource.k8s.io]\n",
        "apiVersions item 'resource.k8s.io' is not a Kubernetes API version",
        "apiVersions",
        "<group>/<version>",
    ),
    Case(
        "api-versions-duplicate",
        HEAD + "spec:\n  apiVersions: [v1, v1]\n",
        "apiVersions lists 'v1' twice",
        "apiVersions",
        "list each API version once",
    ),
    Case(
        "recipes-not-list",
        HEAD + "spec:\n  recipes: {a: {}}\n",
        "recipes must be a list, not a mapping",
        "  recipes:",
        "'- name: <recipe>'",
    ),
    Case(
        "recipes-empty",
        HEAD + "spec:\n  recipes: []\n",
        "recipes is empty",
        "  recipes:",
        "remove 'recipes' to get one recipe per leaf overlay",
    ),
    Case(
        "recipe-not-mapping",
        HEAD + "spec:\n  recipes:\n    - svc\n",
        "a recipe must be a mapping, not a string",
        "recipes:",
        "a recipe is a mapping with name and criteria",
    ),
    Case(
        "recipe-unknown-key",
        HEAD + "spec:\n  recipes:\n    - name: a\n      criterias: {}\n",
        "unknown key 'criterias' in a recipe (did you mean 'criteria'?)",
        "criterias",
        "name, criteria",
    ),
    Case(
        "recipe-name-missing",
        HEAD + "spec:\n  recipes:\n    - criteria: {service: svc}\n",
        "a recipe: 'name' is missing",
        "- criteria",
        "add 'name: <value>'",
    ),
    Case(
        "recipe-name-invalid",
        HEAD + "spec:\n  recipes:\n    - name: H100/EKS\n",
        "recipe name 'H100/EKS' is not a valid name",
        "name:",
        "it names the lockfile",
    ),
    Case(
        "recipe-duplicate",
        HEAD + "spec:\n  recipes:\n    - name: a\n    - name: b\n    - name: a\n",
        "recipe 'a' is listed twice (first at line 5)",
        7,
        "unique name",
    ),
    Case(
        "recipe-criteria-field",
        HEAD + "spec:\n  recipes:\n    - name: a\n      criteria: {gpu: h100}\n",
        "unknown key 'gpu' in recipe 'a': criteria",
        "criteria",
        "service, accelerator, os, intent, platform, nodes",
    ),
    Case(
        "recipe-criteria-type",
        HEAD + "spec:\n  recipes:\n    - name: a\n      criteria: {intent: [training]}\n",
        "recipe 'a': criteria intent must be a string, not a list",
        "criteria",
        "quote the value",
    ),
    Case(
        "mirrors-not-mapping",
        HEAD + "spec:\n  mirrors: [http://x]\n",
        "mirrors must be a mapping, not a list",
        "mirrors",
        "maps an upstream chart repository URL to a mirror URL",
    ),
    Case(
        "mirror-upstream-url",
        HEAD + "spec:\n  mirrors:\n    charts.example.com: http://127.0.0.1:8879\n",
        "mirrors: upstream repository 'charts.example.com' is not an http(s):// or oci:// URL",
        "charts.example.com",
        "'<upstream URL>: <mirror URL>'",
    ),
    Case(
        "mirror-url",
        HEAD + "spec:\n  mirrors:\n    https://charts.example.com: ftp://mirror\n",
        "mirrors: mirror 'ftp://mirror' is not an http(s):// or oci:// URL",
        "https://charts.example.com",
        "'<upstream URL>: <mirror URL>'",
    ),
    Case(
        "duplicate-key",
        HEAD + "spec:\n  kubeVersion: '1.33.0'\n  kubeVersion: '1.34.0'\n",
        "duplicate key 'kubeVersion'",
        5,
        "fix the YAML syntax",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_config_errors(tmp_path: Path, case: Case) -> None:
    (tmp_path / "pipeline.yaml").write_text(case.text)
    with pytest.raises(RecipeError) as info:
        load_config(tmp_path)
    err = info.value
    assert case.message in err.message
    assert str(err.path) == "pipeline.yaml"
    line = line_of(case.text, case.line) if isinstance(case.line, str) else case.line
    assert err.line == line
    assert err.hint is not None
    assert case.hint in err.hint


def test_configured_recipe_with_a_criteria_value_no_overlay_uses(tmp_path: Path) -> None:
    """Checked when the catalog loads, against the overlays: a typo would match nothing specific."""
    text = (
        HEAD + "spec:\n  recipes:\n    - name: ok\n      criteria: {service: svc}\n"
        "    - name: typo\n      criteria: {service: svc, accelerator: x2}\n"
    )
    root = write_catalog(tmp_path, files={"pipeline.yaml": text})
    with pytest.raises(RecipeError) as info:
        load_catalog(root)
    err = info.value
    assert err.message == "recipe 'typo': accelerator 'x2' is not used by any overlay"
    assert (str(err.path), err.line) == ("pipeline.yaml", line_of(text, "- name: typo"))
    assert err.hint == "use one of: x1 (or leave accelerator unset to match any)"
