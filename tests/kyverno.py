"""Kyverno as an oracle: ``kyverno apply`` of policy files to resource files, verdict per resource.

Generic over what the policies are (``ClusterPolicy`` today; ``ImageValidatingPolicy`` is another
engineer's change): :func:`kyverno_apply` runs the pinned ``kyverno`` CLI (``tests/tools.py``) with
``--policy-report --output-format json`` and folds the report into one verdict per resource,
``Kind/namespace/name`` → ``fail`` (any rule failed or errored), ``pass`` (some rule passed) or
``skip``; :func:`failures` gives the failed rules' messages.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.tools import run_tool

__all__ = ["Applied", "kyverno_apply"]

_RANK = {"skip": 0, "pass": 1, "warn": 1, "fail": 2, "error": 2}


@dataclass(frozen=True, slots=True)
class Applied:
    """Per resource, its verdict and the messages of the rules that did not pass."""

    verdicts: dict[str, str]
    messages: dict[str, list[str]]
    report: dict[str, Any]


def _key(resource: dict[str, Any]) -> str:
    namespace, kind, name = resource.get("namespace"), resource["kind"], resource["name"]
    return f"{kind}/{namespace}/{name}" if namespace else f"{kind}/{name}"


def kyverno_apply(policies: Sequence[Path], resources: Sequence[Path], *, home: Path) -> Applied:
    """``kyverno apply POLICY… --resource R…``; the verdict of every resource the report names."""
    home.mkdir(parents=True, exist_ok=True)
    argv = [*map(str, policies)]
    for resource in resources:
        argv += ["--resource", str(resource)]
    argv += ["--policy-report", "--output-format", "json", "--remove-color"]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "KUBECONFIG": str(home / "no-kubeconfig")}
    done = run_tool("kyverno", ["apply", *argv], env=env, check=False, timeout=300)
    text = done.stdout.decode()
    start = text.find("{")
    if start < 0:
        raise AssertionError(f"kyverno apply printed no report (exit {done.returncode}): "
                             f"{done.stderr.decode(errors='replace')[-2000:]}")
    report: dict[str, Any] = json.JSONDecoder().raw_decode(text[start:])[0]
    verdicts: dict[str, str] = {}
    messages: dict[str, list[str]] = {}
    for result in report.get("results") or ():
        outcome = str(result.get("result"))
        for resource in result.get("resources") or ():
            key = _key(resource)
            if _RANK.get(outcome, 2) >= _RANK.get(verdicts.get(key, "skip"), 0):
                verdicts[key] = "fail" if outcome == "error" else outcome
            if outcome in {"fail", "error"}:
                messages.setdefault(key, []).append(f"{result.get('rule')}: {result.get('message')}")
    return Applied(verdicts=verdicts, messages=messages, report=report)
