"""CycloneDX 1.6 JSON BOMs from lockfiles: one per recipe and one for the whole catalog.

Input: verified :class:`~pipeline.lock.Lockfile` objects (and, optionally, the reviewed digest
exemptions). Output: :class:`cyclonedx.model.bom.Bom` objects built with ``cyclonedx-python-lib``
and serialised by it (nothing is written by hand), checked by its strict 1.6 JSON validator.
Errors: :class:`~pipeline.bom.interface.BomError` for an image the lock holds without a digest
(unless ``allow_unpinned``: a BOM of unpinned images would not say what runs), for a malformed
lock entry, and for a BOM the validator rejects; :class:`~pipeline.errors.IntegrityError` for a
lock whose body does not match its digest. Nothing is written until every BOM is built and valid.

The model (what a reviewer reads, and why):

* ``metadata.component`` is the recipe (type ``application``, ``bom-ref`` ``recipe:<name>``,
  version = the lock's digest, so every change of the lock is a new version), with its criteria,
  overlay chain, mixins and deployment order as properties. The catalog BOM's root is the catalog
  (``catalog:<name>``, version = sha256 over the recipes' lock digests) and each recipe is a
  component under it.
* Each component of a recipe that has a chart is a component of type ``application`` named after
  the chart, version = the chart version, purl ``pkg:helm/<name>@<version>`` (with
  ``repository_url`` = the Helm repository, ``https://…`` or ``oci://…``, for charts that are not
  in the catalog itself), a SHA-256 hash of the chart archive and the normalised tree digest as a
  property. Why ``application``: a chart is the deployable unit of the release, not a library
  linked into something else (CycloneDX's ``library``), and it is what AICR calls a component.
  Why ``pkg:helm``: there is no registered purl type for Helm charts; ``pkg:helm`` is the de-facto
  one (cdxgen, ScanCode, Trivy-generated SBOMs), keyed on the name and version Helm itself uses;
  ``pkg:oci`` would need the chart's manifest digest, which a lock made from an HTTP repository
  does not have, and the chart's identity here is its archive hash anyway. Since one chart can be
  deployed twice (two releases), its ``bom-ref`` is the purl plus ``recipe`` and ``release``
  qualifiers, which also keeps it unique in the catalog BOM.
* A manifest-only component (in-tree manifests, no chart) is a component of its own, type
  ``application``, ``bom-ref`` ``manifests:<recipe>/<component>``, hashed by its rendered stream,
  so its images have a parent.
* Each image is a ``container`` component named ``registry/repository``, version = its digest,
  purl ``pkg:oci/<last path segment>@sha256:…?repository_url=<registry/repository>&tag=<tag>``
  (the purl-spec's canonical form for OCI artifacts), a SHA-256 hash (the digest), its
  ``bom-ref`` = that purl (content-addressed, so the same image used by two components, or written
  two ways such as ``busybox:1.36`` and ``docker.io/library/busybox:1.36``, is one component).
  Per-platform digests of an index are properties ``recipe-pipeline:platform:<os/arch>`` = digest:
  both lib4sbom and syft keep component properties, while nested components would be flattened
  into extra top-level packages by lib4sbom. Each use of an image is recorded as properties
  prefixed by ``<recipe>/<component>:`` (the reference as written and its origin, where it was
  found, exemption reasons), and the origins also as plain ``recipe-pipeline:origin`` values.
* ``dependencies``: recipe → component → images (and catalog → recipes in the catalog BOM).

Reproducibility: two builds of the same lock give the same bytes on any machine. The serial
number is a UUID version 5 (RFC 4122 name-based, which the 1.6 schema requires; v8 is RFC 9562
only) of the lock digest, the BOM layout version and the exemption reasons applied; the
timestamp is the Unix epoch, because a lock carries no clock and any other time would make the
bytes depend on when they were made; ``bom-ref``s derive from content; the library sorts every
collection; ``metadata.properties`` carries ``cdx:reproducible = true``.
"""

from __future__ import annotations

import json
import uuid
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.dependency import Dependency
from cyclonedx.model.tool import ToolRepository
from cyclonedx.output.json import JsonV1Dot6
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from packageurl import PackageURL

from ..lockfile import Lockfile
from ..vocabulary.digest import canonical_json, sha256
from ..vocabulary.files import atomic_write_many
from .interface import (
    BomError,
    Exemption,
    LockedChart,
    LockedComponent,
    LockedImage,
    Output,
    exempted,
    locked_recipes,
)

