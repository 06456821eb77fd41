"""The wheelhouse: hashed pins parsed strictly, every wheel re-verified, downloads that fail say why."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.backends.settings import load_settings
from pipeline.backends.wheelhouse import REQUIREMENTS_NAME, check_wheelhouse, parse_requirements, prepare_wheelhouse
from pipeline.errors import BackendError
from pipeline.vocabulary.digest import sha256
from tests.backends.conftest import REPO, TINY_BYTES, TINY_WHEEL


def test_the_project_s_run_requirements_parse() -> None:
    pins = parse_requirements(REPO / "requirements/run.txt")
    names = {p.name for p in pins}
    assert {"helm-python-sdk", "pyyaml", "httpx"} <= names
    assert all(p.hashes and all(h.startswith("sha256:") for h in p.hashes) for p in pins)


@pytest.mark.parametrize(("text", "message"), [
    ("tiny>=1.0 --hash=sha256:" + "0" * 64 + "\n", "requirement 'tiny>=1.0' is not pinned as name==version"),
    ("tiny==1.0\n", "requirement 'tiny==1.0' has no --hash"),
    ("tiny==1.0 --hash=md5:abc\n", "requirement 'tiny==1.0' has an option '--hash=md5:abc' other than --hash=sha256:…"),
    ("# nothing\n", "requirements file {path} pins nothing"),
])
def test_bad_requirements_are_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "run.txt"
    path.write_text(text)
    with pytest.raises(BackendError) as caught:
        parse_requirements(path)
    assert caught.value.message == message.format(path=path)


def test_a_verified_wheelhouse_passes(wheelhouse: Path, requirements: Path) -> None:
    check_wheelhouse(wheelhouse, parse_requirements(requirements), requirements.read_bytes())


@pytest.mark.parametrize(("change", "message"), [
    ("tamper", "wheel tiny_dep-1.0-py3-none-any.whl in {wh} hashes to {digest}, which is not a pinned hash of "
               "tiny-dep==1.0"),
    ("remove", "wheelhouse {wh} has 0 wheels for tiny-dep==1.0 (expected one)"),
    ("extra", "wheelhouse {wh} holds 'other-2.0-py3-none-any.whl', which no pin asks for"),
    ("junk", "wheelhouse {wh} holds 'notes.txt', which is not a wheel"),
    ("requirements", "wheelhouse {wh} was not made from these requirements"),
])
def test_a_wheelhouse_that_does_not_verify_is_named(wheelhouse: Path, requirements: Path, change: str,
                                                    message: str) -> None:
    tampered = TINY_BYTES + b"!"
    match change:
        case "tamper":
            (wheelhouse / TINY_WHEEL).write_bytes(tampered)
        case "remove":
            (wheelhouse / TINY_WHEEL).unlink()
        case "extra":
            (wheelhouse / "other-2.0-py3-none-any.whl").write_bytes(b"x")
        case "junk":
            (wheelhouse / "notes.txt").write_text("x")
        case "requirements":
            (wheelhouse / REQUIREMENTS_NAME).write_text("other==1\n")
    with pytest.raises(BackendError) as caught:
        check_wheelhouse(wheelhouse, parse_requirements(requirements), requirements.read_bytes())
    assert caught.value.message == message.format(wh=wheelhouse, digest=sha256(tampered))


def test_an_existing_verified_wheelhouse_is_reused_without_pip(tmp_path: Path, requirements: Path) -> None:
    settings = load_settings(REPO)
    with pytest.raises(BackendError, match="pip download of the pinned wheels for linux/amd64"):
        prepare_wheelhouse(requirements, tmp_path / "cache", settings, environ=_offline(tmp_path))
    assert [p.name for p in (tmp_path / "cache/wheelhouse").iterdir()] == []  # nothing half-made
    # Put the verified wheelhouse where prepare_wheelhouse looks, and it is used as is.
    made = _place(tmp_path / "cache", requirements)
    assert prepare_wheelhouse(requirements, tmp_path / "cache", settings, environ=_offline(tmp_path)) == made


def _offline(tmp_path: Path) -> dict[str, str]:
    """pip with no configuration and an index nobody serves: it fails at once, for real."""
    return {"PATH": os.defpath, "HOME": str(tmp_path), "PIP_CONFIG_FILE": os.devnull,
            "PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_RETRIES": "0", "PIP_DEFAULT_TIMEOUT": "2"}


def _place(cache: Path, requirements: Path) -> Path:
    settings = load_settings(REPO)
    key = sha256(requirements.read_bytes() + f"\0{settings.platform}\0{settings.abi}\0{settings.glibc}".encode())
    target = cache / "wheelhouse" / key.removeprefix("sha256:")[:32]
    target.mkdir(parents=True)
    (target / TINY_WHEEL).write_bytes(TINY_BYTES)
    (target / REQUIREMENTS_NAME).write_bytes(requirements.read_bytes())
    return target
