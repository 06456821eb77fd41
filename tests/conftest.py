"""Shared pytest fixtures."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from tests.needs import missing, require_marker
from tests.servers import (
    REGISTRY_BINARY,
    FaultProxy,
    HttpRepo,
    Registry,
    Stoppable,
    TokenRegistry,
    start_basic_registry,
    start_fault_proxy,
    start_http_repo,
    start_registry,
    start_token_registry,
)

ROOT = Path(__file__).resolve().parent.parent

S = TypeVar("S", bound=Stoppable)

#: Users of the authenticated test registries (bcrypt with 4 rounds; never real credentials).
REGISTRY_USERS = {"alice": "s3cret-Pa55word"}

# ---- real servers on loopback (tests/servers.py): `registry` and `http_repo` -----------------


def _require_registry_binary() -> None:
    if shutil.which(REGISTRY_BINARY) is None:
        missing(f"{REGISTRY_BINARY!r} is not installed (apt-get install -y docker-registry)")


def _serve(request: pytest.FixtureRequest, marker: str, start: Callable[[], S], *, binary: bool = True) -> Iterator[S]:
    """What ``start()`` runs, for a test marked ``marker`` (with the registry binary, unless not ``binary``),
    stopped after the test."""
    require_marker(request, marker)
    if binary:
        _require_registry_binary()
    with start() as running:
        yield running


@pytest.fixture
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Registry]:
    """A real docker-registry on 127.0.0.1 (skipped where it is not installed, except in CI)."""
    yield from _serve(request, "registry", lambda: start_registry(tmp_path / "registry"))


@pytest.fixture
def basic_registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Registry]:
    """A real docker-registry with htpasswd basic auth for :data:`REGISTRY_USERS` (``.credentials``)."""
    yield from _serve(request, "registry",
                      lambda: start_basic_registry(tmp_path / "basic-registry", users=REGISTRY_USERS))


@pytest.fixture
def token_registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TokenRegistry]:
    """A real docker-registry with ``auth: token`` and the ES256 token server it trusts.

    :data:`REGISTRY_USERS` may push and pull; anonymous clients may pull (change
    ``token_registry.tokens.config`` to refuse them).
    """
    yield from _serve(request, "token_registry",
                      lambda: start_token_registry(tmp_path / "token-registry", users=REGISTRY_USERS))


@pytest.fixture
def fault_proxy(request: pytest.FixtureRequest, registry: Registry) -> Iterator[FaultProxy]:
    """A fault-injecting proxy on 127.0.0.1 in front of the ``registry`` fixture."""
    yield from _serve(request, "fault_proxy", lambda: start_fault_proxy(registry.url), binary=False)


@pytest.fixture
def http_repo(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HttpRepo]:
    """A directory (``http_repo.directory``) served over HTTP on 127.0.0.1."""
    yield from _serve(request, "http_repo", lambda: start_http_repo(tmp_path / "http-repo"), binary=False)


# ---- the real AICR catalog in ../shared/aicr/recipes: `aicr_catalog` ------------------------

#: ``<repo>/../shared/aicr/recipes``, computed from this file so it holds from any working directory.
AICR_CATALOG = Path(__file__).resolve().parent.parent.parent / "shared" / "aicr" / "recipes"


@pytest.fixture
def aicr_catalog(request: pytest.FixtureRequest) -> Path:
    """The real AICR catalog (``@pytest.mark.shared`` tests): skipped when absent, except in CI."""
    require_marker(request, "shared")
    if not (AICR_CATALOG / "registry.yaml").is_file():
        missing(f"the real AICR catalog is not at {AICR_CATALOG} (it lives in ../shared/aicr/recipes)",
                ci="CI must check out ../shared")
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
