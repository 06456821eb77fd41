"""The engine's library digest, remembered across runs under the file's identity on disk."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from pipeline.render import identity
from pipeline.render.identity import installed_engine, library_digest
from pipeline.vocabulary.store import read_entry, write_entry


def _new_process() -> None:
    """Forget what this process hashed, as a new run would."""
    identity._KNOWN.clear()


def _real(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_memo_answers_for_an_unchanged_file_and_never_for_a_modified_one(tmp_path: Path) -> None:
    library, memo = tmp_path / "libhelm_c.so", tmp_path / "cache" / "engine-digest"
    library.write_bytes(b"first build")
    assert library_digest(str(library), memo=memo) == _real(library)
    entry = read_entry(memo)
    assert entry is not None and _real(library).encode() in entry
    # A later process takes the digest from the memo while the file is the same file, unchanged:
    # shown by a (validly written) memo that answers something else for that identity.
    _new_process()
    write_entry(memo, entry.replace(_real(library).encode(), b"sha256:" + b"f" * 64))
    assert library_digest(str(library), memo=memo) == "sha256:" + "f" * 64
    _new_process()  # a new process
    stat = library.stat()
    library.write_bytes(b"other build")  # same size, same mtime: the change time still moves
    os.utime(library, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert library_digest(str(library), memo=memo) == _real(library) != "sha256:" + hashlib.sha256(
        b"first build").hexdigest()


def test_a_memo_that_lies_is_not_believed(tmp_path: Path) -> None:
    library, memo = tmp_path / "libhelm_c.so", tmp_path / "engine-digest"
    library.write_bytes(b"build")
    library_digest(str(library), memo=memo)
    _new_process()
    memo.write_bytes(memo.read_bytes().replace(_real(library).encode(), b"sha256:" + b"0" * 64))
    assert library_digest(str(library), memo=memo) == _real(library)


def test_installed_engine_with_a_memo_is_the_installed_engine(tmp_path: Path) -> None:
    _new_process()
    plain = installed_engine()
    _new_process()
    assert installed_engine(memo=tmp_path / "engine-digest") == plain
    _new_process()
    assert installed_engine(memo=tmp_path / "engine-digest") == plain  # served by the memo
