"""The provenance matrix: who publishes each component's images, how they are signed, what is
attested, and every reviewed gap.

Data: ``<catalog>/provenance.yaml`` (our format)::

    apiVersion: pipeline.recipes.dev/v1
    kind: ProvenanceMatrix
    spec:
      components:
        accel-operator:                      # one entry per component of the catalog
          publisher: recipe-lab (this project)
          signing:
            mode: keyless                    # keyless | key | none
            identity: https://github.com/org/repo/.github/workflows/release.yaml@refs/tags/v1.4.2
            issuer: https://token.actions.githubusercontent.com
            # instance: production           # Sigstore instance (production | staging)
            # mode: key; keyFile: keys/accel-operator.pub (under <catalog>/keys/) or publicKey: <PEM>;
            #            tlog: true (signatures are also in Rekor, cosign's default)
          provenance: slsa-v1                # slsa-v0.2 | slsa-v1 | none
          sbom: cyclonedx                    # cyclonedx | spdx | none
          gaps:                              # one per facet that is missing (signature, provenance, sbom)
            - facet: sbom
              owner: platform-security
              tracking: https://example.com/issues/12      # a URL, or '#N' (this project's issue N)
              mitigation: signature-verification           # digest-allowlist | signature-verification
              note: free text
          overrides:                         # images of the component published by someone else
            - images: registry.k8s.io/nfd/*  # glob over registry/repository; first match wins
              publisher: …                   # then a full profile: signing, provenance, sbom, gaps
      policies:                              # optional: how the admission policies are written
        kyvernoApi: ImageValidatingPolicy    # or ClusterPolicy (clusters before Kyverno 1.17)

:func:`load_matrix` validates the document as it reads it (unknown keys, types, enum values,
public keys) and raises :class:`~pipeline.errors.RecipeError` with file, line and a hint.
:func:`problems` / :func:`check` (the qualify gate) compare it with the lockfiles: every locked
component has an entry; every missing facet has a gap with an owner, a tracking link and a
mitigation; no gap is stale; a mitigation names a policy that really covers it; a repository is
not claimed by two different signers. :func:`check` raises :class:`~pipeline.errors.GateError`
(exit 1) listing every problem with its file and line.
"""

from __future__ import annotations

import enum
import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TypeVar

from .._checks import check_keys, line_of, suggest, type_name
from .._yaml import YamlMap, load_file
from ..errors import GateError, RecipeError
from ..lockfile import Lockfile
from ..recipes.load import check_header, expect_mapping, get_str
from ..vocabulary.reference import ImageRef
from .keys import PublicKey
from .locked import LockedImage, locked_components, locked_images

__all__ = [
    "API_VERSION",
    "KEYS_DIR",
    "KIND",
    "PROVENANCE_FILE",
    "ComponentProvenance",
    "Facet",
    "Gap",
    "Mitigation",
    "Override",
    "Problem",
    "Profile",
    "ProvenanceFormat",
    "ProvenanceMatrix",
    "SbomFormat",
    "Signer",
    "SigningMode",
    "SigstoreInstance",
    "check",
    "load_matrix",
    "problems",
]

PROVENANCE_FILE = "provenance.yaml"
KEYS_DIR = "keys"
API_VERSION = "pipeline.recipes.dev/v1"
KIND = "ProvenanceMatrix"

_PROFILE_KEYS = ("publisher", "signing", "provenance", "sbom", "gaps")
_COMPONENT_KEYS = (*_PROFILE_KEYS, "overrides")
_OVERRIDE_KEYS = ("images", *_PROFILE_KEYS)
_SIGNING_KEYS = ("mode", "identity", "issuer", "instance", "keyFile", "publicKey", "tlog")
_GAP_KEYS = ("facet", "owner", "tracking", "mitigation", "note")
_TRACKING = re.compile(r"^(https?://[^\s/]+/\S*|#[0-9]+)$")
_GLOB = re.compile(r"^[a-z0-9.:\-_/*?\[\]]+$")
_E = TypeVar("_E", bound=enum.StrEnum)


# ------------------------------------------------------------------------------------------------
# closed sets


