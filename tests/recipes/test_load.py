"""Loading a catalog: the records it yields, and every error a catalog author can meet."""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pipeline.errors import RecipeError
from pipeline.recipes import ComponentType, Criteria, load_catalog
from pipeline.recipes.load import MAX_CHAIN_DEPTH, to_plain
from tests.recipes.catalogs import FILES, assert_located, line_of, write_catalog


def edit(path: str, old: str, new: str) -> dict[str, str]:
    """``{path: FILES[path] with old replaced by new}`` (old must be there)."""
    assert old in FILES[path], (path, old)
    return {path: FILES[path].replace(old, new, 1)}


# --------------------------------------------------------------------------------------------
# What a good catalog loads into
# --------------------------------------------------------------------------------------------


def test_loads_registry_overlays_mixins_and_values(tmp_path: Path) -> None:
    catalog = load_catalog(write_catalog(tmp_path))

    assert catalog.root == tmp_path.resolve()
    alpha = catalog.registry.components["alpha"]
    assert (alpha.type, alpha.repository, alpha.chart, alpha.chart_name, alpha.version, alpha.namespace) == (
        ComponentType.HELM,
        "https://charts.example.com/stable",
        "example/alpha",
        "alpha",
        "1.0.0",
        "alpha-system",
    )
    assert catalog.registry.components["gamma"].repository == ""
    assert catalog.registry.components["epsilon"].type is ComponentType.KUSTOMIZE

    assert sorted(catalog.overlays) == ["acc-any", "base", "svc", "svc-train"]
    svc_train = catalog.overlays["svc-train"]
    assert svc_train.parent == "svc"
    assert svc_train.criteria == Criteria(service="svc", intent="training")
    assert svc_train.mixins == ("extra",)
    assert catalog.overlays["svc"].api_version == "aicr.nvidia.com/v1alpha1"  # the old group is read
    assert catalog.overlays["svc"].parent == "base"  # empty base = the base overlay
    assert catalog.base.parent is None
    assert catalog.overlays["acc-any"].criteria == Criteria(accelerator="x1")  # 'any' → None

    assert catalog.chains == {
        "base": (),
        "svc": ("svc",),
        "svc-train": ("svc", "svc-train"),
        "acc-any": ("acc-any",),
    }
    assert catalog.mixins["extra"].constraints[0].value == "ubuntu"
    assert catalog.values["components/alpha/values.yaml"] == {
        "image": {"repository": "example/alpha", "tag": "1.0"},
        "list": ["a", "b"],
        "drop": 1,
        "keep": True,
    }
    assert type(catalog.values["components/alpha/values.yaml"]) is dict  # plain data, not YamlMap
    assert catalog.criteria_values["service"] == frozenset({"svc"})
    assert catalog.config.path is None  # no pipeline.yaml


def test_component_ref_records_where_it_was_written(tmp_path: Path) -> None:
    catalog = load_catalog(write_catalog(tmp_path))
    ref = catalog.overlays["svc-train"].component_refs[0]
    text = FILES["overlays/svc-train.yaml"]
    assert (ref.name, ref.path, ref.line) == (
        "alpha",
        "overlays/svc-train.yaml",
        line_of(text, "- name: alpha"),
    )
    assert ref.line_of("valuesFile") == line_of(text, "valuesFile:")
    assert ref.set_fields == frozenset({"type", "version", "valuesFile", "overrides"})
    assert ref.version == "1.1.0"


def test_catalog_pickles(tmp_path: Path) -> None:
    catalog = load_catalog(write_catalog(tmp_path))
    assert pickle.loads(pickle.dumps(catalog)) == catalog


def test_criteria_are_case_insensitive_and_nodes_numeric(tmp_path: Path) -> None:
    files = edit("overlays/svc.yaml", "    service: svc\n", "    service: ' SVC '\n    nodes: 8\n")
    catalog = load_catalog(write_catalog(tmp_path, files=files))
    assert catalog.overlays["svc"].criteria == Criteria(service="svc", nodes="8")


