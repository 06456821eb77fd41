"""The typed lockfile model: the one place that parses and writes ``lockfiles/<recipe>.lock.json``.

A lockfile is canonical JSON (sorted keys, two-space indent, trailing newline, no timestamps, no
absolute paths) whose ``digest`` is the sha256 of the canonical body without it. This module turns
those bytes into frozen records and back:

- :meth:`Lockfile.from_bytes` / :func:`load`: parse, then check in order JSON → required keys →
  ``lockVersion`` → integrity (the self-digest) → canonical form → shape (every field typed, every
  digest ``sha256:<64 hex>``, every image reference parseable and written in normal form, no
  unknown key). Errors name the file and the line of the offending entry:
  :class:`~pipeline.errors.LockError` (exit 2) for a file that cannot be a lock,
  :class:`~pipeline.errors.IntegrityError` (exit 1) for one edited after it was sealed.
- :meth:`Lockfile.dumps`: the canonical bytes; ``from_bytes(x).dumps() == x`` for every valid lock.
- :func:`seal`: a new lockfile from its parts, its digest computed.

The lockfile keeps the bytes it was read from (``raw``), so a gate can point at a line of the file
a reviewer sees. Freshness (engine and staleness against the catalog) is checked by
:mod:`pipeline.lock`, which every consumer goes through; nothing else parses lock JSON.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from .errors import IntegrityError, LockError
from .images import ImageRef, ImageRefError, Origin
from .recipes.model import ChartRef, ComponentType
from .registry import ResolvedImage
from .vocabulary.digest import Digest, Preformatted, canonical_json, parse_digest, sha256
from .volatile import VolatileField

__all__ = [
    "LOCK_SUFFIX",
    "LOCK_VERSION",
    "EngineRecord",
    "ImageSource",
    "LockedChart",
    "LockedComponent",
    "LockedImage",
    "LockedInputs",
    "LockedRecipe",
    "LockedRender",
    "Lockfile",
    "load",
    "lock_path",
    "seal",
]

LOCK_VERSION = 1
LOCK_SUFFIX = ".lock.json"
MISSING_INPUT = "missing"
_HINT = "never edit lockfiles by hand: restore it (git checkout -- lockfiles/) or regenerate it with 'nox -s lock'"


def lock_path(lockdir: Path, recipe: str) -> Path:
    """Where the lock of ``recipe`` lives in ``lockdir``."""
    return lockdir / f"{recipe}{LOCK_SUFFIX}"


class ImageSource:
    """Where an image's digest came from: the reference itself (``@sha256:``) or a registry."""

    REFERENCE = "reference"
    REGISTRY = "registry"
    ALL = (REFERENCE, REGISTRY)


