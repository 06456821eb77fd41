"""Gate 1: chart versions pinned exactly; overlay pins that differ from the registry need an exemption."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pipeline.errors import RecipeError
from pipeline.gates import Finding, GateName, run_gates, version_problem
from tests.recipes.catalogs import FILES, SVC_TRAIN, line_of, write_catalog

EXEMPTION = textwrap.dedent("""\
    apiVersion: pipeline.recipes.dev/v1
    kind: PinExemptions
    versionPins:
      - source: overlays/svc-train.yaml
        component: alpha
        pin: 1.1.0
        reason: training needs the 1.1 scheduler fix
    """)


@pytest.mark.parametrize("version", ["1.2.3", "v26.3.2", "0.1.0-alpha.8", "v0.1.0-alpha.8", "1.0.0+build.5",
                                     "2.0.0-rc.1+meta", "0.18.3"])
def test_exact_versions_pass(version: str) -> None:
    assert version_problem(version) is None


@pytest.mark.parametrize(("version", "why"), [
    ("", "is empty"),
    ("   ", "is only whitespace"),
    (" 1.2.3", "has surrounding whitespace"),
    ("1.2.3 ", "has surrounding whitespace"),
    ("v", "is a bare 'v' with no version number"),
    ("latest", "is 'latest', which names whatever is newest when Helm runs"),
    ("LATEST", "is 'latest'"),
    (">=1.2.0", "is a range ('>='), not one exact version"),
    ("<2.0.0", "is a range ('<')"),
    ("=1.2.0", "is a range ('=')"),
    ("~1.2.0", "is a range ('~')"),
    ("^1.2.0", "is a range ('^')"),
    ("*", "is a wildcard range"),
    ("1.x", "is a wildcard range"),
    ("1.2.X", "is a wildcard range"),
    ("1.*.0", "is a wildcard range"),
    ("1.0.0 - 2.0.0", "is a range ('a - b')"),
    ("1.0.0 || 2.0.0", "is a range ('||' joins alternatives)"),
    (">= 1.0, < 2.0", "is a range ('>=')"),
    ("1.2.3 1.2.4", "is a list of constraints"),
    ("1.2", "has fewer than three parts: Helm reads a partial version as a range"),
    ("v1", "has fewer than three parts"),
    ("01.2.3", "is not a semantic version"),
    ("1.2.3.4", "is not a semantic version"),
    ("stable", "is not a semantic version"),
])
def test_inexact_versions_fail_with_the_reason(version: str, why: str) -> None:
    problem = version_problem(version)
    assert problem is not None
    assert problem.startswith(why)


def test_non_string_version_fails() -> None:
    assert version_problem(1.2) == "is a float, not a string"


def _gate(root: Path) -> list[Finding]:
    return [f for f in run_gates(root) if f.gate is GateName.CHART_VERSIONS]


def test_overlay_pin_that_differs_from_the_registry_fails(tmp_path: Path) -> None:
    root = write_catalog(tmp_path)
    registry_line = line_of(FILES["registry.yaml"], "defaultVersion: 1.0.0")
    assert _gate(root) == [Finding(
        gate=GateName.CHART_VERSIONS, file="overlays/svc-train.yaml", line=line_of(SVC_TRAIN, "version: 1.1.0"),
        message=f"component 'alpha' is pinned to chart version '1.1.0' here, but registry.yaml:{registry_line} pins "
                "'1.0.0': a recipe-specific chart version needs a reviewed exemption",
        hint="drop 'version:' to use the registry default, or add to exemptions.yaml under versionPins: "
             "{source: overlays/svc-train.yaml, component: alpha, pin: '1.1.0', reason: <why>}",
    )]
    assert str(_gate(root)[0]).startswith(f"overlays/svc-train.yaml:{line_of(SVC_TRAIN, 'version: 1.1.0')}: ")


def test_an_exemption_lets_the_pin_differ(tmp_path: Path) -> None:
    root = write_catalog(tmp_path, files={"exemptions.yaml": EXEMPTION})
    assert _gate(root) == []


def test_a_pin_equal_to_the_registry_default_needs_nothing(tmp_path: Path) -> None:
    root = write_catalog(tmp_path, files={"overlays/svc-train.yaml": SVC_TRAIN.replace("1.1.0", "1.0.0")})
    assert _gate(root) == []


@pytest.mark.parametrize(("written", "why"), [
    ('""', "is empty"),
    ('" 1.1.0"', "has surrounding whitespace"),
    ("v", "is a bare 'v'"),
    ("latest", "is 'latest'"),
    ('">=1.0.0"', "is a range ('>=')"),
    ("~1.0.0", "is a range ('~')"),
    ("^1.0.0", "is a range ('^')"),
    ('"*"', "is a wildcard range"),
    ("1.x", "is a wildcard range"),
    ("1.0.0 - 2.0.0", "is a range ('a - b')"),
    ('"1.0.0 || 1.1.0"', "is a range ('||'"),
    ('"1.0"', "has fewer than three parts"),
])
def test_overlay_version_that_is_not_exact_fails(tmp_path: Path, written: str, why: str) -> None:
    root = write_catalog(tmp_path, files={"overlays/svc-train.yaml": SVC_TRAIN.replace("version: 1.1.0",
                                                                                      f"version: {written}")})
    findings = _gate(root)
    assert len(findings) == 1
    finding = findings[0]
    assert (finding.file, finding.line) == ("overlays/svc-train.yaml", line_of(SVC_TRAIN, "version: 1.1.0"))
    assert finding.message.startswith("component 'alpha': chart version ")
    assert why in finding.message
    assert finding.hint == ('write one exact version, e.g. version: "1.2.3" (the registry default is \'1.0.0\': or '
                            "drop 'version:' to use it)")


@pytest.mark.parametrize(("written", "why"), [("latest", "is 'latest'"), ('"~1.0.0"', "is a range ('~')"),
                                              ('""', "is empty")])
def test_registry_default_that_is_not_exact_fails(tmp_path: Path, written: str, why: str) -> None:
    registry = FILES["registry.yaml"].replace("defaultVersion: 1.0.0", f"defaultVersion: {written}")
    root = write_catalog(tmp_path, files={"registry.yaml": registry})
    findings = _gate(root)
    expected_line = line_of(registry, f"defaultVersion: {written}")
    assert [(f.file, f.line) for f in findings] == [("registry.yaml", expected_line)]
    assert findings[0].message.startswith("component 'alpha': chart version ") and why in findings[0].message


def test_registry_chart_without_a_default_version_fails(tmp_path: Path) -> None:
    registry = FILES["registry.yaml"].replace("      defaultVersion: v2.0.0\n", "")
    beta = "      valuesFile: components/beta/values.yaml\n"
    base = FILES["overlays/base.yaml"].replace(beta, beta + "      version: v2.0.0\n")
    root = write_catalog(tmp_path, files={"registry.yaml": registry, "overlays/base.yaml": base})
    findings = [f for f in _gate(root) if "'beta'" in f.message]
    assert [(f.file, f.message) for f in findings] == [
        ("registry.yaml", "component 'beta': chart from 'oci://registry.example.com/charts' has no defaultVersion")]


def _exemptions(*entries: str) -> str:
    head = "apiVersion: pipeline.recipes.dev/v1\nkind: PinExemptions\nversionPins:\n"
    return head + "".join(textwrap.indent(textwrap.dedent(e), "  ") for e in entries)


GOOD = """\
- source: overlays/svc-train.yaml
  component: alpha
  pin: 1.1.0
  reason: needed
