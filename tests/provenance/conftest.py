"""Fixtures of the provenance tests: an image pushed to a real registry, and a source reading it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.images import Origin
from pipeline.provenance import ArtifactSource, LockedImage
from pipeline.provenance.registry import RegistryArtifactSource
from pipeline.registry import RegistryClient, RetryPolicy
from pipeline.vocabulary.digest import Digest
from pipeline.vocabulary.reference import ImageRef
from tests.needs import missing
from tests.provenance.cosign import Subject
from tests.servers import Registry, build_oci_image, push_oci_image

REPOSITORY = "recipe-lab/app"


@dataclass(frozen=True, slots=True, kw_only=True)
class Pushed:
    """An image in the test registry: how to sign it (``subject``) and how a lock names it (``locked``)."""

    registry: Registry
    subject: Subject
    locked: LockedImage

    @property
    def name(self) -> str:
        """``host:port/recipe-lab/app``: what the signed payload names as docker-reference."""
        return self.locked.ref.name


def push_image(registry: Registry, seed: str = "app", *, repository: str = REPOSITORY, tag: str = "v1",
               host: str | None = None) -> Pushed:
    image = build_oci_image(seed)
    digest = push_oci_image(registry, repository, tag, image)
    ref = ImageRef.parse(f"{host or registry.host}/{repository}:{tag}")
    locked = LockedImage(component="app", ref=ref, digest=Digest(digest), origin=Origin.CHART_DEFAULT,
                         platforms=tuple(sorted((p, Digest(d)) for p, d in image.platforms.items())),
                         recipes=("test",))
    subject = Subject(repository=repository, digest=digest, media_type=image.media_type, size=len(image.top))
    return Pushed(registry=registry, subject=subject, locked=locked)


@pytest.fixture
def pushed(registry: Registry) -> Pushed:
    return push_image(registry)


@pytest.fixture
def source() -> Iterator[ArtifactSource]:
    client = RegistryClient(retry=RetryPolicy(attempts=1, base_delay=0.0))
    try:
        yield RegistryArtifactSource(client)
    finally:
        client.close()


#: ``<repo>/../shared``: the real keyless bundles (sigstore/) and CRDs (schemas/) the tests read in place.
SHARED = Path(__file__).resolve().parents[3] / "shared"


def _shared(request: pytest.FixtureRequest, sub: str, probe: str) -> Path:
    if request.node.get_closest_marker("shared") is None:
        pytest.fail(f"a test using the {request.fixturename!r} fixture must be marked @pytest.mark.shared")
    if not (SHARED / sub / probe).is_file():
        missing(f"{SHARED / sub} is not there (it lives in ../shared/{sub})", ci="CI must check out ../shared")
    return SHARED / sub


@pytest.fixture
def sigstore_assets(request: pytest.FixtureRequest) -> Path:
    """Real staging-signed keyless bundles (``@pytest.mark.shared``): skipped when absent, except in CI."""
    return _shared(request, "sigstore", "bundle_v3.txt.sigstore")


@pytest.fixture
def shared_schemas(request: pytest.FixtureRequest) -> Path:
    """The real Kyverno and policy-controller CRDs (``@pytest.mark.shared``)."""
    return _shared(request, "schemas", "kyverno/kyverno.io_clusterpolicies.yaml")