# ---- records -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class LockedImage:
    """One image of a component: what was written (``ref``) next to what was locked (``digest``).

    ``media_type``, ``platforms`` and ``served_by`` are ``None`` when the lock was made without
    asking registries (``lock --no-resolve``); ``platforms`` is empty for a single-platform manifest.
    """

    ref: str
    image: ImageRef
    digest: Digest | None
    source: str | None
    origin: Origin
    found_at: tuple[str, ...]
    media_type: str | None = None
    platforms: tuple[tuple[str, Digest], ...] | None = None
    served_by: str | None = None

    @property
    def resolved(self) -> bool:
        """A registry answered for this image when the lock was made."""
        return self.media_type is not None

    @property
    def pinned(self) -> ImageRef:
        """The image by digest (tag kept); only for images with a digest."""
        if self.digest is None:
            raise ValueError(f"{self.ref} has no locked digest")
        return self.image.with_digest(self.digest)

    def as_resolved(self) -> ResolvedImage | None:
        """What the registry answered when the lock was made, as the resolver's record (the manifest's
        size is not locked: 0); ``None`` when no registry answered (``lock --no-resolve``)."""
        if self.digest is None or self.media_type is None or self.served_by is None:
            return None
        return ResolvedImage(ref=self.image, digest=self.digest, media_type=self.media_type, size=0,
                             platforms=dict(self.platforms or ()), served_by=self.served_by)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ref": self.ref, "digest": self.digest, "source": self.source,
                               "origin": self.origin.value, "foundAt": list(self.found_at)}
        if self.media_type is not None:
            out["mediaType"] = self.media_type
        if self.platforms is not None:
            out["platforms"] = dict(self.platforms)
        if self.served_by is not None:
            out["servedBy"] = self.served_by
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class LockedChart:
    """A component's chart: where it is pinned, and its content digests (archive bytes, normalised tree).

    ``served_by`` names who served the archive when it was locked (the upstream repository, or the
    mirror that stood in for it; ``None`` for charts of the catalog itself and for locks made
    before it was recorded). It is a record, not a claim a re-render checks: a mirror changes no
    byte, so a lock made against upstream reproduces behind a mirror.
    """

    repository: str
    name: str
    version: str
    archive: Digest
    tree: Digest
    served_by: str | None = None

    @property
    def ref(self) -> ChartRef:
        return ChartRef(repository=self.repository, name=self.name, version=self.version)

    @property
    def is_oci(self) -> bool:
        return self.ref.is_oci

    @property
    def is_local(self) -> bool:
        """A chart in the catalog itself (``./charts``): its repository is a catalog-relative path."""
        return self.ref.is_local

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"repository": self.repository, "name": self.name, "version": self.version,
                               "archive": self.archive, "tree": self.tree}
        if self.served_by is not None:
            out["servedBy"] = self.served_by
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class LockedRender:
    """The rendered bytes of a component: a digest per file, of the whole stream, and a Merkle root."""

    files: tuple[tuple[str, Digest], ...]
    stream: Digest
    root: Digest
    #: the digest of the pinned render's stream (``render --pinned``, :mod:`pipeline.pin`); ``None``
    #: when some image has no locked digest (``lock --no-resolve``) or the lock predates it
    pinned: Digest | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"files": dict(self.files), "stream": self.stream, "root": self.root}
        if self.pinned is not None:
            out["pinned"] = self.pinned
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class LockedComponent:
    """One component (a Helm release, with or without a chart) of a locked recipe."""

    name: str
    type: ComponentType
    release: str
    namespace: str | None
    chart: LockedChart | None
    values: Digest
    values_files: tuple[str, ...]
    pre_manifests: tuple[str, ...]
    post_manifests: tuple[str, ...]
    render: LockedRender
    images: tuple[LockedImage, ...]
    #: the lock's volatile declarations for this component (also listed once at the lock's top level)
    volatile: tuple[VolatileField, ...] = ()

    @property
    def manifests(self) -> tuple[str, ...]:
        return (*self.pre_manifests, *self.post_manifests)

    @property
    def stream(self) -> Digest:
        return self.render.stream

    def image(self, ref: str) -> LockedImage | None:
        return next((i for i in self.images if i.ref == ref), None)

    def as_json(self) -> dict[str, Any]:
        return {
            "type": self.type.value, "release": self.release, "namespace": self.namespace,
            "chart": self.chart.as_json() if self.chart is not None else None,
            "values": self.values, "valuesFiles": list(self.values_files),
            "manifests": {"pre": list(self.pre_manifests), "post": list(self.post_manifests)},
            "render": self.render.as_json(),
            "images": [i.as_json() for i in self.images],
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class LockedRecipe:
    """Which recipe: its name, criteria, overlay chain, mixins and the components' deployment order."""

    name: str
    criteria: tuple[tuple[str, str], ...]
    overlays: tuple[str, ...]
    mixins: tuple[str, ...]
    order: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "criteria": dict(self.criteria), "overlays": list(self.overlays),
                "mixins": list(self.mixins), "order": list(self.order)}