def test_values_keys_become_strings_the_way_helm_spells_them() -> None:
    import datetime

    assert to_plain({2: "a", True: "b", None: "c", "d": datetime.date(2026, 1, 2)}) == {
        "2": "a",
        "true": "b",
        "null": "c",
        "d": "2026-01-02",
    }


def test_empty_values_file_is_an_empty_mapping(tmp_path: Path) -> None:
    catalog = load_catalog(write_catalog(tmp_path, files={"components/delta/values.yaml": "# nothing yet\n"}))
    assert catalog.values["components/delta/values.yaml"] == {}


def test_registry_manifest_files_are_checked(tmp_path: Path) -> None:
    files = edit(
        "registry.yaml",
        "      defaultNamespace: gamma-system\n",
        "      defaultNamespace: gamma-system\n"
        "    manifestFiles: [components/gamma/manifests/configmap.yaml]\n",
    )
    catalog = load_catalog(write_catalog(tmp_path, files=files))
    assert catalog.registry.components["gamma"].manifest_files == (
        "components/gamma/manifests/configmap.yaml",
    )


def test_chain_depth_limit(tmp_path: Path) -> None:
    """A chain of MAX_CHAIN_DEPTH overlays loads; one more is refused, naming the chain."""
    files: dict[str, str] = {}
    for depth in range(MAX_CHAIN_DEPTH + 1):
        parent = f"base: level{depth - 1}" if depth else "base: base"
        files[f"overlays/level{depth}.yaml"] = (
            "kind: RecipeMetadata\napiVersion: aicr.run/v1alpha2\n"
            f"metadata:\n  name: level{depth}\nspec:\n  {parent}\n  criteria:\n    service: svc\n"
        )
    deepest = f"overlays/level{MAX_CHAIN_DEPTH}.yaml"
    ok = {k: v for k, v in files.items() if k != deepest}
    catalog = load_catalog(write_catalog(tmp_path / "ok", files=ok))
    assert len(catalog.chains[f"level{MAX_CHAIN_DEPTH - 1}"]) == MAX_CHAIN_DEPTH

    with pytest.raises(RecipeError) as info:
        load_catalog(write_catalog(tmp_path / "deep", files=files))
    err = info.value
    assert (
        f"overlay 'level{MAX_CHAIN_DEPTH}': inheritance chain is deeper than {MAX_CHAIN_DEPTH}" in err.message
    )
    assert "level0 -> level1" in err.message
    assert (str(err.path), err.line) == (deepest, 6)
    assert err.hint is not None
    assert "flatten" in err.hint


# --------------------------------------------------------------------------------------------
# Every load error, pinned: message, file, line, hint
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    message: str
    path: str | None
    line: int | str | None  # a str is a marker: the line of the changed file that contains it
    hint: str | None
    files: dict[str, str] = field(default_factory=dict)
    drop: tuple[str, ...] = ()


