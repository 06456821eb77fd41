"""Locks made without the network and resolved afterwards on the host (what the container backends do)
are byte-identical to locks resolved while locking; a lock that is already resolved is refused."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterable
from pathlib import Path

import pytest

import pipeline.stages
from pipeline.errors import LockError
from pipeline.images import ImageRef
from pipeline.lock import complete_lockfile
from pipeline.lockfile import Lockfile, load
from pipeline.registry import ResolvedImage
from pipeline.stages import Workspace, lock_catalog, resolve_locks
from pipeline.vocabulary.digest import Digest
from tests import factories
from tests.locks import fake_digest

INDEX = "application/vnd.oci.image.index.v1+json"
REPO = Path(__file__).resolve().parents[1]


def _digest(text: str) -> Digest:
    return Digest(fake_digest(text))


def _answers(refs: Iterable[ImageRef]) -> dict[ImageRef, ResolvedImage]:
    """What a registry would answer: a two-platform index per reference (its own digest when pinned)."""
    return {ref: ResolvedImage(ref=ref, digest=Digest(ref.digest) if ref.digest else _digest(str(ref)),
                               media_type=INDEX, size=123,
                               platforms={"linux/amd64": _digest(f"{ref} amd64"),
                                          "linux/arm64": _digest(f"{ref} arm64")},
                               served_by="mirror.test:5000")
            for ref in refs}


def _locked_offline(tmp_path: Path, lockdir: str) -> tuple[Workspace, Lockfile]:
    """The factory catalog locked with ``--no-resolve`` (as a container does), and its eks lock."""
    factories.catalog(tmp_path / "catalog")
    ws = Workspace(catalog=tmp_path / "catalog", lockdir=tmp_path / lockdir, cache=tmp_path / "cache",
                   workers=1, resolve=False)
    lock_catalog(ws)
    return ws, load(ws.lockdir / "eks.lock.json")


def test_resolving_on_the_host_gives_the_bytes_of_resolving_while_locking(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    offline, unresolved = _locked_offline(tmp_path, "offline")
    refs = {i.image for c in unresolved.components.values() for i in c.images}
    assert refs and not any(i.resolved for c in unresolved.components.values() for i in c.images)
    monkeypatch.setattr(pipeline.stages, "resolve_all", lambda refs, **_: _answers(refs))
    online = dataclasses.replace(offline, lockdir=tmp_path / "online", resolve=True)
    lock_catalog(online)
    expected = (online.lockdir / "eks.lock.json").read_bytes()
    assert b'"pinned": "sha256:' in expected  # the pinned render is recorded, which needs the digests
    # without the renders, the completed lock lacks the pinned render of the app (whose images needed
    # the registry's digests): the host must pin
    assert complete_lockfile(unresolved, _answers(refs)).components["app"].render.pinned is None
    assert [lock.dumps() for lock in resolve_locks(online, [unresolved])] == [expected]  # streams from the cache
    shutil.rmtree(online.cache / "renders")  # a backend that does not share its stream cache: rendered here
    assert [lock.dumps() for lock in resolve_locks(online, [unresolved])] == [expected]
    assert resolve_locks(offline, [unresolved]) == [unresolved]  # --no-resolve: left as the container made it


def test_a_render_on_the_host_that_is_not_the_locked_stream_is_refused(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    ws, unresolved = _locked_offline(tmp_path, "locks")
    shutil.rmtree(ws.cache / "renders")
    template = tmp_path / "catalog/charts/app/templates/deployment.yaml"
    template.write_text(template.read_text() + "# changed on the host\n")  # the host now renders other bytes
    monkeypatch.setattr(pipeline.stages, "resolve_all", lambda refs, **_: _answers(refs))
    with pytest.raises(LockError) as caught:
        resolve_locks(dataclasses.replace(ws, resolve=True), [unresolved])
    assert "of 'eks' renders on this host other bytes than the lock the container made records" \
        in caught.value.message
    assert caught.value.hint == "run 'nox -s reproduce' to see the divergence, or lock on the local backend"


def test_a_lock_that_is_already_resolved_is_refused() -> None:
    lock = load(REPO / "lockfiles/h100-any.lock.json")
    with pytest.raises(LockError) as caught:
        complete_lockfile(lock, {})
    assert (caught.value.message, caught.value.hint) == ("the lock of 'h100-any' is already resolved",
                                                         "complete only a --no-resolve lock")
