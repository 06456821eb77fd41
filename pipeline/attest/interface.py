"""The signing axis of the ``attest`` stage: one small interface for signers and one for verifiers,
and the stage's two errors.

A :class:`Signer` turns the exact statement bytes into the files that carry its signature (a DSSE
envelope, a Sigstore bundle); a :class:`Verifier` turns one such file back into the exact payload
bytes it signs, or raises. Implementations: :mod:`~pipeline.attest.dsse` (an ECDSA P-256 key) and
:mod:`~pipeline.attest.keyless` (Sigstore: a Fulcio certificate and a Rekor entry).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import GateError, PipelineError

__all__ = [
    "IN_TOTO_PAYLOAD_TYPE",
    "AttestError",
    "AttestationMismatch",
    "Signed",
    "Signer",
    "Verifier",
]

#: The DSSE payload type of an in-toto statement (in-toto attestation framework, envelope layer).
IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"


class AttestError(PipelineError):
    """A key, token, option or file that cannot be used to sign or verify (exit 2)."""


class AttestationMismatch(GateError):
    """A signature that does not verify, or a statement that does not match the files, the locks or
    the dependencies on disk (exit 1). The message names every file or entry that differs."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Signed:
    """What a signer produced: file name (inside the output directory) → bytes, and who signed."""

    files: Mapping[str, bytes]
    signer: str


class Signer(abc.ABC):
    """Signs the exact bytes of an in-toto statement."""

    @abc.abstractmethod
    def sign(self, statement: bytes) -> Signed:
        """The files that carry a signature over ``statement`` (payload type :data:`IN_TOTO_PAYLOAD_TYPE`)."""


class Verifier(abc.ABC):
    """Checks one signed file and returns the exact payload bytes it signs."""

    @abc.abstractmethod
    def verify(self, data: bytes, *, name: str) -> bytes:
        """The in-toto statement bytes ``data`` signs; :class:`AttestationMismatch` when it does not verify
        (``name``: how messages call the file)."""

    @property
    @abc.abstractmethod
    def description(self) -> str:
        """Who the verifier trusts, for the report (``ECDSA P-256 key sha256:…``, an identity and issuer)."""