class SigningMode(enum.StrEnum):
    """How a publisher signs its images."""

    KEYLESS = "keyless"
    KEY = "key"
    NONE = "none"


class SigstoreInstance(enum.StrEnum):
    """The Sigstore deployment a keyless certificate comes from."""

    PRODUCTION = "production"
    STAGING = "staging"

    @property
    def fulcio_url(self) -> str:
        match self:
            case SigstoreInstance.PRODUCTION:
                return "https://fulcio.sigstore.dev"
            case SigstoreInstance.STAGING:
                return "https://fulcio.sigstage.dev"

    @property
    def rekor_url(self) -> str:
        match self:
            case SigstoreInstance.PRODUCTION:
                return "https://rekor.sigstore.dev"
            case SigstoreInstance.STAGING:
                return "https://rekor.sigstage.dev"


class ProvenanceFormat(enum.StrEnum):
    """The SLSA provenance a publisher attaches as a signed attestation (or none)."""

    SLSA_V0_2 = "slsa-v0.2"
    SLSA_V1 = "slsa-v1"
    NONE = "none"

    @property
    def predicate_type(self) -> str | None:
        match self:
            case ProvenanceFormat.SLSA_V0_2:
                return "https://slsa.dev/provenance/v0.2"
            case ProvenanceFormat.SLSA_V1:
                return "https://slsa.dev/provenance/v1"
            case ProvenanceFormat.NONE:
                return None

    @property
    def cosign_type(self) -> str | None:
        """``cosign verify-attestation --type`` value."""
        match self:
            case ProvenanceFormat.SLSA_V0_2:
                return "slsaprovenance02"
            case ProvenanceFormat.SLSA_V1:
                return "slsaprovenance1"
            case ProvenanceFormat.NONE:
                return None


class SbomFormat(enum.StrEnum):
    """The SBOM a publisher attaches as a signed attestation (or none)."""

    CYCLONEDX = "cyclonedx"
    SPDX = "spdx"
    NONE = "none"

    @property
    def predicate_type(self) -> str | None:
        match self:
            case SbomFormat.CYCLONEDX:
                return "https://cyclonedx.org/bom"
            case SbomFormat.SPDX:
                return "https://spdx.dev/Document"
            case SbomFormat.NONE:
                return None

    @property
    def cosign_type(self) -> str | None:
        match self:
            case SbomFormat.CYCLONEDX:
                return "cyclonedx"
            case SbomFormat.SPDX:
                return "spdxjson"
            case SbomFormat.NONE:
                return None


class Facet(enum.StrEnum):
    """What a gap is missing."""

    SIGNATURE = "signature"
    PROVENANCE = "provenance"
    SBOM = "sbom"


class Mitigation(enum.StrEnum):
    """The generated admission policy that covers a gap."""

    DIGEST_ALLOWLIST = "digest-allowlist"
    SIGNATURE_VERIFICATION = "signature-verification"

    @property
    def description(self) -> str:
        match self:
            case Mitigation.DIGEST_ALLOWLIST:
                return ("admitted only at locked digests by the generated Kyverno digest-allowlist policy "
                        "(recipe-digest-allowlist)")
            case Mitigation.SIGNATURE_VERIFICATION:
                return ("the image signature is verified at admission by the generated Kyverno verifyImages "
                        "and policy-controller policies")


# ------------------------------------------------------------------------------------------------
# records


@dataclass(frozen=True, slots=True, kw_only=True)
class Signer:
    """How images are signed: keyless (certificate identity and issuer), a public key, or not at all."""

    mode: SigningMode
    identity: str | None = None
    issuer: str | None = None
    instance: SigstoreInstance = SigstoreInstance.PRODUCTION
    key: PublicKey | None = None
    key_file: str | None = None
    tlog: bool = True

    def __post_init__(self) -> None:
        match self.mode:
            case SigningMode.KEYLESS:
                if not self.identity or not self.issuer or self.key is not None:
                    raise ValueError("a keyless signer has an identity and an issuer and no key")
            case SigningMode.KEY:
                if self.key is None or self.identity or self.issuer:
                    raise ValueError("a key signer has a public key and no identity or issuer")
            case SigningMode.NONE:
                if self.key is not None or self.identity or self.issuer:
                    raise ValueError("an unsigned profile has no key, identity or issuer")

    @property
    def signed(self) -> bool:
        return self.mode is not SigningMode.NONE

    def describe(self) -> str:
        """One line for the matrix and messages."""
        match self.mode:
            case SigningMode.KEYLESS:
                return f"keyless: {self.identity} (issuer {self.issuer}, Sigstore {self.instance.value})"
            case SigningMode.KEY:
                assert self.key is not None
                where = self.key_file or "inline publicKey"
                return f"{self.key.description} ({where})"
            case SigningMode.NONE:
                return "not signed"


