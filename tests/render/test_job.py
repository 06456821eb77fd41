"""Render jobs: content keys, stream assembly, hooks and in-tree manifests in stream order."""

from __future__ import annotations

from pipeline.render.job import (
    ComponentRender,
    RenderDigests,
    RenderJob,
    assemble,
    run_job,
    segments_of,
    split_documents,
)
from pipeline.vocabulary.digest import sha256, sha256_of_entries
from tests import factories


def _job(**overrides: object) -> RenderJob:
    fields: dict[str, object] = {
        "component": "app", "what": "component 'app'",
        "chart": factories.chart_archive(templates={"d.yaml": factories.DEPLOYMENT, "hook.yaml": factories.HOOK_JOB},
                                         crds={"w.yaml": factories.CRD}),
        "values": {"replicas": 3}, "release": "app", "namespace": "app-system", "kube_version": "1.33.0",
        "api_versions": ("resource.k8s.io/v1",), "manifest_chart_version": "1.0.0",
    }
    fields.update(overrides)
    return RenderJob(**fields)  # type: ignore[arg-type]


def test_equal_content_gives_equal_keys_and_any_change_a_new_key() -> None:
    assert _job().key() == _job().key()
    assert _job().key() != _job(values={"replicas": 4}).key()
    assert _job().key() != _job(namespace="other").key()
    assert _job().key() != _job(api_versions=()).key()


def test_stream_orders_pre_crds_manifest_hooks_post() -> None:
    pre = ("components/app/manifests/ns.yaml", b"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: app-system\n")
    post = ("components/app/manifests/cm.yaml",
            b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ index .Values \"app\" \"replicas\" }}\n")
    render = run_job(_job(pre_manifests=(pre,), manifests=(post,)))
    sources = [path for path, _ in segments_of(render.stream)]
    assert sources == [
        "components/app/manifests/ns.yaml",
        "app/crds/w.yaml",
        "app/templates/d.yaml",
        "app/templates/hook.yaml",
        "components/app/manifests/cm.yaml",
    ]
    assert b"name: 3" in render.file_map()["components/app/manifests/cm.yaml"]
    assert b"replicas: 3" in render.file_map()["app/templates/d.yaml"]


def test_manifest_only_component_renders_without_a_chart() -> None:
    post = ("components/x/manifests/cm.yaml", b"kind: ConfigMap\nmetadata:\n  name: {{ .Chart.Name }}\n")
    render = run_job(_job(component="x", chart=None, manifests=(post,)))
    assert render.stream == b"---\n# Source: components/x/manifests/cm.yaml\nkind: ConfigMap\nmetadata:\n  name: x\n"


def test_files_concatenate_to_the_stream_content() -> None:
    render = run_job(_job())
    assert sorted(b"".join(data for _, data in render.files)) == sorted(render.stream)
    assert assemble(segments_of(render.stream)) == render


def test_split_documents_drops_empty_documents() -> None:
    assert split_documents("---\n\n---\na: 1\n---\n# only a comment\n---\nb: 2\n") == [
        "a: 1\n", "# only a comment\n", "b: 2\n"]


def test_render_digests_are_those_of_the_bytes_and_computed_once_per_render() -> None:
    render = assemble([("c/templates/a.yaml", "a: 1\n"), ("c/templates/b.yaml", "b: 2\n")])
    digests = RenderDigests()
    files, root = digests.files(render)
    assert digests.stream(render) == sha256(render.stream)
    assert files == tuple(sorted((path, sha256(data)) for path, data in render.files))
    assert root == sha256_of_entries(render.files)
    assert digests.files(render)[0] is files  # the memo's own tuple: not hashed again
    other = ComponentRender(stream=render.stream + b"c: 3\n", files=render.files)
    assert digests.stream(other) == sha256(other.stream) != digests.stream(render)  # keyed by the object