"""


STALE_PIN = """\
- source: overlays/svc-train.yaml
  component: alpha
  pin: 1.2.0
  reason: an old pin
"""
MOVED = """\
- source: overlays/svc.yaml
  component: alpha
  pin: 1.1.0
  reason: moved
"""


def test_an_exemption_for_another_pin_is_stale_and_does_not_exempt(tmp_path: Path) -> None:
    root = write_catalog(tmp_path, files={"exemptions.yaml": _exemptions(STALE_PIN)})
    assert [(f.file, f.line, f.message) for f in _gate(root)] == [
        ("exemptions.yaml", 4, "stale versionPins entry: component 'alpha' pin '1.2.0' in overlays/svc-train.yaml "
                               "is not an exception any more (overlays/svc-train.yaml pins '1.1.0')"),
        ("overlays/svc-train.yaml", line_of(SVC_TRAIN, "version: 1.1.0"),
         "component 'alpha' is pinned to chart version '1.1.0' here, but registry.yaml:10 pins '1.0.0': a "
         "recipe-specific chart version needs a reviewed exemption"),
    ]


@pytest.mark.parametrize(("entry", "message"), [
    (MOVED, "stale versionPins entry: component 'alpha' pin '1.1.0' in overlays/svc.yaml is not an exception any "
            "more (overlays/svc.yaml does not pin a chart version for it)"),
    (GOOD, "versionPins entry for component 'alpha' in overlays/svc-train.yaml is listed twice (first at line 4)"),
])
def test_stale_and_duplicate_exemptions_fail(tmp_path: Path, entry: str, message: str) -> None:
    root = write_catalog(tmp_path, files={"exemptions.yaml": _exemptions(GOOD, entry)})
    assert [(f.file, f.line, f.message) for f in _gate(root)] == [("exemptions.yaml", 8, message)]


def test_an_exemption_that_equals_the_registry_default_is_stale(tmp_path: Path) -> None:
    root = write_catalog(tmp_path, files={"exemptions.yaml": _exemptions(GOOD),
                                          "overlays/svc-train.yaml": SVC_TRAIN.replace("1.1.0", "1.0.0")})
    assert [(f.line, f.message) for f in _gate(root)] == [
        (4, "stale versionPins entry: component 'alpha' pin '1.1.0' in overlays/svc-train.yaml is not an exception "
            "any more (overlays/svc-train.yaml pins '1.0.0')")]


def test_an_exemption_without_a_reason_fails(tmp_path: Path) -> None:
    root = write_catalog(tmp_path, files={"exemptions.yaml": _exemptions(GOOD.replace("  reason: needed\n", ""))})
    assert [(f.line, f.message) for f in _gate(root)] == [
        (4, "versionPins entry for component 'alpha' in overlays/svc-train.yaml has no reason")]


@pytest.mark.parametrize(("text", "why"), [
    ("apiVersion: pipeline.recipes.dev/v1\nkind: Other\n", "kind 'Other' is not 'PinExemptions'"),
    ("apiVersion: pipeline.recipes.dev/v1\nkind: PinExemptions\nversionPins: {}\n", "'versionPins' must be a list"),
    (_exemptions(GOOD + "  tracker: x\n"), "unknown key 'tracker'"),
    ("apiVersion: pipeline.recipes.dev/v1\nkind: PinExemptions\nimagePins:\n  - image: Not An Image\n    reason: r\n",
     "an imagePins entry: image reference 'Not An Image' contains whitespace"),
])
def test_malformed_exemptions_file_is_bad_input(tmp_path: Path, text: str, why: str) -> None:
    root = write_catalog(tmp_path, files={"exemptions.yaml": text})
    with pytest.raises(RecipeError, match=why) as info:
        run_gates(root)
    assert info.value.path == Path("exemptions.yaml")
