"""Provenance: who built each locked image, is it signed by them, and can the cluster refuse the rest.

- :mod:`.matrix`: ``recipes/provenance.yaml`` (publisher, signer, SLSA/SBOM attestations and
  reviewed gaps per component), validated on load, and the qualify gate over it;
- :mod:`.verify`: signatures and attestations of every locked digest, found through the OCI
  referrers API or cosign's tags and checked as a numbered checklist (keys with ``cryptography``,
  keyless bundles offline with ``sigstore``);
- :mod:`.report`: ``docs/provenance-matrix.md`` with the ``cosign`` commands a reviewer runs;
- :mod:`.policies`: Kyverno ``ClusterPolicy`` and policy-controller ``ClusterImagePolicy``
  resources from the locks and the matrix; :mod:`.crd` validates them against the real CRDs;
- :mod:`.stage`: the entry points (``provenance``, ``policies``, and the two qualify checks).

Only :mod:`.registry` (the :class:`ArtifactSource` over the project's registry client) uses the
network.
"""

from .crd import Crd, load_crd, schema_errors, unknown_fields, validate_files, validate_resources
from .interface import ArtifactMissing, ArtifactSource, ArtifactTampered, Descriptor, RawManifest
from .keyless import KeylessVerifier
from .keys import KeyAlgorithm, PublicKey
from .locked import LockedImage, locked_images
from .matrix import (
    PROVENANCE_FILE,
    Facet,
    Gap,
    Mitigation,
    Problem,
    Profile,
    ProvenanceFormat,
    ProvenanceMatrix,
    SbomFormat,
    Signer,
    SigningMode,
    SigstoreInstance,
    check,
    load_matrix,
    problems,
)
from .policies import (
    ALLOWLIST_MESSAGE,
    ALLOWLIST_POLICY,
    VERIFY_POLICY,
    KyvernoApi,
    WriteResult,
    render_policies,
    write_policies,
)
from .report import MATRIX_DOC, cosign_commands, render_matrix
from .stage import CRD_FILES, ProvenanceResult, check_document, check_policies, check_provenance, policies, provenance
from .verify import Evidence, ImageVerification, Status, Verdict, require_verified, verify_image, verify_images

__all__ = [
    "ALLOWLIST_MESSAGE",
    "ALLOWLIST_POLICY",
    "CRD_FILES",
    "MATRIX_DOC",
    "PROVENANCE_FILE",
    "VERIFY_POLICY",
    "ArtifactMissing",
    "ArtifactSource",
    "ArtifactTampered",
    "Crd",
    "Descriptor",
    "Evidence",
    "Facet",
    "Gap",
    "ImageVerification",
    "KeyAlgorithm",
    "KeylessVerifier",
    "KyvernoApi",
    "LockedImage",
    "Mitigation",
    "Problem",
    "Profile",
    "ProvenanceFormat",
    "ProvenanceMatrix",
    "ProvenanceResult",
    "PublicKey",
    "RawManifest",
    "SbomFormat",
    "Signer",
    "SigningMode",
    "SigstoreInstance",
    "Status",
    "Verdict",
    "WriteResult",
    "check",
    "check_document",
    "check_policies",
    "check_provenance",
    "cosign_commands",
    "load_crd",
    "load_matrix",
    "locked_images",
    "policies",
    "problems",
    "provenance",
    "render_matrix",
    "render_policies",
    "require_verified",
    "schema_errors",
    "unknown_fields",
    "validate_files",
    "validate_resources",
    "verify_image",
    "verify_images",
    "write_policies",
]
