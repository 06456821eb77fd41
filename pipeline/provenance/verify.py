"""Signature and attestation checks for every locked digest.

Contract of :func:`verify_images` / :func:`verify_image`:

- inputs: :class:`~pipeline.provenance.locked.LockedImage` records (from the lockfiles), the
  :class:`~pipeline.provenance.matrix.ProvenanceMatrix` (the declared signer of each image), an
  :class:`~pipeline.provenance.interface.ArtifactSource` (the registry) and a
  :class:`~pipeline.provenance.keyless.KeylessVerifier` (offline Sigstore trust);
- discovery, for the locked digest ``sha256:<hex>`` of each image: the OCI referrers API
  (``GET /v2/<name>/referrers/<digest>``); where the registry lacks it (404), the referrers tag
  schema (tag ``sha256-<hex>``, an index); then cosign's tags ``sha256-<hex>.sig`` and
  ``sha256-<hex>.att``. Artifacts found twice are checked once;
- checks, per layer of each artifact (numbered as in the code, first failure wins):

  cosign simple-signing signature (``application/vnd.dev.cosign.simplesigning.v1+json``)
    1. the payload bytes are the ones the artifact manifest names (digest-checked on fetch);
    2. the declared signer is a public key (a keyless signature in cosign's legacy layout is
       reported as present, not verified: sigstore-python verifies bundles only);
    3. the ``dev.cosignproject.cosign/signature`` annotation is there and is base64;
    4. the signature verifies over the exact payload bytes with the declared key;
    5. the payload is a cosign simple-signing document;
    6. ``critical.image.docker-manifest-digest`` is the locked digest;
    7. ``critical.identity.docker-reference`` is the image's repository;

  DSSE attestation (``application/vnd.dsse.envelope.v1+json``, cosign's ``.att`` layers)
    1. the envelope bytes are the ones the manifest names; 2. the signer is a public key;
    3. one signature verifies over the DSSE pre-authentication encoding of the payload;
    4. the payload is an in-toto statement; 5. one of its subjects has the locked digest;
    6. its predicate type is recognised (SLSA provenance v0.2/v1, CycloneDX or SPDX SBOM,
       cosign's signature predicate) — anything else is reported, not counted;

  Sigstore bundle (``application/vnd.dev.sigstore.bundle.v0.3+json``, OCI 1.1 referrers or their
  tag schema: what cosign v3 writes by default, keyless or with ``--key``)
    1. the bundle bytes are the ones the manifest names;
    2. keyless: sigstore verifies the bundle offline against identity and issuer: a DSSE
       bundle's statement then goes through DSSE checks 4-6; a message-signature bundle must sign
       the image manifest itself (the locked digest);
    3. key: the DSSE envelope goes through DSSE checks 3-6 with the declared key (cosign's
       ``https://sigstore.dev/cosign/sign/v1`` statement is the image signature).

- output: one :class:`ImageVerification` per image with a :class:`Verdict` for its signature,
  provenance and SBOM: ``verified``, ``present`` (found but not verified, with the reason of the
  first failed check) or ``absent`` (with what was looked at), and every piece of evidence; an
  attestation counts as verified only with the predicate type the matrix declares;
- errors: a registry that cannot be reached raises :class:`~pipeline.errors.ResolveError` (an
  unchecked image is not an unsigned one); verification failures are results, not exceptions;
  :func:`require_verified` turns the results into the gate (:class:`~pipeline.errors.SignatureError`).
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..errors import SignatureError
from ..vocabulary.digest import Digest
from ..vocabulary.reference import ImageRef, ImageRefError
from .interface import ArtifactMissing, ArtifactSource, ArtifactTampered, Descriptor, RawManifest
from .keyless import KeylessVerifier
from .keys import PublicKey, decode_signature
from .locked import LockedImage
from .matrix import Profile, ProvenanceFormat, ProvenanceMatrix, SbomFormat, Signer, SigningMode

__all__ = [
    "COSIGN_SIGNATURE_ANNOTATION",
    "DSSE_ENVELOPE",
    "SIGSTORE_BUNDLE",
    "SIMPLE_SIGNING",
    "Channel",
    "Evidence",
    "EvidenceKind",
    "ImageVerification",
    "Status",
    "Verdict",
    "require_verified",
    "verify_image",
    "verify_images",
]

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
DSSE_ENVELOPE = "application/vnd.dsse.envelope.v1+json"
SIGSTORE_BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"
_BUNDLE_TYPES = frozenset({SIGSTORE_BUNDLE, "application/vnd.dev.sigstore.bundle+json;version=0.3",
                           "application/vnd.dev.sigstore.bundle+json;version=0.2",
                           "application/vnd.dev.sigstore.bundle+json;version=0.1"})
COSIGN_SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
_COSIGN_CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate"
_SIMPLE_SIGNING_TYPE = "cosign container image signature"
_IN_TOTO_PAYLOAD = "application/vnd.in-toto+json"
_IN_TOTO_STATEMENTS = frozenset({"https://in-toto.io/Statement/v0.1", "https://in-toto.io/Statement/v1"})
_COSIGN_SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"


class Status(enum.StrEnum):
    """The outcome for one facet of one image."""

    VERIFIED = "verified"
    PRESENT = "present"
    ABSENT = "absent"


class Channel(enum.StrEnum):
    """How an artifact was found."""

    REFERRERS_API = "referrers API"
    REFERRERS_TAG = "referrers tag schema"
    COSIGN_TAG = "cosign tag"


class EvidenceKind(enum.StrEnum):
    """What an artifact layer claims to be."""

    SIGNATURE = "signature"
    PROVENANCE = "provenance"
    SBOM = "sbom"
    OTHER = "attestation"


@dataclass(frozen=True, slots=True, kw_only=True)
class Evidence:
    """One checked layer: what it is, where it came from, whether it verified, and why (not)."""

    kind: EvidenceKind
    channel: Channel
    manifest: Digest | None
    layer: Digest | None
    verified: bool
    detail: str
    predicate_type: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """The status of one facet and the reason behind it."""

    status: Status
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageVerification:
    """Everything learnt about one locked image."""

    image: LockedImage
    profile: Profile
    signature: Verdict
    provenance: Verdict
    sbom: Verdict
    evidence: tuple[Evidence, ...] = ()
    lookups: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class _Found:
    channel: Channel
    manifest: RawManifest


# ------------------------------------------------------------------------------------------------
# entry points


def verify_images(images: Sequence[LockedImage], matrix: ProvenanceMatrix, *, source: ArtifactSource,
                  keyless: KeylessVerifier | None = None) -> tuple[ImageVerification, ...]:
    """:func:`verify_image` for every image, with the profile the matrix declares for it."""
    checker = keyless or KeylessVerifier()
    return tuple(verify_image(image, _profile(matrix, image), source=source, keyless=checker) for image in images)


def _profile(matrix: ProvenanceMatrix, image: LockedImage) -> Profile:
    found = matrix.profile_for(image.component, image.ref)
    if found is not None:
        return found
    return Profile(label=f"{image.component} (not in {matrix.path})", publisher="unknown",
                   signing=Signer(mode=SigningMode.NONE), provenance=ProvenanceFormat.NONE, sbom=SbomFormat.NONE)


def verify_image(image: LockedImage, profile: Profile, *, source: ArtifactSource,
                 keyless: KeylessVerifier) -> ImageVerification:
    """Discover and check the signatures and attestations of one locked image (module contract)."""
    if image.digest is None:
        verdict = Verdict(status=Status.ABSENT, reason=f"{image.ref} has no locked digest: nothing to verify "
                                                       "(lock it with registry resolution first)")
        return ImageVerification(image=image, profile=profile, signature=verdict, provenance=verdict, sbom=verdict)
    repository = image.repository
    found, lookups, evidence = _discover(source, repository, image.digest)
    for item in found:
        evidence.extend(_check_artifact(item, image=image, digest=image.digest, profile=profile, source=source,
                                        keyless=keyless))
    looked = "; ".join(lookups)
    return ImageVerification(
        image=image, profile=profile,
        signature=_verdict(evidence, EvidenceKind.SIGNATURE, looked),
        provenance=_verdict(evidence, EvidenceKind.PROVENANCE, looked, expected=profile.provenance.predicate_type),
        sbom=_verdict(evidence, EvidenceKind.SBOM, looked, expected=profile.sbom.predicate_type),
        evidence=tuple(evidence), lookups=tuple(lookups),
    )


def _verdict(evidence: Sequence[Evidence], kind: EvidenceKind, looked: str, *,
             expected: str | None = None) -> Verdict:
    """The facet's status; an attestation counts only with the declared predicate type (when one is)."""
    mine = [e for e in evidence if e.kind is kind]
    verified = [e for e in mine if e.verified]
    good = next((e for e in verified if expected is None or (e.predicate_type or "").startswith(expected)), None)
    if good is not None:
        return Verdict(status=Status.VERIFIED, reason=good.detail)
    if verified:
        return Verdict(status=Status.PRESENT, reason=f"{verified[0].detail}, but the provenance matrix declares "
                                                     f"{expected}")
    if mine:
        return Verdict(status=Status.PRESENT, reason=mine[0].detail)
    return Verdict(status=Status.ABSENT, reason=f"no {kind.value} found ({looked})")


