"""Incremental ``lock``: a relock writes exactly the bytes of a cold lock; ``lock --check``; the caches.

Each scenario locks a copy of our catalog cold, changes it (a values edit, a chart bump, nothing),
relocks with the warm caches (lock cache, render cache, discovery cache), and compares every
lockfile with a cold lock of the changed catalog made with an empty cache. The counters asserted
are the ones the summary line prints (``LockResult``), never timings.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.__main__ import main
from pipeline.build import build
from pipeline.charts import pack_directory
from pipeline.images import Discovery, DiscoveryCache
from pipeline.render.pool import WorkerPool
from pipeline.render.sandbox import CANONICAL
from pipeline.stages import LockResult, Workspace, compose_recipes, lock_catalog
from pipeline.vocabulary.digest import Digest
from pipeline.vocabulary.store import read_entry, write_entry
from pipeline.volatile import load_volatile
from tests import factories
from tests.servers import Registry, build_oci_image, push_oci_image

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ("h100-any", "h100-eks-ubuntu-training-kubeflow", "h100-kind-inference")


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "recipes", tmp_path / "recipes")
    return tmp_path / "recipes"


def _lock(catalog: Path, lockdir: Path, cache: Path, *, check: bool = False) -> LockResult:
    ws = Workspace(catalog=catalog, lockdir=lockdir, cache=cache, workers=1, resolve=False)
    return lock_catalog(ws, check=check)


def _files(lockdir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(lockdir.glob("*.lock.json"))}


def _values_change(catalog: Path) -> None:
    """fabric-operator's values, used only by the kubeflow recipe."""
    values = catalog / "components" / "fabric-operator" / "values.yaml"
    values.write_text(values.read_text() + "\nrelockTest: 1\n")


def _chart_bump(catalog: Path) -> None:
    """accel-operator v1.4.2 → v1.5.0: the local repository offers the archive, the registry pins it."""
    staging = catalog.parent / "staging" / "accel-operator"
    shutil.copytree(catalog / "charts" / "accel-operator", staging)
    meta = staging / "Chart.yaml"
    meta.write_text(meta.read_text().replace("\nversion: v1.4.2\n", "\nversion: v1.5.0\n"))
    assert "\nversion: v1.5.0\n" in meta.read_text()
    (catalog / "charts" / "accel-operator-v1.5.0.tgz").write_bytes(pack_directory(staging, "accel-operator"))
    registry = catalog / "registry.yaml"
    text = registry.read_text()
    assert text.count("defaultVersion: v1.4.2") == 1
    registry.write_text(text.replace("defaultVersion: v1.4.2", "defaultVersion: v1.5.0"))


def _no_change(catalog: Path) -> None:
    del catalog


@pytest.mark.parametrize(("change", "reused", "changed"), [
    (_values_change, 2, {"h100-eks-ubuntu-training-kubeflow.lock.json"}),
    (_chart_bump, 0, {f"{r}.lock.json" for r in RECIPES}),
    (_no_change, 3, set()),
], ids=["values-change", "chart-bump", "no-change"])
def test_relock_writes_the_bytes_of_a_cold_lock(catalog: Path, tmp_path: Path, change: Callable[[Path], None],
                                                reused: int, changed: set[str]) -> None:
    lockdir, cache = tmp_path / "locks", tmp_path / "cache"
    cold = _lock(catalog, lockdir, cache)
    assert cold.reused_locks == 0 and cold.cache_hits == 0 and cold.renders > 0
    before = _files(lockdir)
    change(catalog)

    relock = _lock(catalog, lockdir, cache)
    again = _lock(catalog, tmp_path / "cold-locks", tmp_path / "cold-cache")

    assert _files(lockdir) == _files(tmp_path / "cold-locks")
    assert again.reused_locks == 0 and again.cache_hits == 0
    assert {p.name for p in relock.written} == changed
    assert {n for n, data in _files(lockdir).items() if before[n] != data} == changed
    assert relock.reused_locks == reused
    # Only recipes the change reaches are rendered, and of their jobs only the changed ones.
    assert relock.renders < cold.renders
    if not changed:
        assert relock.renders == 0 and relock.cache_hits == 0 and relock.discovery_hits == 0


def test_a_second_lock_renders_nothing_from_the_render_cache(catalog: Path, tmp_path: Path) -> None:
    lockdir, cache = tmp_path / "locks", tmp_path / "cache"
    cold = _lock(catalog, lockdir, cache)
    before = _files(lockdir)
    shutil.rmtree(cache / "locks")  # no recipe-level hit: every job goes to the render cache
    warm = _lock(catalog, lockdir, cache)
    assert warm.renders == 0
    assert warm.cache_hits == cold.renders  # every distinct job, served from the cache
    assert warm.discovery_hits == cold.renders
    assert warm.reused_locks == 0
    assert _files(lockdir) == before and not warm.written


