"""Lock sets to compare: every lockfile of a directory, or of a directory at a git revision.

Contract:

- :func:`read_lock_set` takes ``--from``/``--to`` as given on the command line: an existing
  directory is read from disk; anything else must name a git revision (a branch, tag, commit or
  ``origin/main``), whose lockfiles are read from git's object database with ``git ls-tree`` and
  ``git cat-file`` (the exact committed bytes; no checkout, the working tree is never touched);
- every lockfile, on both sides, is parsed by :meth:`pipeline.lockfile.Lockfile.from_bytes` (the
  one parser): integrity, canonical form and shape are checked before anything is compared;
- errors are :class:`~pipeline.errors.DiffError` (exit 2): a directory or revision that does not
  exist, a revision that does not hold the lock directory, a lockfile that does not parse or fails
  its integrity check, two lockfiles of one recipe. git runs with an explicit minimal environment.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import DiffError, PipelineError
from ..lockfile import LOCK_SUFFIX, Lockfile

__all__ = ["LockSet", "export_tree", "read_directory", "read_git", "read_lock_set"]

_GIT_TIMEOUT = 120


@dataclass(frozen=True, slots=True, kw_only=True)
class LockSet:
    """The locks of one side of a diff, by recipe name; ``label`` names the side in reports."""

    label: str
    locks: Mapping[str, Lockfile]


def _collect(label: str, files: Mapping[str, bytes]) -> LockSet:
    locks: dict[str, Lockfile] = {}
    where: dict[str, str] = {}
    for display, raw in sorted(files.items()):
        try:
            lock = Lockfile.from_bytes(raw, display=display)
        except PipelineError as exc:  # LockError (not a lock) or IntegrityError (edited after sealing)
            raise DiffError(f"cannot compare {label}: {exc}",
                            hint=exc.hint or "compare lock sets made by 'nox -s lock'") from exc
        if lock.name in locks:
            raise DiffError(f"cannot compare {label}: {where[lock.name]} and {display} are both the lock of "
                            f"recipe '{lock.name}'", hint="remove the copied lockfile")
        locks[lock.name] = lock
        where[lock.name] = display
    return LockSet(label=label, locks=locks)


def read_directory(directory: Path, *, label: str | None = None) -> LockSet:
    """Every ``*.lock.json`` directly in ``directory``."""
    shown = label or directory.as_posix()
    if not directory.is_dir():
        raise DiffError(f"lock directory {shown} does not exist",
                        hint="pass a directory of lockfiles or a git revision (e.g. origin/main)")
    files: dict[str, bytes] = {}
    for path in sorted(directory.glob(f"*{LOCK_SUFFIX}")):
        try:
            files[(Path(shown) / path.name).as_posix()] = path.read_bytes()
        except OSError as exc:
            raise DiffError(f"lockfile {path} cannot be read ({exc.strerror})") from exc
    return _collect(shown, files)


def _git(argv: list[str], *, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0",
           "GIT_OPTIONAL_LOCKS": "0", "GIT_CONFIG_NOSYSTEM": "1"}
    if "HOME" in os.environ:  # safe.directory and the user's identity live there; nothing else is read
        env["HOME"] = os.environ["HOME"]
    git = shutil.which("git")
    if git is None:
        raise DiffError("git is not installed: cannot read lockfiles from a revision",
                        hint="install git, or pass --from a directory of lockfiles")
    return subprocess.run([git, *argv], cwd=cwd, env=env, capture_output=True, check=False, timeout=_GIT_TIMEOUT)


def _existing(path: Path) -> Path:
    path = path.resolve()
    while not path.is_dir() and path != path.parent:
        path = path.parent
    return path


def read_git(revision: str, lockdir: Path) -> LockSet:
    """The lockfiles under ``lockdir`` (a path in the working tree) as committed at ``revision``."""
    if revision.startswith("-"):
        raise DiffError(f"{revision!r} is not a git revision", hint="pass a revision such as origin/main")
    anchor = _existing(lockdir)
    top = _git(["rev-parse", "--show-toplevel"], cwd=anchor)
    if top.returncode != 0:
        raise DiffError(f"{revision!r} is not a directory, and {anchor} is not in a git repository",
                        hint="pass --from a directory of lockfiles, or run from the repository")
    root = Path(top.stdout.decode().strip())
    rel = lockdir.resolve().relative_to(root).as_posix()
    verify = _git(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{revision}^{{commit}}"], cwd=root)
    if verify.returncode != 0:
        raise DiffError(f"{revision!r} is neither a directory nor a git revision of {root.name}",
                        hint="fetch it first (git fetch origin main) or pass a directory of lockfiles")
    commit = verify.stdout.decode().strip()
    listed = _git(["ls-tree", "-z", "--name-only", commit, "--", f"{rel}/"], cwd=root)
    if listed.returncode != 0:
        raise DiffError(f"git ls-tree {revision} {rel}/ failed: {listed.stderr.decode(errors='replace').strip()}")
    names = [n for n in listed.stdout.decode().split("\0") if n.endswith(LOCK_SUFFIX)]
    files: dict[str, bytes] = {}
    for name in sorted(names):
        shown = f"{revision}:{name}"
        blob = _git(["cat-file", "blob", f"{commit}:{name}"], cwd=root)
        if blob.returncode != 0:
            raise DiffError(f"cannot read {shown} from git: {blob.stderr.decode(errors='replace').strip()}")
        files[shown] = blob.stdout
    return _collect(revision, files)


def read_lock_set(spec: str, *, lockdir: Path) -> LockSet:
    """``spec`` as a directory when one exists, else as a git revision of ``lockdir``'s repository."""
    path = Path(spec)
    if path.is_dir():
        return read_directory(path, label=spec)
    return read_git(spec, lockdir)


def export_tree(revision: str, path: Path, into: Path) -> Path | None:
    """The directory ``path`` (in the working tree's repository) as committed at ``revision``, written
    under ``into`` with ``git archive`` (no checkout); ``None`` when the revision does not hold it."""
    import io
    import tarfile

    anchor = _existing(path)
    top = _git(["rev-parse", "--show-toplevel"], cwd=anchor)
    if top.returncode != 0:
        return None
    root = Path(top.stdout.decode().strip())
    rel = path.resolve().relative_to(root).as_posix()
    archived = _git(["archive", "--format=tar", f"{revision}^{{commit}}", "--", rel], cwd=root)
    if archived.returncode != 0:
        return None
    with tarfile.open(fileobj=io.BytesIO(archived.stdout)) as tar:
        tar.extractall(into, filter="data")
    return into / rel
