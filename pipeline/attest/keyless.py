"""Keyless signing and verification through Sigstore (sigstore-python): a short-lived Fulcio
certificate bound to an OIDC identity, and a Rekor transparency-log entry, in a Sigstore bundle.

Contract:

- :func:`ambient_token` finds the ambient OIDC token (GitHub Actions with ``id-token: write``, and the
  other providers sigstore-python detects); ``None`` where there is none (a laptop, this machine);
- :class:`KeylessSigner` signs the exact statement bytes as a DSSE envelope with
  ``Signer.sign_dsse`` (sigstore builds the PAE from the same bytes) and writes the bundle sigstore
  returns, untouched, as ``attestation.sigstore.json``. It needs the network: the instance's TUF
  repository (trust root and signing config), Fulcio and Rekor;
- :class:`KeylessVerifier` verifies a bundle offline against a certificate identity (SAN) and OIDC
  issuer, with the ``trusted_root.json`` the pinned sigstore wheel ships (or one the caller gives):
  certificate chain to Fulcio's roots, SCT, the log entry's inclusion proof, the identity policy,
  then the DSSE signature with the certificate's key and the log entry's consistency with the
  envelope. Nothing is fetched, nothing is written to the user's cache;
- errors: no token, or a signing service that fails, is an
  :class:`~pipeline.attest.interface.AttestError` (exit 2); a bundle that cannot be read or does not
  verify is an :class:`~pipeline.attest.interface.AttestationMismatch` (exit 1) whose message is the
  check that failed.
"""

from __future__ import annotations

import enum
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from .dsse import BUNDLE_FILE
from .interface import IN_TOTO_PAYLOAD_TYPE, AttestationMismatch, AttestError, Signed, Signer, Verifier

if TYPE_CHECKING:
    from sigstore.models import TrustedRoot

__all__ = ["Instance", "KeylessSigner", "KeylessVerifier", "ambient_token"]

_NO_OIDC_HINT = ("keyless signing needs an ambient OIDC token: run it in CI with 'permissions: id-token: write' "
                 "(GitHub Actions), or sign with --key")


class Instance(enum.StrEnum):
    """The Sigstore instance: public-good production, or staging (for tests)."""

    PRODUCTION = "production"
    STAGING = "staging"

    @property
    def tuf_url(self) -> str:
        match self:
            case Instance.PRODUCTION:
                return "https://tuf-repo-cdn.sigstore.dev"
            case Instance.STAGING:
                return "https://tuf-repo-cdn.sigstage.dev"


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


def ambient_token() -> str | None:
    """The ambient OIDC identity token for Sigstore, or ``None`` when this environment has none."""
    from sigstore.oidc import IdentityError, detect_credential

    try:
        return detect_credential()
    except IdentityError as exc:
        raise AttestError(f"the ambient OIDC token cannot be obtained ({_reason(exc)})", hint=_NO_OIDC_HINT) from exc


class KeylessSigner(Signer):
    """Signs through Fulcio and Rekor with an OIDC identity token (online)."""

    def __init__(self, token: str | None, *, instance: Instance = Instance.PRODUCTION) -> None:
        if not token:
            raise AttestError("no ambient OIDC token: keyless signing is possible only where one exists (CI)",
                              hint=_NO_OIDC_HINT)
        self._token = token
        self._instance = instance

    def sign(self, statement: bytes) -> Signed:
        from sigstore import dsse
        from sigstore.errors import Error as SigstoreFailure
        from sigstore.models import ClientTrustConfig
        from sigstore.oidc import IdentityToken
        from sigstore.sign import SigningContext

        try:
            identity = IdentityToken(self._token)
            config = (ClientTrustConfig.staging() if self._instance is Instance.STAGING
                      else ClientTrustConfig.production())
            with SigningContext.from_trust_config(config).signer(identity, cache=False) as signer:
                bundle = signer.sign_dsse(dsse.Statement(statement))
        except (SigstoreFailure, ValueError, OSError) as exc:
            raise AttestError(f"keyless signing on Sigstore {self._instance.value} failed ({_reason(exc)})",
                              hint="check the OIDC token's audience ('sigstore') and that Fulcio and Rekor are "
                                   "reachable") from exc
        return Signed(files={BUNDLE_FILE: bundle.to_json().encode()},
                      signer=f"{identity.identity} (issuer {identity.issuer}, Sigstore {self._instance.value})")


class KeylessVerifier(Verifier):
    """Offline verification of a keyless Sigstore bundle against a certificate identity and issuer."""

    def __init__(self, *, identity: str, issuer: str, instance: Instance = Instance.PRODUCTION,
                 trusted_root: Path | None = None) -> None:
        self._identity = identity
        self._issuer = issuer
        self._instance = instance
        self._trusted_root = trusted_root

    @property
    def description(self) -> str:
        return f"identity {self._identity!r} issued by {self._issuer!r} (Sigstore {self._instance.value})"

    def _root(self) -> TrustedRoot:
        from sigstore.models import TrustedRoot

        if self._trusted_root is not None:
            return TrustedRoot.from_file(str(self._trusted_root))
        # The trusted root shipped inside the pinned wheel: no TUF refresh, no network, no user cache.
        directory = self._instance.tuf_url.replace(":", "%3A").replace("/", "%2F")
        with resources.as_file(resources.files("sigstore") / "_store" / directory / "trusted_root.json") as path:
            return TrustedRoot.from_file(str(path))

    def verify(self, data: bytes, *, name: str) -> bytes:
        from sigstore.errors import Error as SigstoreFailure
        from sigstore.models import Bundle
        from sigstore.verify import Verifier as SigstoreVerifier
        from sigstore.verify import policy

        try:
            root = self._root()
        except (OSError, ValueError, SigstoreFailure) as exc:
            raise AttestError(f"cannot load the Sigstore {self._instance.value} trusted root ({_reason(exc)})",
                              hint="reinstall the pinned sigstore wheel, or give a valid trusted_root.json") from exc
        # 1. the file is a Sigstore bundle
        try:
            bundle = Bundle.from_json(data)
        except (SigstoreFailure, ValueError) as exc:
            raise AttestationMismatch(f"{name}: not a readable Sigstore bundle ({_reason(exc)})",
                                      hint="a bundle signed with a key is verified with --key") from exc
        # 2. chain, SCT, log inclusion, identity and issuer, DSSE signature, log consistency (sigstore)
        try:
            payload_type, payload = SigstoreVerifier(trusted_root=root).verify_dsse(
                bundle, policy.Identity(identity=self._identity, issuer=self._issuer))
        except SigstoreFailure as exc:
            raise AttestationMismatch(f"{name}: does not verify for {self.description}: {_reason(exc)}",
                                      hint="compare the identity and issuer with the signing workflow's") from exc
        # 3. the payload is an in-toto statement
        if payload_type != IN_TOTO_PAYLOAD_TYPE:
            raise AttestationMismatch(f"{name}: payload type {payload_type!r} is not {IN_TOTO_PAYLOAD_TYPE!r}")
        return payload