def require_verified(results: Iterable[ImageVerification]) -> None:
    """The gate: every image whose profile declares a signature, provenance or SBOM has it verified."""
    failures: list[str] = []
    for result in results:
        shown = f"{result.image.component}: {result.image.ref}@{result.image.digest}"
        if result.profile.signing.signed and result.signature.status is not Status.VERIFIED:
            failures.append(f"{shown}: signature {result.signature.status.value}: {result.signature.reason}")
        if result.profile.provenance is not ProvenanceFormat.NONE and result.provenance.status is not Status.VERIFIED:
            failures.append(f"{shown}: provenance {result.provenance.status.value}: {result.provenance.reason}")
        if result.profile.sbom is not SbomFormat.NONE and result.sbom.status is not Status.VERIFIED:
            failures.append(f"{shown}: SBOM {result.sbom.status.value}: {result.sbom.reason}")
    if failures:
        more = f" (and {len(failures) - 1} more)\n" + "\n".join(f"  {f}" for f in failures) if len(failures) > 1 else ""
        raise SignatureError(
            f"{len(failures)} declared signature or attestation check(s) failed: {failures[0]}{more}",
            hint="do not deploy these digests; if the signer changed, update provenance.yaml after review, "
                 "then re-run 'python -m pipeline provenance'",
        )


