"""``upgrade``: move a chart pin where it is defined, relock what it affects.

Contract (:func:`upgrade_catalog`):

1. find each component's pin: the last overlay or mixin of its origins that writes ``version:``
   for it, else ``registry.yaml``'s ``helm.defaultVersion`` (:func:`pipeline.build.pin_location`);
2. ask the chart's repository (through a configured mirror when there is one) which versions it
   offers: a local ``./charts`` repository offers its chart directory's ``Chart.yaml`` version and
   every ``<name>-<version>.tgz`` beside it; HTTP repositories their ``index.yaml``; OCI
   registries their tags. ``--to VERSION`` must be offered (Helm's matching rules); ``--latest`` takes
   the newest by semver precedence, pre-releases only with ``pre``;
3. only when every requested component has a valid target: edit each pin with ruamel.yaml's
   round-trip loader (comments, key order and quoting kept; the value keeps its quote style), check
   that exactly the pin's line changed, and write every edited file atomically;
4. relock the recipes that use an upgraded component, and any other recipe the edited files make
   stale (their renders come from the render cache).

A version the repository does not offer, an unknown component or a pin that cannot be found is an
:class:`~pipeline.errors.UpgradeError` (exit 2) raised before any file is touched.
"""

from __future__ import annotations

import dataclasses
import difflib
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .build import pin_location
from .charts import SourceFactory, apply_mirrors
from .charts.interface import SourceKind, kind_of
from .charts.versions import match_index_version, nearest_versions, oci_tag, parse_semver
from .errors import PipelineError, UpgradeError
from .lock import stale_inputs
from .lockfile import Lockfile, load, lock_path
from .recipes import Component, Recipe
from .recipes.load import REGISTRY_FILE
from .recipes.model import ChartRef, ComponentType
from .stages import LockResult, Workspace, compose_recipes, lock_catalog
from .vocabulary.files import atomic_write_many

