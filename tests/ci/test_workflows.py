"""The CI workflows in .github/workflows/: valid against GitHub's workflow schema (the one
``check-jsonschema`` ships), no ``zizmor`` finding offline, and the project's own rules — no default
permissions, every action pinned by full commit SHA, no persisted credentials, the same nox sessions
as locally, and the dagger CLI at the version of the pinned SDK.

The two tools come from the test environment (the ``test`` extra); where one is missing the test
is skipped with the reason, except under ``CI=true``, where it fails.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.needs import missing

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml"))
USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>\S+)(?P<comment>.*)$")
PINNED = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@[0-9a-f]{40}$")


def _tool(name: str) -> str:
    """The tool installed beside this interpreter (the test venv), else on PATH; skip or fail when absent."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.is_file() else shutil.which(name)
    if found is None:
        missing(f"{name!r} is not installed in the test environment (pip install -r requirements/dev.txt)")
    return found


def _load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    if True in doc:  # YAML 1.1 reads the key `on` as a boolean
        doc["on"] = doc.pop(True)
    return doc


def _steps(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in doc["jobs"].values() for step in job.get("steps", [])]


def _runs(doc: dict[str, Any]) -> str:
    return "\n".join(str(step.get("run", "")) for step in _steps(doc))


def test_the_three_workflows_exist() -> None:
    assert [p.name for p in FILES] == ["drift.yml", "lock.yml", "reproducibility.yml"]


def test_workflows_match_github_s_workflow_schema() -> None:
    done = subprocess.run([_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows",
                           *map(str, FILES)], capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_zizmor_offline_reports_no_finding() -> None:
    done = subprocess.run([_tool("zizmor"), "--offline", "--format", "json", str(WORKFLOWS)],
                          capture_output=True, text=True, check=False, timeout=120)
    findings = json.loads(done.stdout or "[]")
    assert findings == [], json.dumps(findings, indent=2)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_no_default_permissions_and_minimal_job_permissions(path: Path) -> None:
    doc = _load(path)
    assert doc["permissions"] == {}
    for name, job in doc["jobs"].items():
        assert isinstance(job.get("permissions"), dict), f"job {name!r} must state its permissions"
        writes = {k for k, v in job["permissions"].items() if v == "write"}
        allowed = {("drift.yml", "refresh"): {"contents", "pull-requests"}, ("lock.yml", "attest"): {"id-token"}}
        assert writes <= allowed.get((path.name, name), set()), (name, writes)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_action_is_pinned_by_full_sha_with_its_version(path: Path) -> None:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        match = USES.match(line)
        if match is None:
            continue
        assert PINNED.match(match["ref"]), f"{path.name}:{number}: {match['ref']} is not pinned by commit SHA"
        assert re.match(r"^\s+# v\d", match["comment"]), f"{path.name}:{number}: say which version the SHA is"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_checkouts_do_not_persist_credentials(path: Path) -> None:
    checkouts = [s for s in _steps(_load(path)) if str(s.get("uses", "")).startswith("actions/checkout@")]
    assert checkouts
    assert all(s.get("with", {}).get("persist-credentials") is False for s in checkouts)


def test_reproducibility_runs_reproduce_and_qualify_on_pull_requests_and_the_dagger_backend() -> None:
    doc = _load(WORKFLOWS / "reproducibility.yml")
    assert "pull_request" in doc["on"]
    runs = _runs(doc)
    assert "nox -s reproduce\n" in runs + "\n" and "nox -s qualify" in runs
    assert "dagger run python -m nox -s reproduce -- --backend dagger" in runs


def test_the_dagger_cli_is_the_version_of_the_pinned_sdk() -> None:
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dagger"]
    (pin,) = [r for r in extras if r.startswith("dagger-io==")]
    steps = [s for s in _steps(_load(WORKFLOWS / "reproducibility.yml"))
             if str(s.get("uses", "")).startswith("dagger/dagger-for-github@")]
    assert [s["with"]["version"] for s in steps] == [pin.removeprefix("dagger-io==")]


def test_lock_regenerates_on_dependency_and_chart_changes_and_fails_with_the_diff() -> None:
    doc = _load(WORKFLOWS / "lock.yml")
    for event in ("pull_request", "push"):
        assert doc["on"][event]["paths"] == ["requirements/**", "pyproject.toml", "recipes/charts/**"]
    runs = _runs(doc)
    assert "nox -s lock" in runs and "git --no-pager diff -- lockfiles/" in runs and "exit 1" in runs


def test_drift_is_weekly_and_opens_a_pull_request() -> None:
    doc = _load(WORKFLOWS / "drift.yml")
    assert [s["cron"] for s in doc["on"]["schedule"]] == ["17 5 * * 1"]
    runs = _runs(doc)
    assert "nox -s drift" in runs and "nox -s bom" in runs
    assert any(str(s.get("uses", "")).startswith("peter-evans/create-pull-request@") for s in _steps(doc))


def test_lock_signs_keyless_in_its_own_job_only_and_verifies_what_it_signed() -> None:
    doc = _load(WORKFLOWS / "lock.yml")
    tokens = {name for name, job in doc["jobs"].items() if job["permissions"].get("id-token") == "write"}
    assert tokens == {"attest"}
    job = doc["jobs"]["attest"]
    assert job["needs"] == "lock" and "pull_request" in job["if"]
    runs = "\n".join(str(step.get("run", "")) for step in job["steps"])
    assert "nox -s attest -- --keyless" in runs
    assert "nox -s verify-attestation --" in runs and "--certificate-identity" in runs
    assert "--certificate-oidc-issuer https://token.actions.githubusercontent.com" in runs
