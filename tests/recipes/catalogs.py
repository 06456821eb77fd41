"""A tiny AICR-format catalog, written into a tmp directory, for one scenario at a time.

``FILES`` is a complete, valid catalog that exercises every composition rule once:

- ``base`` declares alpha (HTTP chart with alias prefix) and beta (OCI chart, depends on alpha);
- ``svc`` (old apiVersion group) overrides alpha's values and adds gamma (manifest-only);
- ``svc-train`` inherits from ``svc``, pins alpha's version, picks a second values file for alpha
  and names the mixin ``extra``;
- ``acc-any`` is a wildcard-service overlay for accelerator ``x1``;
- mixin ``extra`` adds a constraint, delta (chart in the catalog's ``./charts``) and gives gamma a
  namespace and a pre-manifest (the only fields a mixin may add to a declared component).

Tests change one file (``files={...}``), or drop one (``drop=[...]``), to make one failure.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping
from pathlib import Path

from pipeline.errors import PipelineError

REGISTRY = """\
apiVersion: aicr.run/v1alpha2
kind: ComponentRegistry
components:
  - name: alpha
    displayName: alpha
    nodeScheduling: {system: {nodeSelectorPaths: [nodeSelector]}}
    helm:
      defaultRepository: https://charts.example.com/stable
      defaultChart: example/alpha
      defaultVersion: 1.0.0
      defaultNamespace: alpha-system
  - name: beta
    displayName: beta
    helm:
      defaultRepository: oci://registry.example.com/charts
      defaultChart: beta-chart
      defaultVersion: v2.0.0
      defaultNamespace: beta-system
  - name: gamma
    displayName: gamma (manifest-only)
    helm:
      defaultRepository: ""
      defaultNamespace: gamma-system
  - name: delta
    displayName: delta (a chart of the catalog's own)
    helm:
      defaultRepository: ./charts
      defaultChart: delta
      defaultVersion: 0.1.0
      defaultNamespace: delta-system
  - name: epsilon
    displayName: epsilon (Kustomize)
    kustomize:
      defaultSource: https://github.com/example/epsilon
      defaultPath: deploy
      defaultTag: v1.0.0
"""

BASE = """\
kind: RecipeMetadata
apiVersion: aicr.run/v1alpha2
metadata:
  name: base
spec:
  constraints:
    - name: K8s.server.version
      value: ">= 1.25"
  componentRefs:
    - name: alpha
      type: Helm
      valuesFile: components/alpha/values.yaml
    - name: beta
      type: Helm
      valuesFile: components/beta/values.yaml
      dependencyRefs:
        - alpha
"""

SVC = """\
kind: RecipeMetadata
apiVersion: aicr.nvidia.com/v1alpha1
metadata:
  name: svc
spec:
  criteria:
    service: svc
  constraints:
    - name: K8s.server.version
      value: ">= 1.28"
  componentRefs:
    - name: alpha
      type: Helm
      overrides:
        image:
          tag: "2.0"
        list: [c]
        drop: null
    - name: gamma
      type: Helm
      manifestFiles:
        - components/gamma/manifests/configmap.yaml
      dependencyRefs:
        - beta
"""

SVC_TRAIN = """\
kind: RecipeMetadata
apiVersion: aicr.run/v1alpha2
metadata:
  name: svc-train
spec:
  base: svc
  criteria:
    service: svc
    intent: training
  mixins:
    - extra
  componentRefs:
    - name: alpha
      type: Helm
      version: 1.1.0
      valuesFile: components/alpha/values-train.yaml
      overrides:
        image:
          pullPolicy: Always
"""

ACC_ANY = """\
kind: RecipeMetadata
apiVersion: aicr.run/v1alpha2
metadata:
  name: acc-any
spec:
  base: base
  criteria:
    service: any
    accelerator: x1
  componentRefs:
    - name: beta
      overrides:
        replicas: 2
"""

EXTRA = """\
kind: RecipeMixin
apiVersion: aicr.run/v1alpha2
metadata:
  name: extra
spec:
  constraints:
    - name: OS.release.ID
      value: ubuntu
  componentRefs:
    - name: delta
      type: Helm
      valuesFile: components/delta/values.yaml
      dependencyRefs:
        - alpha
    - name: gamma
      namespace: gamma-privileged
      preManifestFiles:
        - components/gamma/manifests/namespace.yaml
"""

FILES: dict[str, str] = {
    "registry.yaml": REGISTRY,
    "overlays/base.yaml": BASE,
    "overlays/svc.yaml": SVC,
    "overlays/svc-train.yaml": SVC_TRAIN,
    "overlays/acc-any.yaml": ACC_ANY,
    "mixins/extra.yaml": EXTRA,
    "components/alpha/values.yaml": textwrap.dedent("""\
        image:
          repository: example/alpha
          tag: "1.0"
        list: [a, b]
        drop: 1
        keep: true
        """),
    "components/alpha/values-train.yaml": 'image:\n  tag: "1.5"\ntrain: true\n',
    "components/beta/values.yaml": "replicas: 1\n",
    "components/delta/values.yaml": "size: small\n",
    "components/gamma/manifests/configmap.yaml": textwrap.dedent("""\
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: gamma
          namespace: {{ .Release.Namespace }}
        """),
    "components/gamma/manifests/namespace.yaml": "apiVersion: v1\nkind: Namespace\n"
    "metadata:\n  name: gamma\n",
    "charts/delta/Chart.yaml": "apiVersion: v2\nname: delta\nversion: 0.1.0\n",
}


def write_catalog(root: Path, *, files: Mapping[str, str] | None = None, drop: Iterable[str] = ()) -> Path:
    """Write ``FILES`` (with ``files`` replacing or adding entries, ``drop`` removed) under ``root``."""
    content = {**FILES, **(files or {})}
    for name in drop:
        del content[name]
    for rel, text in content.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return root


def line_of(text: str, marker: str) -> int:
    """1-based line of the first line of ``text`` containing ``marker``."""
    for number, line in enumerate(text.splitlines(), start=1):
        if marker in line:
            return number
    raise AssertionError(f"{marker!r} not in text")


def assert_located(err: PipelineError, root: Path, path: str | None, line: int | str | None) -> None:
    """``err`` names the catalog-relative ``path`` and ``line`` (a str: the line of ``path`` containing it)."""
    assert (str(err.path) if err.path is not None else None) == path
    if isinstance(line, str):
        assert path is not None
        line = line_of((root / path).read_text(), line)
    assert err.line == line