__all__ = [
    "BOM_LAYOUT",
    "CATALOG_BOM",
    "EPOCH",
    "PROPERTY_PREFIX",
    "BomFiles",
    "CycloneDxOutput",
    "bom_files",
    "build_bom",
    "build_catalog_bom",
    "catalog_bom",
    "check_boms_fresh",
    "image_purl",
    "loads",
    "recipe_bom",
    "refuse_unpinned",
    "serialize",
    "validate",
    "write_boms",
]

#: Bump when the shape of the BOM changes: the serial numbers change with it.
BOM_LAYOUT = 1
#: The BOM's timestamp: a lock carries no clock, so no other time is reproducible.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Namespace of this project's properties (CycloneDX reserves ``cdx:``).
PROPERTY_PREFIX = "recipe-pipeline"
#: File name of the catalog BOM, beside ``recipes/<recipe>.cdx.json``.
CATALOG_BOM = PurePosixPath("catalog.cdx.json")
_SERIAL_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:recipe-pipeline:cyclonedx-serial")
_UNPINNED_HINT = ("the lock must record a digest for every image: run 'nox -s lock' (its resolve step asks the "
                  "registries) and commit lockfiles/; or pass --allow-unpinned to build a BOM that says so")


def _prop(name: str, value: str) -> Property:
    return Property(name=f"{PROPERTY_PREFIX}:{name}", value=value)


def image_purl(image: LockedImage) -> PackageURL:
    """``pkg:oci/<name>@<digest>?repository_url=<registry/repository>&tag=<tag>`` (no version if unpinned)."""
    qualifiers = {"repository_url": image.image.name}
    if image.image.tag is not None:
        qualifiers["tag"] = image.image.tag
    return PackageURL(type="oci", name=image.image.repository.rsplit("/", 1)[-1], version=image.digest,
                      qualifiers=qualifiers)


def _chart_purl(chart: LockedChart, **extra: str) -> PackageURL:
    qualifiers = dict(extra)
    if not chart.is_local:
        qualifiers["repository_url"] = chart.repository.rstrip("/")
    return PackageURL(type="helm", name=chart.name, version=chart.version, qualifiers=qualifiers or None)


def _hash(digest: str) -> HashType:
    return HashType(alg=HashAlgorithm.SHA_256, content=digest.removeprefix("sha256:"))


def refuse_unpinned(recipes: Sequence[Lockfile]) -> None:
    """:class:`BomError` naming (up to ten of) the images the locks hold without a digest."""
    unpinned = [(r.name, c, i) for r in recipes for c, i in r.unpinned()]
    if not unpinned:
        return
    names = sorted({r for r, _, _ in unpinned})
    more = f" (and {len(unpinned) - 10} more)" if len(unpinned) > 10 else ""
    if len(names) == 1:
        shown = "; ".join(f"component '{c}': '{i.ref}'" for _, c, i in unpinned[:10])
        what = f"recipe '{names[0]}': {len(unpinned)} image(s) have no digest in the lock"
    else:
        shown = "; ".join(f"recipe '{r}' component '{c}': '{i.ref}'" for r, c, i in unpinned[:10])
        what = f"{len(unpinned)} image(s) in {len(names)} recipes have no digest in the locks"
    raise BomError(f"{what}: {shown}{more}; a BOM of unpinned images would not say what runs", hint=_UNPINNED_HINT)


@dataclass(slots=True)
class _ImageUses:
    """Everything the locks say about one image (one purl), gathered before its component is built."""

    image: LockedImage
    properties: set[tuple[str, str]] = field(default_factory=set)


