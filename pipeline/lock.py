"""Lock assembly and the one way to read locks: verified, engine-checked and fresh, or an error.

Writing: :func:`build_component` and :func:`build_lockfile` turn a composed
:class:`~pipeline.recipes.model.Recipe`, its fetched charts, renders and images (and their resolved
digests) into a sealed :class:`~pipeline.lockfile.Lockfile`. ``inputs`` hashes every file the render
depends on and keeps each file's digest, so a stale lock names the file that changed.

Reading: :func:`check_lock` runs the checks every consumer relies on, in order (lock integrity,
engine, staleness) and says which failed; :func:`verified_locks` returns the locks of a set of
recipes only when all of them pass, and raises otherwise. Reproduce reports per check; publishers
(BOM, inventory, mirror list, provenance, policies, drift) use :func:`verified_locks` and so refuse a
stale lock the same way. :func:`ghost_locks` lists lockfiles that no recipe of the catalog produces.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .errors import GateError, LockError, PipelineError, StaleLockError
from .images import FoundImage, ImageRef, Origin, Via
from .lockfile import (
    LOCK_SUFFIX,
    MISSING_INPUT,
    EngineRecord,
    ImageSource,
    LockedChart,
    LockedComponent,
    LockedImage,
    LockedInputs,
    LockedRecipe,
    LockedRender,
    Lockfile,
    load,
    lock_path,
    seal,
)
from .pin import DIGEST_FIELDS_FILE, PinRules, pin_render
from .recipes.config import CONFIG_FILE
from .recipes.model import Component, Recipe
from .registry import ResolvedImage
from .render.job import ComponentRender, RenderDigests
from .vocabulary.digest import Digest, canonical_json, sha256
from .volatile import VOLATILE_FILE, VolatileField

__all__ = [
    "CHECKS",
    "LockCheck",
    "PinnedMemo",
    "build_component",
    "build_lockfile",
    "check_lock",
    "complete_lockfile",
    "engine_mismatch",
    "ghost_locks",
    "input_digests",
    "stale_inputs",
    "verified_locks",
]

#: The checks a lock passes before anything uses it, then the ones only a re-render can make.
LOCK_CHECKS = ("lock integrity", "engine", "staleness")
CHECKS = (*LOCK_CHECKS, "A = B", "render = lock", "images = lock")
EXEMPTIONS_FILE = "exemptions.yaml"
_LOCK_HINT = "run 'nox -s lock', review the diff of lockfiles/, then publish again"


def input_digests(recipe: Recipe, *, listings: dict[tuple[str, ...], dict[str, Digest]] | None = None,
                  seen: dict[Path, Digest] | None = None) -> dict[str, Digest]:
    """Digest of every catalog file the recipe's render depends on, by catalog-relative path.

    Covers the composition inputs (registry, overlays, mixins, values, manifests), the volatile
    declarations, the digest-field table and exemptions (inputs of the pinned render), every file
    of each local chart directory or archive, and, as ``pipeline.yaml#<key>``, the digest of each
    render-relevant part of ``pipeline.yaml`` (not the file: its mirrors and registries change who
    serves the bytes, not the bytes). ``listings`` is a memo of each local chart's files and their
    digests that a caller shares between the recipes of one run (a real chart has hundreds of
    files, and most recipes use the same charts); ``seen``, of the other files' digests (each file
    is read once per run however many recipes use it).
    """
    paths = set(recipe.input_files)
    # the pinned render reads the digest-field table and the exemptions
    for optional in (VOLATILE_FILE, DIGEST_FIELDS_FILE, EXEMPTIONS_FILE):
        if (recipe.catalog / optional).is_file():
            paths.add(optional)
    out: dict[str, Digest] = {}
    for component in recipe.components:
        if component.chart is not None and component.chart.is_local:
            chart = component.chart
            where = (recipe.catalog.as_posix(), chart.repository, chart.name, chart.version)
            listed = listings.get(where) if listings is not None else None
            if listed is None:
                listed = {rel: _input_digest(recipe.catalog, rel, seen)
                          for rel in _local_chart_files(recipe.catalog, component)}
                if listings is not None:
                    listings[where] = listed
            out.update(listed)
    for rel in paths.difference(out):
        out[rel] = _input_digest(recipe.catalog, rel, seen)
    for key, value in recipe.config_inputs.items():
        out[f"{CONFIG_FILE}#{key}"] = sha256(canonical_json(value))
    return dict(sorted(out.items()))


def _input_digest(catalog: Path, rel: str, seen: dict[Path, Digest] | None) -> Digest:
    path = catalog / rel
    known = seen.get(path) if seen is not None else None
    if known is not None:
        return known
    try:
        stat = path.stat()
    except FileNotFoundError:
        return Digest(MISSING_INPUT)
    digest = _file_digest(str(path), stat.st_size, stat.st_mtime_ns)
    if seen is not None:
        seen[path] = digest
    return digest


@functools.lru_cache(maxsize=65536)
def _file_digest(path: str, size: int, mtime_ns: int) -> Digest:
    """sha256 of a file, memoised on (path, size, mtime): recipes share most of their inputs."""
    del size, mtime_ns  # part of the cache key only
    return sha256(Path(path).read_bytes())


def _local_chart_files(catalog: Path, component: Component) -> list[str]:
    assert component.chart is not None
    base = Path(os.path.normpath(component.chart.repository))
    directory = catalog / base / component.chart.name
    archive = base / f"{component.chart.name}-{component.chart.version}.tgz"
    if directory.is_dir():
        # The archive of the pinned version, when there is one, is used instead of a directory that
        # carries another version: both are inputs.
        return sorted(
            (base / component.chart.name / p.relative_to(directory)).as_posix()
            for p in directory.rglob("*") if p.is_file() or p.is_symlink()
        ) + ([archive.as_posix()] if (catalog / archive).is_file() else [])
    return [archive.as_posix()]


def _image_entries(found: Sequence[FoundImage], resolved: Mapping[ImageRef, ResolvedImage]) -> tuple[LockedImage, ...]:
    """One entry per distinct reference: what was written next to what was locked, and from where.

    ``source`` says where the digest came from: ``reference`` (written with ``@sha256:``; the
    registry was still asked, to verify it and record the platforms) or ``registry`` (a tag the
    registry resolved). Without a resolution (``lock --no-resolve``) only reference digests are kept.
    """
    origins: dict[ImageRef, Origin] = {}
    found_at: dict[ImageRef, set[str]] = {}
    for seen in found:
        if seen.origin is Origin.IN_TREE or seen.ref not in origins:
            origins[seen.ref] = Origin.IN_TREE if seen.origin is Origin.IN_TREE else Origin.CHART_DEFAULT
        found_at.setdefault(seen.ref, set()).add(seen.found_at)
    out = []
    for ref in sorted(origins, key=str):
        image = LockedImage(ref=str(ref), image=ref, origin=origins[ref], found_at=tuple(sorted(found_at[ref])),
                            digest=Digest(ref.digest) if ref.digest is not None else None,
                            source=ImageSource.REFERENCE if ref.pinned else None)
        out.append(_with_answer(image, resolved.get(ref)))
    return tuple(out)


def _with_answer(image: LockedImage, answer: ResolvedImage | None) -> LockedImage:
    """``image`` with what its registry answered (unchanged without an answer)."""
    if answer is None:
        return image
    return dataclasses.replace(
        image, digest=Digest(answer.digest),
        source=ImageSource.REFERENCE if image.image.pinned else ImageSource.REGISTRY,
        media_type=answer.media_type, platforms=tuple(sorted(answer.platforms.items())),
        served_by=answer.served_by)


def complete_lockfile(lock: Lockfile, resolved: Mapping[ImageRef, ResolvedImage], *,
                      pinning: Mapping[str, tuple[ComponentRender, Sequence[FoundImage]]] | None = None,
                      rules: PinRules | None = None) -> Lockfile:
    """The lock made with ``lock --no-resolve`` as ``lock`` would have made it with these registry answers.

    Containers lock without the network; the host resolves and completes (same bytes as a local lock:
    images are entered by the same rule as :func:`build_component` enters them, and with ``rules``
    the pinned render of each component in ``pinning`` (its render and the images discovered in it)
    is recorded as :func:`build_component` records it). Only unresolved images are completed; a lock
    that has resolved images is refused.
    """
    if any(i.resolved for c in lock.components.values() for i in c.images):
        raise LockError(f"the lock of {lock.name!r} is already resolved", hint="complete only a --no-resolve lock")
    components = [dataclasses.replace(c, images=tuple(_with_answer(i, resolved.get(i.image)) for i in c.images))
                  for c in lock.ordered()]
    if rules is not None and pinning is not None:
        components = [_with_pinned(c, render=pinning[c.name][0], images=pinning[c.name][1], rules=rules)
                      if c.name in pinning else c for c in components]
    return seal(recipe=lock.recipe, inputs=lock.inputs, engine=lock.engine, components=components,
                volatile=lock.volatile)


#: A run's memo of pinned-render digests, shared by its recipes (see :func:`build_component`).
PinnedMemo = dict[tuple[object, ...], tuple[ComponentRender, Digest]]


def build_component(
    component: Component,
    *,
    chart: LockedChart | None,
    render: ComponentRender,
    images: Sequence[FoundImage],
    resolved: Mapping[ImageRef, ResolvedImage],
    rules: PinRules | None = None,
    digests: RenderDigests | None = None,
    pinned: PinnedMemo | None = None,
) -> LockedComponent:
    """The lock entry of one component; with ``rules``, the digest of its pinned render too (when
    every image it must rewrite has a locked digest). ``digests`` and ``pinned`` are memos a run
    shares between its recipes: a render shared by many recipes is hashed and pinned once."""
    digests = RenderDigests() if digests is None else digests
    files, root = digests.files(render)
    entry = LockedComponent(
        name=component.name, type=component.type, release=component.name, namespace=component.namespace,
        chart=chart,
        values=sha256(canonical_json(component.values)),
        values_files=tuple(component.values_files),
        pre_manifests=tuple(component.pre_manifest_files),
        post_manifests=tuple(component.manifest_files),
        render=LockedRender(files=files, stream=digests.stream(render), root=root),
        images=_image_entries(images, resolved),
    )
    return entry if rules is None else _with_pinned(entry, render=render, images=images, rules=rules, memo=pinned)


def _with_pinned(entry: LockedComponent, *, render: ComponentRender, images: Sequence[FoundImage],
                 rules: PinRules, memo: PinnedMemo | None = None) -> LockedComponent:
    digests = {i.image: i.digest for i in entry.images}
    if any(digests.get(f.ref) is None and f.ref.digest is None for f in images if f.via is not Via.ANNOTATION):
        return entry  # a lock without registry resolution has no pinned render
    # The pinned render depends on the render, the images found in it, their digests and the rules
    # (one set per run): recipes sharing all of these share it.
    key = (id(render), entry.name, tuple(images), tuple(sorted(digests.items(), key=lambda item: str(item[0]))))
    hit = memo.get(key) if memo is not None else None
    if hit is None or hit[0] is not render:
        pinned = pin_render(render, images, digests=digests, component=entry.name, rules=rules)
        hit = (render, sha256(pinned.render.stream))
        if memo is not None:
            memo[key] = hit
    return dataclasses.replace(entry, render=dataclasses.replace(entry.render, pinned=hit[1]))


def build_lockfile(
    recipe: Recipe,
    *,
    inputs: Mapping[str, Digest],
    engine: Mapping[str, str],
    components: Sequence[LockedComponent],
    volatile: Sequence[VolatileField],
) -> Lockfile:
    """Assemble and seal a recipe's lockfile."""
    return seal(
        recipe=LockedRecipe(name=recipe.name, criteria=tuple(sorted(recipe.criteria.as_dict().items())),
                            overlays=tuple(recipe.overlays), mixins=tuple(recipe.mixins),
                            order=tuple(c.name for c in recipe.components)),
        inputs=LockedInputs.of(inputs, kube_version=recipe.kube_version, api_versions=recipe.api_versions),
        engine=EngineRecord(name=engine["name"], version=engine["version"], helm=engine["helm"],
                            library=Digest(engine["library"]), kube_version=recipe.kube_version,
                            api_versions=tuple(recipe.api_versions)),
        components=components,
        volatile=volatile,
    )


