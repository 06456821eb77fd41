"""Helm parity: every chart render of our catalog against ``helm template`` of the pinned helm binary.

For each distinct chart render of ``recipes/`` (the job the pipeline renders: the same packed chart
archive, values, release name, namespace, kube-version and api-versions; in-tree manifests are the
catalog's own and compared between the two engines in ``tests/render/test_helm_cli.py``), the
pipeline's bytes are compared with::

    helm template RELEASE chart.tgz --namespace NS --kube-version KV --api-versions A … --include-crds -f values

A parity report (component → source file → equal / differs) is printed. Every file and every
stream is byte-equal: there is no documented exception left.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.render.helm_output import sort_hooks, split_manifests, template_output
from pipeline.render.job import ComponentRender, RenderJob, _sources, run_job
from tests.catalog_render import _job, compose_all
from tests.tools import run_tool, tool

CATALOG = Path(__file__).resolve().parents[2] / "recipes"

pytestmark = [pytest.mark.tools, pytest.mark.slow]


@dataclass(frozen=True, slots=True)
class Case:
    """One distinct chart render: who uses it, and the job (in-tree manifests dropped)."""

    users: tuple[str, ...]
    job: RenderJob


def _cases() -> Iterator[Case]:
    """Every distinct chart render of the catalog (in-tree manifests dropped: they are not Helm's)."""
    by_key: dict[str, tuple[list[str], RenderJob]] = {}
    for recipe in compose_all(CATALOG):
        for component in recipe.components:
            job = _job(recipe, component.name, manifests_only=False)
            if job is None or job.chart is None:
                continue
            job = dataclasses.replace(job, pre_manifests=(), manifests=())
            by_key.setdefault(job.key(), ([], job))[0].append(f"{recipe.name}/{component.name}")
    for users, job in by_key.values():
        yield Case(users=tuple(users), job=job)


@pytest.fixture(scope="module")
def cases() -> list[Case]:
    return list(_cases())


def helm_template(job: RenderJob, workdir: Path) -> bytes:
    """``helm template`` of the job by the pinned helm binary, in a fresh HOME with no kubeconfig."""
    workdir.mkdir(parents=True, exist_ok=True)
    assert job.chart is not None
    (workdir / "chart.tgz").write_bytes(job.chart)
    (workdir / "values.json").write_text(json.dumps(job.values, sort_keys=True))
    home = workdir / "home"
    argv = ["template", job.release, str(workdir / "chart.tgz"), "--namespace", job.namespace,
            "--kube-version", job.kube_version, "--include-crds", "-f", str(workdir / "values.json")]
    for api in job.api_versions:
        argv += ["--api-versions", api]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "KUBECONFIG": str(home / "none"),
           "HELM_CACHE_HOME": str(home / "cache"), "HELM_CONFIG_HOME": str(home / "config"),
           "HELM_DATA_HOME": str(home / "data"), "TZ": "UTC", "LC_ALL": "C.UTF-8"}
    return run_tool("helm", argv, env=env).stdout


def _file_segments(stream: bytes) -> dict[str, bytes]:
    """Per source file, its segments as printed (``---``, ``# Source:``, body), in stream order."""
    out: dict[str, bytes] = {}
    for path, body in _sources(stream.decode()):
        out[path] = out.get(path, b"") + f"---\n# Source: {path}\n{body}".encode()
    return out


def parity_report(ours: ComponentRender, helm: bytes) -> dict[str, str]:
    """Source file → ``equal`` or ``differs``; the key ``(stream)`` covers the whole output."""
    helm_files = _file_segments(helm)
    ours_files = ours.file_map()
    report = {path: "equal" if ours_files.get(path) == helm_files.get(path) else "differs"
              for path in sorted(set(helm_files) | set(ours_files))}
    report["(stream)"] = "equal" if ours.stream == helm else "differs"
    return report


@pytest.fixture(scope="module")
def reports(cases: list[Case], tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    tool("helm")  # skip (or fail under CI) before rendering anything
    root = tmp_path_factory.mktemp("helm-parity")
    out: dict[str, dict[str, str]] = {}
    for index, case in enumerate(cases):
        ours = run_job(case.job)
        helm = helm_template(case.job, root / f"case{index}")
        report = parity_report(ours, helm)
        for user in case.users:
            out[user] = report
        assert ours.stream == helm, f"{', '.join(case.users)}: the render differs from helm template: {report}"
    lines = ["Helm parity report (pipeline vs helm template of the pinned helm):"]
    for user in sorted(out):
        lines.append(f"  {user}")
        lines.extend(f"    {path}: {verdict}" for path, verdict in out[user].items())
    print("\n".join(lines))
    return out


def test_catalog_has_chart_renders(cases: list[Case]) -> None:
    assert len(cases) >= 5, [c.users for c in cases]


def test_every_chart_render_and_every_file_equals_helm_template(
        cases: list[Case], reports: dict[str, dict[str, str]]) -> None:
    verdicts = {verdict for report in reports.values() for verdict in report.values()}
    assert verdicts == {"equal"}, reports
    users = {user for case in cases for user in case.users}
    assert set(reports) == users


def test_helm_keeps_blank_lines_and_orders_hooks_by_kind() -> None:
    """The two differences the parity test once found, now Helm's own behaviour in our assembly."""
    files = {
        "app/templates/cm.yaml": "kind: ConfigMap\n\n",
        "app/templates/a-hook.yaml": "kind: Job\nmetadata:\n  annotations:\n    helm.sh/hook: pre-install\n",
        "app/templates/z-hook.yaml": "kind: Pod\nmetadata:\n  annotations:\n    helm.sh/hook: test\n",
        "app/templates/odd-hook.yaml": "kind: Pod\nmetadata:\n  annotations:\n    helm.sh/hook: on-a-whim\n",
        "app/templates/NOTES.txt": "kind: Pod\nmetadata:\n  annotations:\n    helm.sh/hook: test\n",
    }
    manifest = "---\n# Source: app/templates/cm.yaml\nkind: ConfigMap\n\n\n"
    crds = [("app/crds/c.yaml", "kind: CustomResourceDefinition\n")]
    assert template_output(manifest, crds, files) == (
        "---\n# Source: app/crds/c.yaml\nkind: CustomResourceDefinition\n\n"
        "---\n# Source: app/templates/cm.yaml\nkind: ConfigMap\n"  # TrimSpace of the manifest, then "\n"
        "---\n# Source: app/templates/z-hook.yaml\nkind: Pod\nmetadata:\n  annotations:\n    helm.sh/hook: test\n\n"
        "---\n# Source: app/templates/a-hook.yaml\nkind: Job\nmetadata:\n  annotations:\n"
        "    helm.sh/hook: pre-install\n\n")  # Pod before Job (install order); unknown event dropped
    assert [h.path for h in sort_hooks(files)] == ["app/templates/z-hook.yaml", "app/templates/a-hook.yaml"]


def test_split_manifests_follows_helm() -> None:
    # (?:^|\s*\n)---\s* : trailing space before a separator goes, the file's own end stays.
    assert split_manifests("\n---\na: 1  \n---\n\nb: 2\n\n") == ["a: 1", "b: 2\n\n"]


def test_a_chart_with_hooks_only_starts_with_helms_lone_newline() -> None:
    """The one byte outside any segment: what the stream keeps of it is documented in the README."""
    files = {"app/templates/h.yaml": "kind: Job\nmetadata:\n  annotations:\n    helm.sh/hook: post-install\n"}
    assert template_output("", [], files).startswith("\n---\n# Source: app/templates/h.yaml\n")