# ------------------------------------------------------------------------------------------------
# discovery


def _discover(source: ArtifactSource, repository: ImageRef,
              digest: Digest) -> tuple[list[_Found], list[str], list[Evidence]]:
    """Artifacts about ``digest``: referrers API (or its tag schema), then cosign's tags.

    Returns what was found, a line per place looked at, and evidence for artifact manifests that
    exist but were altered in the registry (they count as present, never as absent).
    """
    found: dict[str, _Found] = {}
    lookups: list[str] = []
    altered: list[Evidence] = []
    short = f"sha256-{digest.split(':', 1)[1][:12]}…"

    def fetch(reference: str, *, channel: Channel, kind: EvidenceKind, what: str) -> RawManifest | None:
        try:
            return source.manifest(repository, reference)
        except ArtifactTampered as exc:
            lookups.append(f"{what}: altered in the registry")
            altered.append(Evidence(kind=kind, channel=channel, manifest=None, layer=None, verified=False,
                                    detail=f"{what} was altered in the registry: {exc.message}"))
            return None

    descriptors = source.referrers(repository, digest)
    channel = Channel.REFERRERS_API
    if descriptors is None:
        lookups.append("referrers API: not supported (HTTP 404)")
        channel = Channel.REFERRERS_TAG
        index = fetch(digest.replace(":", "-"), channel=channel, kind=EvidenceKind.SIGNATURE,
                      what=f"referrers tag {short}")
        descriptors = _index_descriptors(index) if index is not None else ()
        if index is not None:
            lookups.append(f"referrers tag {short}: {len(descriptors)} artifact(s)")
        elif not altered:
            lookups.append(f"referrers tag {short}: none")
    else:
        lookups.append(f"referrers API: {len(descriptors)} artifact(s)")
    for descriptor in descriptors:
        kind = EvidenceKind.OTHER if descriptor.artifact_type == DSSE_ENVELOPE else EvidenceKind.SIGNATURE
        manifest = fetch(descriptor.digest, channel=channel, kind=kind, what=f"referrer {descriptor.digest}")
        if manifest is not None:
            found.setdefault(manifest.digest, _Found(channel=channel, manifest=manifest))
        elif not any(descriptor.digest in line for line in lookups):
            lookups.append(f"referrer {descriptor.digest} is listed but missing")
    for suffix, kind in (("sig", EvidenceKind.SIGNATURE), ("att", EvidenceKind.OTHER)):
        what = f"cosign tag {short}.{suffix}"
        manifest = fetch(f"{digest.replace(':', '-')}.{suffix}", channel=Channel.COSIGN_TAG, kind=kind, what=what)
        if manifest is not None:
            lookups.append(f"{what}: found")
            found.setdefault(manifest.digest, _Found(channel=Channel.COSIGN_TAG, manifest=manifest))
        elif not any(line.startswith(what) for line in lookups):
            lookups.append(f"{what}: none")
    return list(found.values()), lookups, altered