@dataclass(frozen=True, slots=True, kw_only=True)
class Gap:
    """A reviewed gap: a facet the publisher does not provide, who owns closing it, what covers it."""

    facet: Facet
    owner: str | None
    tracking: str | None
    mitigation: Mitigation | None
    note: str | None = None
    line: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Profile:
    """Publisher, signer, attestations and gaps of a component's images (or of an override's)."""

    label: str
    publisher: str
    signing: Signer
    provenance: ProvenanceFormat
    sbom: SbomFormat
    gaps: tuple[Gap, ...] = ()
    line: int | None = None

    def missing(self) -> tuple[Facet, ...]:
        """Facets the publisher does not provide (each needs a gap)."""
        out = []
        if not self.signing.signed:
            out.append(Facet.SIGNATURE)
        if self.provenance is ProvenanceFormat.NONE:
            out.append(Facet.PROVENANCE)
        if self.sbom is SbomFormat.NONE:
            out.append(Facet.SBOM)
        return tuple(out)

    def gap(self, facet: Facet) -> Gap | None:
        return next((g for g in self.gaps if g.facet is facet), None)


@dataclass(frozen=True, slots=True, kw_only=True)
class Override:
    """Images of a component (``images``: glob over ``registry/repository``) with their own profile."""

    images: str
    profile: Profile
    line: int | None = None

    def matches(self, ref: ImageRef) -> bool:
        return fnmatch.fnmatchcase(ref.name, self.images)


@dataclass(frozen=True, slots=True, kw_only=True)
class ComponentProvenance:
    """A component's entry: its default profile and the overrides, first match wins."""

    name: str
    profile: Profile
    overrides: tuple[Override, ...] = ()
    line: int | None = None

    def profile_for(self, ref: ImageRef) -> Profile:
        return next((o.profile for o in self.overrides if o.matches(ref)), self.profile)

    def profiles(self) -> tuple[Profile, ...]:
        return (self.profile, *(o.profile for o in self.overrides))


#: the values of ``spec.policies.kyvernoApi``: Kyverno's own kind names, the default first
KYVERNO_APIS = ("ImageValidatingPolicy", "ClusterPolicy")


@dataclass(frozen=True, slots=True, kw_only=True)
class ProvenanceMatrix:
    """The whole file: ``path`` is what messages show (catalog-relative), ``line`` the components key."""

    path: str
    components: Mapping[str, ComponentProvenance] = field(default_factory=dict)
    line: int | None = None
    #: ``spec.policies.kyvernoApi``, the Kyverno kind of the digest allow-list: ``ImageValidatingPolicy``
    #: (the default) or ``ClusterPolicy``
    kyverno_api: str = KYVERNO_APIS[0]

    def get(self, component: str) -> ComponentProvenance | None:
        return self.components.get(component)

    def profile_for(self, component: str, ref: ImageRef) -> Profile | None:
        entry = self.components.get(component)
        return entry.profile_for(ref) if entry is not None else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    """One finding of :func:`problems`: what, where (file, line), and the fix."""

    message: str
    path: str
    line: int | None
    hint: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.message}"


# ------------------------------------------------------------------------------------------------
# loading