class _Assembler:
    """Collects components, image uses and edges; builds the :class:`Bom` once, at the end."""

    def __init__(self, *, exemptions: Sequence[Exemption], allow_unpinned: bool) -> None:
        self.exemptions = exemptions
        self.allow_unpinned = allow_unpinned
        self.components: dict[str, Component] = {}
        self.images: dict[str, _ImageUses] = {}
        self.edges: dict[str, set[str]] = {}
        self.tools: dict[str, Component] = {}
        self.applied: set[str] = set()

    def add_recipe(self, recipe: Lockfile) -> Component:
        """The recipe's component, its components' subtrees and their edges; returns the recipe."""
        if not self.allow_unpinned:
            refuse_unpinned([recipe])
        order = ",".join(c.name for c in recipe.ordered())
        properties = [_prop(f"criteria:{k}", v) for k, v in recipe.criteria]
        properties += [_prop("overlays", ",".join(recipe.overlays)), _prop("order", order)]
        if recipe.mixins:
            properties.append(_prop("mixins", ",".join(recipe.mixins)))
        properties.append(_prop("inputs", recipe.inputs.digest))
        component = Component(type=ComponentType.APPLICATION, name=recipe.name, version=recipe.digest,
                              bom_ref=f"recipe:{recipe.name}", properties=properties)
        children = {self._add_component(recipe, c) for c in recipe.ordered()}
        self.edges[f"recipe:{recipe.name}"] = children
        self._add_tool({**recipe.engine.identity, "kubeVersion": recipe.engine.kube_version})
        return component

    def _add_component(self, recipe: Lockfile, locked: LockedComponent) -> str:
        properties = [_prop("recipe", recipe.name), _prop("release", locked.name)]
        if locked.namespace:
            properties.append(_prop("namespace", locked.namespace))
        if locked.values is not None:
            properties.append(_prop("values", locked.values))
        if locked.stream is not None:
            properties.append(_prop("render", locked.stream))
        properties += [_prop("manifest", m) for m in locked.manifests]
        properties += [_prop("volatile", v.describe()) for v in locked.volatile]
        chart = locked.chart
        if chart is not None:
            bom_ref = _chart_purl(chart, recipe=recipe.name, release=locked.name).to_string()
            properties.append(_prop("chart:repository", chart.repository))
            properties.append(_prop("chart:tree", chart.tree))
            component = Component(type=ComponentType.APPLICATION, name=chart.name, version=chart.version,
                                  purl=_chart_purl(chart), bom_ref=bom_ref, hashes=[_hash(chart.archive)],
                                  properties=properties)
        else:
            bom_ref = f"manifests:{recipe.name}/{locked.name}"
            component = Component(type=ComponentType.APPLICATION, name=locked.name, bom_ref=bom_ref,
                                  hashes=[_hash(locked.stream)] if locked.stream is not None else None,
                                  properties=properties)
        self.components[bom_ref] = component
        self.edges[bom_ref] = {self._add_image(recipe, locked, image) for image in locked.images}
        return bom_ref

    def _add_image(self, recipe: Lockfile, locked: LockedComponent, image: LockedImage) -> str:
        purl = image_purl(image).to_string()
        uses = self.images.setdefault(purl, _ImageUses(image=image))
        usage = f"{recipe.name}/{locked.name}"
        props = uses.properties
        props.add(("origin", image.origin.value))
        props.add(("usage", f"{usage}: {image.ref} ({image.origin.value})"))
        props.update(("foundAt", f"{usage}: {where}") for where in image.found_at)
        for exemption in exempted(image.image, self.exemptions):
            text = f"{usage}: {image.ref}: {exemption.reason}" + (f" ({exemption.tracking})" if exemption.tracking
                                                                    else "")
            props.add(("exemption", text))
            self.applied.add(text)
        if image.source is not None:
            props.add(("digestSource", image.source))
        if image.served_by is not None:
            props.add(("servedBy", image.served_by))
        if image.media_type is not None:
            props.add(("mediaType", image.media_type))
        props.update((f"platform:{platform}", digest) for platform, digest in image.platforms or ())
        if image.digest is None:
            props.add(("unpinned", "true"))
        return purl

    def _add_tool(self, engine: Mapping[str, str]) -> None:
        name, version = engine.get("name"), engine.get("version")
        if not name:
            return
        bom_ref = f"tool:{name}@{version}" if version else f"tool:{name}"
        properties = [_prop(f"engine:{k}", v) for k, v in sorted(engine.items())
                      if k in {"helm", "kubeVersion"}]
        library = engine.get("library", "")
        hashes = [_hash(library)] if library.startswith("sha256:") and len(library) == 71 else None
        self.tools[bom_ref] = Component(type=ComponentType.APPLICATION, name=name, version=version,
                                        bom_ref=bom_ref, hashes=hashes, properties=properties)

    def build(self, root: Component, *, children: Iterable[Component], seed: str) -> Bom:
        images = {
            purl: Component(
                type=ComponentType.CONTAINER, name=uses.image.image.name, version=uses.image.digest,
                purl=image_purl(uses.image), bom_ref=purl,
                hashes=[_hash(uses.image.digest)] if uses.image.digest is not None else None,
                properties=[_prop(k, v) for k, v in uses.properties],
            )
            for purl, uses in self.images.items()
        }
        everything: dict[str, Component] = {str(c.bom_ref): c for c in children}
        everything.update(self.components)
        everything.update(images)
        tool = Component(type=ComponentType.APPLICATION, name="recipe-pipeline", bom_ref="tool:recipe-pipeline",
                         properties=[_prop("bomLayout", str(BOM_LAYOUT))])
        applied = "\n".join(sorted(self.applied))
        serial = uuid.uuid5(_SERIAL_NAMESPACE, f"{BOM_LAYOUT}\n{seed}\n{sha256(applied.encode())}")
        by_ref = {**everything, str(root.bom_ref): root}
        edges = {**{ref: set[str]() for ref in by_ref}, **self.edges}
        # Dependencies are built here rather than with Bom.register_dependency, which scans every
        # registered dependency per call (quadratic in the number of components).
        dependencies = [Dependency(ref=by_ref[ref].bom_ref, dependencies=[Dependency(ref=by_ref[t].bom_ref)
                                                                          for t in sorted(targets)])
                        for ref, targets in sorted(edges.items())]
        return Bom(
            serial_number=serial,
            metadata=BomMetaData(
                component=root, timestamp=EPOCH,
                tools=ToolRepository(components=[tool, *self.tools.values()]),
                properties=[Property(name="cdx:reproducible", value="true")],
            ),
            components=everything.values(),
            dependencies=dependencies,
        )