def _index_descriptors(manifest: RawManifest) -> tuple[Descriptor, ...]:
    try:
        data = manifest.json()
        return tuple(Descriptor.from_json(d) for d in data.get("manifests") or ())
    except ValueError:
        return ()


# ------------------------------------------------------------------------------------------------
# one artifact


def _check_artifact(item: _Found, *, image: LockedImage, digest: Digest, profile: Profile,
                    source: ArtifactSource, keyless: KeylessVerifier) -> list[Evidence]:
    try:
        data = item.manifest.json()
        layers = [Descriptor.from_json(d) for d in data.get("layers") or ()]
    except (ValueError, AttributeError, TypeError):
        return [Evidence(kind=EvidenceKind.OTHER, channel=item.channel, manifest=item.manifest.digest, layer=None,
                         verified=False, detail=f"artifact manifest {item.manifest.digest} is not an OCI manifest")]
    out: list[Evidence] = []
    for layer in layers:
        kind = _layer_kind(layer)
        if kind is None:
            continue
        try:
            evidence = kind(layer, item=item, image=image, digest=digest, profile=profile, source=source,
                            keyless=keyless)
        except _Unverified as exc:
            evidence = Evidence(kind=exc.kind, channel=item.channel, manifest=item.manifest.digest,
                                layer=layer.digest, verified=False, detail=str(exc), predicate_type=exc.predicate)
        out.append(evidence)
    return out


class _Check(Protocol):
    def __call__(self, layer: Descriptor, *, item: _Found, image: LockedImage, digest: Digest, profile: Profile,
                 source: ArtifactSource, keyless: KeylessVerifier) -> Evidence: ...


class _Unverified(Exception):
    """A failed check of a layer, with the kind of evidence the layer is (as far as known)."""

    def __init__(self, reason: str, *, kind: EvidenceKind, predicate: str | None = None) -> None:
        super().__init__(reason)
        self.kind = kind
        self.predicate = predicate


def _layer_kind(layer: Descriptor) -> _Check | None:
    if layer.media_type == SIMPLE_SIGNING:
        return _simple_signing
    if layer.media_type == DSSE_ENVELOPE:
        return _dsse_layer
    if layer.media_type in _BUNDLE_TYPES:
        return _bundle_layer
    return None


def _fetch(source: ArtifactSource, image: LockedImage, layer: Descriptor, *, kind: EvidenceKind,
           what: str) -> bytes:
    try:
        return source.blob(image.repository, layer.digest, size=layer.size)
    except ArtifactTampered as exc:
        raise _Unverified(f"{what} {layer.digest} was altered in the registry: {exc.message}", kind=kind) from exc
    except ArtifactMissing as exc:
        raise _Unverified(f"{what} {layer.digest} is missing from the registry: {exc.message}", kind=kind) from exc


