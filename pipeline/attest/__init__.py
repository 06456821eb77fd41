"""Signed locks: an in-toto statement (SLSA Provenance v1) over the lockfiles and everything published
from them (BOMs, admission policies, the image inventory), whose dependencies are every locked chart,
image and the render engine; signed with an ECDSA P-256 key (DSSE envelope and Sigstore bundle) or
keyless through Sigstore, and verified against the files on disk and the fresh locks.

Publisher layer: it reads verified locks handed to it (:func:`pipeline.stages.fresh_locks`) and
imports no other publisher. Entry points: :func:`attest` and :func:`verify_attestation`
(:mod:`~pipeline.attest.stage`); statement: :mod:`~pipeline.attest.statement`; signers and
verifiers: :mod:`~pipeline.attest.dsse` (key), :mod:`~pipeline.attest.keyless` (Sigstore).
"""

from __future__ import annotations

from .dsse import (
    BUNDLE_FILE,
    ENVELOPE_FILE,
    Envelope,
    KeySigner,
    KeyVerifier,
    key_id,
    load_private_key,
    load_public_key,
    pae,
)
from .interface import IN_TOTO_PAYLOAD_TYPE, AttestationMismatch, AttestError, Signed, Signer, Verifier
from .keyless import Instance, KeylessSigner, KeylessVerifier, ambient_token
from .source import git_commit
from .stage import STATEMENT_FILE, Attested, Layout, Verified, attest, subject_files, verify_attestation
from .statement import BUILD_TYPE, PREDICATE_TYPE, STATEMENT_TYPE, Parameters, build_statement, dependencies

__all__ = [
    "BUILD_TYPE",
    "BUNDLE_FILE",
    "ENVELOPE_FILE",
    "IN_TOTO_PAYLOAD_TYPE",
    "PREDICATE_TYPE",
    "STATEMENT_FILE",
    "STATEMENT_TYPE",
    "AttestError",
    "AttestationMismatch",
    "Attested",
    "Envelope",
    "Instance",
    "KeySigner",
    "KeyVerifier",
    "KeylessSigner",
    "KeylessVerifier",
    "Layout",
    "Parameters",
    "Signed",
    "Signer",
    "Verified",
    "Verifier",
    "ambient_token",
    "attest",
    "build_statement",
    "dependencies",
    "git_commit",
    "key_id",
    "load_private_key",
    "load_public_key",
    "pae",
    "subject_files",
    "verify_attestation",
]