# ---- reading: the checks every consumer relies on ---------------------------------------------------


@dataclass(slots=True, kw_only=True)
class LockCheck:
    """The outcome of :func:`check_lock` for one recipe: the lock (when readable) and what failed."""

    recipe: str
    path: Path
    display: str
    lock: Lockfile | None = None
    #: check name (one of :data:`LOCK_CHECKS`) → messages; a check absent here passed or was not reached
    failures: dict[str, list[str]] = field(default_factory=dict)
    error: PipelineError | None = None

    @property
    def ok(self) -> bool:
        return self.lock is not None and not self.failures


def engine_mismatch(lock: Lockfile, engine: Mapping[str, str], *,
                    equivalent: Sequence[Mapping[str, str]] = ()) -> str | None:
    """Why ``lock`` was made by another engine than ``engine`` (the keys it gives are compared).

    A lock made by one of the ``equivalent`` engines (the checkout's pinned engines, which print the
    same ``helm template`` bytes) passes: the bytes themselves are then checked by ``render = lock``.
    """
    locked = lock.engine.identity
    if any(all(locked.get(k) == v for k, v in other.items()) for other in equivalent if other):
        return None
    changed = [f"{k}: lock {locked.get(k)!r} ≠ now {v!r}" for k, v in sorted(engine.items()) if locked.get(k) != v]
    return f"the lock was made by another engine ({', '.join(changed)})" if changed else None