def _simple_signing(layer: Descriptor, *, item: _Found, image: LockedImage, digest: Digest, profile: Profile,
                    source: ArtifactSource, keyless: KeylessVerifier) -> Evidence:
    kind = EvidenceKind.SIGNATURE
    signer = profile.signing
    # 1. The payload bytes are the ones the signature manifest names (the source checks the digest).
    payload = _fetch(source, image, layer, kind=kind, what="signature payload")
    # 2. The declared signer is a public key (cosign's legacy keyless layout is not a bundle).
    key = _declared_key(signer, profile, kind=kind,
                        keyless_layout=_COSIGN_CERTIFICATE_ANNOTATION in layer.annotations)
    # 3. The signature annotation is there and is base64.
    encoded = layer.annotations.get(COSIGN_SIGNATURE_ANNOTATION)
    if not encoded:
        raise _Unverified(f"signature layer {layer.digest} has no {COSIGN_SIGNATURE_ANNOTATION!r} annotation",
                          kind=kind)
    try:
        signature = decode_signature(encoded)
    except ValueError as exc:
        raise _Unverified(f"signature layer {layer.digest}: {exc}", kind=kind) from exc
    # 4. The signature verifies over the exact payload bytes with the declared key.
    if not key.verify(signature, payload):
        raise _Unverified(
            f"signature does not verify over the payload with the declared {key.description}: the payload was "
            "changed after signing, or another key signed it", kind=kind)
    # 5. The payload is a cosign simple-signing document.
    try:
        document: Any = json.loads(payload)
        critical = document["critical"]
        kind_text = critical["type"]
    except (ValueError, KeyError, TypeError) as exc:
        raise _Unverified("the signed payload is not a cosign simple-signing document", kind=kind) from exc
    if kind_text != _SIMPLE_SIGNING_TYPE:
        raise _Unverified(f"the signed payload has type {kind_text!r}, not {_SIMPLE_SIGNING_TYPE!r}", kind=kind)
    # 6. It names the locked digest.
    named = (critical.get("image") or {}).get("docker-manifest-digest") if isinstance(critical, dict) else None
    if named != digest:
        raise _Unverified(f"the signed payload names digest {named}, not the locked digest {digest}: this "
                          "signature is for another image", kind=kind)
    # 7. It names the image's repository.
    reference = (critical.get("identity") or {}).get("docker-reference")
    if not _same_repository(reference, image.repository):
        raise _Unverified(f"the signed payload names repository {reference!r}, not {image.repository.name!r}",
                          kind=kind)
    return Evidence(kind=kind, channel=item.channel, manifest=item.manifest.digest, layer=layer.digest,
                    verified=True, detail=f"signed by {key.description} ({item.channel.value})")


def _declared_key(signer: Signer, profile: Profile, *, kind: EvidenceKind, keyless_layout: bool,
                  predicate: str | None = None) -> PublicKey:
    match signer.mode:
        case SigningMode.KEY:
            assert signer.key is not None
            return signer.key
        case SigningMode.KEYLESS:
            layout = ("cosign's legacy keyless layout (certificate and Rekor entry in annotations)" if keyless_layout
                      else "a key-signed layout")
            raise _Unverified(f"found in {layout}, which sigstore-python cannot verify (it verifies Sigstore "
                              "bundles): check it with the cosign command in the matrix", kind=kind,
                              predicate=predicate)
        case SigningMode.NONE:
            raise _Unverified(f"found, but {profile.label} declares signing: none; record its signer in the "
                              "provenance matrix to verify it", kind=kind, predicate=predicate)


def _same_repository(reference: Any, repository: ImageRef) -> bool:
    if not isinstance(reference, str):
        return False
    try:
        parsed = ImageRef.parse(reference)
    except ImageRefError:
        return False
    return parsed.name == repository.name