__all__ = ["PinEdit", "UpgradeResult", "upgrade_catalog"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PinEdit:
    """One pin moved: the component, the file and line that define it, old and new version."""

    component: str
    file: str
    line: int
    before: str
    after: str


@dataclass(frozen=True, slots=True, kw_only=True)
class UpgradeResult:
    edits: tuple[PinEdit, ...]
    #: recipes relocked (users of an upgraded component, and recipes the edits made stale)
    relocked: tuple[str, ...]
    lock: LockResult | None
    #: the locks of every recipe before the upgrade (what the diff compares with)
    before: Mapping[str, Lockfile]


def _offered(ref: ChartRef, *, catalog: Path, mirrors: Mapping[str, str], sources: SourceFactory) -> tuple[str, ...]:
    url = ref.repository if ref.is_local else apply_mirrors(ref.repository, mirrors)
    source = sources.source(kind_of(url), catalog=catalog)
    try:
        return source.versions(dataclasses.replace(ref, repository=url))
    except PipelineError as exc:
        raise UpgradeError(f"chart {ref.name!r}: cannot list the versions {ref.repository} offers: {exc.message}",
                           hint=exc.hint) from exc


def _newest(offered: Sequence[str], *, pre: bool) -> str | None:
    best: tuple[Any, str] | None = None
    for text in offered:
        parsed = parse_semver(text)
        if parsed is None or (parsed.pre and not pre):
            continue
        if best is None or parsed.compare(best[0]) > 0 or (parsed.compare(best[0]) == 0 and text > best[1]):
            best = (parsed, text)
    return best[1] if best is not None else None


def _target(ref: ChartRef, offered: Sequence[str], *, to: str | None, pre: bool) -> str:
    if to is None:
        newest = _newest(offered, pre=pre)
        if newest is None:
            raise UpgradeError(f"chart {ref.name!r}: {ref.repository} offers no version that parses as semver"
                               + ("" if pre else " (pre-releases skipped)"),
                               hint="pass --pre to consider pre-releases, or --to VERSION")
        return newest
    found = to if kind_of(ref.repository) is SourceKind.OCI and oci_tag(to) in offered \
        else match_index_version(to, offered)
    if found is None:
        near = nearest_versions(to, offered)
        raise UpgradeError(f"chart {ref.name!r}: version {to!r} is not offered by {ref.repository}",
                           hint=("versions offered near it: " + ", ".join(near)) if near
                           else f"{ref.repository} offers no versions of {ref.name!r}")
    return to


def _edit(text: str, *, source: str, component: str, new: str) -> tuple[str, int, str]:
    """``text`` with the pin of ``component`` set to ``new``: (new text, 1-based line, old version)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString

    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    try:
        doc = yaml.load(text)
    except Exception as exc:  # ruamel's errors have no common public base worth naming here
        raise UpgradeError(f"{source}: cannot be read for editing: {exc}") from exc
    holder: Any = None
    key = ""
    if source == REGISTRY_FILE:
        for item in doc.get("components") or []:
            if item.get("name") == component and "defaultVersion" in (item.get("helm") or {}):
                holder, key = item["helm"], "defaultVersion"
    else:
        for item in ((doc.get("spec") or {}).get("componentRefs") or []):
            if item.get("name") == component and "version" in item:
                holder, key = item, "version"
    if holder is None:
        raise UpgradeError(f"{source}: no version pin of component '{component}' found to edit")
    old = holder[key]
    line = holder.lc.value(key)[0] + 1
    if isinstance(old, DoubleQuotedScalarString):
        holder[key] = DoubleQuotedScalarString(new)
    elif isinstance(old, SingleQuotedScalarString):
        holder[key] = SingleQuotedScalarString(new)
    elif parse_semver(new) is not None and new.count(".") < 2:  # 1.2 would read back as a float
        holder[key] = DoubleQuotedScalarString(new)
    else:
        holder[key] = new
    out = io.StringIO()
    yaml.dump(doc, out)
    edited = out.getvalue()
    changed = [d for d in difflib.ndiff(text.splitlines(), edited.splitlines()) if d[:1] in "+-"]
    if len(changed) != 2:
        # ruamel re-formatted something else: edit only the pin's line, at the position ruamel reported.
        lines = text.splitlines(keepends=True)
        column = holder.lc.value(key)[1]
        original = lines[line - 1]
        rest = original[column:]
        quote = rest[:1] if rest[:1] in "\"'" else ""
        end = rest.index(quote, 1) + 1 if quote else len(rest.split("#")[0].rstrip())
        lines[line - 1] = original[:column] + (f"{quote}{new}{quote}" if quote else new) + rest[end:]
        edited = "".join(lines)
    return edited, line, str(old)


def _uses(recipe: Recipe, name: str) -> Component | None:
    return next((c for c in recipe.components if c.name == name and c.chart is not None
                 and c.type is ComponentType.HELM), None)


def upgrade_catalog(
    ws: Workspace, components: Sequence[str] | None, *, to: str | None = None, pre: bool = False,
    credentials: Any = None,
) -> UpgradeResult:
    """Move the pins of ``components`` (``None``: every chart component) to ``to`` or the newest offered."""
    catalog, recipes = compose_recipes(ws.catalog)
    wanted = sorted({c.name for r in recipes for c in r.components if c.chart is not None}) \
        if components is None else list(components)
    plans: dict[tuple[str, str], tuple[str, str, ChartRef]] = {}  # (file, component) → (old, new, ref)
    with SourceFactory() as sources:
        for name in wanted:
            users = [(r, c) for r in recipes if (c := _uses(r, name)) is not None]
            if not users:
                raise UpgradeError(f"no recipe of {ws.catalog} uses a chart component named '{name}'",
                                   hint="list the recipes and their components with 'python -m pipeline recipes'")
            for recipe, component in users:
                assert component.chart is not None
                where = pin_location(recipe, component)
                if where is None:
                    raise UpgradeError(f"recipe '{recipe.name}': cannot find where component '{name}' pins its "
                                       "chart version", hint=f"pin it in {REGISTRY_FILE} or an overlay")
                if (where[0], name) in plans:
                    continue
                offered = _offered(component.chart, catalog=recipe.catalog, mirrors=catalog.config.mirrors,
                                   sources=sources)
                new = _target(component.chart, offered, to=to, pre=pre)
                plans[(where[0], name)] = (component.chart.version, new, component.chart)
    texts: dict[str, str] = {}
    edits: list[PinEdit] = []
    for (source, name), (old, new, _) in sorted(plans.items()):
        if old == new:
            continue
        text = texts.get(source) or (ws.catalog / source).read_text()
        edited, line, written = _edit(text, source=source, component=name, new=new)
        texts[source] = edited
        edits.append(PinEdit(component=name, file=source, line=line, before=written, after=new))
    before = {r.name: load(lock_path(ws.lockdir, r.name)) for r in recipes if lock_path(ws.lockdir, r.name).is_file()}
    if not edits:
        return UpgradeResult(edits=(), relocked=(), lock=None, before=before)
    atomic_write_many({ws.catalog / source: text.encode() for source, text in texts.items()})
    moved = {e.component for e in edits}
    _, recomposed = compose_recipes(ws.catalog)
    relock = sorted(r.name for r in recomposed
                    if any(c.name in moved for c in r.components)
                    or (r.name in before and stale_inputs(r, before[r.name])))
    result = lock_catalog(ws, relock, credentials=credentials)
    return UpgradeResult(edits=tuple(edits), relocked=tuple(relock), lock=result, before=before)
