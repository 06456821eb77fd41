"""Fixtures of the attest tests: a copy of this checkout's catalog and published files, and keys
generated at test time (never committed)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pipeline.__main__ import main
from tests.needs import missing

REPO = Path(__file__).resolve().parents[2]
#: What an attestation covers, and the catalog its locks are checked against.
TREES = ("recipes", "lockfiles", "bom", "docs", "policies")
SHARED = REPO.parent / "shared"


def copy_checkout(dest: Path) -> Path:
    """A checkout with the repository's catalog, locks, BOMs, docs and policies (no .git)."""
    dest.mkdir(parents=True, exist_ok=True)
    for tree in TREES:
        shutil.copytree(REPO / tree, dest / tree)
    return dest


def write_key(directory: Path, curve: ec.EllipticCurve | None = None) -> tuple[Path, Path]:
    """A fresh private key (PKCS#8 PEM) and its public key, generated now."""
    key = ec.generate_private_key(curve or ec.SECP256R1())
    private = directory / "signing.key"
    public = directory / "signing.pub"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


@dataclass(frozen=True)
class Signed:
    """A checkout whose files were attested and signed with ``key`` (public key ``pub``)."""

    root: Path
    key: Path
    pub: Path

    @property
    def out(self) -> Path:
        return self.root / "attestations"


def run(root: Path, *argv: str) -> int:
    """``python -m pipeline ARGV`` with ``root`` as the working directory."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        return main(list(argv))


@pytest.fixture(scope="module")
def signed_template(tmp_path_factory: pytest.TempPathFactory) -> Signed:
    """Attested once per module (attest checks the BOMs, which takes seconds); copy it to tamper."""
    base = tmp_path_factory.mktemp("signed")
    root = copy_checkout(base / "checkout")
    key, pub = write_key(base)
    assert run(root, "attest", "--key", str(key)) == 0
    return Signed(root=root, key=key, pub=pub)


@pytest.fixture
def signed(signed_template: Signed, tmp_path: Path) -> Signed:
    """A private copy of the signed checkout, free to tamper with."""
    root = tmp_path / "checkout"
    shutil.copytree(signed_template.root, root)
    return Signed(root=root, key=signed_template.key, pub=signed_template.pub)


@pytest.fixture
def sigstore_assets(request: pytest.FixtureRequest) -> Path:
    """Real staging-signed keyless bundles in ../shared/sigstore (``@pytest.mark.shared``)."""
    if request.node.get_closest_marker("shared") is None:
        pytest.fail("a test using 'sigstore_assets' must be marked @pytest.mark.shared")
    if not (SHARED / "sigstore" / "bundle_v3.txt.sigstore").is_file():
        missing(f"{SHARED / 'sigstore'} is not there (it lives in ../shared/sigstore)",
                ci="CI must check out ../shared")
    return SHARED / "sigstore"