def _dsse_layer(layer: Descriptor, *, item: _Found, image: LockedImage, digest: Digest, profile: Profile,
                source: ArtifactSource, keyless: KeylessVerifier) -> Evidence:
    predicate = layer.annotations.get("predicateType")
    kind = _predicate_kind(predicate) if predicate else EvidenceKind.OTHER
    # 1. The envelope bytes are the ones the manifest names.
    raw = _fetch(source, image, layer, kind=kind, what="attestation envelope")
    try:
        envelope: Any = json.loads(raw)
        payload_type = str(envelope["payloadType"])
        payload = base64.b64decode(envelope["payload"], validate=True)
        signatures = [s for s in envelope.get("signatures") or () if isinstance(s, dict)]
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise _Unverified(f"attestation layer {layer.digest} is not a DSSE envelope", kind=kind) from exc
    if predicate is None:
        kind = _statement_kind(payload_type, payload)
    # 2. The declared signer is a public key.
    key = _declared_key(profile.signing, profile, kind=kind, predicate=predicate,
                        keyless_layout=_COSIGN_CERTIFICATE_ANNOTATION in layer.annotations)
    # 3. One signature verifies over the DSSE pre-authentication encoding.
    signed = _pae(payload_type, payload)
    if not any(key.verify(_b64(s.get("sig")), signed) for s in signatures):
        raise _Unverified(f"no signature of the attestation verifies with the declared {key.description}: the "
                          "statement was changed after signing, or another key signed it", kind=kind,
                          predicate=predicate)
    # 4-6. The statement is about the locked digest, with a recognised predicate.
    statement_kind, predicate_type = _statement(payload_type, payload, digest=digest, kind=kind)
    return Evidence(kind=statement_kind, channel=item.channel, manifest=item.manifest.digest, layer=layer.digest,
                    verified=True, predicate_type=predicate_type,
                    detail=f"{predicate_type} attestation signed by {key.description} ({item.channel.value})")


def _bundle_layer(layer: Descriptor, *, item: _Found, image: LockedImage, digest: Digest, profile: Profile,
                  source: ArtifactSource, keyless: KeylessVerifier) -> Evidence:
    predicate = layer.annotations.get("dev.sigstore.bundle.predicateType")
    kind = _predicate_kind(predicate) if predicate else EvidenceKind.SIGNATURE
    # 1. The bundle bytes are the ones the manifest names.
    raw = _fetch(source, image, layer, kind=kind, what="Sigstore bundle")
    dsse = KeylessVerifier.has_dsse(raw)
    if dsse and predicate is None:
        kind = EvidenceKind.OTHER
    # 2. The declared signer is keyless.
    signer = profile.signing
    match signer.mode:
        case SigningMode.NONE:
            raise _Unverified(f"found a Sigstore bundle, but {profile.label} declares signing: none; record its "
                              "signer in the provenance matrix to verify it", kind=kind, predicate=predicate)
        case SigningMode.KEY:
            assert signer.key is not None
            return _key_bundle(raw, signer.key, item=item, layer=layer, digest=digest, kind=kind,
                               predicate=predicate)
        case SigningMode.KEYLESS:
            pass
    assert signer.identity is not None
    assert signer.issuer is not None
    who = f"keyless {signer.identity} ({signer.issuer})"
    # 3. sigstore verifies it offline against identity and issuer.
    try:
        if dsse:
            payload_type, payload = keyless.verify_dsse(raw, identity=signer.identity, issuer=signer.issuer,
                                                        instance=signer.instance)
        else:
            keyless.verify_artifact(digest, raw, identity=signer.identity, issuer=signer.issuer,
                                    instance=signer.instance)
    except SignatureError as exc:
        raise _Unverified(f"Sigstore bundle does not verify for {who}: {exc.message}", kind=kind,
                          predicate=predicate) from exc
    if not dsse:
        return Evidence(kind=EvidenceKind.SIGNATURE, channel=item.channel, manifest=item.manifest.digest,
                        layer=layer.digest, verified=True,
                        detail=f"image manifest signed by {who} ({item.channel.value})")
    statement_kind, predicate_type = _statement(payload_type, payload, digest=digest, kind=kind)
    return Evidence(kind=statement_kind, channel=item.channel, manifest=item.manifest.digest, layer=layer.digest,
                    verified=True, predicate_type=predicate_type,
                    detail=f"{predicate_type} signed by {who} ({item.channel.value})")


