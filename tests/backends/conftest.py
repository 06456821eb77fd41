"""Fixtures for the backend tests: a tiny catalog, a tiny hashed wheelhouse, plans built from both; and
``containers``: real podman with runc and the base image built here, served from a registry on loopback."""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from lab.base_image import build_base_image, default_cache, load_base_spec, push_base_image
from pipeline.backends import ContainerSettings, Plan, Stage, build_plan, load_settings, prepare_wheelhouse
from pipeline.backends.settings import BASE_IMAGE_VARIABLE
from pipeline.backends.wheelhouse import REQUIREMENTS_NAME
from pipeline.stages import Workspace
from pipeline.vocabulary.digest import Digest, sha256
from tests import factories
from tests.needs import missing
from tests.servers import REGISTRY_BINARY, start_registry

#: The checkout under test (its pyproject.toml holds the real container settings).
REPO = Path(__file__).resolve().parents[2]
#: A stand-in wheel: the wheelhouse checks names and hashes, never the contents.
TINY_WHEEL = "tiny_dep-1.0-py3-none-any.whl"
TINY_BYTES = b"PK\x05\x06" + b"\x00" * 18  # an empty zip archive


PlanFactory = Callable[..., Plan]


@pytest.fixture(scope="session")
def settings() -> ContainerSettings:
    return load_settings(REPO, {})


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    factories.catalog(tmp_path / "catalog")
    return Workspace(catalog=tmp_path / "catalog", lockdir=tmp_path / "locks", cache=tmp_path / "cache", workers=1)


@pytest.fixture
def offline_workspace(workspace: Workspace) -> Workspace:
    """The same workspace locking without asking registries (the factory catalog's are not reachable)."""
    return dataclasses.replace(workspace, resolve=False)


def tiny_requirements(directory: Path) -> Path:
    """A hashed requirements file with one pin, ``tiny-dep==1.0``, whose hash is :data:`TINY_BYTES`'s."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "run.txt"
    digest = sha256(TINY_BYTES).removeprefix("sha256:")
    path.write_text(f"tiny-dep==1.0 \\\n    --hash=sha256:{digest}\n    # via nothing\n")
    return path


@pytest.fixture
def requirements(tmp_path: Path) -> Path:
    return tiny_requirements(tmp_path / "requirements")


@pytest.fixture
def wheelhouse(tmp_path: Path, requirements: Path) -> Path:
    path = tmp_path / "wheelhouse"
    path.mkdir()
    (path / TINY_WHEEL).write_bytes(TINY_BYTES)
    (path / REQUIREMENTS_NAME).write_bytes(requirements.read_bytes())
    return path


@pytest.fixture
def make_plan(offline_workspace: Workspace, settings: ContainerSettings, requirements: Path,
              wheelhouse: Path) -> PlanFactory:
    """Plans over the tiny catalog; by default its offline workspace (the host resolves nothing)."""

    def make(stage: Stage, *, recipes: Sequence[str] = (), expected: Mapping[str, Digest] | None = None,
             ws: Workspace | None = None) -> Plan:
        return build_plan(stage, ws or offline_workspace, settings=settings, project=REPO, requirements=requirements,
                          wheelhouse=wheelhouse, recipes=recipes, expected=expected)

    return make


# ---- real containers: podman + runc, the base image built here, served from a registry on loopback ----


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Containers:
    """What a podman test needs: the environment selecting the base image, and a wheelhouse to reuse."""

    env: Mapping[str, str]
    base_image: str
    wheelhouse: Path

    def cache(self, path: Path) -> Path:
        """A fresh ``--cache`` directory that reuses the session's downloaded wheelhouse."""
        path.mkdir(parents=True)
        (path / "wheelhouse").symlink_to(self.wheelhouse, target_is_directory=True)
        return path


def _require(what: str, ok: bool, install: str) -> None:
    if ok:
        return
    missing(f"{what} is not installed ({install})")


@pytest.fixture(scope="session")
def containers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Containers]:
    """podman with runc, the base image (built once per machine, cached) pushed to a real registry on loopback.

    Tests using it are marked ``@pytest.mark.containers`` (deselect them with ``-m 'not containers'``).
    """
    _require("podman", shutil.which("podman") is not None and shutil.which("runc") is not None,
             "apt-get install -y podman runc")
    _require("docker-registry", shutil.which(REGISTRY_BINARY) is not None, "apt-get install -y docker-registry")
    cached = (default_cache() / "base-image" / load_base_spec().key / "manifest.json").is_file()
    _require("debootstrap", cached or shutil.which("debootstrap") is not None, "apt-get install -y debootstrap")
    built = build_base_image(load_base_spec(), cache=default_cache())
    registry = start_registry(tmp_path_factory.mktemp("base-registry"))
    try:
        push_base_image(built, registry.host)
        reference = str(built.reference(registry.host))
        env = {**os.environ, BASE_IMAGE_VARIABLE: reference}
        wheels = tmp_path_factory.mktemp("wheels")
        settings = load_settings(REPO, env)
        wheelhouse = prepare_wheelhouse(REPO / "requirements/run.txt", wheels, settings)
        yield Containers(env=env, base_image=reference, wheelhouse=wheelhouse)
    finally:
        registry.stop()
