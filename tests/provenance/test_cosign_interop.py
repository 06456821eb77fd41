"""cosign interop: real cosign v3.1.3 signatures and attestations, verified by the pipeline and by cosign.

Our lab images are pushed to a registry on 127.0.0.1 (:func:`lab.registry.fill_registry`); a copy of
``recipes/`` reaches it as a mirror of ``localhost:5001`` and is locked against it. A cosign key pair
is made at test time (``cosign generate-key-pair``, ``COSIGN_PASSWORD``); every image of
``accel-operator`` is signed (``cosign sign --key``) and attested (``cosign attest --type
slsaprovenance1`` and ``--type cyclonedx`` with predicates this test writes), with no transparency
log. cosign v3.1.3 writes, by default, Sigstore bundles (v0.3, a DSSE envelope) as OCI 1.1
referrers; distribution 2.8 has no referrers API, so cosign keeps them in the referrers tag schema
(tag ``sha256-<hex>``, an index). The catalog copy's ``provenance.yaml`` declares the key
(``signing: {mode: key, keyFile: keys/cosign.pub}``).

``python -m pipeline provenance --verify`` then passes, and fails (exit 1) for a tampered payload, a
signature for another digest and a wrong key; ``cosign verify`` gives the same verdict in each case.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from lab.registry import fill_registry
from pipeline.__main__ import main
from pipeline.lockfile import load
from pipeline.stages import Workspace, lock_catalog
from pipeline.vocabulary.digest import sha256
from pipeline.vocabulary.reference import ImageRef
from tests.servers import Registry, _push_blob, start_registry
from tests.tools import tool

ROOT = Path(__file__).resolve().parents[2]
COMPONENT = "accel-operator"
#: The images the test signs and the catalog copy declares key-signed (used by this component only).
SIGNED = ("recipe-lab/accel-operator", "recipe-lab/accel-validator")
PASSWORD = "test-only-password"
INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"

pytestmark = [pytest.mark.tools, pytest.mark.registry, pytest.mark.slow]


@dataclass(frozen=True, slots=True)
class Lab:
    registry: Registry
    catalog: Path
    lockdir: Path
    cache: Path
    home: Path
    #: repository → locked digest, for every image of COMPONENT
    images: dict[str, str]

    def ref(self, repository: str, digest: str | None = None) -> str:
        return f"{self.registry.host}/{repository}@{digest or self.images[repository]}"

    def argv(self) -> list[str]:
        return ["provenance", "--verify", "--catalog", str(self.catalog), "--lockdir", str(self.lockdir),
                "--cache", str(self.cache)]


def cosign(lab_home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    binary = tool("cosign")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(lab_home), "COSIGN_PASSWORD": PASSWORD,
           "TUF_ROOT": str(lab_home / "tuf"), "DOCKER_CONFIG": str(lab_home / "docker")}
    done = subprocess.run([str(binary), *args], env=env, cwd=lab_home, capture_output=True, text=True, timeout=180,
                          check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"cosign {' '.join(args)} exited {done.returncode}: {done.stderr[-2000:]}")
    return done


_NO_TLOG = ("--use-signing-config=false", "--tlog-upload=false", "--allow-insecure-registry", "-y")


def cosign_verify(lab: Lab, repository: str, key: str = "cosign.pub") -> bool:
    done = cosign(lab.home, "verify", "--key", key, "--insecure-ignore-tlog", "--allow-insecure-registry",
                  lab.ref(repository), check=False)
    return done.returncode == 0


def _set_signed(catalog: Path, key_file: str) -> None:
    path = catalog / "provenance.yaml"
    data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    entry = data["spec"]["components"][COMPONENT]
    entry["overrides"] = [
        {"images": f"localhost:5001/{repository}", "publisher": "recipe-lab test signer (cosign key pair)",
         "signing": {"mode": "key", "keyFile": key_file}, "provenance": "slsa-v1", "sbom": "cyclonedx", "gaps": []}
        for repository in SIGNED]
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    tool("cosign")  # skip (or fail under CI) before any work
    root = tmp_path_factory.mktemp("cosign-interop")
    registry = start_registry(root / "registry")
    try:
        fill_registry(ROOT / "recipes", registry.url)
        catalog = root / "catalog"
        shutil.copytree(ROOT / "recipes", catalog)
        config_path = catalog / "pipeline.yaml"
        config: Any = yaml.safe_load(config_path.read_text(encoding="utf-8"))
        config["spec"]["registries"] = {"mirrors": {"localhost:5001": {
            "endpoints": [f"http://{registry.host}"], "skipUpstream": True}}}
        config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        ws = Workspace(catalog=catalog, lockdir=root / "locks", cache=root / "cache", workers=2)
        lock_catalog(ws)
        images: dict[str, str] = {}
        for path in sorted(ws.lockdir.glob("*.lock.json")):
            component = load(path).components.get(COMPONENT)
            for image in component.images if component is not None else ():
                assert image.digest is not None
                repository = ImageRef.parse(image.ref).repository
                if repository in SIGNED:
                    images[repository] = image.digest
        assert sorted(images) == sorted(SIGNED), images
        home = root / "home"
        home.mkdir()
        cosign(home, "generate-key-pair")
        (catalog / "keys").mkdir(exist_ok=True)
        shutil.copy(home / "cosign.pub", catalog / "keys" / "cosign.pub")
        _set_signed(catalog, "keys/cosign.pub")
        lab = Lab(registry=registry, catalog=catalog, lockdir=ws.lockdir, cache=ws.cache, home=home, images=images)
        for repository, digest in sorted(images.items()):
            name = f"{registry.host}/{repository}"
            _predicates(home, name, digest)
            cosign(home, "sign", "--key", "cosign.key", *_NO_TLOG, lab.ref(repository))
            cosign(home, "attest", "--key", "cosign.key", *_NO_TLOG, "--type", "slsaprovenance1",
                   "--predicate", str(home / "slsa.json"), lab.ref(repository))
            cosign(home, "attest", "--key", "cosign.key", *_NO_TLOG, "--type", "cyclonedx",
                   "--predicate", str(home / "cdx.json"), lab.ref(repository))
        yield lab
    finally:
        registry.stop()


def _predicates(home: Path, name: str, digest: str) -> None:
    slsa = {"buildDefinition": {"buildType": "https://recipe-lab.example/lab-images/v1",
                                "externalParameters": {"image": name}, "resolvedDependencies": []},
            "runDetails": {"builder": {"id": "https://recipe-lab.example/lab"}, "metadata": {}}}
    cdx = {"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1,
           "metadata": {"component": {"type": "container", "name": name, "version": digest}}}
    (home / "slsa.json").write_text(json.dumps(slsa), encoding="utf-8")
    (home / "cdx.json").write_text(json.dumps(cdx), encoding="utf-8")


# --- the registry's referrers tag schema (what cosign v3 writes here) ------------------------------


def _get(lab: Lab, repository: str, reference: str, accept: str) -> httpx.Response:
    reply = httpx.get(f"{lab.registry.url}/v2/{repository}/manifests/{reference}", headers={"Accept": accept})
    reply.raise_for_status()
    return reply


def _put_manifest(lab: Lab, repository: str, reference: str, body: bytes, media_type: str) -> str:
    reply = httpx.put(f"{lab.registry.url}/v2/{repository}/manifests/{reference}", content=body,
                      headers={"Content-Type": media_type})
    reply.raise_for_status()
    return sha256(body)


def _put_blob(lab: Lab, repository: str, data: bytes) -> str:
    with httpx.Client(base_url=lab.registry.url) as client:
        return _push_blob(client, repository, data)


def _tag(digest: str) -> str:
    return digest.replace(":", "-")


def _referrers(lab: Lab, repository: str, digest: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = _get(lab, repository, _tag(digest or lab.images[repository]), INDEX).json()
    return data


def _signatures(lab: Lab, repository: str, index: dict[str, Any]) -> list[dict[str, Any]]:
    """The index entries whose bundle is cosign's image signature (not an attestation)."""
    out = []
    for entry in index["manifests"]:
        manifest = _get(lab, repository, entry["digest"], MANIFEST).json()
        if manifest.get("annotations", {}).get("dev.sigstore.bundle.predicateType") == SIGN_PREDICATE:
            out.append(entry)
    return out