@dataclass(frozen=True, slots=True, kw_only=True)
class LockedInputs:
    """Every input the render depends on, by catalog-relative path, and the engine options."""

    digest: Digest
    files: tuple[tuple[str, str], ...]
    kube_version: str
    api_versions: tuple[str, ...]

    @property
    def options(self) -> dict[str, Any]:
        return {"kubeVersion": self.kube_version, "apiVersions": list(self.api_versions)}

    def as_json(self) -> dict[str, Any]:
        return {"digest": self.digest, "files": dict(self.files), "options": self.options}

    @classmethod
    def of(cls, files: Mapping[str, str], *, kube_version: str, api_versions: Sequence[str]) -> LockedInputs:
        """The inputs block for ``files`` (their digests) and the engine options, its digest computed."""
        options = {"kubeVersion": kube_version, "apiVersions": list(api_versions)}
        digest = sha256(canonical_json({"files": dict(files), "options": options}))
        return cls(digest=digest, files=tuple(sorted(files.items())), kube_version=kube_version,
                   api_versions=tuple(api_versions))


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineRecord:
    """Which engine rendered: name, package version, Helm SDK version, native library digest, options."""

    name: str
    version: str
    helm: str
    library: Digest
    kube_version: str
    api_versions: tuple[str, ...]

    @property
    def identity(self) -> dict[str, str]:
        """The engine identity alone (what must match the engine that reproduces)."""
        return {"name": self.name, "version": self.version, "helm": self.helm, "library": self.library}

    def as_json(self) -> dict[str, Any]:
        return {**self.identity, "kubeVersion": self.kube_version, "apiVersions": list(self.api_versions)}


@dataclass(frozen=True, slots=True, kw_only=True)
class Lockfile:
    """A parsed, verified lockfile. ``raw`` is the canonical bytes it was read from (or sealed to)."""

    recipe: LockedRecipe
    inputs: LockedInputs
    engine: EngineRecord
    components: Mapping[str, LockedComponent]
    volatile: tuple[VolatileField, ...]
    digest: Digest
    raw: bytes = field(default=b"", repr=False, compare=False)
    #: where it was read from, as shown to the user (``lockfiles/x.lock.json``); ``None`` when sealed
    display: str | None = field(default=None, compare=False)

    @property
    def name(self) -> str:
        return self.recipe.name

    @property
    def criteria(self) -> tuple[tuple[str, str], ...]:
        return self.recipe.criteria

    @property
    def overlays(self) -> tuple[str, ...]:
        return self.recipe.overlays

    @property
    def mixins(self) -> tuple[str, ...]:
        return self.recipe.mixins

    def ordered(self) -> tuple[LockedComponent, ...]:
        """The components in deployment order."""
        order = [n for n in self.recipe.order if n in self.components]
        return tuple(self.components[n] for n in [*order, *sorted(set(self.components) - set(order))])

    def images(self) -> Iterator[tuple[LockedComponent, LockedImage]]:
        """Every ``(component, image)`` pair, components in deployment order."""
        for component in self.ordered():
            for image in component.images:
                yield component, image

    def unpinned(self) -> list[tuple[str, LockedImage]]:
        """``(component, image)`` for every image the lock holds without a digest."""
        return [(c.name, i) for c, i in self.images() if i.digest is None]

    def body(self) -> dict[str, Any]:
        """The JSON object, ``digest`` included."""
        return {**_unsigned(self), "digest": self.digest}

    def dumps(self) -> bytes:
        """The canonical bytes of this lockfile."""
        return canonical_json(self.body())

    def line_of(self, *path: str | int) -> int | None:
        """1-based line in :attr:`raw` where the JSON value at ``path`` starts (``None``: not found)."""
        return _line_of(self.raw or self.dumps(), path)

    @classmethod
    def from_bytes(cls, raw: bytes, *, display: str) -> Lockfile:
        """Parse and verify ``raw`` (see the module docstring for the checks and errors)."""
        return _Parser(raw, display).lockfile()


