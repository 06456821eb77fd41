"""``docs/provenance-matrix.md``: the matrix a security reviewer reads, with commands to check it.

Contract of :func:`render_matrix`:

- inputs: the :class:`~pipeline.provenance.matrix.ProvenanceMatrix`, the locked images, and the
  :class:`~pipeline.provenance.verify.ImageVerification` results (``None``: not checked against a
  registry in this run — the document says so instead of guessing);
- output: Markdown bytes: a summary table per component (publisher, image count, signature status
  counts verified / present / absent, signer, SBOM, provenance, the admission policies that
  cover it), the gaps with owner, tracking and mitigation, and per component its images with
  digest, origin and status, and for each image the exact ``cosign verify`` /
  ``cosign verify-attestation`` command (public key or ``--certificate-identity`` /
  ``--certificate-oidc-issuer``, by digest) a reviewer runs to check it;
- guarantees: deterministic (sorted, no time, no absolute path): the same inputs give the same
  bytes.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .locked import LockedImage
from .matrix import ComponentProvenance, Facet, Gap, Profile, ProvenanceMatrix, SigningMode
from .policies import (
    ALLOWLIST_POLICY,
    VERIFY_POLICY,
    allowlisted,
    kyverno_rule_name,
    policy_controller_attestations,
    policy_controller_name,
)
from .verify import ImageVerification, Status, Verdict

__all__ = ["MATRIX_DOC", "cosign_commands", "render_matrix"]

MATRIX_DOC = "docs/provenance-matrix.md"
_LOOPBACK = ("localhost", "127.0.0.1", "[::1]")


@dataclass(frozen=True, slots=True, kw_only=True)
class _Row:
    image: LockedImage
    profile: Profile
    result: ImageVerification | None


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _key_path(profile: Profile, catalog: str, component: str) -> str:
    signer = profile.signing
    if signer.key_file is not None:
        return f"{catalog.rstrip('/')}/{signer.key_file}"
    return f"{component}.pub"


def cosign_commands(image: LockedImage, profile: Profile, *, catalog: str = "recipes") -> list[str]:
    """The commands a reviewer runs to check ``image`` as the matrix declares it."""
    if image.digest is None:
        return [f"# {image.ref}: not locked to a digest yet: nothing to verify"]
    target = f"{image.ref.name}@{image.digest}"
    flags: list[str] = []
    if image.ref.registry.split(":")[0] in _LOOPBACK or image.ref.registry.startswith(_LOOPBACK):
        flags.append("--allow-http-registry")
    signer = profile.signing
    match signer.mode:
        case SigningMode.NONE:
            return [f"cosign tree {' '.join([*flags, shlex.quote(target)])}"
                    "  # signing: none; expect no signature: admitted by digest only"]
        case SigningMode.KEY:
            flags += ["--key", shlex.quote(_key_path(profile, catalog, image.component))]
            if not signer.tlog:
                flags.append("--insecure-ignore-tlog=true")
        case SigningMode.KEYLESS:
            assert signer.identity is not None
            assert signer.issuer is not None
            flags += ["--certificate-identity", shlex.quote(signer.identity),
                      "--certificate-oidc-issuer", shlex.quote(signer.issuer)]
    common = " ".join(flags)
    out = [f"cosign verify {common} {shlex.quote(target)}"]
    for kind in (profile.provenance.cosign_type, profile.sbom.cosign_type):
        if kind is not None:
            out.append(f"cosign verify-attestation --type {kind} {common} {shlex.quote(target)}")
    return out


def _counts(verdicts: Sequence[Verdict | None]) -> str:
    if any(v is None for v in verdicts):
        return "not checked"
    if not verdicts:
        return "no images"
    parts = []
    for status in Status:
        n = sum(1 for v in verdicts if v is not None and v.status is status)
        if n:
            parts.append(f"{status.value} {n}")
    return ", ".join(parts)


def _facet(profile: Profile, facet: Facet, declared: str, verdicts: Sequence[Verdict | None]) -> str:
    gap = profile.gap(facet)
    if gap is not None or declared == "none":
        return f"none{_gap_suffix(gap)}"
    return f"{declared} ({_counts(verdicts)})"


def _gap_suffix(gap: Gap | None) -> str:
    if gap is None:
        return " (no gap recorded)"
    return f" (gap: {gap.tracking or 'no tracking'})"


def _policies(entry: ComponentProvenance, profile: Profile, index: int, rows: Sequence[_Row]) -> str:
    if not rows:
        return "none needed (no locked images)"
    out: list[str] = []
    if profile.signing.signed:
        out.append(f"Kyverno {VERIFY_POLICY}/{kyverno_rule_name(entry.name, index)}")
        name = policy_controller_name(entry.name, index)
        out.append(f"policy-controller {name}" + (f", {name}-attestations"
                                                  if policy_controller_attestations(profile) else ""))
    else:
        out.append(f"policy-controller {policy_controller_name(entry.name, index, signed=False)} (static pass)")
    if any(allowlisted(profile, r.image) for r in rows):
        out.insert(0, f"Kyverno {ALLOWLIST_POLICY}")
    return "; ".join(out)


def render_matrix(matrix: ProvenanceMatrix, images: Sequence[LockedImage],
                  results: Sequence[ImageVerification] | None, *, catalog: str = "recipes") -> bytes:
    """The Markdown document (see the module contract)."""
    by_image: Mapping[tuple[str, str, str | None], ImageVerification] = {
        (r.image.component, str(r.image.ref), r.image.digest): r for r in results or ()
    }
    recipes = sorted({r for i in images for r in i.recipes})
    lines = [
        "# Provenance matrix",
        "",
        f"Generated by `python -m pipeline provenance` from `{catalog}/{matrix.path}` and the lockfiles "
        f"({', '.join(recipes) or 'none'}). Do not edit: change the matrix or the locks and regenerate.",
        "",
        ("Signature status: **checked against the registries** in this run (verified = the declared signer's "
         "signature over the locked digest; present = found but not verified, see the reason; absent = none "
         "found)." if results is not None else
         "Signature status: **not checked** in this run (generated offline); run `python -m pipeline provenance` "
         "with the registries reachable to check every locked digest."),
        "",
        "| component | publisher | images | signature | signer | SBOM | provenance | admission policy |",
        "|---|---|---|---|---|---|---|---|",
    ]
    sections: list[str] = []
    gaps: list[str] = []
    for name, entry in matrix.components.items():
        mine = [i for i in images if i.component == name]
        for index, profile in enumerate(entry.profiles()):
            rows = [_Row(image=i, profile=profile, result=by_image.get((name, str(i.ref), i.digest)) if results
                         is not None else None)
                    for i in mine if entry.profile_for(i.ref) is profile]
            if index > 0 and not rows:
                continue
            sig = [r.result.signature if r.result else None for r in rows]
            lines.append("| " + " | ".join(_cell(c) for c in (
                profile.label, profile.publisher, str(len(rows)),
                _counts(sig) if profile.signing.signed or results is not None else "none declared",
                profile.signing.describe(),
                _facet(profile, Facet.SBOM, profile.sbom.value, [r.result.sbom if r.result else None for r in rows]),
                _facet(profile, Facet.PROVENANCE, profile.provenance.value,
                       [r.result.provenance if r.result else None for r in rows]),
                _policies(entry, profile, index, rows),
            )) + " |")
            gaps.extend(f"| {_cell(profile.label)} | {g.facet.value} | {_cell(g.owner or '**missing**')} | "
                        f"{_cell(g.tracking or '**missing**')} | "
                        f"{_cell(g.mitigation.description if g.mitigation else '**missing**')} | "
                        f"{_cell(g.note or '')} |"
                        for g in profile.gaps)
            sections.extend(_section(profile, rows, catalog=catalog, checked=results is not None))
    if gaps:
        lines += ["", "## Gaps", "", "| component | facet | owner | tracking | mitigation | note |",
                  "|---|---|---|---|---|---|", *gaps]
    lines += ["", *sections]
    return ("\n".join(lines).rstrip() + "\n").encode()


def _section(profile: Profile, rows: Sequence[_Row], *, catalog: str, checked: bool) -> list[str]:
    out = [f"## {profile.label}", "", f"Publisher: {profile.publisher}. Signer: {profile.signing.describe()}.", ""]
    if not rows:
        return [*out, "No locked images.", ""]
    out += ["| image | locked digest | origin | recipes | signature | provenance | SBOM |",
            "|---|---|---|---|---|---|---|"]
    for row in rows:
        result = row.result
        out.append("| " + " | ".join(_cell(c) for c in (
            f"`{row.image.ref}`", f"`{row.image.digest}`" if row.image.digest else "not locked",
            row.image.origin.value, ", ".join(row.image.recipes),
            _status(result.signature) if result else "not checked",
            _status(result.provenance) if result else "not checked",
            _status(result.sbom) if result else "not checked",
        )) + " |")
    out += ["", "Check it yourself:", "", "```sh"]
    signer = profile.signing
    if signer.mode is SigningMode.KEY and signer.key_file is None and signer.key is not None:
        component = rows[0].image.component
        out += [f"cat > {component}.pub <<'EOF'", signer.key.pem.rstrip(), "EOF"]
    seen: set[str] = set()
    for row in rows:
        for command in cosign_commands(row.image, profile, catalog=catalog):
            if command not in seen:
                seen.add(command)
                out.append(command)
    out += ["```", ""]
    if checked:
        out += [f"- `{r.image.ref}`: signature {r.result.signature.status.value}: {r.result.signature.reason}"
                for r in rows if r.result is not None and r.result.signature.status is not Status.VERIFIED
                and (profile.signing.signed or r.result.signature.status is Status.PRESENT)]
        if out[-1] != "":
            out.append("")
    return out


def _status(verdict: Verdict) -> str:
    return verdict.status.value
