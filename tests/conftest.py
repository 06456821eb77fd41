"""Shared pytest fixtures."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import (
    REGISTRY_BINARY,
    FaultProxy,
    HttpRepo,
    Registry,
    TokenRegistry,
    start_basic_registry,
    start_fault_proxy,
    start_http_repo,
    start_registry,
    start_token_registry,
)

ROOT = Path(__file__).resolve().parent.parent

#: Users of the authenticated test registries (bcrypt with 4 rounds; never real credentials).
REGISTRY_USERS = {"alice": "s3cret-Pa55word"}

# ---- real servers on loopback (tests/servers.py): `registry` and `http_repo` -----------------


def _require_marker(request: pytest.FixtureRequest, marker: str) -> None:
    if request.node.get_closest_marker(marker) is None:
        pytest.fail(f"a test using the {request.fixturename!r} fixture must be marked @pytest.mark.{marker}")


def _require_registry_binary() -> None:
    if shutil.which(REGISTRY_BINARY) is None:
        reason = f"{REGISTRY_BINARY!r} is not installed (apt-get install -y docker-registry)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI must install it")
        pytest.skip(reason)


@pytest.fixture
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Registry]:
    """A real docker-registry on 127.0.0.1 (skipped where it is not installed, except in CI)."""
    _require_marker(request, "registry")
    _require_registry_binary()
    running = start_registry(tmp_path / "registry")
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def basic_registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Registry]:
    """A real docker-registry with htpasswd basic auth for :data:`REGISTRY_USERS` (``.credentials``)."""
    _require_marker(request, "registry")
    _require_registry_binary()
    running = start_basic_registry(tmp_path / "basic-registry", users=REGISTRY_USERS)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def token_registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TokenRegistry]:
    """A real docker-registry with ``auth: token`` and the ES256 token server it trusts.

    :data:`REGISTRY_USERS` may push and pull; anonymous clients may pull (change
    ``token_registry.tokens.config`` to refuse them).
    """
    _require_marker(request, "token_registry")
    _require_registry_binary()
    running = start_token_registry(tmp_path / "token-registry", users=REGISTRY_USERS)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def fault_proxy(request: pytest.FixtureRequest, registry: Registry) -> Iterator[FaultProxy]:
    """A fault-injecting proxy on 127.0.0.1 in front of the ``registry`` fixture."""
    _require_marker(request, "fault_proxy")
    proxy = start_fault_proxy(registry.url)
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture
def http_repo(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HttpRepo]:
    """A directory (``http_repo.directory``) served over HTTP on 127.0.0.1."""
    _require_marker(request, "http_repo")
    served = start_http_repo(tmp_path / "http-repo")
    try:
        yield served
    finally:
        served.stop()


# ---- the real AICR catalog in ../shared/aicr/recipes: `aicr_catalog` ------------------------

#: ``<repo>/../shared/aicr/recipes``, computed from this file so it holds from any working directory.
AICR_CATALOG = Path(__file__).resolve().parent.parent.parent / "shared" / "aicr" / "recipes"


@pytest.fixture
def aicr_catalog(request: pytest.FixtureRequest) -> Path:
    """The real AICR catalog (``@pytest.mark.shared`` tests): skipped when absent, except in CI."""
    _require_marker(request, "shared")
    if not (AICR_CATALOG / "registry.yaml").is_file():
        reason = f"the real AICR catalog is not at {AICR_CATALOG} (it lives in ../shared/aicr/recipes)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI must check out ../shared")
        pytest.skip(reason)
    return AICR_CATALOG


@pytest.fixture(autouse=True)
def _no_environment_file(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test reads the machine's environment file (``$PIPELINE_CONFIG`` or the user's
    ``~/.config/recipe-pipeline/config.yaml``): tests that want one pass ``--config`` or set them."""
    monkeypatch.delenv("PIPELINE_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.getbasetemp() / "no-xdg-config"))


@pytest.fixture(scope="session")
def lab_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Our catalog's images on 127.0.0.1:5001, the registry their references name (Kyverno asks it for
    every image an ``ImageValidatingPolicy`` matches). A registry another run started there serves the
    same bytes: the lab's images are deterministic."""
    from lab.registry import LocalRegistryError, serve_catalog_images

    try:
        registry = serve_catalog_images(ROOT / "recipes", storage=tmp_path_factory.mktemp("lab-registry"))
    except LocalRegistryError as exc:
        if "already in use" not in exc.message:
            raise
        yield
        return
    with registry:
        yield
