"""The git commit an attestation names, read from ``.git`` files: branches (loose and packed), a
detached HEAD, a linked worktree, and no repository at all."""

from __future__ import annotations

from pathlib import Path

from pipeline.attest import git_commit

A = "a" * 40
B = "b" * 40


def _repo(root: Path, head: str) -> Path:
    (root / ".git" / "refs" / "heads").mkdir(parents=True)
    (root / ".git" / "HEAD").write_text(head)
    return root


def test_a_branch_through_a_loose_ref_from_a_subdirectory(tmp_path: Path) -> None:
    repo = _repo(tmp_path, "ref: refs/heads/main\n")
    (repo / ".git" / "refs" / "heads" / "main").write_text(A + "\n")
    (repo / "recipes").mkdir()
    assert git_commit(repo / "recipes") == A


def test_a_packed_ref_and_a_detached_head(tmp_path: Path) -> None:
    repo = _repo(tmp_path / "one", "ref: refs/heads/main\n")
    (repo / ".git" / "packed-refs").write_text(f"# pack-refs with: peeled\n{B} refs/heads/other\n{A} refs/heads/main\n")
    assert git_commit(repo) == A
    assert git_commit(_repo(tmp_path / "two", B + "\n")) == B


def test_a_linked_worktree_reads_its_own_head_and_the_common_refs(tmp_path: Path) -> None:
    main = _repo(tmp_path / "main", "ref: refs/heads/main\n")
    (main / ".git" / "refs" / "heads" / "feature").write_text(B + "\n")
    linked = main / ".git" / "worktrees" / "wt"
    linked.mkdir(parents=True)
    (linked / "HEAD").write_text("ref: refs/heads/feature\n")
    (linked / "commondir").write_text("../..\n")
    worktree = tmp_path / "wt"
    worktree.mkdir()
    (worktree / ".git").write_text(f"gitdir: {linked}\n")
    assert git_commit(worktree) == B


def test_no_repository_or_an_unreadable_head_gives_none(tmp_path: Path) -> None:
    assert git_commit(tmp_path) is None or not (tmp_path / ".git").exists()
    repo = _repo(tmp_path / "r", "ref: refs/heads/missing\n")
    assert git_commit(repo) is None
    assert git_commit(_repo(tmp_path / "s", "garbage\n")) is None


def test_this_checkout(tmp_path: Path) -> None:
    commit = git_commit(Path(__file__).parent)
    assert commit is None or len(commit) in {40, 64}