@pytest.fixture
def restore(lab: Lab) -> Iterator[None]:
    """Put every referrers index of the lab back as cosign wrote it after a tampering case."""
    saved = {repo: _get(lab, repo, _tag(digest), INDEX).content for repo, digest in lab.images.items()}
    yield
    for repo, body in saved.items():
        _put_manifest(lab, repo, _tag(lab.images[repo]), body, INDEX)


def _replace_referrers(lab: Lab, repository: str, entries: list[dict[str, Any]], *,
                       only: set[str] | None = None) -> None:
    """List ``entries`` as the image's referrers instead of its own (or instead of those in ``only``)."""
    index = _referrers(lab, repository)
    index["manifests"] = [e for e in index["manifests"] if only is not None and e["digest"] not in only] + entries
    _put_manifest(lab, repository, _tag(lab.images[repository]), json.dumps(index).encode(), INDEX)


def _tampered(lab: Lab, repository: str, entry: dict[str, Any]) -> dict[str, Any]:
    """A copy of the bundle manifest ``entry`` whose signed statement was changed after signing."""
    manifest = _get(lab, repository, entry["digest"], MANIFEST).json()
    layer = manifest["layers"][0]
    bundle = json.loads(httpx.get(f"{lab.registry.url}/v2/{repository}/blobs/{layer['digest']}").content)
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    statement["predicate"] = {"tampered": True}
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    data = json.dumps(bundle).encode()
    layer.update({"digest": _put_blob(lab, repository, data), "size": len(data)})
    body = json.dumps(manifest).encode()
    _put_manifest(lab, repository, sha256(body), body, MANIFEST)
    return {**entry, "digest": sha256(body), "size": len(body)}