def stale_inputs(recipe: Recipe, lock: Lockfile) -> list[str]:
    """One message per input that changed since ``lock`` was made (empty: the lock is fresh)."""
    current = input_digests(recipe)
    locked = dict(lock.inputs.files)
    changed = sorted(p for p in set(current) & set(locked) if current[p] != locked[p])
    added = sorted(set(current) - set(locked))
    removed = sorted(set(locked) - set(current))
    messages = [f"input {_input_name(p)} changed since the lock was made" for p in changed]
    messages += [f"input {_input_name(p)} is new since the lock was made" for p in added]
    messages += [f"input {_input_name(p)} was used by the lock but is no longer" for p in removed]
    options = {"kubeVersion": recipe.kube_version, "apiVersions": list(recipe.api_versions)}
    if lock.inputs.options != options:
        messages.append(f"engine options changed: lock {lock.inputs.options} ≠ now {options}")
    return messages


def _input_name(key: str) -> str:
    """An input as messages name it: a file, or ``pipeline.yaml (spec.kubeVersion)`` for a part of it."""
    file, sep, part = key.partition("#")
    return f"{file} ({part})" if sep else key


def display_path(path: Path) -> str:
    """``path`` relative to the working directory when it is below it (how messages name files)."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


def check_lock(recipe: Recipe, lockdir: Path, *, engine: Mapping[str, str],
               equivalent: Sequence[Mapping[str, str]] = ()) -> LockCheck:
    """Read the lock of ``recipe`` and check, in order: integrity, engine, staleness."""
    path = lock_path(lockdir, recipe.name)
    result = LockCheck(recipe=recipe.name, path=path, display=display_path(path))
    if not path.is_file():
        result.error = LockError(f"no lockfile for recipe '{recipe.name}' at {result.display}",
                                 hint="run 'nox -s lock' and commit lockfiles/")
        result.failures["lock integrity"] = [f"no lockfile at {result.display}: run 'nox -s lock'"]
        return result
    try:
        lock = load(path, display=result.display)
    except (GateError, LockError) as exc:
        result.error = exc
        result.failures["lock integrity"] = [exc.message]
        return result
    result.lock = lock
    if lock.name != recipe.name:
        result.failures["lock integrity"] = [f"{result.display} is the lock of recipe '{lock.name}', "
                                             f"not of '{recipe.name}'"]
        return result
    mismatch = engine_mismatch(lock, engine, equivalent=equivalent)
    if mismatch is not None:
        result.failures["engine"] = [mismatch]
    stale = stale_inputs(recipe, lock)
    if stale:
        result.failures["staleness"] = stale
    return result


def verified_locks(recipes: Sequence[Recipe], lockdir: Path, *, engine: Mapping[str, str],
                   equivalent: Sequence[Mapping[str, str]] = ()) -> list[Lockfile]:
    """The lock of every recipe, verified, made by ``engine`` and fresh; otherwise an error.

    A missing or unreadable lock is a :class:`~pipeline.errors.LockError` (exit 2), a tampered one an
    :class:`~pipeline.errors.IntegrityError`; one made by another engine or with changed inputs a
    :class:`~pipeline.errors.StaleLockError` (exit 1) naming every changed input: nothing may be
    published from them.
    """
    locks: list[Lockfile] = []
    problems: list[str] = []
    for recipe in recipes:
        checked = check_lock(recipe, lockdir, engine=engine, equivalent=equivalent)
        if checked.error is not None:
            raise checked.error
        problems += [f"recipe '{recipe.name}': {m}" for messages in checked.failures.values() for m in messages]
        if checked.lock is not None:
            locks.append(checked.lock)
    if problems:
        raise StaleLockError("the locks are stale, nothing was written:\n  " + "\n  ".join(problems), hint=_LOCK_HINT)
    return locks


def ghost_locks(lockdir: Path, recipes: Sequence[str]) -> list[Path]:
    """Lockfiles in ``lockdir`` that no recipe of ``recipes`` produces (a copied or left-over lock)."""
    known = {lock_path(lockdir, name) for name in recipes}
    return sorted(p for p in lockdir.glob(f"*{LOCK_SUFFIX}") if p not in known) if lockdir.is_dir() else []
