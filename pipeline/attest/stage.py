"""The ``attest`` stage entry points: sign the locks and what is published from them; verify that.

:func:`attest` — inputs: verified, fresh lockfiles (from :func:`pipeline.stages.fresh_locks`), where
the subject files live (:class:`Layout`), the build's :class:`~pipeline.attest.statement.Parameters`
and a :class:`~pipeline.attest.interface.Signer`. Output: in ``out`` (``attestations/`` by default),
``attestation.intoto.json`` (the statement, the exact signed bytes) and the signer's files (a DSSE
envelope and a Sigstore bundle for a key; a Sigstore bundle for keyless), written together and
atomically; a signature file the signer did not produce this time (a key envelope after a keyless
run) is removed, so the directory never holds signatures over two statements. The statement is
deterministic; the signatures are not (ECDSA is randomised).

:func:`verify_attestation` — a numbered checklist, every failure after the signature collected and
reported at once (:class:`~pipeline.attest.interface.AttestationMismatch`, exit 1):

1. the signed file verifies (key, or certificate identity and issuer) and signs an in-toto statement;
2. the statement is a lock attestation (Statement v1, SLSA Provenance v1, our buildType);
3. ``attestation.intoto.json`` beside it, when present, is the signed statement byte for byte;
4. every subject exists and has the attested sha256; every lockfile, BOM, policy and the inventory
   on disk is a subject (nothing was added after signing);
5. the locks are verified and fresh (integrity, engine, staleness);
6. the attested recipes and ``resolvedDependencies`` equal what the locks give, entry by entry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import PipelineError
from ..lockfile import LOCK_SUFFIX, Lockfile
from ..vocabulary.digest import canonical_json, sha256
from ..vocabulary.files import sync_tree
from .dsse import BUNDLE_FILE, ENVELOPE_FILE
from .interface import AttestationMismatch, AttestError, Signer, Verifier
from .statement import Parameters, build_statement, dependencies, parse_statement

__all__ = ["STATEMENT_FILE", "Attested", "Layout", "Verified", "attest", "subject_files", "verify_attestation"]

STATEMENT_FILE = "attestation.intoto.json"


@dataclass(frozen=True, slots=True, kw_only=True)
class Layout:
    """Where the attested files live; subject names are paths relative to ``root`` (the checkout)."""

    root: Path
    lockdir: Path
    bom: Path
    inventory: Path
    policies: Path

    def name(self, path: Path) -> str:
        """``path`` as a subject name: relative to the root, ``/``-separated; refused outside the root."""
        try:
            return path.resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError as exc:
            raise AttestError(f"{path} is outside the checkout {self.root}: subjects are named by repository-relative "
                              "path", hint="run from the checkout's root, or pass --root") from exc


def subject_files(layout: Layout) -> dict[str, Path]:
    """Every file an attestation covers, by subject name: lockfiles, BOMs, policies, the inventory."""
    paths = [*sorted(layout.lockdir.glob(f"*{LOCK_SUFFIX}")), *sorted(layout.bom.rglob("*.cdx.json")),
             *sorted(layout.policies.rglob("*.yaml")), layout.inventory]
    return {layout.name(path): path for path in paths}


@dataclass(frozen=True, slots=True, kw_only=True)
class Attested:
    """What :func:`attest` wrote."""

    written: tuple[Path, ...]
    unchanged: tuple[Path, ...]
    removed: tuple[Path, ...]
    subjects: int
    dependencies: int
    signer: str


def attest(locks: Sequence[Lockfile], *, layout: Layout, params: Parameters, signer: Signer, out: Path) -> Attested:
    """Build the statement over the locks and the files published from them, sign it, write it."""
    subjects: dict[str, bytes] = {}
    for name, path in subject_files(layout).items():
        try:
            subjects[name] = path.read_bytes()
        except OSError as exc:
            raise AttestError(f"{name} cannot be read ({exc.strerror})",
                              hint="publish it first: 'nox -s lock' regenerates the locks and what derives from them"
                              ) from exc
    statement = build_statement(locks, subjects, params)
    signed = signer.sign(statement)
    files = {out / STATEMENT_FILE: statement} | {out / name: data for name, data in signed.files.items()}
    synced = sync_tree(files, generated=[out / ENVELOPE_FILE, out / BUNDLE_FILE])
    return Attested(written=synced.written, unchanged=synced.unchanged, removed=synced.removed,
                    subjects=len(subjects), dependencies=len(dependencies(locks)), signer=signed.signer)


@dataclass(frozen=True, slots=True, kw_only=True)
class Verified:
    """What :func:`verify_attestation` checked."""

    signer: str
    subjects: int
    dependencies: int
    recipes: tuple[str, ...]
    commit: str | None


def _safe_name(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return bool(parts) and not PurePosixPath(name).is_absolute() and ".." not in parts and "\\" not in name


def _key(entry: Mapping[str, Any]) -> str:
    return f"{entry.get('name')} ({entry.get('uri')})"


def _compare_dependencies(attested: Sequence[Mapping[str, Any]], expected: Sequence[Mapping[str, Any]]) -> list[str]:
    mine = {_key(e): e for e in expected}
    theirs = {_key(e): e for e in attested}
    problems = []
    for key in sorted(set(mine) | set(theirs)):
        if key not in theirs:
            problems.append(f"dependency {key}: in the locks but not in the attestation")
        elif key not in mine:
            problems.append(f"dependency {key}: in the attestation but not in the locks")
        elif canonical_json(mine[key]) != canonical_json(theirs[key]):
            fields = sorted(k for k in set(mine[key]) | set(theirs[key]) if mine[key].get(k) != theirs[key].get(k))
            said = {k: theirs[key].get(k) for k in fields}
            locked = {k: mine[key].get(k) for k in fields}
            problems.append(f"dependency {key}: {', '.join(fields)} differ: the attestation says {said}, "
                            f"the locks say {locked}")
    if not problems and [_key(e) for e in attested] != [_key(e) for e in expected]:
        problems.append("resolvedDependencies: the same entries in another order than the locks give")
    return problems


def verify_attestation(signed: Path, *, layout: Layout, verifier: Verifier,
                       load_locks: Callable[[], Sequence[Lockfile]]) -> Verified:
    """Check ``signed`` (a DSSE envelope or a Sigstore bundle) against the files and the locks."""
    shown = layout.name(signed) if signed.resolve().is_relative_to(layout.root.resolve()) else str(signed)
    try:
        data = signed.read_bytes()
    except OSError as exc:
        raise AttestError(f"attestation {shown} cannot be read ({exc.strerror})",
                          hint="create it with 'python -m pipeline attest', or pass the file to verify") from exc
    # 1-2. signature, then the statement it signs
    payload = verifier.verify(data, name=shown)
    statement = parse_statement(payload, name=shown)
    problems: list[str] = []
    # 3. the readable copy of the statement is the signed one
    beside = signed.parent / STATEMENT_FILE
    if beside.is_file() and beside.read_bytes() != payload:
        problems.append(f"{layout.name(beside)}: differs from the statement the signature covers (changed after "
                        "signing)")
    # 4. subjects on disk
    for name, digest in sorted(statement.subjects.items()):
        path = layout.root / name
        if not _safe_name(name):
            problems.append(f"{name}: not a repository-relative path")
        elif not path.is_file():
            problems.append(f"{name}: attested (sha256:{digest}) but missing")
        elif (actual := sha256(path.read_bytes())) != f"sha256:{digest}":
            problems.append(f"{name}: {actual} on disk, but attested as sha256:{digest} (changed after signing)")
    problems += [f"{name}: not covered by the attestation (added after signing)"
                 for name in sorted(set(subject_files(layout)) - set(statement.subjects))]
    # 5. the locks are fresh
    try:
        locks = list(load_locks())
    except PipelineError as exc:
        problems.append(f"the locks are not usable: {exc}")
        locks = []
    # 6. recipes and dependencies equal the locks'
    if locks:
        names = tuple(sorted(lock.name for lock in locks))
        if statement.recipes != names:
            problems.append(f"externalParameters.recipes: the attestation says {list(statement.recipes)}, the locks "
                            f"are {list(names)}")
        try:
            expected = dependencies(locks)
        except AttestError as exc:
            problems.append(str(exc))
        else:
            problems += _compare_dependencies(statement.dependencies, expected)
    if problems:
        raise AttestationMismatch(f"attestation {shown} does not match this checkout ({len(problems)} problem"
                                  f"{'s' if len(problems) != 1 else ''}):\n  " + "\n  ".join(problems),
                                  hint="re-run 'python -m pipeline attest' only if every change listed is intended "
                                       "and reviewed")
    return Verified(signer=verifier.description, subjects=len(statement.subjects),
                    dependencies=len(statement.dependencies), recipes=statement.recipes, commit=statement.commit)