def test_a_corrupt_lock_cache_index_is_a_miss(catalog: Path, tmp_path: Path) -> None:
    lockdir, cache = tmp_path / "locks", tmp_path / "cache"
    _lock(catalog, lockdir, cache)
    before = _files(lockdir)
    stored = sorted(p for p in (cache / "locks").iterdir() if p.is_file())
    assert [p.name for p in stored] == ["index"]  # one file for the whole catalog, not one per recipe
    stored[0].write_bytes(stored[0].read_bytes().replace(b'"run": 1', b'"run": 2'))  # edited: fails its digest
    relock = _lock(catalog, lockdir, cache)
    assert relock.reused_locks == 0
    assert _files(lockdir) == before
    assert _lock(catalog, lockdir, cache).reused_locks == len(RECIPES)  # the relock wrote a good index


def test_the_first_index_removes_the_entries_of_the_one_file_per_key_layout(catalog: Path, tmp_path: Path) -> None:
    lockdir, cache = tmp_path / "locks", tmp_path / "cache"
    old = cache / "locks" / ("ab" * 32)
    old.parent.mkdir(parents=True)
    for path in (old, old.with_name(old.name + ".refs")):
        write_entry(path, b"an entry of the earlier layout\n")
    keep = old.parent / "notes.txt"
    keep.write_text("not ours\n")
    _lock(catalog, lockdir, cache)
    assert sorted(p.name for p in old.parent.iterdir()) == ["index", "notes.txt"]


def test_a_hand_edited_lockfile_is_not_a_lock_cache_hit(catalog: Path, tmp_path: Path) -> None:
    # The index records each lock's digest; the lockfile on disk is the cached value, checked on use.
    lockdir, cache = tmp_path / "locks", tmp_path / "cache"
    _lock(catalog, lockdir, cache)
    before = _files(lockdir)
    edited = sorted(lockdir.iterdir())[0]
    edited.write_bytes(edited.read_bytes().replace(b'"name"', b'"name" ', 1))
    (lockdir / sorted(before)[1]).unlink()
    relock = _lock(catalog, lockdir, cache)
    assert relock.reused_locks == len(RECIPES) - 2
    assert {p.name for p in relock.written} == {edited.name, sorted(before)[1]}
    assert _files(lockdir) == before


def test_the_lock_cache_index_keeps_the_entries_of_recent_runs(catalog: Path, tmp_path: Path) -> None:
    # Switching back to an earlier state (another branch) within KEEP_RUNS runs is still a hit.
    lockdir, cache = tmp_path / "locks", tmp_path / "cache"
    values = catalog / "components" / "dra-driver" / "values.yaml"
    original = values.read_text()
    _lock(catalog, lockdir, cache)
    first = _files(lockdir)
    values.write_text(original + "\nrelockTest: 1\n")
    _lock(catalog, lockdir, cache)
    values.write_text(original)
    for path in lockdir.iterdir():
        path.write_bytes(first[path.name])  # as a checkout of the earlier branch would
    back = _lock(catalog, lockdir, cache)
    assert back.reused_locks == len(RECIPES) and back.renders == 0


def _cli_check(catalog: Path, lockdir: Path, cache: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["lock", "--check", "--no-resolve", "--catalog", str(catalog), "--lockdir", str(lockdir),
                 "--cache", str(cache), "--workers", "1"])
    return code, capsys.readouterr().out


def _snapshot(lockdir: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(lockdir.iterdir())}


