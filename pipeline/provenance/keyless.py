"""Keyless (Fulcio certificate) Sigstore bundles, verified offline with ``sigstore`` (sigstore-python).

Contract of :class:`KeylessVerifier`:

- trust: the ``trusted_root.json`` of the chosen Sigstore instance *as shipped inside the pinned
  sigstore wheel* (``sigstore/_store/<tuf-url>/trusted_root.json``), or a ``trusted_root.json``
  the caller gives (a reviewed snapshot). No TUF refresh, no network, nothing read from or written
  to the user's cache (``Verifier.staging(offline=True)`` would read and fill ``~/.cache``);
- :meth:`verify_artifact` checks a bundle over an artifact (its bytes, or a sha256 digest of them)
  and :meth:`verify_dsse` a bundle holding a DSSE envelope (returning the payload type and the
  exact signed payload bytes); both against the certificate identity (SAN) and OIDC issuer
  given; sigstore checks the certificate chain to the Fulcio roots, the signature, the SCT and
  the transparency-log entry (inclusion proof and checkpoint, or the SET of a v0.1 bundle) with the
  keys of the trusted root, all offline;
- errors: :class:`~pipeline.errors.SignatureError` whose message says which check failed (bundle
  unreadable, identity or issuer mismatch, digest mismatch, chain or log failure).

Not checked offline: that the trusted root is the newest (keys rotated or revoked after the wheel
was built are not known), and Rekor's *online* view of the entry (sigstore-python verifies the
bundle's inclusion proof instead, which is what its offline mode is for).
"""

from __future__ import annotations

from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import SignatureError
from ..vocabulary.digest import Digest
from .matrix import SigstoreInstance

if TYPE_CHECKING:
    from sigstore.models import Bundle
    from sigstore.verify import Verifier

__all__ = ["KeylessVerifier", "bundled_trusted_root"]

_TUF_URLS = {
    SigstoreInstance.PRODUCTION: "https://tuf-repo-cdn.sigstore.dev",
    SigstoreInstance.STAGING: "https://tuf-repo-cdn.sigstage.dev",
}


def _bundled(instance: SigstoreInstance) -> Traversable:
    directory = _TUF_URLS[instance].replace(":", "%3A").replace("/", "%2F")
    return resources.files("sigstore") / "_store" / directory / "trusted_root.json"


def bundled_trusted_root(instance: SigstoreInstance) -> bytes:
    """The ``trusted_root.json`` bytes the sigstore wheel ships for ``instance``."""
    return _bundled(instance).read_bytes()


class KeylessVerifier:
    """Offline verification of Sigstore bundles against a certificate identity and issuer."""

    def __init__(self, *, trusted_roots: dict[SigstoreInstance, Path] | None = None) -> None:
        self._roots = dict(trusted_roots or {})
        self._verifiers: dict[SigstoreInstance, Verifier] = {}

    def _verifier(self, instance: SigstoreInstance) -> Verifier:
        from sigstore.errors import Error as SigstoreFailure
        from sigstore.models import TrustedRoot
        from sigstore.verify import Verifier

        known = self._verifiers.get(instance)
        if known is not None:
            return known
        try:
            custom = self._roots.get(instance)
            if custom is not None:
                root = TrustedRoot.from_file(str(custom))
            else:
                with resources.as_file(_bundled(instance)) as path:
                    root = TrustedRoot.from_file(str(path))
        except (OSError, ValueError, SigstoreFailure) as exc:
            raise SignatureError(f"cannot load the Sigstore {instance.value} trusted root ({_reason(exc)})",
                                 hint="reinstall the pinned sigstore wheel, or give a valid trusted_root.json") from exc
        self._verifiers[instance] = Verifier(trusted_root=root)
        return self._verifiers[instance]

    def verify_artifact(self, artifact: bytes | Digest, bundle: bytes, *, identity: str, issuer: str,
                        instance: SigstoreInstance = SigstoreInstance.PRODUCTION) -> None:
        """Check ``bundle`` signs ``artifact`` (bytes, or ``sha256:<hex>`` of them) for identity/issuer."""
        from sigstore.errors import Error as SigstoreFailure
        from sigstore.hashes import Hashed
        from sigstore.verify import policy
        from sigstore_models.common.v1 import HashAlgorithm

        parsed = self._bundle(bundle)
        if isinstance(artifact, str):
            algorithm, _, hexpart = artifact.partition(":")
            if algorithm != "sha256":
                raise SignatureError(f"cannot check a keyless signature over a {algorithm} digest",
                                     hint="only sha256 artifacts are supported")
            subject: bytes | Hashed = Hashed(algorithm=HashAlgorithm.SHA2_256, digest=bytes.fromhex(hexpart))
        else:
            subject = artifact
        try:
            self._verifier(instance).verify_artifact(subject, parsed,
                                                     policy.Identity(identity=identity, issuer=issuer))
        except SigstoreFailure as exc:
            raise SignatureError(_reason(exc), hint=_HINT) from exc

    def verify_dsse(self, bundle: bytes, *, identity: str, issuer: str,
                    instance: SigstoreInstance = SigstoreInstance.PRODUCTION) -> tuple[str, bytes]:
        """Check a DSSE ``bundle`` for identity/issuer; return its payload type and signed payload bytes."""
        from sigstore.errors import Error as SigstoreFailure
        from sigstore.verify import policy

        parsed = self._bundle(bundle)
        try:
            return self._verifier(instance).verify_dsse(parsed, policy.Identity(identity=identity, issuer=issuer))
        except SigstoreFailure as exc:
            raise SignatureError(_reason(exc), hint=_HINT) from exc

    @staticmethod
    def has_dsse(bundle: bytes) -> bool:
        """Whether ``bundle`` carries a DSSE envelope (an attestation) rather than a message signature."""
        import json

        try:
            data = json.loads(bundle)
        except ValueError:
            return False
        return isinstance(data, dict) and "dsseEnvelope" in data

    @staticmethod
    def _bundle(data: bytes) -> Bundle:
        from sigstore.errors import Error as SigstoreFailure
        from sigstore.models import Bundle

        try:
            return Bundle.from_json(data)
        except (SigstoreFailure, ValueError) as exc:
            raise SignatureError(f"not a readable Sigstore bundle ({_reason(exc)})",
                                 hint="the artifact is corrupted or not a Sigstore bundle") from exc


_HINT = ("compare the certificate identity and issuer in provenance.yaml with the signer's; a digest "
         "mismatch means the bundle signs other bytes")


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
