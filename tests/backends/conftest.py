"""Fixtures for the backend tests: a tiny catalog, a tiny hashed wheelhouse, plans built from both."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pytest

from pipeline.backends import ContainerSettings, Plan, Stage, build_plan, load_settings
from pipeline.backends.wheelhouse import REQUIREMENTS_NAME
from pipeline.stages import Workspace
from pipeline.vocabulary.digest import Digest, sha256
from tests import factories

#: The checkout under test (its pyproject.toml holds the real container settings).
REPO = Path(__file__).resolve().parents[2]
#: A stand-in wheel: the wheelhouse checks names and hashes, never the contents.
TINY_WHEEL = "tiny_dep-1.0-py3-none-any.whl"
TINY_BYTES = b"PK\x05\x06" + b"\x00" * 18  # an empty zip archive


PlanFactory = Callable[..., Plan]


@pytest.fixture(scope="session")
def settings() -> ContainerSettings:
    return load_settings(REPO)


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
def make_plan(workspace: Workspace, settings: ContainerSettings, requirements: Path, wheelhouse: Path) -> PlanFactory:
    def make(stage: Stage, *, recipes: Sequence[str] = (), expected: Mapping[str, Digest] | None = None,
             ws: Workspace | None = None) -> Plan:
        return build_plan(stage, ws or workspace, settings=settings, project=REPO, requirements=requirements,
                          wheelhouse=wheelhouse, recipes=recipes, expected=expected)

    return make