def test_lock_check_fresh_exits_0(catalog: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lockdir, cache = tmp_path / "locks", tmp_path / "cache"
    _lock(catalog, lockdir, cache)
    capsys.readouterr()
    before = _snapshot(lockdir)
    code, out = _cli_check(catalog, lockdir, cache, capsys)
    assert code == 0
    assert out.splitlines()[-1] == "lock --check: 0 lockfiles would change, 3 up to date (nothing written)"
    assert _snapshot(lockdir) == before


def _edit_values(catalog: Path, lockdir: Path) -> None:
    del lockdir
    _values_change(catalog)


def _hand_edit(catalog: Path, lockdir: Path) -> None:
    """A lock edited by hand, inputs unchanged: the lock cache hit must still see the bytes differ."""
    del catalog
    path = lockdir / "h100-eks-ubuntu-training-kubeflow.lock.json"
    path.write_bytes(path.read_bytes().replace(b'"release": "fabric-operator"', b'"release": "fabric-0perator"'))


def _delete(catalog: Path, lockdir: Path) -> None:
    del catalog
    (lockdir / "h100-eks-ubuntu-training-kubeflow.lock.json").unlink()


def _ghost(catalog: Path, lockdir: Path) -> None:
    del catalog
    shutil.copy(lockdir / "h100-any.lock.json", lockdir / "gone.lock.json")


@pytest.mark.parametrize(("stale", "expected"), [
    (_edit_values, "would write   {lockdir}/h100-eks-ubuntu-training-kubeflow.lock.json"),
    (_hand_edit, "would write   {lockdir}/h100-eks-ubuntu-training-kubeflow.lock.json"),
    (_delete, "would write   {lockdir}/h100-eks-ubuntu-training-kubeflow.lock.json"),
    (_ghost, "would remove  {lockdir}/gone.lock.json (no such recipe any more)"),
], ids=["values-edit", "hand-edited-lock", "missing-lock", "ghost-lock"])
def test_lock_check_names_the_stale_lock_exits_1_and_writes_nothing(
    catalog: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    stale: Callable[[Path, Path], None], expected: str,
) -> None:
    lockdir, cache = tmp_path / "locks", tmp_path / "cache"
    _lock(catalog, lockdir, cache)  # warm caches: --check must not trust a cache hit over the file
    stale(catalog, lockdir)
    capsys.readouterr()
    before = _snapshot(lockdir)
    code, out = _cli_check(catalog, lockdir, cache, capsys)
    assert code == 1
    lines = out.splitlines()
    assert lines[:-1] == [expected.format(lockdir=lockdir)]
    fresh = 3 if stale is _ghost else 2  # a ghost lock is removed; the three recipes' locks are fresh
    assert lines[-1] == f"lock --check: 1 lockfiles would change, {fresh} up to date (nothing written)"
    assert _snapshot(lockdir) == before


def test_cache_entries_verify_themselves(tmp_path: Path) -> None:
    entry = tmp_path / "entry"
    write_entry(entry, b'{"a": 1}\n')
    assert read_entry(entry) == b'{"a": 1}\n'
    raw = entry.read_bytes()
    entry.write_bytes(raw[:-3])  # torn
    assert read_entry(entry) is None
    entry.write_bytes(raw.replace(b"1", b"2"))  # edited
    assert read_entry(entry) is None
    assert read_entry(tmp_path / "absent") is None


def test_the_discovery_cache_gives_back_what_discovery_found(catalog: Path, tmp_path: Path) -> None:
    """Every discovery of our catalog survives the cache's round trip, equal field for field."""
    seen: dict[tuple[Digest, Digest], Discovery] = {}
    ws = Workspace(catalog=catalog, lockdir=tmp_path / "locks", cache=tmp_path / "cache", workers=1, resolve=False)
    lock_catalog(ws)
    cache = DiscoveryCache(tmp_path / "cache" / "discovery")  # what that lock wrote, read by a new instance
    loaded, recipes = compose_recipes(catalog)
    with WorkerPool(CANONICAL, workers=1) as pool:
        build(recipes, pool=pool, store=ws.store, mirrors=loaded.config.mirrors, volatile=load_volatile(catalog),
              discovered=seen)
    assert seen
    for key, found in seen.items():
        assert cache[key] == found
    assert cache.hits == len(seen)


@pytest.mark.registry
def test_a_moved_tag_misses_the_lock_cache_and_relocks_like_a_cold_lock(tmp_path: Path, registry: Registry) -> None:
    """Registry answers are part of the lock key: a tag that moved is asked, seen, and locked anew."""
    push_oci_image(registry, "example/app", "1.1", build_oci_image("app-1.1"))
    push_oci_image(registry, "library/busybox", "1.36", build_oci_image("busybox-1.36", platforms=("linux/amd64",)))
    catalog = factories.catalog(tmp_path / "catalog")
    for path in catalog.rglob("*.yaml"):
        path.write_text(path.read_text().replace("ghcr.io/example/app", f"{registry.host}/example/app")
                        .replace("docker.io/library/busybox", f"{registry.host}/library/busybox"))

    def lock(lockdir: Path, cache: Path, *, resolve: bool = True) -> LockResult:
        return lock_catalog(Workspace(catalog=catalog, lockdir=lockdir, cache=cache, workers=1, resolve=resolve))

    lockdir, cache = tmp_path / "locks", tmp_path / "cache"
    lock(lockdir, cache, resolve=False)  # the recipe key's entries exist; the resolved lock does not
    first = lock(lockdir, cache)
    assert first.reused_locks == 0 and first.renders == 0
    again = lock(lockdir, cache)
    assert again.reused_locks == 1 and not again.written

    moved = push_oci_image(registry, "example/app", "1.1", build_oci_image("app-1.1-rebuilt"))
    relock = lock(lockdir, cache)
    assert relock.reused_locks == 0 and relock.renders == 0  # rendered nothing: the render cache served it
    assert [p.name for p in relock.written] == ["eks.lock.json"]
    assert moved.encode() in (lockdir / "eks.lock.json").read_bytes()
    lock(tmp_path / "cold-locks", tmp_path / "cold-cache")
    assert _files(lockdir) == _files(tmp_path / "cold-locks")
