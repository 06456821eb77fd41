"""ChartStore: content-addressed, atomic, self-healing on corruption."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.charts import ChartStore
from pipeline.errors import ChartError
from pipeline.vocabulary.digest import Digest, sha256
from tests import factories


def test_put_then_get(tmp_path: Path) -> None:
    store = ChartStore(tmp_path / "store")
    data = factories.chart_archive()
    digest = store.put(data)
    assert digest == sha256(data)
    assert store.get(digest) == data
    assert digest in store
    path = tmp_path / "store" / "sha256" / f"{digest.removeprefix('sha256:')}.tgz"
    assert path.read_bytes() == data
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name], "no temporary files left behind"


def test_put_is_idempotent(tmp_path: Path) -> None:
    store = ChartStore(tmp_path)
    data = factories.chart_archive()
    assert store.put(data) == store.put(data)


def test_missing_is_none(tmp_path: Path) -> None:
    store = ChartStore(tmp_path)
    missing = sha256(b"never stored")
    assert store.get(missing) is None
    assert missing not in store


def test_corrupt_file_is_deleted_and_treated_as_missing(tmp_path: Path) -> None:
    store = ChartStore(tmp_path)
    digest = store.put(factories.chart_archive())
    path = tmp_path / "sha256" / f"{digest.removeprefix('sha256:')}.tgz"
    path.write_bytes(b"bit rot")
    assert store.get(digest) is None
    assert not path.exists()
    assert store.put(factories.chart_archive()) == digest
    assert store.get(digest) == factories.chart_archive()


@pytest.mark.parametrize(("digest", "message"), [
    ("sha256:abc", "not a sha256 digest: 'sha256:abc'"),
    ("../../etc/passwd", "not a digest"),
    ("sha512:" + "a" * 128, "uses 'sha512'; only sha256 is supported"),
])
def test_refuses_malformed_digests(tmp_path: Path, digest: str, message: str) -> None:
    with pytest.raises(ChartError, match="chart store: ") as caught:
        ChartStore(tmp_path).get(Digest(digest))
    assert message in str(caught.value)