def load_matrix(catalog: Path, *, display: str | None = None) -> ProvenanceMatrix:
    """Read and validate ``<catalog>/provenance.yaml``; :class:`RecipeError` names file and line."""
    shown = display or PROVENANCE_FILE
    path = catalog / PROVENANCE_FILE
    if not path.is_file():
        raise RecipeError(f"{shown} does not exist", path=shown,
                          hint=f"write {shown} (kind {KIND}) with one entry per component of the catalog")
    doc = load_file(path, display=shown)
    node = check_header(doc, kind=KIND, api_versions=(API_VERSION,), path=shown,
                        hint=f"start the file with apiVersion: {API_VERSION} and kind: {KIND}")
    check_keys(node, ("apiVersion", "kind", "spec"), what="the document", path=shown)
    spec = expect_mapping(node.get("spec"), what="'spec'", path=shown, line=line_of(node, "spec") or 1,
                          hint="put the components under spec.components")
    check_keys(spec, ("components", "policies"), what="'spec'", path=shown)
    raw = expect_mapping(spec.get("components"), what="'spec.components'", path=shown,
                         line=line_of(spec, "components") or line_of(spec),
                         hint="map each component name to its publisher, signing, attestations and gaps")
    components: dict[str, ComponentProvenance] = {}
    for name, value in raw.items():
        what = f"component {name!r}"
        entry = expect_mapping(value, what=what, path=shown, line=line_of(raw, str(name)),
                               hint="give the component publisher, signing, provenance, sbom and gaps")
        check_keys(entry, _COMPONENT_KEYS, what=what, path=shown)
        profile = _profile(entry, label=str(name), what=what, catalog=catalog, path=shown)
        overrides = _overrides(entry, name=str(name), catalog=catalog, path=shown)
        components[str(name)] = ComponentProvenance(name=str(name), profile=profile, overrides=overrides,
                                                    line=line_of(raw, str(name)))
    return ProvenanceMatrix(path=shown, components=dict(sorted(components.items())),
                            line=line_of(spec, "components"), kyverno_api=_kyverno_api(spec, path=shown))


def _kyverno_api(spec: YamlMap, *, path: str) -> str:
    """``spec.policies.kyvernoApi`` (the default when absent)."""
    value = spec.get("policies")
    if value is None:
        return KYVERNO_APIS[0]
    node = expect_mapping(value, what="'spec.policies'", path=path, line=line_of(spec, "policies"),
                          hint="write 'kyvernoApi: ImageValidatingPolicy' (or ClusterPolicy) under spec.policies")
    check_keys(node, ("kyvernoApi",), what="'spec.policies'", path=path)
    api = node.get("kyvernoApi", KYVERNO_APIS[0])
    if api not in KYVERNO_APIS:
        raise RecipeError(
            f"spec.policies.kyvernoApi is {api!r}, which is not a Kyverno kind the pipeline writes", path=path,
            line=line_of(node, "kyvernoApi"),
            hint="use ImageValidatingPolicy (policies.kyverno.io/v1, Kyverno 1.17+) or ClusterPolicy "
                 "(kyverno.io/v1, clusters before Kyverno 1.17)")
    return str(api)


def _overrides(entry: YamlMap, *, name: str, catalog: Path, path: str) -> tuple[Override, ...]:
    value = entry.get("overrides")
    if value is None:
        return ()
    if not isinstance(value, list):
        raise RecipeError(f"component {name!r}: 'overrides' must be a list, not a {type_name(value)}", path=path,
                          line=line_of(entry, "overrides"), hint="write '- images: <glob>' items under overrides")
    out = []
    for index, item in enumerate(value):
        what = f"component {name!r} override #{index + 1}"
        node = expect_mapping(item, what=what, path=path, line=line_of(entry, "overrides"),
                              hint="each override is a mapping with 'images' and a profile")
        check_keys(node, _OVERRIDE_KEYS, what=what, path=path)
        glob = get_str(node, "images", what=what, path=path, required=True)
        if not _GLOB.match(glob):
            raise RecipeError(f"{what}: 'images' {glob!r} is not a glob over registry/repository", path=path,
                              line=line_of(node, "images"),
                              hint="write a lower-case pattern such as registry.k8s.io/nfd/* (no tag or digest)")
        profile = _profile(node, label=f"{name} [{glob}]", what=what, catalog=catalog, path=path)
        out.append(Override(images=glob, profile=profile, line=line_of(node)))
    return tuple(out)