def _key_bundle(raw: bytes, key: PublicKey, *, item: _Found, layer: Descriptor, digest: Digest,
                kind: EvidenceKind, predicate: str | None) -> Evidence:
    """A Sigstore bundle signed with a key (what ``cosign sign|attest --key`` v3 writes by default).

    Its DSSE envelope is checked like a ``.att`` layer: 3. one signature verifies over the DSSE
    pre-authentication encoding with the declared key; 4-6. the statement is about the locked digest
    with a recognised predicate (``https://sigstore.dev/cosign/sign/v1`` is the signature itself).
    A transparency-log entry is not required (``cosign verify --insecure-ignore-tlog``); a bundle
    that carries a message signature instead of an envelope is reported, not verified.
    """
    try:
        bundle: Any = json.loads(raw)
        envelope = bundle.get("dsseEnvelope")
        if envelope is None:
            raise _Unverified("a key-signed Sigstore bundle with a message signature (not a DSSE envelope) is not "
                              "verified here: check it with the cosign command in the matrix", kind=kind,
                              predicate=predicate)
        payload_type = str(envelope["payloadType"])
        payload = base64.b64decode(envelope["payload"], validate=True)
        signatures = [s for s in envelope.get("signatures") or () if isinstance(s, dict)]
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
        raise _Unverified(f"Sigstore bundle {layer.digest} is not readable JSON with a DSSE envelope", kind=kind,
                          predicate=predicate) from exc
    if predicate is None:
        kind = _statement_kind(payload_type, payload)
    if not any(key.verify(_b64(s.get("sig")), _pae(payload_type, payload)) for s in signatures):
        raise _Unverified(f"no signature of the Sigstore bundle verifies with the declared {key.description}: the "
                          "statement was changed after signing, or another key signed it", kind=kind,
                          predicate=predicate)
    statement_kind, predicate_type = _statement(payload_type, payload, digest=digest, kind=kind)
    what = "image signature" if statement_kind is EvidenceKind.SIGNATURE else f"{predicate_type} attestation"
    return Evidence(kind=statement_kind, channel=item.channel, manifest=item.manifest.digest, layer=layer.digest,
                    verified=True, predicate_type=predicate_type,
                    detail=f"{what} signed by {key.description} (Sigstore bundle, {item.channel.value})")


def _statement(payload_type: str, payload: bytes, *, digest: Digest, kind: EvidenceKind) -> tuple[EvidenceKind, str]:
    # 4. The payload is an in-toto statement.
    try:
        statement: Any = json.loads(payload)
        statement_type = statement["_type"]
        subjects = statement["subject"]
        predicate_type = str(statement["predicateType"])
    except (ValueError, KeyError, TypeError) as exc:
        raise _Unverified("the signed payload is not an in-toto statement", kind=kind) from exc
    if payload_type != _IN_TOTO_PAYLOAD or statement_type not in _IN_TOTO_STATEMENTS:
        raise _Unverified(f"the signed payload is {payload_type!r} / {statement_type!r}, not an in-toto statement",
                          kind=kind)
    # 5. One subject has the locked digest.
    algorithm, _, hexpart = digest.partition(":")
    named = sorted(f"{algorithm}:{s.get('digest', {}).get(algorithm)}" for s in subjects if isinstance(s, Mapping))
    if f"{algorithm}:{hexpart}" not in named:
        raise _Unverified(f"the attestation is about {', '.join(named) or 'no digest'}, not the locked digest "
                          f"{digest}: it is for another image", kind=_predicate_kind(predicate_type),
                          predicate=predicate_type)
    # 6. Its predicate type is recognised.
    recognised = _predicate_kind(predicate_type)
    if recognised is EvidenceKind.OTHER:
        raise _Unverified(f"predicate type {predicate_type!r} is neither SLSA provenance nor an SBOM",
                          kind=recognised, predicate=predicate_type)
    return recognised, predicate_type


def _predicate_kind(predicate: str | None) -> EvidenceKind:
    text = (predicate or "").rstrip("/")
    if text.startswith("https://slsa.dev/provenance/"):
        return EvidenceKind.PROVENANCE
    if text.startswith(("https://cyclonedx.org/bom", "https://spdx.dev/Document")):
        return EvidenceKind.SBOM
    if text == _COSIGN_SIGN_PREDICATE:
        return EvidenceKind.SIGNATURE
    return EvidenceKind.OTHER


def _statement_kind(payload_type: str, payload: bytes) -> EvidenceKind:
    """Classify an unverified statement (only to say what is present)."""
    try:
        data: Any = json.loads(payload)
        return _predicate_kind(str(data.get("predicateType")))
    except (ValueError, AttributeError):
        return EvidenceKind.OTHER


def _pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def _b64(text: Any) -> bytes:
    try:
        return decode_signature(str(text))
    except ValueError:
        return b""