def _unsigned(lock: Lockfile, *, preformatted: bool = False) -> dict[str, Any]:
    """The body without its digest; ``preformatted``: for :func:`canonical_json` only (components as
    :class:`~pipeline.vocabulary.digest.Preformatted` text)."""
    return {
        "lockVersion": LOCK_VERSION,
        "recipe": lock.recipe.as_json(),
        "inputs": lock.inputs.as_json(),
        "engine": lock.engine.as_json(),
        "components": {name: _component_json(c) if preformatted else c.as_json()
                       for name, c in sorted(lock.components.items())},
        "volatile": [v.as_dict() for v in lock.volatile],
    }


@functools.lru_cache(maxsize=4096)
def _component_json(component: LockedComponent) -> Preformatted:
    """A component entry written once however many locks hold it (at its depth in a lockfile: the
    components of the top level's ``components``); equal entries have equal text."""
    return Preformatted(component.as_json(), "\n    ")


def seal(*, recipe: LockedRecipe, inputs: LockedInputs, engine: EngineRecord,
         components: Sequence[LockedComponent], volatile: Sequence[VolatileField]) -> Lockfile:
    """A new lockfile from its parts, its self-digest computed over the canonical body."""
    names = {c.name for c in components}
    kept = tuple(v for v in volatile if v.component in names)
    parts: dict[str, Any] = {
        "recipe": recipe, "inputs": inputs, "engine": engine, "volatile": kept,
        "components": {c.name: dataclasses.replace(c, volatile=tuple(v for v in kept if v.component == c.name))
                       for c in components},
    }
    unsigned = canonical_json(_unsigned(Lockfile(**parts, digest=Digest("")), preformatted=True))
    digest = sha256(unsigned)
    lock = Lockfile(**parts, digest=digest)
    # The signed bytes are the unsigned ones with the digest's line in its sorted place (before the
    # top level's "engine"): one serialisation instead of two, checked against the long way in tests.
    raw = unsigned.replace(b'\n  "engine": ', b'\n  "digest": "' + digest.encode() + b'",\n  "engine": ', 1)
    return dataclasses.replace(lock, raw=raw)


def load(path: Path, *, display: str | None = None) -> Lockfile:
    """Read and verify the lockfile at ``path`` (``display``: how messages name it)."""
    shown = display or str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise LockError(f"lockfile {shown} does not exist", hint="run 'nox -s lock' and commit lockfiles/") from exc
    except OSError as exc:
        raise LockError(f"lockfile {shown} cannot be read ({exc.strerror})",
                        hint="check the file's permissions, or regenerate it with 'nox -s lock'") from exc
    return Lockfile.from_bytes(raw, display=shown)


# ---- parsing -------------------------------------------------------------------------------------

_TOP = ("components", "digest", "engine", "inputs", "lockVersion", "recipe", "volatile")
_RECIPE = ("criteria", "mixins", "name", "order", "overlays")
_INPUTS = ("digest", "files", "options")
_OPTIONS = ("apiVersions", "kubeVersion")
_ENGINE = ("apiVersions", "helm", "kubeVersion", "library", "name", "version")
_COMPONENT = ("chart", "images", "manifests", "namespace", "release", "render", "type", "values", "valuesFiles")
_CHART = ("archive", "name", "repository", "tree", "version")
_RENDER = ("files", "root", "stream")
_MANIFESTS = ("post", "pre")
_IMAGE_REQUIRED = ("digest", "foundAt", "origin", "ref", "source")
_IMAGE_RESOLVED = ("mediaType", "platforms", "servedBy")
_VOLATILE_REQUIRED = ("component", "path", "reason")
_VOLATILE_OPTIONAL = ("kind", "name", "namespace")