def build_bom(lock: Lockfile, *, exemptions: Sequence[Exemption] = (), allow_unpinned: bool = False) -> Bom:
    """The CycloneDX BOM of one recipe: recipe → components (charts, manifests) → images."""
    return recipe_bom(lock, exemptions=exemptions, allow_unpinned=allow_unpinned)


def build_catalog_bom(locks: Sequence[Lockfile], *, name: str = "catalog", exemptions: Sequence[Exemption] = (),
                      allow_unpinned: bool = False) -> Bom:
    """The CycloneDX BOM of the whole catalog: catalog → recipes → components → images."""
    return catalog_bom(locked_recipes(locks), name=name, exemptions=exemptions, allow_unpinned=allow_unpinned)


def recipe_bom(recipe: Lockfile, *, exemptions: Sequence[Exemption] = (), allow_unpinned: bool = False) -> Bom:
    """:func:`build_bom` from an already verified :class:`Lockfile`."""
    assembler = _Assembler(exemptions=exemptions, allow_unpinned=allow_unpinned)
    root = assembler.add_recipe(recipe)
    return assembler.build(root, children=(), seed=f"recipe\n{recipe.name}\n{recipe.digest}")


def catalog_bom(recipes: Sequence[Lockfile], *, name: str = "catalog", exemptions: Sequence[Exemption] = (),
                allow_unpinned: bool = False) -> Bom:
    """:func:`build_catalog_bom` from already verified recipes (sorted by name)."""
    assembler = _Assembler(exemptions=exemptions, allow_unpinned=allow_unpinned)
    children = [assembler.add_recipe(r) for r in recipes]
    version = sha256(canonical_json({r.name: r.digest for r in recipes}))
    root = Component(type=ComponentType.APPLICATION, name=name, version=version, bom_ref=f"catalog:{name}",
                     properties=[_prop("recipes", str(len(recipes)))])
    assembler.edges[f"catalog:{name}"] = {str(c.bom_ref) for c in children}
    return assembler.build(root, children=children, seed=f"catalog\n{name}\n{version}")


def serialize(bom: Bom) -> bytes:
    """The BOM as CycloneDX 1.6 JSON (the library's serialiser, two-space indent, trailing newline)."""
    with warnings.catch_warnings():
        # The library warns about an incomplete graph only when the root has no dependencies (an empty recipe).
        warnings.simplefilter("ignore", UserWarning)
        text = JsonV1Dot6(bom).output_as_string(indent=2)
    return (text + "\n").encode()


_VALIDATOR = JsonStrictValidator(SchemaVersion.V1_6)


def _describe(error: Any) -> str:
    """``$.json.path: message`` of a jsonschema error (its message cut to 200 characters)."""
    message = str(getattr(error, "message", error))
    message = message if len(message) <= 200 else message[:200] + "…"
    path = getattr(error, "json_path", None)
    return f"{path}: {message}" if path else message


def validate(data: bytes, *, where: str = "BOM") -> None:
    """Refuse ``data`` unless the library's strict CycloneDX 1.6 JSON schema accepts it."""
    errors = _VALIDATOR.validate_str(data.decode(), all_errors=True)
    if errors is not None:
        shown = "; ".join(_describe(e.data) for e in list(errors)[:5])
        raise BomError(f"{where} fails the strict CycloneDX 1.6 JSON schema: {shown}",
                       hint="this is a bug in the BOM builder: report it with the lockfile")