def _verdict(lab: Lab, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(lab.argv())
    captured = capsys.readouterr()
    return code, captured.out + captured.err


# --- the cases --------------------------------------------------------------------------------------


def test_cosign_v3_writes_sigstore_bundles_in_the_referrers_tag_schema(lab: Lab) -> None:
    repository = sorted(lab.images)[0]
    index = _referrers(lab, repository)
    types = {e.get("artifactType") for e in index["manifests"]}
    assert types == {"application/vnd.dev.sigstore.bundle.v0.3+json"}
    predicates = sorted(_get(lab, repository, e["digest"], MANIFEST).json()["annotations"]
                        ["dev.sigstore.bundle.predicateType"] for e in index["manifests"])
    assert predicates == sorted(["https://cyclonedx.org/bom", "https://slsa.dev/provenance/v1", SIGN_PREDICATE])
    tags = httpx.get(f"{lab.registry.url}/v2/{repository}/tags/list").json()["tags"]
    assert not any(t.endswith((".sig", ".att")) for t in tags)  # no legacy tags by default


def test_signed_and_attested_lab_images_verify(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    code, output = _verdict(lab, capsys)
    assert code == 0, output
    assert f"{len(lab.images)} verified" in output
    assert all(cosign_verify(lab, repository) for repository in lab.images)
    for repository in lab.images:
        for kind in ("slsaprovenance1", "cyclonedx"):
            done = cosign(lab.home, "verify-attestation", "--key", "cosign.pub", "--insecure-ignore-tlog",
                          "--allow-insecure-registry", "--type", kind, lab.ref(repository), check=False)
            assert done.returncode == 0, done.stderr[-1000:]


def test_a_tampered_payload_fails_both(lab: Lab, restore: None, capsys: pytest.CaptureFixture[str]) -> None:
    """Every bundle of the image (signature and attestations) with its statement changed after signing."""
    repository = sorted(lab.images)[0]
    entries = _referrers(lab, repository)["manifests"]
    _replace_referrers(lab, repository, [_tampered(lab, repository, entry) for entry in entries])
    code, output = _verdict(lab, capsys)
    assert code == 1, output
    assert "no signature of the Sigstore bundle verifies with the declared" in output
    assert not cosign_verify(lab, repository)


def test_signatures_for_another_digest_fail_both(lab: Lab, restore: None, capsys: pytest.CaptureFixture[str]) -> None:
    """The other image's signature and attestations, copied into this repository and listed as its referrers."""
    victim, donor = sorted(lab.images)[:2]
    entries = _referrers(lab, donor)["manifests"]
    for entry in entries:
        manifest = _get(lab, donor, entry["digest"], MANIFEST)
        for layer in [*manifest.json()["layers"], manifest.json()["config"]]:
            _put_blob(lab, victim, httpx.get(f"{lab.registry.url}/v2/{donor}/blobs/{layer['digest']}").content)
        _put_manifest(lab, victim, entry["digest"], manifest.content, MANIFEST)
    _replace_referrers(lab, victim, entries)
    code, output = _verdict(lab, capsys)
    assert code == 1, output
    assert f"not the locked digest {lab.images[victim]}: it is for another image" in output
    assert not cosign_verify(lab, victim)


def test_cosign_verify_counts_an_attestation_as_a_signature_and_we_do_not(
        lab: Lab, restore: None, capsys: pytest.CaptureFixture[str]) -> None:
    """The one difference of verdict (README "cosign"): only the signature bundle is tampered with.

    ``cosign verify`` v3.1.3 accepts any bundle the key signed about the digest, attestations
    included, so it passes; the pipeline wants cosign's own signature statement
    (``https://sigstore.dev/cosign/sign/v1``) for the signature facet, so it fails.
    """
    repository = sorted(lab.images)[0]
    (entry,) = _signatures(lab, repository, _referrers(lab, repository))
    _replace_referrers(lab, repository, [_tampered(lab, repository, entry)], only={entry["digest"]})
    code, output = _verdict(lab, capsys)
    assert code == 1, output
    assert "signature present: no signature of the Sigstore bundle verifies" in output
    assert cosign_verify(lab, repository)


def test_a_wrong_key_fails_both(lab: Lab, restore: None, capsys: pytest.CaptureFixture[str]) -> None:
    other = lab.home / "other"
    other.mkdir(exist_ok=True)
    cosign(other, "generate-key-pair")
    shutil.copy(other / "cosign.pub", lab.catalog / "keys" / "other.pub")
    _set_signed(lab.catalog, "keys/other.pub")
    try:
        code, output = _verdict(lab, capsys)
        assert code == 1, output
        assert "no signature of the Sigstore bundle verifies with the declared" in output
        assert not any(cosign_verify(lab, repository, key=str(other / "cosign.pub")) for repository in lab.images)
    finally:
        _set_signed(lab.catalog, "keys/cosign.pub")
