"""``[tool.recipe-pipeline.backends.container]``: the real settings load; every way to get them wrong is pinned."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline.backends.settings import load_settings
from pipeline.errors import BackendError
from tests.backends.conftest import REPO

DIGEST = "sha256:" + "ab" * 32
GOOD = {
    "base-image": f'"docker.io/library/python:3.11-slim-bookworm@{DIGEST}"',
    "platform": '"linux/amd64"',
    "python-version": '"3.11"',
    "glibc": '"2.36"',
}


def _pyproject(root: Path, **values: str | None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    merged = {**GOOD, **values}
    body = "\n".join(f"{k} = {v}" for k, v in merged.items() if v is not None)
    table = "[tool.recipe-pipeline.backends.container]"
    (root / "pyproject.toml").write_text(f'[project]\nname = "x"\n\n{table}\n{body}\n')
    return root


def test_the_project_settings_pin_python_3_11_slim_bookworm_by_digest() -> None:
    settings = load_settings(REPO, {})
    assert re.fullmatch(r"docker\.io/library/python:3\.11-slim-bookworm@sha256:[0-9a-f]{64}", str(settings.base_image))
    assert (settings.platform, settings.python_version, settings.glibc, settings.abi) == (
        "linux/amd64", "3.11", "2.36", "cp311")
    assert settings.wheel_platforms[0] == "manylinux_2_36_x86_64"
    assert settings.wheel_platforms[-2:] == ("manylinux_2_17_x86_64", "manylinux2014_x86_64")


def test_a_short_image_name_is_normalised(tmp_path: Path) -> None:
    root = _pyproject(tmp_path, **{"base-image": f'"python:3.11-slim-bookworm@{DIGEST}"'})
    assert str(load_settings(root, {}).base_image) == f"docker.io/library/python:3.11-slim-bookworm@{DIGEST}"


@pytest.mark.parametrize(("values", "message"), [
    ({"base-image": '"python:3.11-slim-bookworm"'},
     "[tool.recipe-pipeline.backends.container] base-image 'python:3.11-slim-bookworm' is not pinned by a sha256 "
     "digest"),
    ({"base-image": '"Python:3.11"'},
     "[tool.recipe-pipeline.backends.container] base-image 'Python:3.11' is not an image reference: "),
    ({"base-image": None}, "[tool.recipe-pipeline.backends.container] base-image is missing or not a string"),
    ({"platform": '"windows/amd64"'},
     "[tool.recipe-pipeline.backends.container] platform 'windows/amd64' is not supported"),
    ({"python-version": "3.11"},
     "[tool.recipe-pipeline.backends.container] python-version is missing or not a string"),
    ({"glibc": '"bookworm"'},
     "[tool.recipe-pipeline.backends.container] glibc 'bookworm' is not a version like '2.36'"),
    ({"registry": '"x"'}, "[tool.recipe-pipeline.backends.container] has unknown key 'registry'"),
])
def test_bad_settings_are_named(tmp_path: Path, values: dict[str, str | None], message: str) -> None:
    with pytest.raises(BackendError) as caught:
        load_settings(_pyproject(tmp_path, **values), {})
    assert caught.value.message.startswith(message)
    assert str(caught.value).startswith("pyproject.toml: ")
    assert caught.value.hint


def test_a_pyproject_without_the_table(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    with pytest.raises(BackendError) as caught:
        load_settings(tmp_path, {})
    assert caught.value.message == "pyproject.toml has no [tool.recipe-pipeline.backends.container] table"


def test_the_environment_selects_another_base_image(tmp_path: Path) -> None:
    root = _pyproject(tmp_path)
    built = f"127.0.0.1:5000/recipe-pipeline/base:python3.11-bookworm@{DIGEST}"
    assert str(load_settings(root, {"RECIPE_PIPELINE_BASE_IMAGE": built}).base_image) == built
    assert str(load_settings(root, {"RECIPE_PIPELINE_BASE_IMAGE": " "}).base_image).startswith("docker.io/")


def test_an_unpinned_base_image_from_the_environment_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BackendError) as caught:
        load_settings(_pyproject(tmp_path), {"RECIPE_PIPELINE_BASE_IMAGE": "127.0.0.1:5000/base:1"})
    assert str(caught.value) == ("RECIPE_PIPELINE_BASE_IMAGE '127.0.0.1:5000/base:1' is not pinned by a sha256 "
                                 "digest")
    assert caught.value.hint
