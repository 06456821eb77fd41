"""The air-gap world (tests/bundle/world.py), made once per session: two registries, a locked catalog, signatures."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.bundle.world import World, make_world


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    if shutil.which("docker-registry") is None:
        pytest.skip("docker-registry is not installed (apt-get install -y docker-registry)")
    made = make_world(tmp_path_factory.mktemp("airgap"))
    try:
        yield made
    finally:
        made.stop()