CASES = [
    # ---- registry.yaml
    Case(
        "registry-missing",
        "has no registry.yaml",
        "registry.yaml",
        None,
        "catalog root",
        drop=("registry.yaml",),
    ),
    Case(
        "registry-api-version",
        "apiVersion 'example.com/v1' is not supported",
        "registry.yaml",
        1,
        "'aicr.nvidia.com/v1alpha1' or 'aicr.run/v1alpha2'",
        files=edit("registry.yaml", "apiVersion: aicr.run/v1alpha2", "apiVersion: example.com/v1"),
    ),
    Case(
        "registry-kind",
        "kind 'Registry' is not 'ComponentRegistry'",
        "registry.yaml",
        2,
        "kind: ComponentRegistry",
        files=edit("registry.yaml", "kind: ComponentRegistry", "kind: Registry"),
    ),
    Case(
        "registry-components-not-list",
        "'components' must be a list, not a mapping",
        "registry.yaml",
        3,
        "'- name: <name>'",
        files={
            "registry.yaml": "apiVersion: aicr.run/v1alpha2\nkind: ComponentRegistry\ncomponents:\n  a: 1\n"
        },
    ),
    Case(
        "registry-duplicate",
        "component 'alpha' is declared twice (first at line 4)",
        "registry.yaml",
        line_of(FILES["registry.yaml"], "- name: beta"),
        "one entry per component",
        files=edit("registry.yaml", "  - name: beta\n", "  - name: alpha\n"),
    ),
    Case(
        "registry-helm-typo",
        "unknown key 'defaultVersoin' in component 'alpha' helm (did you mean 'defaultVersion'?)",
        "registry.yaml",
        "defaultVersoin",
        "defaultRepository, defaultChart, defaultVersion, defaultNamespace",
        files=edit("registry.yaml", "defaultVersion: 1.0.0", "defaultVersoin: 1.0.0"),
    ),
    Case(
        "registry-helm-and-kustomize",
        "component 'alpha' has both helm and kustomize defaults",
        "registry.yaml",
        "- name: alpha",
        "either a Helm chart or a Kustomize source",
        files=edit(
            "registry.yaml",
            "    displayName: alpha\n",
            "    displayName: alpha\n    kustomize: {defaultSource: https://github.com/x/y}\n",
        ),
    ),
    Case(
        "registry-version-number",
        "component 'alpha' helm: 'defaultVersion' must be a string, not a number (1.5)",
        "registry.yaml",
        "defaultVersion: 1.5",
        'quote the value: defaultVersion: "1.5"',
        files=edit("registry.yaml", "defaultVersion: 1.0.0", "defaultVersion: 1.5"),
    ),
    Case(
        "registry-local-manifest-missing",
        "component 'gamma': manifest file 'components/gamma/nope.yaml' not found",
        "registry.yaml",
        "manifestFiles",
        "create components/gamma/nope.yaml",
        files=edit(
            "registry.yaml",
            "      defaultNamespace: gamma-system\n",
            "      defaultNamespace: gamma-system\n    manifestFiles: [components/gamma/nope.yaml]\n",
        ),
    ),
    # ---- document shape
    Case(
        "malformed-yaml",
        "malformed YAML: did not find expected ',' or ']'",
        "overlays/svc.yaml",
        8,
        "fix the YAML syntax",
        files=edit(
            "overlays/svc.yaml", "  criteria:\n    service: svc\n", "  criteria:\n    service: [svc\n"
        ),
    ),
    Case(
        "document-not-mapping",
        "the document must be a mapping, not a list",
        "overlays/svc.yaml",
        1,
        "a RecipeMetadata document is a YAML mapping that starts with apiVersion and kind",
        files={"overlays/svc.yaml": "- a\n- b\n"},
    ),
    Case(
        "overlay-api-version",
        "apiVersion 'aicr.run/v1' is not supported",
        "overlays/svc.yaml",
        2,
        "set apiVersion to 'aicr.nvidia.com/v1alpha1' or 'aicr.run/v1alpha2'",
        files=edit("overlays/svc.yaml", "apiVersion: aicr.nvidia.com/v1alpha1", "apiVersion: aicr.run/v1"),
    ),
    Case(
        "overlay-api-version-missing",
        "apiVersion missing",
        "overlays/svc.yaml",
        1,
        "set apiVersion",
        files=edit("overlays/svc.yaml", "apiVersion: aicr.nvidia.com/v1alpha1\n", ""),
    ),
    Case(
        "overlay-wrong-kind",
        "kind 'RecipeMixin' is not 'RecipeMetadata'",
        "overlays/svc.yaml",
        1,
        "mixins (RecipeMixin) go in mixins/",
        files=edit("overlays/svc.yaml", "kind: RecipeMetadata", "kind: RecipeMixin"),
    ),
    Case(
        "mixin-wrong-kind",
        "kind 'RecipeMetadata' is not 'RecipeMixin'",
        "mixins/extra.yaml",
        1,
        "overlays go in overlays/",
        files=edit("mixins/extra.yaml", "kind: RecipeMixin", "kind: RecipeMetadata"),
    ),
    Case(
        "metadata-name-missing",
        "metadata: 'name' is missing",
        "overlays/svc.yaml",
        "metadata: {}",
        "add 'name: <value>' to metadata",
        files=edit("overlays/svc.yaml", "metadata:\n  name: svc\n", "metadata: {}\n"),
    ),
    Case(
        "metadata-unknown-key",
        "unknown key 'title' in metadata",
        "overlays/svc.yaml",
        "title: svc",
        "metadata takes only: name",
        files=edit("overlays/svc.yaml", "  name: svc\n", "  title: svc\n"),
    ),
    Case(
        "metadata-missing",
        "metadata must be a mapping, not a null",
        "overlays/svc.yaml",
        1,
        "add 'metadata: {name: <name>}'",
        files=edit("overlays/svc.yaml", "metadata:\n  name: svc\n", ""),
    ),
    Case(
        "metadata-name-invalid",
        "metadata.name 'svc/x' is not a valid name",
        "overlays/svc.yaml",
        4,
        "letters, digits",
        files=edit("overlays/svc.yaml", "  name: svc\n", "  name: svc/x\n"),
    ),
    Case(
        "duplicate-overlay-name",
        "overlay name 'svc' is also used by overlays/svc.yaml",
        "overlays/svc2.yaml",
        4,
        "unique metadata.name",
        files={"overlays/svc2.yaml": FILES["overlays/svc.yaml"]},
    ),
    Case(
        "unknown-top-key",
        "unknown key 'specs' in the document (did you mean 'spec'?)",
        "overlays/svc.yaml",
        "specs:",
        "apiVersion, kind, metadata, spec",
        files=edit("overlays/svc.yaml", "spec:\n", "specs:\n"),
    ),
    Case(
        "unknown-spec-key",
        "unknown key 'componentRef' in overlay 'svc' spec (did you mean 'componentRefs'?)",
        "overlays/svc.yaml",
        "componentRef:",
        "base, criteria, mixins, constraints, componentRefs, validation",
        files=edit("overlays/svc.yaml", "componentRefs:", "componentRef:"),
    ),
    Case(
        "spec-not-mapping",
        "overlay 'svc': spec must be a mapping, not a list",
        "overlays/svc.yaml",
        5,
        "spec is a mapping",
        files={"overlays/svc.yaml": FILES["overlays/svc.yaml"].split("spec:")[0] + "spec: []\n"},
    ),
    Case(
        "base-overlay-missing",
        "overlays/base.yaml (the overlay named 'base') not found",
        "overlays/base.yaml",
        None,
        "every catalog needs a base overlay",
        drop=("overlays/base.yaml",),
    ),
    Case(
        "base-overlay-with-base",
        "overlay 'base' cannot inherit from 'svc'",
        "overlays/base.yaml",
        "base: svc",
        "remove 'base:' from the base overlay",
        files=edit("overlays/base.yaml", "spec:\n", "spec:\n  base: svc\n"),
    ),
    # ---- criteria, constraints
    Case(
        "criteria-unknown-field",
        "unknown key 'gpu' in overlay 'svc': criteria",
        "overlays/svc.yaml",
        "gpu:",
        "service, accelerator, os, intent, platform, nodes",
        files=edit("overlays/svc.yaml", "    service: svc\n", "    service: svc\n    gpu: h100\n"),
    ),
    Case(
        "criteria-not-string",
        "overlay 'svc': criteria service must be a string, not a number (3)",
        "overlays/svc.yaml",
        "service: 3",
        'quote the value: service: "3"',
        files=edit("overlays/svc.yaml", "    service: svc\n", "    service: 3\n"),
    ),
    Case(
        "criteria-not-mapping",
        "overlay 'svc': criteria must be a mapping, not a string",
        "overlays/svc.yaml",
        "criteria: eks",
        "criteria is a mapping of service, accelerator",
        files=edit("overlays/svc.yaml", "  criteria:\n    service: svc\n", "  criteria: eks\n"),
    ),
    Case(
        "criteria-negative-nodes",
        "overlay 'svc': criteria nodes must be 0 or more, not -1",
        "overlays/svc.yaml",
        "nodes: -1",
        "node count",
        files=edit("overlays/svc.yaml", "    service: svc\n", "    service: svc\n    nodes: -1\n"),
    ),
    Case(
        "constraint-value-number",
        "overlay 'svc': constraint 'K8s.server.version': 'value' must be a string, not a number (1.3)",
        "overlays/svc.yaml",
        "value: 1.3",
        'quote the value: value: "1.3"',
        files=edit("overlays/svc.yaml", 'value: ">= 1.28"', "value: 1.3"),
    ),
    Case(
        "constraint-value-missing",
        "overlay 'svc': constraint 'K8s.server.version': 'value' is missing",
        "overlays/svc.yaml",
        "- name: K8s.server.version",
        "add 'value: <value>'",
        files=edit("overlays/svc.yaml", '      value: ">= 1.28"\n', ""),
    ),
    Case(
        "constraint-duplicate",
        "overlay 'svc': constraint 'K8s.server.version' is listed twice (first at line 9)",
        "overlays/svc.yaml",
        11,
        "one entry per constraint name",
        files=edit(
            "overlays/svc.yaml",
            '      value: ">= 1.28"\n',
            '      value: ">= 1.28"\n    - name: K8s.server.version\n      value: ">= 1.29"\n',
        ),
    ),
    Case(
        "constraints-not-list",
        "overlay 'svc': constraints must be a list, not a mapping",
        "overlays/svc.yaml",
        "constraints:",
        "'- name: <name>'",
        files=edit(
            "overlays/svc.yaml",
            '  constraints:\n    - name: K8s.server.version\n      value: ">= 1.28"\n',
            '  constraints:\n    K8s.server.version: ">= 1.28"\n',
        ),
    ),
    Case(
        "validation-unknown-phase",
        "unknown key 'conformanse' in overlay 'svc' validation (did you mean 'conformance'?)",
        "overlays/svc.yaml",
        "conformanse:",
        "readiness, deployment, performance, conformance",
        files={
            "overlays/svc.yaml": FILES["overlays/svc.yaml"]
            + "  validation:\n    conformanse: {checks: [x]}\n"
        },
    ),
    # ---- componentRefs
    Case(
        "component-refs-not-list",
        "overlay 'svc': componentRefs must be a list, not a mapping",
        "overlays/svc.yaml",
        "componentRefs:",
        "'- name: <component>'",
        files={
            "overlays/svc.yaml": FILES["overlays/svc.yaml"].split("  componentRefs:")[0]
            + "  componentRefs:\n    alpha: {}\n"
        },
    ),
    Case(
        "unknown-component",
        "overlay 'svc': component 'gama' is not in registry.yaml (did you mean 'gamma'?)",
        "overlays/svc.yaml",
        "- name: gama",
        "add the component to registry.yaml",
        files=edit("overlays/svc.yaml", "- name: gamma", "- name: gama"),
    ),
    Case(
        "unknown-component-in-mixin",
        "mixin 'extra': component 'detla' is not in registry.yaml (did you mean 'delta'?)",
        "mixins/extra.yaml",
        "- name: detla",
        "add the component to registry.yaml",
        files=edit("mixins/extra.yaml", "- name: delta", "- name: detla"),
    ),
    Case(
        "component-ref-without-name",
        "overlay 'svc': a componentRef: 'name' is missing",
        "overlays/svc.yaml",
        "- type: Helm",
        "add 'name: <value>'",
        files=edit("overlays/svc.yaml", "    - name: gamma\n      type: Helm\n", "    - type: Helm\n"),
    ),
    Case(
        "component-ref-unknown-key",
        "unknown key 'valueFile' in overlay 'svc-train' componentRef 'alpha' (did you mean 'valuesFile'?)",
        "overlays/svc-train.yaml",
        "valueFile:",
        "overlay 'svc-train' componentRef 'alpha' takes only: name, namespace",
        files=edit("overlays/svc-train.yaml", "valuesFile:", "valueFile:"),
    ),
    Case(
        "component-ref-duplicate",
        "overlay 'svc': component 'alpha' is listed twice (first at line 12)",
        "overlays/svc.yaml",
        "- name: alpha  # again",
        "merge the two entries",
        files={"overlays/svc.yaml": FILES["overlays/svc.yaml"] + "    - name: alpha  # again\n"},
    ),
    Case(
        "component-type-invalid",
        "overlay 'svc-train': component 'alpha': type 'Helmchart' is not one of 'Helm', 'Kustomize'",
        "overlays/svc-train.yaml",
        "type: Helmchart",
        "write 'type: Helm'",
        files=edit("overlays/svc-train.yaml", "type: Helm", "type: Helmchart"),
    ),
    Case(
        "values-file-missing",
        "overlay 'svc-train': component 'alpha': values file 'components/alpha/values-trian.yaml' not found",
        "overlays/svc-train.yaml",
        "valuesFile:",
        "create components/alpha/values-trian.yaml or fix the path",
        files=edit("overlays/svc-train.yaml", "values-train.yaml", "values-trian.yaml"),
    ),
    Case(
        "values-file-outside",
        "overlay 'svc-train': component 'alpha': values file '../secrets.yaml' is not a "
        "path inside the catalog",
        "overlays/svc-train.yaml",
        "valuesFile:",
        "relative to the catalog root",
        files=edit("overlays/svc-train.yaml", "components/alpha/values-train.yaml", "../secrets.yaml"),
    ),
    Case(
        "values-file-absolute",
        "values file '/etc/passwd' is not a path inside the catalog",
        "overlays/svc-train.yaml",
        "valuesFile:",
        "relative to the catalog root",
        files=edit("overlays/svc-train.yaml", "components/alpha/values-train.yaml", "/etc/passwd"),
    ),
    Case(
        "values-file-not-mapping",
        "a values file must be a mapping, not a list",
        "components/alpha/values-train.yaml",
        1,
        "a values file is a mapping of chart values",
        files={"components/alpha/values-train.yaml": "- image: x\n"},
    ),
    Case(
        "manifest-file-missing",
        "overlay 'svc': component 'gamma': manifest file 'components/gamma/manifests/cm.yaml' not found",
        "overlays/svc.yaml",
        "manifestFiles:",
        "create components/gamma/manifests/cm.yaml",
        files=edit("overlays/svc.yaml", "configmap.yaml", "cm.yaml"),
    ),
    Case(
        "pre-manifest-file-missing",
        "mixin 'extra': component 'gamma': pre-manifest file 'components/gamma/manifests/ns.yaml' not found",
        "mixins/extra.yaml",
        "preManifestFiles:",
        "create components/gamma/manifests/ns.yaml",
        files=edit("mixins/extra.yaml", "namespace.yaml", "ns.yaml"),
    ),
    Case(
        "overrides-not-mapping",
        "overlay 'svc-train': component 'alpha': overrides must be a mapping, not a list",
        "overlays/svc-train.yaml",
        "overrides:",
        "overrides is a mapping of chart values",
        files=edit(
            "overlays/svc-train.yaml",
            "      overrides:\n        image:\n          pullPolicy: Always\n",
            "      overrides:\n        - image\n",
        ),
    ),
    Case(
        "overrides-enabled-not-bool",
        "overlay 'svc-train': component 'alpha': overrides.enabled must be true or false, not 'no'",
        "overlays/svc-train.yaml",
        "enabled:",
        "write 'enabled: false' (unquoted)",
        files=edit("overlays/svc-train.yaml", "        image:\n", "        enabled: 'no'\n        image:\n"),
    ),
    Case(
        "dependency-refs-not-list",
        "overlay 'svc': component 'gamma': 'dependencyRefs' must be a list, not a string",
        "overlays/svc.yaml",
        "dependencyRefs: beta",
        "'- <item>'",
        files=edit(
            "overlays/svc.yaml", "      dependencyRefs:\n        - beta\n", "      dependencyRefs: beta\n"
        ),
    ),
    Case(
        "dependency-refs-item",
        "overlay 'svc': component 'gamma': every 'dependencyRefs' item must be a non-empty "
        "string, not {'name': 'beta'}",
        "overlays/svc.yaml",
        "dependencyRefs:",
        "list only names",
        files=edit("overlays/svc.yaml", "        - beta\n", "        - name: beta\n"),
    ),
    Case(
        "patches-refused",
        "overlay 'svc': component 'gamma': 'patches' are not applied by any deployer",
        "overlays/svc.yaml",
        "patches:",
        "remove 'patches'",
        files=edit(
            "overlays/svc.yaml", "      dependencyRefs:\n", "      patches: [p.yaml]\n      dependencyRefs:\n"
        ),
    ),
    # ---- chains and mixins
    Case(
        "base-not-found",
        "overlay 'svc-train': base 'svcc' not found (did you mean 'svc'?)",
        "overlays/svc-train.yaml",
        "base: svcc",
        "leave it empty to inherit from base",
        files=edit("overlays/svc-train.yaml", "base: svc", "base: svcc"),
    ),
    Case(
        "base-cycle",
        "overlay 'svc': inheritance cycle svc -> svc-train -> svc "
        "(overlays/svc.yaml -> overlays/svc-train.yaml -> overlays/svc.yaml)",
        "overlays/svc.yaml",
        "base: svc-train",
        "make one overlay in the cycle inherit from another parent",
        files=edit("overlays/svc.yaml", "spec:\n", "spec:\n  base: svc-train\n"),
    ),
    Case(
        "base-self-cycle",
        "overlay 'acc-any': inheritance cycle acc-any -> acc-any",
        "overlays/acc-any.yaml",
        "base: acc-any",
        "make one overlay in the cycle inherit",
        files=edit("overlays/acc-any.yaml", "base: base", "base: acc-any"),
    ),
    Case(
        "mixin-not-found",
        "overlay 'svc-train': mixin 'extar' not found in mixins/ (did you mean 'extra'?)",
        "overlays/svc-train.yaml",
        "mixins:",
        "create mixins/extar.yaml (kind RecipeMixin)",
        files=edit("overlays/svc-train.yaml", "- extra", "- extar"),
    ),
    Case(
        "mixin-unknown-spec-key",
        "unknown key 'criteria' in mixin 'extra' spec",
        "mixins/extra.yaml",
        "criteria:",
        "mixin 'extra' spec takes only: constraints, componentRefs",
        files=edit("mixins/extra.yaml", "spec:\n", "spec:\n  criteria: {service: svc}\n"),
    ),
    Case(
        "mixin-duplicate-name",
        "mixin name 'extra' is also used by mixins/extra.yaml",
        "mixins/extra2.yaml",
        4,
        "unique metadata.name",
        files={"mixins/extra2.yaml": FILES["mixins/extra.yaml"]},
    ),
    # ---- shapes not covered above
    Case(
        "registry-unknown-key",
        "unknown key 'component' in registry.yaml (did you mean 'components'?)",
        "registry.yaml",
        "component:",
        "registry.yaml takes only: apiVersion, kind, components",
        files={"registry.yaml": FILES["registry.yaml"] + "component: {}\n"},
    ),
    Case(
        "registry-entry-not-mapping",
        "a registry component must be a mapping, not a string",
        "registry.yaml",
        "components:",
        "each component is a mapping with name and helm",
        files={"registry.yaml": FILES["registry.yaml"] + "  - zeta\n"},
    ),
    Case(
        "registry-name-invalid",
        "component name 'al pha' is not a valid name",
        "registry.yaml",
        "- name: al pha",
        "letters, digits",
        files=edit("registry.yaml", "  - name: alpha\n", "  - name: al pha\n"),
    ),
    Case(
        "registry-helm-not-mapping",
        "component 'gamma': 'helm' must be a mapping, not a list",
        "registry.yaml",
        "helm: []",
        "'helm' takes defaultRepository, defaultChart, defaultVersion, defaultNamespace",
        files=edit(
            "registry.yaml",
            '    displayName: gamma (manifest-only)\n    helm:\n      defaultRepository: ""\n'
            "      defaultNamespace: gamma-system\n",
            "    displayName: gamma\n    helm: []\n",
        ),
    ),
    Case(
        "metadata-name-empty",
        "metadata: 'name' is empty",
        "overlays/svc.yaml",
        "name: ''",
        "give 'name' a value",
        files=edit("overlays/svc.yaml", "  name: svc\n", "  name: ''\n"),
    ),
    Case(
        "constraint-not-mapping",
        "overlay 'svc': a constraint must be a mapping, not a string",
        "overlays/svc.yaml",
        "constraints:",
        "a constraint is a mapping with name and value",
        files=edit(
            "overlays/svc.yaml", '    - name: K8s.server.version\n      value: ">= 1.28"\n', "    - K8s\n"
        ),
    ),
    Case(
        "constraint-unknown-key",
        "unknown key 'values' in overlay 'svc' constraint (did you mean 'value'?)",
        "overlays/svc.yaml",
        "values:",
        "name, value, severity, remediation, unit",
        files=edit(
            "overlays/svc.yaml", '      value: ">= 1.28"\n', '      value: ">= 1.28"\n      values: x\n'
        ),
    ),
    Case(
        "component-ref-not-mapping",
        "overlay 'svc': a componentRef must be a mapping, not a string",
        "overlays/svc.yaml",
        "componentRefs:",
        "a componentRef is a mapping with at least 'name'",
        files={"overlays/svc.yaml": FILES["overlays/svc.yaml"] + "    - alpha\n"},
    ),
    Case(
        "component-ref-cleanup-not-bool",
        "overlay 'svc': component 'gamma': 'cleanup' must be true or false, not 'yes please'",
        "overlays/svc.yaml",
        "cleanup:",
        "write 'cleanup: true' or remove it",
        files=edit(
            "overlays/svc.yaml",
            "      dependencyRefs:\n",
            "      cleanup: yes please\n      dependencyRefs:\n",
        ),
    ),
    Case(
        "component-ref-expected-resources",
        "overlay 'svc': component 'gamma': 'expectedResources' must be a list, not a mapping",
        "overlays/svc.yaml",
        "expectedResources:",
        "'- kind: <kind>'",
        files=edit(
            "overlays/svc.yaml",
            "      dependencyRefs:\n",
            "      expectedResources: {kind: X}\n      dependencyRefs:\n",
        ),
    ),
    Case(
        "validation-not-mapping",
        "overlay 'svc': validation must be a mapping, not a list",
        "overlays/svc.yaml",
        "validation:",
        "validation is a mapping of phases",
        files={"overlays/svc.yaml": FILES["overlays/svc.yaml"] + "  validation: [x]\n"},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_load_errors(tmp_path: Path, case: Case) -> None:
    root = write_catalog(tmp_path, files=case.files, drop=case.drop)
    with pytest.raises(RecipeError) as info:
        load_catalog(root)
    err = info.value
    assert case.message in err.message
    assert_located(err, root, case.path, case.line)
    if case.hint is None:
        assert err.hint is None
    else:
        assert err.hint is not None
        assert case.hint in err.hint
    assert err.exit_code == 2
    assert str(tmp_path) not in err.message or case.id == "registry-missing"  # paths are catalog-relative


def test_every_case_id_is_unique() -> None:
    assert len({c.id for c in CASES}) == len(CASES)


def test_missing_catalog_directory(tmp_path: Path) -> None:
    with pytest.raises(RecipeError) as info:
        load_catalog(tmp_path / "nowhere")
    assert "catalog directory" in info.value.message
    assert "not found" in info.value.message
    assert info.value.hint is not None
    assert "registry.yaml" in info.value.hint


def test_symlinked_values_file_leaving_the_catalog_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside.yaml"
    outside.write_text("secret: 1\n")
    root = write_catalog(tmp_path / "catalog")
    target = root / "components/alpha/values-train.yaml"
    target.unlink()
    target.symlink_to(outside)
    with pytest.raises(RecipeError) as info:
        load_catalog(root)
    assert "'components/alpha/values-train.yaml' resolves outside the catalog" in info.value.message
    assert info.value.hint == "replace the symbolic link by the file itself"