class _Parser:
    """One pass over a lock's JSON that builds the records and names the line of any bad entry."""

    def __init__(self, raw: bytes, display: str) -> None:
        self.raw = raw
        self.display = display

    def fail(self, path: Sequence[str | int], message: str, *, integrity: bool = False) -> NoReturn:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
        error = IntegrityError if integrity else LockError
        raise error(f"lockfile {self.display}: {where or 'document'}: {message}", path=self.display,
                    line=_line_of(self.raw, path), hint=_HINT)

    def lockfile(self) -> Lockfile:
        try:
            body = json.loads(self.raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            line = getattr(exc, "lineno", None)
            raise IntegrityError(f"lockfile {self.display} is not valid JSON ({exc})", path=self.display, line=line,
                                 hint="restore it from version control (git checkout -- lockfiles/) "
                                      "or regenerate it with 'nox -s lock'") from exc
        except RecursionError as exc:
            raise IntegrityError(f"lockfile {self.display} nests too deeply to be a lockfile", path=self.display,
                                 hint=_HINT) from exc
        if not isinstance(body, dict) or any(key not in body for key in _TOP):
            missing = [k for k in _TOP if not isinstance(body, dict) or k not in body]
            raise IntegrityError(f"lockfile {self.display} is missing {', '.join(repr(m) for m in missing)}",
                                 path=self.display, hint=_HINT)
        if type(body["lockVersion"]) is not int or body["lockVersion"] != LOCK_VERSION:
            raise LockError(f"lockfile {self.display} has lockVersion {body['lockVersion']!r}; "
                            f"this tool reads version {LOCK_VERSION}", path=self.display,
                            line=_line_of(self.raw, ("lockVersion",)), hint="regenerate it with 'nox -s lock'")
        unsigned = {k: v for k, v in body.items() if k != "digest"}
        actual = sha256(canonical_json(unsigned))
        if actual != body["digest"]:
            raise IntegrityError(
                f"lockfile {self.display} fails its integrity check: recorded digest {body['digest']} but the body "
                f"hashes to {actual} (edited by hand or corrupted)", path=self.display,
                line=_line_of(self.raw, ("digest",)),
                hint="never edit lockfiles by hand: restore it (git checkout -- lockfiles/) or regenerate it "
                     "with 'nox -s lock' and review the diff",
            )
        if canonical_json(body) != self.raw:
            raise IntegrityError(f"lockfile {self.display} is not in canonical form (reformatted by hand or a tool)",
                                 path=self.display, hint="regenerate it with 'nox -s lock'")
        self.keys(body, (), _TOP)
        volatile = tuple(self.volatile(v, ("volatile", i)) for i, v in enumerate(self.array(body, ("volatile",))))
        components = self.obj(body, ("components",))
        lock = Lockfile(
            recipe=self.recipe(body),
            inputs=self.inputs(body),
            engine=self.engine(body),
            components={str(name): self.component(str(name), components[name], volatile)
                        for name in components},
            volatile=volatile,
            digest=self.digest(body["digest"], ("digest",)),
            raw=self.raw,
            display=self.display,
        )
        inputs = LockedInputs.of(dict(lock.inputs.files), kube_version=lock.inputs.kube_version,
                                 api_versions=lock.inputs.api_versions)
        if inputs.digest != lock.inputs.digest:
            self.fail(("inputs", "digest"), f"{lock.inputs.digest} is not the digest of the inputs it lists "
                                            f"({inputs.digest})")
        if (lock.engine.kube_version, lock.engine.api_versions) != (inputs.kube_version, inputs.api_versions):
            self.fail(("engine", "kubeVersion"), "the engine's kubeVersion and apiVersions differ from inputs.options")
        for index, field_ in enumerate(lock.volatile):
            if field_.component not in lock.components:
                self.fail(("volatile", index, "component"), f"names {field_.component!r}, which is not a component "
                                                            "of this lock")
        unknown = sorted(set(lock.recipe.order) ^ set(lock.components))
        if unknown:
            self.fail(("recipe", "order"), f"names {unknown[0]!r}, which is not exactly one of the components")
        if lock.dumps() != self.raw:  # every field is modelled: a value the model cannot carry is a bad lock
            self.fail((), "holds a value the lockfile model does not carry (a type or form it cannot round-trip)")
        return lock

    # -- typed getters --------------------------------------------------------------------------

    def obj(self, parent: Mapping[str, Any], path: Sequence[str | int]) -> Mapping[str, Any]:
        value = parent[path[-1]]  # type: ignore[index]
        if not isinstance(value, dict):
            self.fail(path, f"must be an object, not {type(value).__name__}")
        return value

    def array(self, parent: Mapping[str, Any], path: Sequence[str | int]) -> list[Any]:
        value = parent[path[-1]]  # type: ignore[index]
        if not isinstance(value, list):
            self.fail(path, f"must be a list, not {type(value).__name__}")
        return value

    def keys(self, data: Mapping[str, Any], path: Sequence[str | int], required: Sequence[str],
             optional: Sequence[str] = ()) -> None:
        for key in required:
            if key not in data:
                self.fail(path, f"has no {key!r}")
        unknown = sorted(set(data) - set(required) - set(optional))
        if unknown:
            self.fail((*path, unknown[0]), "is not a lockfile field (lockVersion 1)")

    def optional_text(self, value: Any, path: Sequence[str | int]) -> str | None:
        return None if value is None else self.text(value, path)

    def text(self, value: Any, path: Sequence[str | int]) -> str:
        if not isinstance(value, str) or not value:
            self.fail(path, f"must be a non-empty string, not {value!r}")
        return value

    def texts(self, value: Any, path: Sequence[str | int]) -> tuple[str, ...]:
        if not isinstance(value, list):
            self.fail(path, f"must be a list of strings, not {type(value).__name__}")
        return tuple(self.text(v, (*path, i)) for i, v in enumerate(value))

    def digest(self, value: Any, path: Sequence[str | int]) -> Digest:
        if not isinstance(value, str):
            self.fail(path, f"must be a sha256 digest, not {value!r}")
        try:
            digest = parse_digest(value)
        except ValueError as exc:
            self.fail(path, str(exc))
        if not digest.startswith("sha256:"):
            self.fail(path, f"{value!r} is not a sha256 digest")
        return digest

    # -- blocks ---------------------------------------------------------------------------------

    def recipe(self, body: Mapping[str, Any]) -> LockedRecipe:
        path = ("recipe",)
        block = self.obj(body, path)
        self.keys(block, path, _RECIPE)
        criteria = self.obj(block, (*path, "criteria"))
        return LockedRecipe(
            name=self.text(block["name"], (*path, "name")),
            criteria=tuple(sorted((str(k), self.text(v, (*path, "criteria", str(k)))) for k, v in criteria.items())),
            overlays=self.texts(block["overlays"], (*path, "overlays")),
            mixins=self.texts(block["mixins"], (*path, "mixins")),
            order=self.texts(block["order"], (*path, "order")),
        )

    def options(self, block: Mapping[str, Any], path: Sequence[str | int]) -> tuple[str, tuple[str, ...]]:
        return (self.text(block["kubeVersion"], (*path, "kubeVersion")),
                self.texts(block["apiVersions"], (*path, "apiVersions")))

    def inputs(self, body: Mapping[str, Any]) -> LockedInputs:
        path = ("inputs",)
        block = self.obj(body, path)
        self.keys(block, path, _INPUTS)
        files = self.obj(block, (*path, "files"))
        options = self.obj(block, (*path, "options"))
        self.keys(options, (*path, "options"), _OPTIONS)
        kube, apis = self.options(options, (*path, "options"))
        return LockedInputs(
            digest=self.digest(block["digest"], (*path, "digest")),
            files=tuple(sorted((str(k), v if v == MISSING_INPUT else self.digest(v, (*path, "files", str(k))))
                               for k, v in files.items())),
            kube_version=kube, api_versions=apis,
        )

    def engine(self, body: Mapping[str, Any]) -> EngineRecord:
        path = ("engine",)
        block = self.obj(body, path)
        self.keys(block, path, _ENGINE)
        kube, apis = self.options(block, path)
        return EngineRecord(
            name=self.text(block["name"], (*path, "name")), version=self.text(block["version"], (*path, "version")),
            helm=self.text(block["helm"], (*path, "helm")), library=self.digest(block["library"], (*path, "library")),
            kube_version=kube, api_versions=apis,
        )

    def component(self, name: str, entry: Any, volatile: Sequence[VolatileField]) -> LockedComponent:
        path: tuple[str | int, ...] = ("components", name)
        if not isinstance(entry, dict):
            self.fail(path, "must be an object")
        self.keys(entry, path, _COMPONENT)
        try:
            kind = ComponentType(entry["type"])
        except ValueError:
            self.fail((*path, "type"), f"{entry['type']!r} is not one of {', '.join(t.value for t in ComponentType)}")
        manifests = self.obj(entry, (*path, "manifests"))
        self.keys(manifests, (*path, "manifests"), _MANIFESTS)
        render = self.obj(entry, (*path, "render"))
        self.keys(render, (*path, "render"), _RENDER, ("pinned",))
        files = self.obj(render, (*path, "render", "files"))
        images = self.array(entry, (*path, "images"))
        return LockedComponent(
            name=name, type=kind,
            release=self.text(entry["release"], (*path, "release")),
            namespace=self.optional_text(entry["namespace"], (*path, "namespace")),
            chart=self.chart(entry["chart"], (*path, "chart")),
            values=self.digest(entry["values"], (*path, "values")),
            values_files=self.texts(entry["valuesFiles"], (*path, "valuesFiles")),
            pre_manifests=self.texts(manifests["pre"], (*path, "manifests", "pre")),
            post_manifests=self.texts(manifests["post"], (*path, "manifests", "post")),
            render=LockedRender(
                files=tuple(sorted((str(k), self.digest(v, (*path, "render", "files", str(k))))
                                   for k, v in files.items())),
                stream=self.digest(render["stream"], (*path, "render", "stream")),
                root=self.digest(render["root"], (*path, "render", "root")),
                pinned=self.digest(render["pinned"], (*path, "render", "pinned")) if "pinned" in render else None,
            ),
            images=self.images(images, (*path, "images")),
            volatile=tuple(v for v in volatile if v.component == name),
        )

    def images(self, items: list[Any], path: Sequence[str | int]) -> tuple[LockedImage, ...]:
        out = tuple(self.image(item, (*path, i)) for i, item in enumerate(items))
        refs = [i.ref for i in out]
        if refs != sorted(set(refs)):
            self.fail(path, "must list each reference once, sorted by reference")
        return out

    def chart(self, entry: Any, path: Sequence[str | int]) -> LockedChart | None:
        if entry is None:
            return None
        if not isinstance(entry, dict):
            self.fail(path, "must be an object or null")
        self.keys(entry, path, _CHART, ("servedBy",))
        return LockedChart(
            repository=self.text(entry["repository"], (*path, "repository")),
            name=self.text(entry["name"], (*path, "name")),
            version=self.text(entry["version"], (*path, "version")),
            archive=self.digest(entry["archive"], (*path, "archive")),
            tree=self.digest(entry["tree"], (*path, "tree")),
            served_by=self.text(entry["servedBy"], (*path, "servedBy")) if "servedBy" in entry else None,
        )

    def image(self, entry: Any, path: Sequence[str | int]) -> LockedImage:
        if not isinstance(entry, dict):
            self.fail(path, "must be an object")
        resolved = [k for k in _IMAGE_RESOLVED if k in entry]
        self.keys(entry, path, _IMAGE_REQUIRED, _IMAGE_RESOLVED)
        if resolved and len(resolved) != len(_IMAGE_RESOLVED):
            self.fail(path, f"has {', '.join(resolved)} but not all of {', '.join(_IMAGE_RESOLVED)}")
        text = self.text(entry["ref"], (*path, "ref"))
        try:
            image = ImageRef.parse(text)
        except ImageRefError as exc:
            self.fail((*path, "ref"), str(exc))
        if str(image) != text:
            self.fail((*path, "ref"), f"{text!r} is not in normal form ({str(image)!r})")
        source = entry["source"]
        if source is not None and source not in ImageSource.ALL:
            self.fail((*path, "source"), f"{source!r} is not one of {', '.join(ImageSource.ALL)}")
        try:
            origin = Origin(entry["origin"])
        except ValueError:
            self.fail((*path, "origin"), f"{entry['origin']!r} is not one of {', '.join(o.value for o in Origin)}")
        digest = self.digest(entry["digest"], (*path, "digest")) if entry["digest"] is not None else None
        if image.digest is not None and digest != image.digest:
            self.fail((*path, "digest"), f"{digest} differs from the digest the reference itself pins")
        if digest is None and (resolved or source is not None):
            self.fail(path, "has no digest, so it can have no source, mediaType, platforms or servedBy")
        if digest is not None and source is None:
            self.fail((*path, "source"), "must say where the digest came from (reference or registry)")
        if (source == ImageSource.REFERENCE) != (image.digest is not None) and source is not None:
            self.fail((*path, "source"), f"{source!r} does not match the reference, which "
                                         f"{'pins' if image.digest else 'does not pin'} a digest")
        platforms = None
        if resolved:
            block = self.obj(entry, (*path, "platforms"))
            platforms = tuple(sorted((str(p), self.digest(d, (*path, "platforms", str(p)))) for p, d in block.items()))
        if resolved and digest is not None:
            try:  # what a registry answered must be an answer a registry can give (one set of rules)
                ResolvedImage(ref=image, digest=digest, media_type=self.text(entry["mediaType"], (*path, "mediaType")),
                              size=0, platforms=dict(platforms or ()), served_by=self.text(entry["servedBy"],
                                                                                           (*path, "servedBy")))
            except ValueError as exc:
                self.fail(path, f"is not something a registry can answer: {exc}")
        return LockedImage(
            ref=text, image=image, digest=digest, source=source, origin=origin,
            found_at=self.texts(entry["foundAt"], (*path, "foundAt")),
            media_type=self.text(entry["mediaType"], (*path, "mediaType")) if resolved else None,
            platforms=platforms,
            served_by=self.text(entry["servedBy"], (*path, "servedBy")) if resolved else None,
        )

    def volatile(self, entry: Any, path: Sequence[str | int]) -> VolatileField:
        if not isinstance(entry, dict):
            self.fail(path, "must be an object")
        self.keys(entry, path, _VOLATILE_REQUIRED, _VOLATILE_OPTIONAL)
        kind, name, namespace = (self.text(entry[k], (*path, k)) if k in entry else None for k in _VOLATILE_OPTIONAL)
        return VolatileField(component=self.text(entry["component"], (*path, "component")),
                             path=self.text(entry["path"], (*path, "path")),
                             reason=self.text(entry["reason"], (*path, "reason")),
                             kind=kind, name=name, namespace=namespace)


def _line_of(raw: bytes, path: Sequence[str | int]) -> int | None:
    """1-based line where the value at ``path`` starts in canonical JSON ``raw`` (two-space indent).

    The children of a value that starts on line ``i`` at depth ``d`` are the lines after ``i`` indented
    by ``d + 1`` levels, up to the first line indented less: a key is ``"key":``, a list item any such
    line but a closing bracket. When a step is not found, the line of the deepest value reached.
    """
    lines = raw.decode("utf-8", errors="replace").split("\n")
    start, depth = 0, 0
    for step in path:
        children: list[int] = []
        for index in range(start + 1, len(lines)):
            indent = _depth(lines[index])
            if indent <= depth and lines[index].strip():
                break
            if indent == depth + 1 and lines[index].strip() not in {"}", "},", "]", "],"}:
                children.append(index)
        if isinstance(step, str):
            needle = json.dumps(step, ensure_ascii=False) + ":"
            hit = next((i for i in children if lines[i].strip().startswith(needle)), None)
        else:
            hit = children[step] if 0 <= step < len(children) else None
        if hit is None:
            break
        start, depth = hit, depth + 1
    return start + 1 if lines and lines[0] else None


def _depth(line: str) -> int:
    return (len(line) - len(line.lstrip(" "))) // 2