def _profile(node: YamlMap, *, label: str, what: str, catalog: Path, path: str) -> Profile:
    publisher = get_str(node, "publisher", what=what, path=path, required=True).strip()
    signing = _signing(node, what=what, catalog=catalog, path=path)
    provenance = _enum(node, "provenance", ProvenanceFormat, what=what, path=path)
    sbom = _enum(node, "sbom", SbomFormat, what=what, path=path)
    gaps = _gaps(node, what=what, path=path)
    return Profile(label=label, publisher=publisher, signing=signing, provenance=provenance, sbom=sbom,
                   gaps=gaps, line=line_of(node))


def _enum(node: YamlMap, key: str, kind: type[_E], *, what: str, path: str) -> _E:
    choices = [e.value for e in kind]
    if node.get(key) is None:
        raise RecipeError(f"{what}: {key!r} is missing", path=path, line=line_of(node),
                          hint=f"add '{key}: <{' | '.join(choices)}>' (write 'none' when it is not published)")
    text = get_str(node, key, what=what, path=path)
    try:
        return kind(text)
    except ValueError:
        raise RecipeError(f"{what}: {key} {text!r} is not one of {', '.join(choices)}{suggest(text, choices)}",
                          path=path, line=line_of(node, key),
                          hint=f"write one of: {', '.join(choices)}") from None


def _signing(node: YamlMap, *, what: str, catalog: Path, path: str) -> Signer:
    where = f"{what} signing"
    value = node.get("signing")
    if value is None:
        raise RecipeError(f"{what}: 'signing' is missing", path=path, line=line_of(node),
                          hint="add 'signing: {mode: keyless | key | none, …}' (mode: none when not signed)")
    sig = expect_mapping(value, what=f"{what}: 'signing'", path=path, line=line_of(node, "signing"),
                         hint="write signing as a mapping with 'mode' and its settings")
    check_keys(sig, _SIGNING_KEYS, what=where, path=path)
    mode = _enum(sig, "mode", SigningMode, what=where, path=path)
    allowed: dict[SigningMode, tuple[str, ...]] = {
        SigningMode.KEYLESS: ("mode", "identity", "issuer", "instance"),
        SigningMode.KEY: ("mode", "keyFile", "publicKey", "tlog"),
        SigningMode.NONE: ("mode",),
    }
    for key in sig:
        if key not in allowed[mode]:
            raise RecipeError(f"{where}: {key!r} does not apply to mode {mode.value!r}", path=path,
                              line=line_of(sig, str(key)),
                              hint=f"mode {mode.value!r} takes only: {', '.join(allowed[mode])}")
    match mode:
        case SigningMode.NONE:
            return Signer(mode=mode)
        case SigningMode.KEYLESS:
            identity = get_str(sig, "identity", what=where, path=path, required=True).strip()
            issuer = get_str(sig, "issuer", what=where, path=path, required=True).strip()
            if not issuer.startswith("https://"):
                raise RecipeError(f"{where}: issuer {issuer!r} is not an https:// OIDC issuer URL", path=path,
                                  line=line_of(sig, "issuer"),
                                  hint="e.g. https://token.actions.githubusercontent.com or "
                                       "https://accounts.google.com")
            instance = (_enum(sig, "instance", SigstoreInstance, what=where, path=path)
                        if "instance" in sig else SigstoreInstance.PRODUCTION)
            return Signer(mode=mode, identity=identity, issuer=issuer, instance=instance)
        case SigningMode.KEY:
            return _key_signer(sig, where=where, catalog=catalog, path=path)


