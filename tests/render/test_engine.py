"""The Helm engine wrapper: helm-template-equivalent output, capabilities, errors."""

from __future__ import annotations

import pytest

from pipeline.errors import RenderError
from pipeline.render import engine
from pipeline.render.engines import RenderTarget
from pipeline.render.wrapper import WrapperChart
from tests import factories

API = ("resource.k8s.io/v1", "resource.k8s.io/v1beta1")


def _render(archive: bytes, values: dict[str, object] | None = None, kube: str = "1.33.0") -> engine.RenderedChart:
    return engine.render_chart(archive, values=values or {}, what="chart 'app'",
                               target=RenderTarget(release="rel", namespace="ns1", kube_version=kube, api_versions=API))


def test_manifest_is_kind_sorted_with_source_headers() -> None:
    archive = factories.chart_archive(templates={"a.yaml": factories.DEPLOYMENT, "b.yaml": factories.SERVICE_ACCOUNT})
    rendered = _render(archive)
    # helm template installs ServiceAccounts before Deployments, whatever the file order.
    assert rendered.manifest.index("kind: ServiceAccount") < rendered.manifest.index("kind: Deployment")
    assert "# Source: app/templates/a.yaml" in rendered.manifest
    assert "namespace: ns1" in rendered.manifest


def test_hooks_and_crds_are_returned_separately() -> None:
    archive = factories.chart_archive(templates={"d.yaml": factories.DEPLOYMENT, "hook.yaml": factories.HOOK_JOB},
                                      crds={"w.yaml": factories.CRD})
    rendered = _render(archive)
    assert "helm.sh/hook" not in rendered.manifest
    assert [path for path, _ in rendered.hooks] == ["app/templates/hook.yaml"]
    assert [path for path, _ in rendered.crds] == ["app/crds/w.yaml"]


def test_capabilities_follow_the_recipe() -> None:
    template = ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: caps}\ndata:\n"
                "  kube: {{ .Capabilities.KubeVersion.Version | quote }}\n"
                "  dra: {{ .Capabilities.APIVersions.Has \"resource.k8s.io/v1\" | quote }}\n")
    rendered = _render(factories.chart_archive(templates={"caps.yaml": template}))
    assert 'kube: "v1.33.0"' in rendered.manifest
    assert 'dra: "true"' in rendered.manifest


def test_kube_version_constraint_is_enforced() -> None:
    archive = factories.chart_archive(kube_version=">=1.40.0-0")
    with pytest.raises(RenderError, match=r"chart 'app': Helm refused it: .*kubeVersion"):
        _render(archive)


def test_template_error_carries_helm_file_and_line() -> None:
    archive = factories.chart_archive(templates={"bad.yaml": "a: {{ required \"set .Values.must\" .Values.must }}\n"})
    with pytest.raises(RenderError, match=r"set \.Values\.must") as info:
        _render(archive)
    assert "bad.yaml" in str(info.value)
    assert info.value.hint


def test_garbage_archive_is_a_render_error() -> None:
    with pytest.raises(RenderError, match="Helm refused it"):
        _render(b"not a tarball")


def test_in_tree_templates_get_values_keyed_by_component() -> None:
    text = (b"kind: ConfigMap\ndata:\n  v: {{ index .Values \"my-comp\" \"greeting\" }}\n"
            b"  ns: {{ .Release.Namespace }}\n  chart: {{ .Chart.Name }}-{{ .Chart.Version }}\n"
            b"  kube: {{ .Capabilities.KubeVersion.Version }}\n")
    chart = WrapperChart.of({"components/my-comp/manifests/cm.yaml": text}, name="my-comp", version="2.0.0")
    out = engine.render_templates(chart, values={"my-comp": {"greeting": "hi"}}, what="in-tree",
                                  target=RenderTarget(release="my-comp", namespace="ns9", kube_version="1.33.0",
                                                      api_versions=API))
    assert out == {"components/my-comp/manifests/cm.yaml":
                   "kind: ConfigMap\ndata:\n  v: hi\n  ns: ns9\n  chart: my-comp-2.0.0\n  kube: v1.33.0\n"}


def test_engine_identity_names_the_pinned_engine() -> None:
    identity = engine.engine_identity()
    assert identity.name == "helm-python-sdk"
    assert identity.version == "0.2.2"
    assert identity.helm == "v4.2.3"
    assert identity.library.startswith("sha256:") and len(identity.library) == 71
