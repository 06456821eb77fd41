"""Gate 1: every chart version is pinned exactly, and overlays keep the registry's pins.

Input: the loaded catalog (its registry, overlay and mixin files are re-read for the versions
exactly as written, with their lines) and the ``versionPins`` exemptions. Checks, in order:

1. every ``helm.defaultVersion`` of a registry component with a chart repository, and every
   ``version`` an overlay or mixin componentRef writes, is one exact semantic version
   (``1.2.3``, ``v26.3.2``, ``0.1.0-alpha.8``): not empty or blank, no surrounding or inner
   whitespace, not a bare ``v``, not ``latest``, not a range (``>=``, ``<``, ``~``, ``^``, ``*``,
   ``x``, ``1.2``, ``1.0.0 - 2.0.0``, ``||``), since Helm reads all of those as constraints;
2. an overlay or mixin pin that differs from the registry default is listed in
   ``exemptions.yaml`` (``versionPins``: source file, component, the exact pin, a reason);
3. every ``versionPins`` entry is needed (its source still writes that pin, and it still differs
   from the default), has a reason, and is listed once.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from .._yaml import YamlMap, load_file
from ..recipes.load import REGISTRY_FILE
from .exemptions import VersionExemption
from .interface import Finding, Gate, GateInput, GateName

__all__ = ["ChartVersionsPinned", "version_problem"]

_SEMVER = re.compile(
    r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*)?"
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$"
)
_OPERATORS = (">=", "<=", "!=", ">", "<", "=", "~", "^")
_WILDCARD = re.compile(r"(?:^|\.)[xX*](?:\.|$|-|\+)")
_PARTIAL = re.compile(r"^v?\d+(?:\.\d+)?$")
_EXAMPLE = 'write one exact version, e.g. version: "1.2.3"'


def version_problem(raw: Any) -> str | None:
    """Why ``raw`` is not one exact chart version, or ``None`` when it is."""
    if not isinstance(raw, str):
        return f"is a {type(raw).__name__}, not a string"
    text = raw
    if not text.strip():
        return "is empty" if not text else "is only whitespace"
    if "||" in text:
        return "is a range ('||' joins alternatives), not one exact version"
    if re.search(r"\s-\s", text):
        return "is a range ('a - b'), not one exact version"
    if text != text.strip():
        return "has surrounding whitespace"
    for operator in _OPERATORS:
        if text.startswith(operator):
            return f"is a range ('{operator}'), not one exact version"
    if re.search(r"\s", text) or "," in text:
        return "is a list of constraints, not one exact version"
    if text.lower() == "latest":
        return "is 'latest', which names whatever is newest when Helm runs"
    if text in ("v", "V"):
        return "is a bare 'v' with no version number"
    if _WILDCARD.search(text) or text == "*":
        return "is a wildcard range ('x' or '*'), not one exact version"
    if _PARTIAL.match(text):
        return "has fewer than three parts: Helm reads a partial version as a range"
    if not _SEMVER.match(text):
        return "is not a semantic version (MAJOR.MINOR.PATCH, optionally v-prefixed, -prerelease, +build)"
    return None


class ChartVersionsPinned(Gate):
    """Gate 1 (see the module docstring)."""

    name = GateName.CHART_VERSIONS

    def check(self, given: GateInput) -> list[Finding]:
        root = given.catalog.root
        findings: list[Finding] = []
        defaults: dict[str, tuple[str, int | None]] = {}
        registry = load_file(root / REGISTRY_FILE, display=REGISTRY_FILE)
        for item in registry.get("components") or []:
            if not isinstance(item, YamlMap):
                continue
            helm = item.get("helm")
            if not isinstance(helm, YamlMap) or not str(helm.get("defaultRepository") or "").strip():
                continue
            name = str(item.get("name"))
            raw = helm.get("defaultVersion")
            line = helm.line_of("defaultVersion") if "defaultVersion" in helm else helm.line
            if raw is None:
                findings.append(self._finding(REGISTRY_FILE, line, f"component '{name}': chart from "
                                              f"{helm.get('defaultRepository')!r} has no defaultVersion",
                                              f"pin it: add 'defaultVersion: \"<exact version>\"' under {name}.helm"))
                continue
            problem = version_problem(raw)
            if problem is not None:
                findings.append(self._finding(REGISTRY_FILE, line,
                                              f"component '{name}': chart version {raw!r} {problem}", _EXAMPLE))
                continue
            defaults[name] = (str(raw), line)
        sources = [o.path for o in given.catalog.overlays.values()] + [m.path for m in given.catalog.mixins.values()]
        exempt: dict[tuple[str, str], VersionExemption] = {}
        for entry in given.exemptions.version_pins:  # the first of duplicates counts (the rest are reported)
            exempt.setdefault((entry.source, entry.component), entry)
        used: set[tuple[str, str]] = set()
        written: dict[tuple[str, str], str] = {}
        for source in sorted(sources):
            for ref in _component_refs(root, source):
                if "version" not in ref:
                    continue
                name, raw, line = str(ref.get("name")), ref.get("version"), ref.line_of("version")
                problem = version_problem(raw)
                if problem is not None:
                    known = defaults.get(name)
                    hint = _EXAMPLE + (f" (the registry default is {known[0]!r}: or drop 'version:' to use it)"
                                       if known else "")
                    findings.append(self._finding(source, line, f"component '{name}': chart version {raw!r} "
                                                  f"{problem}", hint))
                    continue
                raw = str(raw)
                written[(source, name)] = raw
                if name not in defaults or raw == defaults[name][0]:
                    continue
                default, default_line = defaults[name]
                exemption = exempt.get((source, name))
                if exemption is not None and exemption.pin == raw:
                    used.add((source, name))
                    continue
                findings.append(self._finding(
                    source, line,
                    f"component '{name}' is pinned to chart version {raw!r} here, but registry.yaml:{default_line} "
                    f"pins {default!r}: a recipe-specific chart version needs a reviewed exemption",
                    f"drop 'version:' to use the registry default, or add to {given.exemptions.path} under "
                    f"versionPins: {{source: {source}, component: {name}, pin: {raw!r}, reason: <why>}}",
                ))
        findings.extend(self._exemption_findings(given, written, used))
        return findings

    def _exemption_findings(self, given: GateInput, written: dict[tuple[str, str], str],
                            used: set[tuple[str, str]]) -> list[Finding]:
        path = given.exemptions.path
        findings: list[Finding] = []
        seen: dict[tuple[str, str], VersionExemption] = {}
        for entry in given.exemptions.version_pins:
            key = (entry.source, entry.component)
            if key in seen:
                findings.append(self._finding(path, entry.line, f"versionPins entry for component '{entry.component}' "
                                              f"in {entry.source} is listed twice (first at line {seen[key].line})",
                                              "keep one entry per source and component"))
                continue
            seen[key] = entry
            if not entry.reason:
                findings.append(self._finding(path, entry.line, f"versionPins entry for component '{entry.component}' "
                                              f"in {entry.source} has no reason",
                                              "say why this recipe needs another chart version: 'reason: ...'"))
            if key not in used:
                pin = written.get(key)
                if pin is None:
                    why = f"{entry.source} does not pin a chart version for it"
                elif pin != entry.pin:
                    why = f"{entry.source} pins {pin!r}"
                else:
                    why = "that pin equals the registry default"
                findings.append(self._finding(path, entry.line, f"stale versionPins entry: component "
                                              f"'{entry.component}' pin {entry.pin!r} in {entry.source} is not an "
                                              f"exception any more ({why})",
                                              "remove the entry (or fix source/component/pin to match the overlay)"))
        return findings

    def _finding(self, file: str, line: int | None, message: str, hint: str) -> Finding:
        return Finding(gate=self.name, file=file, line=line, message=message, hint=hint)


def _component_refs(root: Path, source: str) -> list[YamlMap]:
    doc = load_file(root / source, display=source)
    spec = doc.get("spec") if isinstance(doc, YamlMap) else None
    refs = spec.get("componentRefs") if isinstance(spec, YamlMap) else None
    return [r for r in refs or [] if isinstance(r, YamlMap)]
