"""``python -m pipeline lock`` against hostile registries on loopback (issue 17, items 3 and 4, end to end).

Each test runs the real command in a subprocess against a small catalog whose image lives on a
registry the test serves on 127.0.0.1: one that echoes the ``Authorization`` header in its 401
bodies (no credential may appear anywhere: stdout, stderr, lockfiles, the cache), one that never
answers, one that trickles a byte a second. Each must fail with exit 2, a message naming the
registry and the deadline, no traceback, and the lockfiles untouched.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.errors import RecipeError
from pipeline.recipes.config import load_config
from pipeline.registry_config import DEFAULT_IMAGE_DEADLINE, DEFAULT_REQUEST_DEADLINE
from tests.factories import DEPLOYMENT, SERVICE_ACCOUNT, catalog, write_files
from tests.servers import QuietHandler, silent_server, start_server

ROOT = Path(__file__).resolve().parents[2]
USER = "ci-bot"
PASSWORD = "wr0ng-Pa55word-7f3c"
BASIC = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
TOKEN = "eyJhbGciOiJFUzI1NiJ9.c2VjcmV0LWJlYXJlci10b2tlbi12YWx1ZQ.sIgNaTuRe-42"


def _work(tmp_path: Path, host: str) -> Path:
    """A catalog whose one image is ``<host>/example/app:1.1``, and an existing lockfile to protect."""
    work = tmp_path / "work"
    catalog(work / "recipes", chart_templates={"deployment.yaml": DEPLOYMENT, "serviceaccount.yaml": SERVICE_ACCOUNT},
            extra={"components/app/values.yaml": f"image:\n  repository: {host}/example/app\n  tag: \"1.1\"\n"})
    write_files(work, {"lockfiles/eks.lock.json": "{\"previous\": true}\n"})
    return work


def _lock(work: Path, *args: str, env: dict[str, str] | None = None,
          timeout: float = 60) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "-v", "lock", "--catalog", "recipes", "--lockdir", "lockfiles",
         "--cache", ".pipeline-cache", "--workers", "1", *args],
        cwd=work, capture_output=True, text=True, timeout=timeout, check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )
    return proc, time.monotonic() - started


# ---- 401 bodies that echo the credentials ---------------------------------------------------------


class _Echo(QuietHandler):
    """A registry whose 401 bodies echo the Authorization header back (as some proxies do).

    ``mode``: ``basic`` (the registry asks for Basic auth), ``token`` (the token server issues a
    token, the registry refuses it and echoes ``Bearer <token>``), ``token-refused`` (the token
    server refuses the password and echoes ``Basic <base64>``).
    """

    mode = "basic"

    def _answer(self, status: int, body: dict[str, object], headers: dict[str, str] | None = None) -> None:
        self.answer(status, json.dumps(body).encode(), {**(headers or {}), "Content-Type": "application/json"})

    def _echo(self, challenge: str) -> None:
        sent = self.headers.get("Authorization", "")
        self._answer(401, {"errors": [{"code": "UNAUTHORIZED", "message": f"rejected Authorization: {sent}",
                                        "detail": {"authorization": sent, "token": sent.partition(" ")[2]}}]},
                     {"WWW-Authenticate": challenge})

    def do_HEAD(self) -> None:
        # no HEAD here: the client GETs by tag, and that 401 carries the echoing body
        self._answer(405, {"errors": [{"code": "UNSUPPORTED", "message": "HEAD not supported"}]})

    def do_GET(self) -> None:
        host = self.headers.get("Host", "")
        if self.path.startswith("/token"):
            if self.mode == "token-refused":
                self._echo(f'Basic realm="http://{host}/token"')
            else:
                self._answer(200, {"token": TOKEN, "access_token": TOKEN, "expires_in": 300})
            return
        if self.mode == "basic":
            self._echo('Basic realm="echo"')
        else:
            self._echo(f'Bearer realm="http://{host}/token",service="echo",'
                       'scope="repository:example/app:pull"')


@pytest.mark.parametrize("mode", ["basic", "token", "token-refused"])
def test_a_401_that_echoes_the_credentials_leaks_them_nowhere(tmp_path: Path, mode: str) -> None:
    handler = type(f"_Echo_{mode.replace('-', '_')}", (_Echo,), {"mode": mode})
    with start_server(handler) as served:
        host = served.host
        work = _work(tmp_path, host)
        docker = tmp_path / "docker"  # outside the scanned tree: it holds the password by design
        docker.mkdir()
        (docker / "config.json").write_text(json.dumps({"auths": {host: {"auth": BASIC}}}))
        before = (work / "lockfiles/eks.lock.json").read_bytes()
        proc, _ = _lock(work, "--registry-timeout", "20", env={"DOCKER_CONFIG": str(docker)})
    assert proc.returncode == 2, proc.stderr
    expected = (f"the token service http://{host}/token of registry '{host}' refused the credentials of user "
                f"'{USER}'" if mode == "token-refused"
                else f"refused access to manifest of '{host}/example/app:1.1' for user '{USER}'")
    assert expected in proc.stderr
    assert "rejected Authorization" in proc.stderr or mode == "token-refused"  # the body was logged, redacted
    assert "Traceback" not in proc.stderr
    assert (work / "lockfiles/eks.lock.json").read_bytes() == before
    secrets = (PASSWORD, BASIC, TOKEN, TOKEN.split(".")[1], base64.b64encode(PASSWORD.encode()).decode())
    for stream in (proc.stdout, proc.stderr):
        for secret in secrets:
            assert secret not in stream
    scanned = 0
    for path in work.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            scanned += 1
            for secret in secrets:
                assert secret.encode() not in data, f"{secret!r} leaked into {path}"
    assert scanned > 5  # the catalog, the lockfile, and the cache the run filled (charts, store)
    assert (work / ".pipeline-cache").is_dir()


# ---- deadlines ------------------------------------------------------------------------------------


@pytest.fixture
def silent_host() -> Iterator[str]:
    """A loopback socket that accepts connections and never answers."""
    with silent_server(backlog=64) as host:
        yield host


def test_a_silent_registry_fails_lock_within_30_seconds_by_default(tmp_path: Path, silent_host: str) -> None:
    assert DEFAULT_REQUEST_DEADLINE <= DEFAULT_IMAGE_DEADLINE <= 30
    work = _work(tmp_path, silent_host)
    before = (work / "lockfiles/eks.lock.json").read_bytes()
    proc, elapsed = _lock(work)
    assert proc.returncode == 2, proc.stderr
    assert elapsed < 30 + 5  # 30 s of deadline; the rest is interpreter start-up and the render
    assert (f"cannot fetch manifest of '{silent_host}/example/app:1.1' at registry '{silent_host}'"
            in proc.stderr)
    assert "no complete answer within the 25 s deadline per request" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert (work / "lockfiles/eks.lock.json").read_bytes() == before


def test_registry_timeout_bounds_all_requests_of_an_image(tmp_path: Path, silent_host: str) -> None:
    work = _work(tmp_path, silent_host)
    proc, elapsed = _lock(work, "--registry-timeout", "2")
    assert proc.returncode == 2, proc.stderr
    assert elapsed < 20
    error = next(line for line in proc.stderr.splitlines() if line.startswith("error: "))
    assert error.startswith(f"error: cannot fetch manifest of '{silent_host}/example/app:1.1' at registry "
                            f"'{silent_host}' from http://{silent_host}/v2/example/app/manifests/1.1: no complete "
                            f"answer within the 2 s deadline for image '{silent_host}/example/app:1.1'")
    assert ("hint: check that the server is up and answering; raise it with --registry-timeout SECONDS or "
            "registries.imageDeadline in pipeline.yaml if the registry is merely slow") in proc.stderr


class _Trickle(QuietHandler):
    """Answers at once with headers, then sends the body one byte per second."""

    def do_HEAD(self) -> None:
        self.answer(200, b"", {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, length=4096)

    def do_GET(self) -> None:
        self.do_HEAD()
        try:
            for _ in range(4096):
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(1)
        except OSError:
            return


def test_a_registry_that_trickles_a_byte_a_second_is_cut_off_at_the_deadline(tmp_path: Path) -> None:
    with start_server(_Trickle) as served:
        work = _work(tmp_path, served.host)
        write_files(work, {"recipes/pipeline.yaml": (
            "apiVersion: pipeline.recipes.dev/v1\nkind: PipelineConfig\n"
            "spec:\n  registries:\n    requestDeadline: 3\n    imageDeadline: 4\n")})
        proc, elapsed = _lock(work)
    assert proc.returncode == 2, proc.stderr
    assert elapsed < 20
    assert "no complete answer within the 3 s deadline per request" in proc.stderr
    assert "the body was still arriving at the deadline" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(("snippet", "message", "line"), [
    ("requestDeadline: 0", "registries.requestDeadline must be a number of seconds in (0, 3600], not 0", 5),
    ("imageDeadline: soon", "registries.imageDeadline must be a number of seconds in (0, 3600], not 'soon'", 5),
    ("imageDeadline: true", "registries.imageDeadline must be a number of seconds in (0, 3600], not True", 5),
    ("imageDeadlines: 3", "unknown key 'imageDeadlines' in registries (did you mean 'imageDeadline'?)", 5),
])
def test_deadline_settings_are_checked_with_file_and_line(tmp_path: Path, snippet: str, message: str,
                                                          line: int) -> None:
    write_files(tmp_path, {"pipeline.yaml": ("apiVersion: pipeline.recipes.dev/v1\nkind: PipelineConfig\n"
                                             f"spec:\n  registries:\n    {snippet}\n")})
    with pytest.raises(RecipeError) as info:
        load_config(tmp_path)
    assert info.value.message == message
    assert (str(info.value.path), info.value.line) == ("pipeline.yaml", line)


def test_deadline_settings_are_read(tmp_path: Path) -> None:
    write_files(tmp_path, {"pipeline.yaml": ("apiVersion: pipeline.recipes.dev/v1\nkind: PipelineConfig\n"
                                             "spec:\n  registries: {requestDeadline: 7, imageDeadline: 12.5}\n")})
    config = load_config(tmp_path).registries
    assert (config.request_deadline, config.image_deadline) == (7.0, 12.5)
    assert (config.with_timeout(3).request_deadline, config.with_timeout(3).image_deadline) == (3, 3)
    assert config.with_timeout(60).request_deadline == 7


def test_registry_timeout_flag_is_checked() -> None:
    proc = subprocess.run([sys.executable, "-m", "pipeline", "lock", "--registry-timeout", "-1"], cwd=ROOT,
                          capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 2
    assert "argument --registry-timeout: '-1' is not a number of seconds in (0, 3600]" in proc.stderr