class CycloneDxOutput(Output):
    """The catalog BOM as an :class:`Output`: serialised and validated."""

    name = "cyclonedx"

    def __init__(self, *, catalog: str = "catalog", exemptions: Sequence[Exemption] = (),
                 allow_unpinned: bool = False) -> None:
        self.catalog = catalog
        self.exemptions = exemptions
        self.allow_unpinned = allow_unpinned

    def render(self, recipes: Sequence[Lockfile]) -> bytes:
        data = serialize(catalog_bom(recipes, name=self.catalog, exemptions=self.exemptions,
                                     allow_unpinned=self.allow_unpinned))
        validate(data, where=f"BOM {CATALOG_BOM}")
        return data


@dataclass(frozen=True, slots=True, kw_only=True)
class BomFiles:
    """What :func:`write_boms` did: paths written and paths already up to date."""

    written: tuple[Path, ...]
    unchanged: tuple[Path, ...]


def bom_files(locks: Sequence[Lockfile], *, catalog: str = "catalog", exemptions: Sequence[Exemption] = (),
              allow_unpinned: bool = False) -> dict[PurePosixPath, bytes]:
    """Every BOM, validated: ``recipes/<recipe>.cdx.json`` per lock and ``catalog.cdx.json``.

    Every lock is verified and every BOM built and validated before this returns: a caller that
    writes the result writes nothing when any lock or BOM is refused.
    """
    recipes = locked_recipes(locks)
    if not allow_unpinned:
        refuse_unpinned(recipes)
    out: dict[PurePosixPath, bytes] = {}
    for recipe in recipes:
        data = serialize(recipe_bom(recipe, exemptions=exemptions, allow_unpinned=allow_unpinned))
        path = PurePosixPath("recipes") / f"{recipe.name}.cdx.json"
        validate(data, where=f"BOM {path}")
        out[path] = data
    output = CycloneDxOutput(catalog=catalog, exemptions=exemptions, allow_unpinned=allow_unpinned)
    out[CATALOG_BOM] = output.render(recipes)
    return out


def write_boms(locks: Sequence[Lockfile], outdir: Path, *, catalog: str = "catalog",
               exemptions: Sequence[Exemption] = (), allow_unpinned: bool = False) -> BomFiles:
    """Build and validate every BOM, then replace them under ``outdir`` atomically (all or none).

    BOMs of recipes that no longer have a lock are removed, so the directory mirrors the locks.
    """
    files = {outdir / rel: data for rel, data in bom_files(locks, catalog=catalog, exemptions=exemptions,
                                                           allow_unpinned=allow_unpinned).items()}
    unchanged = tuple(sorted(p for p, data in files.items() if p.is_file() and p.read_bytes() == data))
    atomic_write_many(files)
    for orphan in sorted((outdir / "recipes").glob("*.cdx.json")) if (outdir / "recipes").is_dir() else []:
        if orphan not in files:
            orphan.unlink()
    return BomFiles(written=tuple(sorted(p for p in files if p not in unchanged)), unchanged=unchanged)


def check_boms_fresh(outdir: Path, locks: Sequence[Lockfile], *, catalog: str = "catalog",
                     exemptions: Sequence[Exemption] = (), allow_unpinned: bool = False) -> list[str]:
    """One message per BOM under ``outdir`` that is missing, differs from the locks, or has no lock."""
    expected = bom_files(locks, catalog=catalog, exemptions=exemptions, allow_unpinned=allow_unpinned)
    problems = []
    for rel, data in sorted(expected.items()):
        path = outdir / rel
        if not path.is_file():
            problems.append(f"{path} is missing: run 'nox -s bom' and commit it")
        elif path.read_bytes() != data:
            problems.append(f"{path} does not match the lockfiles: run 'nox -s bom' and commit it")
    if (outdir / "recipes").is_dir():
        for orphan in sorted((outdir / "recipes").glob("*.cdx.json")):
            if PurePosixPath("recipes", orphan.name) not in expected:
                problems.append(f"{orphan} has no lockfile: run 'nox -s bom' to remove it")
    return problems


def loads(data: bytes) -> Bom:
    """Parse a BOM written by :func:`serialize` back into the library's model (round-trip check)."""
    parsed: Any = Bom.from_json(json.loads(data))  # type: ignore[attr-defined]
    if not isinstance(parsed, Bom):
        raise BomError("the CycloneDX library could not read the BOM back")
    return parsed