def _key_signer(sig: YamlMap, *, where: str, catalog: Path, path: str) -> Signer:
    has_file, has_inline = sig.get("keyFile") is not None, sig.get("publicKey") is not None
    if has_file == has_inline:
        raise RecipeError(f"{where}: give exactly one of 'keyFile' and 'publicKey'", path=path, line=line_of(sig),
                          hint=f"keyFile: {KEYS_DIR}/<name>.pub (under the catalog) or publicKey: | <PEM>")
    tlog = sig.get("tlog", True)
    if not isinstance(tlog, bool):
        raise RecipeError(f"{where}: 'tlog' must be true or false, not {tlog!r}", path=path,
                          line=line_of(sig, "tlog"),
                          hint="tlog: true when signatures are also logged in Rekor (cosign's default)")
    key_file: str | None = None
    if has_file:
        key_file = get_str(sig, "keyFile", what=where, path=path, required=True)
        rel = PurePosixPath(key_file)
        if rel.is_absolute() or ".." in rel.parts or rel.parts[:1] != (KEYS_DIR,) or len(rel.parts) < 2:
            raise RecipeError(f"{where}: keyFile {key_file!r} is not a path under {KEYS_DIR}/", path=path,
                              line=line_of(sig, "keyFile"),
                              hint=f"keep public keys in the catalog's {KEYS_DIR}/ directory and write "
                                   f"keyFile: {KEYS_DIR}/<name>.pub")
        try:
            text = (catalog / rel).read_bytes()
        except OSError as exc:
            raise RecipeError(f"{where}: cannot read keyFile {key_file!r} ({exc.strerror})", path=path,
                              line=line_of(sig, "keyFile"),
                              hint=f"add the public key (cosign.pub) as {key_file} under the catalog") from exc
        line = line_of(sig, "keyFile")
    else:
        text = get_str(sig, "publicKey", what=where, path=path, required=True).encode()
        line = line_of(sig, "publicKey")
    try:
        key = PublicKey.from_pem(text)
    except ValueError as exc:
        raise RecipeError(f"{where}: {exc}", path=path, line=line,
                          hint="give the signer's public key in PEM (-----BEGIN PUBLIC KEY-----)") from exc
    return Signer(mode=SigningMode.KEY, key=key, key_file=key_file, tlog=tlog)


def _gaps(node: YamlMap, *, what: str, path: str) -> tuple[Gap, ...]:
    value = node.get("gaps")
    if value is None:
        return ()
    if not isinstance(value, list):
        raise RecipeError(f"{what}: 'gaps' must be a list, not a {type_name(value)}", path=path,
                          line=line_of(node, "gaps"), hint="write '- facet: signature' items under gaps")
    out: list[Gap] = []
    for item in value:
        gap_what = f"{what} gap"
        gap = expect_mapping(item, what=gap_what, path=path, line=line_of(node, "gaps"),
                             hint="each gap is a mapping: facet, owner, tracking, mitigation, note")
        check_keys(gap, _GAP_KEYS, what=gap_what, path=path)
        facet = _enum(gap, "facet", Facet, what=gap_what, path=path)
        if any(g.facet is facet for g in out):
            raise RecipeError(f"{what}: gap {facet.value!r} is listed twice", path=path, line=line_of(gap),
                              hint="keep one gap per facet")
        tracking = get_str(gap, "tracking", what=gap_what, path=path).strip() or None
        if tracking is not None and not _TRACKING.match(tracking):
            raise RecipeError(f"{gap_what}: tracking {tracking!r} is not a link", path=path,
                              line=line_of(gap, "tracking"),
                              hint="write an https:// URL of the issue, or '#N' for this project's issue N")
        mitigation = (_enum(gap, "mitigation", Mitigation, what=gap_what, path=path)
                      if gap.get("mitigation") is not None else None)
        out.append(Gap(facet=facet, owner=get_str(gap, "owner", what=gap_what, path=path).strip() or None,
                       tracking=tracking, mitigation=mitigation,
                       note=get_str(gap, "note", what=gap_what, path=path).strip() or None, line=line_of(gap)))
    return tuple(out)


# ------------------------------------------------------------------------------------------------
# the qualify gate


def problems(matrix: ProvenanceMatrix, lockfiles: Sequence[Lockfile]) -> tuple[Problem, ...]:
    """Everything that keeps ``matrix`` from covering ``lockfiles`` (see the module contract)."""
    out: list[Problem] = []
    path = matrix.path
    for component, recipes in locked_components(lockfiles).items():
        if matrix.get(component) is None:
            out.append(Problem(
                message=f"component {component!r} (locked by {', '.join(recipes)}) has no entry",
                path=path, line=matrix.line,
                hint=f"add '{component}:' under spec.components with its publisher, signing, provenance, "
                     "sbom and, for each of them not published, a gap with owner, tracking and mitigation",
            ))
    for entry in matrix.components.values():
        for profile in entry.profiles():
            out.extend(_profile_problems(profile, path=path))
    out.extend(_signer_conflicts(matrix, locked_images(lockfiles)))
    return tuple(out)


