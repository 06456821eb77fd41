"""The container backend's settings: ``[tool.recipe-pipeline.backends.container]`` in ``pyproject.toml``.

Input: the project root (a checkout of this project: the Dagger backend installs the project's own
pinned wheels and mounts its own source, so it runs from a checkout). Output: a frozen
:class:`ContainerSettings`. The base image lives with the project's dependency pins, not in the
catalog, because it is part of the toolchain: changing it must not make any lock stale (the lock
records the engine, which is the pinned wheel, identical on every backend). Example::

    [tool.recipe-pipeline.backends.container]
    base-image = "docker.io/library/python:3.11-slim-bookworm@sha256:<64 hex>"
    platform = "linux/amd64"
    python-version = "3.11"
    glibc = "2.36"

``RECIPE_PIPELINE_BASE_IMAGE`` in the environment, when set, replaces ``base-image`` (validated the
same way): how the tests and CI select the image built here (``python -m lab base-image``).

Every key is required and validated: the base image must be pinned by a sha256 digest, the platform
must be one the wheelhouse can be downloaded for, and ``python-version``/``glibc`` say which wheels
fit the image (cp311, manylinux up to glibc 2.36 for Debian bookworm). Errors are
:class:`~pipeline.errors.BackendError` naming ``pyproject.toml`` and the key, with a hint.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BackendError
from ..vocabulary.digest import is_sha256
from ..vocabulary.reference import ImageRef, ImageRefError

__all__ = [
    "BASE_IMAGE_VARIABLE", "PLATFORM_ARCH", "SETTINGS_TABLE", "ContainerSettings", "load_settings", "project_root",
]

SETTINGS_TABLE = "tool.recipe-pipeline.backends.container"
#: The environment variable that replaces the base image of the settings.
BASE_IMAGE_VARIABLE = "RECIPE_PIPELINE_BASE_IMAGE"
#: Container platforms the wheelhouse can be prepared for, and the wheel tag architecture of each.
PLATFORM_ARCH = {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}
_KEYS = ("base-image", "platform", "python-version", "glibc")
_PYTHON = re.compile(r"^3\.[0-9]{1,2}$")
_GLIBC = re.compile(r"^2\.[0-9]{1,2}$")
#: The oldest glibc a manylinux wheel tag names (manylinux2014).
_MANYLINUX_FLOOR = 17


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerSettings:
    """Validated container settings: a digest-pinned base image and what wheels fit it."""

    base_image: ImageRef
    platform: str
    python_version: str
    glibc: str

    def __post_init__(self) -> None:
        if self.base_image.digest is None or not self.base_image.digest.startswith("sha256:"):
            raise ValueError(f"base image {self.base_image} is not pinned by a sha256 digest")
        if self.platform not in PLATFORM_ARCH:
            raise ValueError(f"unsupported platform {self.platform!r}")
        if not _PYTHON.match(self.python_version) or not _GLIBC.match(self.glibc):
            raise ValueError(f"bad python-version {self.python_version!r} or glibc {self.glibc!r}")

    @property
    def wheel_platforms(self) -> tuple[str, ...]:
        """Every manylinux tag a wheel for this image may carry, newest first (pip ``--platform``)."""
        arch = PLATFORM_ARCH[self.platform]
        newest = int(self.glibc.split(".")[1])
        tags = [f"manylinux_2_{minor}_{arch}" for minor in range(newest, _MANYLINUX_FLOOR - 1, -1)]
        return (*tags, f"manylinux2014_{arch}")

    @property
    def abi(self) -> str:
        """The CPython ABI tag of the image's interpreter (``cp311``)."""
        return "cp" + self.python_version.replace(".", "")


def project_root() -> Path:
    """The checkout this package runs from (``pyproject.toml`` and ``requirements/`` beside it)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file() or not (root / "requirements").is_dir():
        raise BackendError(
            f"the Dagger backend runs from a checkout of this project; {root} has no pyproject.toml "
            "and requirements/",
            hint="clone the repository and run 'nox -s reproduce -- --backend dagger' from it",
        )
    return root


def load_settings(root: Path, environ: Mapping[str, str] | None = None) -> ContainerSettings:
    """Read and validate ``[tool.recipe-pipeline.backends.container]`` from ``<root>/pyproject.toml``;
    ``RECIPE_PIPELINE_BASE_IMAGE`` in ``environ`` (default: this process's) replaces the base image."""
    path = root / "pyproject.toml"
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise BackendError(f"cannot read {path.name}: {exc}", path=path.name,
                           hint="fix pyproject.toml (it must be valid TOML)") from exc
    table: Any = document
    for key in SETTINGS_TABLE.split("."):
        table = table.get(key) if isinstance(table, dict) else None
    example = f'[{SETTINGS_TABLE}] with base-image = "docker.io/library/python:3.11-slim-bookworm@sha256:<digest>"'
    if not isinstance(table, dict):
        raise BackendError(f"pyproject.toml has no [{SETTINGS_TABLE}] table", path=path.name,
                           hint=f"add {example}, platform, python-version and glibc")
    unknown = sorted(set(table) - set(_KEYS))
    if unknown:
        raise BackendError(f"[{SETTINGS_TABLE}] has unknown key {unknown[0]!r}", path=path.name,
                           hint=f"the keys are {', '.join(_KEYS)}")
    values: dict[str, str] = {}
    for key in _KEYS:
        value = table.get(key)
        if not isinstance(value, str) or not value.strip():
            raise BackendError(f"[{SETTINGS_TABLE}] {key} is missing or not a string", path=path.name,
                               hint=f"set every key: {', '.join(_KEYS)}")
        values[key] = value.strip()
    override = (os.environ if environ is None else environ).get(BASE_IMAGE_VARIABLE, "").strip()
    return ContainerSettings(
        base_image=_base_image(override, what=BASE_IMAGE_VARIABLE, path=None) if override
        else _base_image(values["base-image"], what=f"[{SETTINGS_TABLE}] base-image", path=path.name),
        platform=_choice(values["platform"], "platform", sorted(PLATFORM_ARCH), path=path.name),
        python_version=_matching(values["python-version"], "python-version", _PYTHON, "3.11", path=path.name),
        glibc=_matching(values["glibc"], "glibc", _GLIBC, "2.36", path=path.name),
    )


def _base_image(text: str, *, what: str, path: str | None) -> ImageRef:
    try:
        ref = ImageRef.parse(text)
    except ImageRefError as exc:
        raise BackendError(f"{what} {text!r} is not an image reference: {exc}", path=path,
                           hint="write it as <registry>/<repository>:<tag>@sha256:<64 hex>") from exc
    if not is_sha256(ref.digest):
        raise BackendError(
            f"{what} {text!r} is not pinned by a sha256 digest", path=path,
            hint="append the image index digest: '@sha256:<64 hex>' (docker buildx imagetools inspect <image>)",
        )
    return ref


def _choice(value: str, key: str, allowed: list[str], *, path: str) -> str:
    if value not in allowed:
        raise BackendError(f"[{SETTINGS_TABLE}] {key} {value!r} is not supported", path=path,
                           hint=f"use one of {', '.join(allowed)}")
    return value


def _matching(value: str, key: str, pattern: re.Pattern[str], example: str, *, path: str) -> str:
    if not pattern.match(value):
        raise BackendError(f"[{SETTINGS_TABLE}] {key} {value!r} is not a version like {example!r}", path=path,
                           hint=f'write it as "{example}"')
    return value
