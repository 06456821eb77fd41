"""Factories for tiny charts and catalogs: one small asset per scenario, built in a tmp directory."""

from __future__ import annotations

import gzip
import io
import tarfile
import textwrap
from collections.abc import Mapping
from pathlib import Path

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
  namespace: {{ .Release.Namespace }}
spec:
  replicas: {{ .Values.replicas }}
  template:
    spec:
      containers:
        - name: app
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
"""

SERVICE_ACCOUNT = """\
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ .Release.Name }}
"""

HOOK_JOB = """\
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-pre
  annotations:
    helm.sh/hook: pre-install
spec:
  template:
    spec:
      containers:
        - name: pre
          image: docker.io/library/busybox:1.36
"""

CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.dev
spec:
  group: example.dev
"""


def write_files(root: Path, files: Mapping[str, str | bytes]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return root


def chart_files(name: str = "app", version: str = "1.0.0", *, templates: Mapping[str, str] | None = None,
                values: str = "replicas: 1\nimage:\n  repository: ghcr.io/example/app\n  tag: \"1.0\"\n",
                crds: Mapping[str, str] | None = None, kube_version: str | None = None,
                chart_yaml_extra: str = "") -> dict[str, str]:
    """The files of a small chart, keyed relative to the chart directory.

    ``chart_yaml_extra`` is appended to Chart.yaml (e.g. an ``annotations:`` block).
    """
    chart_yaml = f"apiVersion: v2\nname: {name}\nversion: {version}\n"
    if kube_version:
        chart_yaml += f"kubeVersion: \"{kube_version}\"\n"
    chart_yaml += chart_yaml_extra
    files = {"Chart.yaml": chart_yaml, "values.yaml": values}
    for rel, text in (templates if templates is not None else {"deployment.yaml": DEPLOYMENT}).items():
        files[f"templates/{rel}"] = text
    for rel, text in (crds or {}).items():
        files[f"crds/{rel}"] = text
    return files


def chart_archive(name: str = "app", version: str = "1.0.0", **kwargs: object) -> bytes:
    """A chart as a .tgz (entries under ``name/``), built in memory."""
    files = chart_files(name, version, **kwargs)  # type: ignore[arg-type]
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for rel in sorted(files):
            data = files[rel].encode()
            info = tarfile.TarInfo(f"{name}/{rel}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def registry_yaml(*, repository: str = "./charts", version: str = "1.0.0", components: str = "") -> str:
    """The factory catalog's ``registry.yaml``: ``app`` (chart ``app`` at ``version``, as written in YAML,
    from ``repository``), ``extras`` (manifest-only), then ``components``: more entries of the list."""
    return textwrap.dedent(f"""\
        apiVersion: aicr.run/v1alpha2
        kind: ComponentRegistry
        components:
          - name: app
            displayName: App
            helm:
              defaultRepository: {repository}
              defaultChart: app
              defaultVersion: {version}
              defaultNamespace: app-system
          - name: extras
            displayName: Extras
            helm:
              defaultRepository: ""
              defaultNamespace: extras
        """) + components


def images_on(catalog: Path, host: str) -> Path:
    """The factory catalog with its images (``ghcr.io/example/app``, ``docker.io/library/busybox``) moved to
    the registry ``host`` (``example/app``, ``library/busybox`` there)."""
    for path in catalog.rglob("*.yaml"):
        path.write_text(path.read_text().replace("ghcr.io/example/app", f"{host}/example/app")
                        .replace("docker.io/library/busybox", f"{host}/library/busybox"))
    return catalog


def catalog(root: Path, *, chart_templates: Mapping[str, str] | None = None,
            extra: Mapping[str, str] | None = None, repository: str = "./charts", version: str = "1.0.0") -> Path:
    """A minimal AICR catalog: one chart component (the local chart ``charts/app``, unless ``repository``
    names another), one manifest-only component, two overlays."""
    files: dict[str, str] = {
        "registry.yaml": registry_yaml(repository=repository, version=version),
        "overlays/base.yaml": textwrap.dedent("""\
            kind: RecipeMetadata
            apiVersion: aicr.run/v1alpha2
            metadata:
              name: base
            spec:
              componentRefs:
                - name: app
                  type: Helm
                  valuesFile: components/app/values.yaml
            """),
        "overlays/eks.yaml": textwrap.dedent("""\
            kind: RecipeMetadata
            apiVersion: aicr.run/v1alpha2
            metadata:
              name: eks
            spec:
              base: base
              criteria:
                service: eks
              componentRefs:
                - name: app
                  type: Helm
                  overrides:
                    replicas: 2
                - name: extras
                  type: Helm
                  manifestFiles:
                    - components/extras/manifests/config.yaml
            """),
        "components/app/values.yaml": "image:\n  tag: \"1.1\"\n",
        "components/extras/manifests/config.yaml": textwrap.dedent("""\
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: extras
              namespace: {{ .Release.Namespace }}
            data:
              greeting: {{ index .Values "extras" "greeting" | default "hello" | quote }}
            """),
    }
    for rel, text in chart_files("app", "1.0.0", templates=chart_templates or {
        "deployment.yaml": DEPLOYMENT, "serviceaccount.yaml": SERVICE_ACCOUNT, "hook.yaml": HOOK_JOB,
    }, crds={"widgets.yaml": CRD}).items():
        files[f"charts/app/{rel}"] = text
    files.update(extra or {})
    return write_files(root, files)
