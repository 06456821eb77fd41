"""With no Dagger engine reachable, the Dagger backend fails in well under a second, says so and how to
get one, and never lets the SDK download a CLI (this machine has no engine: these are real conditions).
"""

from __future__ import annotations

import socket
import stat
import time
from pathlib import Path

import pytest

from pipeline.backends import Stage, get_backend
from pipeline.backends.dagger import ENGINE_HINT, DaggerBackend, find_engine
from pipeline.errors import BackendError, UsageError
from tests.backends.conftest import PlanFactory


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _executable(path: Path) -> str:
    path.write_text("#!/bin/sh\nexit 1\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


@pytest.fixture
def bare(tmp_path: Path) -> Path:
    """An empty PATH directory: no dagger CLI, no container runtime."""
    path = tmp_path / "bin"
    path.mkdir()
    return path


def test_no_session_and_no_cli(bare: Path) -> None:
    with pytest.raises(BackendError) as caught:
        find_engine({"PATH": str(bare)})
    assert caught.value.message == ("no Dagger engine is reachable: DAGGER_SESSION_PORT is not set and no dagger "
                                    "CLI is installed (none on PATH)")
    assert caught.value.hint == ENGINE_HINT
    assert caught.value.exit_code == 2
    assert "install Docker or Podman and the dagger CLI" in ENGINE_HINT
    assert "DAGGER_SESSION_PORT and DAGGER_SESSION_TOKEN" in ENGINE_HINT


def test_a_session_port_nobody_listens_on_fails_within_the_probe(bare: Path) -> None:
    port = _dead_port()
    started = time.monotonic()
    with pytest.raises(BackendError, match=rf"nothing accepts connections on 127\.0\.0\.1:{port}"):
        find_engine({"PATH": str(bare), "DAGGER_SESSION_PORT": str(port), "DAGGER_SESSION_TOKEN": "t"})
    assert time.monotonic() - started < 3


@pytest.mark.parametrize(("env", "message"), [
    ({"DAGGER_SESSION_PORT": "8080"}, "DAGGER_SESSION_PORT is set but DAGGER_SESSION_TOKEN is not"),
    ({"DAGGER_SESSION_PORT": "http", "DAGGER_SESSION_TOKEN": "t"}, "DAGGER_SESSION_PORT 'http' is not a TCP port"),
])
def test_half_set_session_variables(bare: Path, env: dict[str, str], message: str) -> None:
    with pytest.raises(BackendError) as caught:
        find_engine({"PATH": str(bare), **env})
    assert caught.value.message == message


def test_a_cli_without_a_container_runtime(bare: Path) -> None:
    cli = _executable(bare / "dagger")
    with pytest.raises(BackendError) as caught:
        find_engine({"PATH": str(bare)})
    assert caught.value.message == (f"no Dagger engine is reachable: the dagger CLI {cli} needs a container runtime "
                                    "to start its engine, and none of docker, podman, nerdctl, finch is installed")


def test_a_cli_with_a_runtime_is_a_route(bare: Path) -> None:
    cli = _executable(bare / "dagger")
    _executable(bare / "podman")
    route = find_engine({"PATH": str(bare)})
    assert (route.kind, route.where) == ("cli", cli)


def test_a_cli_variable_that_is_not_executable(bare: Path) -> None:
    with pytest.raises(BackendError, match="the dagger CLI '/nonexistent/dagger' is not an executable file"):
        find_engine({"PATH": str(bare), "_EXPERIMENTAL_DAGGER_CLI_BIN": "/nonexistent/dagger"})


def test_run_fails_fast_before_any_download(make_plan: PlanFactory, bare: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    plan = make_plan(Stage.REPRODUCE)
    for name in ("DAGGER_SESSION_PORT", "DAGGER_SESSION_TOKEN", "_EXPERIMENTAL_DAGGER_CLI_BIN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PATH", str(bare))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home/.cache"))
    backend = get_backend("dagger")
    started = time.monotonic()
    with pytest.raises(BackendError, match="no Dagger engine is reachable"):
        backend.check_available()
    with pytest.raises(BackendError, match="no Dagger engine is reachable"):
        DaggerBackend().run(plan)
    assert time.monotonic() - started < 2
    assert not (tmp_path / "home").exists()  # the SDK never reached its CLI download (~/.cache/dagger)


def test_an_unknown_backend_is_a_usage_error() -> None:
    with pytest.raises(UsageError) as caught:
        get_backend("kubernetes")
    assert (caught.value.message, caught.value.hint) == ("no backend named 'kubernetes'",
                                                         "choose one of local, dagger, podman, docker")
