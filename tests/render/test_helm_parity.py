"""Helm parity: every chart render of our catalog against ``helm template`` of the pinned helm binary.

For each distinct chart render of ``recipes/`` (the job the pipeline renders: the same packed chart
archive, values, release name, namespace, kube-version and api-versions), the pipeline's bytes
(CRDs, the kind-sorted manifest, hooks; in-tree manifests are the pipeline's own and not Helm's) are
compared with::

    helm template RELEASE chart.tgz --namespace NS --kube-version KV --api-versions A … --include-crds -f values

A parity report (component → source file → equal / differs (how)) is printed. The differences are
the two the README documents ("Helm parity"), each asserted exactly:

1. **document whitespace**: ``helm template`` prints each document as its template produced it,
   so a document keeps the blank lines its template left around it (typically the trailing newline of a
   file, a blank line before the next ``---``); the pipeline strips them from every document, so a document's bytes do
   not depend on where it sat in its file;
2. **hook order**: ``helm template`` prints hooks after the manifest sorted by kind (Helm's install
   order, stable over template paths); the pipeline prints them by template path, then in file
   order.

After undoing exactly those two (split Helm's output into documents, strip each, re-sort hooks by
path), the bytes are equal, for every component and for every file.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.render.job import ComponentRender, RenderJob, _is_hook, _sources, assemble, run_job, split_documents
from tests.catalog_render import _job, compose_all
from tests.tools import run_tool, tool

CATALOG = Path(__file__).resolve().parents[2] / "recipes"

WHITESPACE = "helm keeps the blank lines a template leaves around a document"
HOOK_ORDER = "helm prints hooks in kind order, the pipeline by template path"

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


def _documents(helm: bytes) -> list[tuple[str, str]]:
    """Helm's stream as ``(source path, document)`` pairs, each document stripped of blank lines."""
    return [(path, doc) for path, body in _sources(helm.decode()) for doc in split_documents(body)]


def undo_documented_differences(helm: bytes) -> ComponentRender:
    """Helm's stream with the two documented differences undone (see the module docstring)."""
    documents = _documents(helm)
    plain = [(p, d) for p, d in documents if not _is_hook(d)]
    hooks = sorted(((p, d) for p, d in documents if _is_hook(d)), key=lambda item: item[0])  # stable
    return assemble(plain + hooks)


def _file_segments(stream: bytes) -> dict[str, bytes]:
    """Per source file, its segments as printed (``---``, ``# Source:``, body), in stream order."""
    out: dict[str, bytes] = {}
    for path, body in _sources(stream.decode()):
        out[path] = out.get(path, b"") + f"---\n# Source: {path}\n{body}".encode()
    return out


def parity_report(ours: ComponentRender, helm: bytes) -> dict[str, str]:
    """Source file → ``equal`` or ``differs (how)``; the key ``(stream)`` covers the whole output."""
    helm_files = _file_segments(helm)
    ours_files = _file_segments(ours.stream)
    undone = undo_documented_differences(helm)
    undone_files = _file_segments(undone.stream)
    report: dict[str, str] = {}
    for path in sorted(set(helm_files) | set(ours_files)):
        if ours_files.get(path) == helm_files.get(path):
            report[path] = "equal"
        elif ours_files.get(path) == undone_files.get(path):
            report[path] = f"differs ({WHITESPACE})"
        else:
            report[path] = "differs (UNEXPLAINED)"
    whitespace_only = assemble(_documents(helm)).stream
    if ours.stream == helm:
        report["(stream)"] = "equal"
    elif ours.stream == undone.stream:
        how = ([WHITESPACE] if whitespace_only != helm else []) + ([HOOK_ORDER] if undone.stream != whitespace_only
                                                                   else [])
        report["(stream)"] = f"differs ({'; '.join(how)})"
    else:
        report["(stream)"] = "differs (UNEXPLAINED)"
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
        assert ours.stream == undo_documented_differences(helm).stream, (
            f"{', '.join(case.users)}: the pipeline's render differs from helm template beyond the documented "
            f"differences: {report}")
    lines = ["Helm parity report (pipeline vs helm template of the pinned helm):"]
    for user in sorted(out):
        lines.append(f"  {user}")
        lines.extend(f"    {path}: {verdict}" for path, verdict in out[user].items())
    print("\n".join(lines))
    return out


def test_catalog_has_chart_renders(cases: list[Case]) -> None:
    assert len(cases) >= 5, [c.users for c in cases]


def test_every_chart_render_matches_helm_template_up_to_the_documented_differences(
        cases: list[Case], reports: dict[str, dict[str, str]]) -> None:
    verdicts = {verdict for report in reports.values() for verdict in report.values()}
    assert verdicts <= {"equal", f"differs ({WHITESPACE})", f"differs ({WHITESPACE}; {HOOK_ORDER})"}, verdicts
    users = {user for case in cases for user in case.users}
    assert set(reports) == users


def test_the_documented_differences_are_exactly_these() -> None:
    """The two differences on a tiny stream, byte for byte (what the README shows)."""
    helm = (b"---\n# Source: app/templates/cm.yaml\nkind: ConfigMap\n\n"
            b"---\n# Source: app/templates/z-hook.yaml\nkind: Pod\nmetadata:\n  annotations:\n"
            b"    helm.sh/hook: test\n\n"
            b"---\n# Source: app/templates/a-hook.yaml\nkind: Job\nmetadata:\n  annotations:\n"
            b"    helm.sh/hook: pre-install\n\n")
    ours = (b"---\n# Source: app/templates/cm.yaml\nkind: ConfigMap\n"
            b"---\n# Source: app/templates/a-hook.yaml\nkind: Job\nmetadata:\n  annotations:\n"
            b"    helm.sh/hook: pre-install\n"
            b"---\n# Source: app/templates/z-hook.yaml\nkind: Pod\nmetadata:\n  annotations:\n"
            b"    helm.sh/hook: test\n")
    assert undo_documented_differences(helm).stream == ours
    report = parity_report(assemble([(p, d) for p, d in _sources(ours.decode())]), helm)
    assert report == {
        "app/templates/a-hook.yaml": f"differs ({WHITESPACE})",
        "app/templates/cm.yaml": f"differs ({WHITESPACE})",
        "app/templates/z-hook.yaml": f"differs ({WHITESPACE})",
        "(stream)": f"differs ({WHITESPACE}; {HOOK_ORDER})",
    }