def _profile_problems(profile: Profile, *, path: str) -> Iterable[Problem]:
    missing = profile.missing()
    for facet in missing:
        gap = profile.gap(facet)
        if gap is None:
            yield Problem(
                message=f"{profile.label}: the {facet.value} gap is not recorded ({_absent(profile, facet)})",
                path=path, line=profile.line,
                hint=f"add a gap '- facet: {facet.value}' with owner, tracking and mitigation "
                     f"({' | '.join(m.value for m in Mitigation)}), or publish the {facet.value}",
            )
            continue
        unset = [name for name, value in (("owner", gap.owner), ("tracking", gap.tracking),
                                          ("mitigation", gap.mitigation)) if value is None]
        if unset:
            yield Problem(
                message=f"{profile.label}: gap {facet.value!r} has no {' and no '.join(unset)}",
                path=path, line=gap.line,
                hint="every gap names who closes it (owner), where that is tracked (an https:// link or "
                     "'#N') and which generated policy covers it meanwhile (mitigation)",
            )
        if gap.mitigation is Mitigation.SIGNATURE_VERIFICATION and not profile.signing.signed:
            yield Problem(
                message=f"{profile.label}: gap {facet.value!r} claims mitigation 'signature-verification' "
                        "but the images are not signed",
                path=path, line=gap.line,
                hint="unsigned images are covered by 'digest-allowlist' only",
            )
    for gap in profile.gaps:
        if gap.facet not in missing:
            yield Problem(
                message=f"{profile.label}: gap {gap.facet.value!r} is stale: the {gap.facet.value} is published "
                        f"({_present(profile, gap.facet)})",
                path=path, line=gap.line, hint="remove the gap: it no longer describes anything",
            )


def _absent(profile: Profile, facet: Facet) -> str:
    match facet:
        case Facet.SIGNATURE:
            return "signing mode is 'none'"
        case Facet.PROVENANCE:
            return "provenance is 'none'"
        case Facet.SBOM:
            return "sbom is 'none'"


def _present(profile: Profile, facet: Facet) -> str:
    match facet:
        case Facet.SIGNATURE:
            return profile.signing.describe()
        case Facet.PROVENANCE:
            return profile.provenance.value
        case Facet.SBOM:
            return profile.sbom.value


def _signer_conflicts(matrix: ProvenanceMatrix, images: Sequence[LockedImage]) -> Iterable[Problem]:
    """A repository whose images different entries claim for different signers (policies would clash)."""
    claims: dict[str, dict[str, tuple[Profile, str]]] = {}
    for image in images:
        profile = matrix.profile_for(image.component, image.ref)
        if profile is not None:
            claims.setdefault(image.ref.name, {})[profile.signing.describe()] = (profile, image.component)
    for repository, signers in sorted(claims.items()):
        if len(signers) > 1:
            (first, _), (second, _) = sorted(signers.values(), key=lambda p: p[0].label)[:2]
            yield Problem(
                message=f"repository {repository!r} is claimed by {first.label!r} ({first.signing.describe()}) and "
                        f"by {second.label!r} ({second.signing.describe()})",
                path=matrix.path, line=second.line,
                hint="one repository has one publisher and one signer: make the entries agree (an override "
                     "can give a shared image its own profile)",
            )


def check(matrix: ProvenanceMatrix, lockfiles: Sequence[Lockfile]) -> None:
    """The qualify gate: :class:`GateError` (exit 1) listing every :func:`problems` finding."""
    found = problems(matrix, lockfiles)
    if not found:
        return
    first = found[0]
    if len(found) == 1:
        raise GateError(f"provenance matrix: {first.message}", path=first.path, line=first.line, hint=first.hint)
    listing = "\n".join(f"  {p}" for p in found)
    raise GateError(
        f"provenance matrix: {len(found)} problems; first: {first.message}\n{listing}",
        path=first.path, line=first.line,
        hint=f"{first.hint}; then fix the others listed (each with its line)",
    )
