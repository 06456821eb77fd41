"""The local registry: start, answer, stop without zombies, every way it refuses to start, and the CLI."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lab.__main__ import main
from lab.images import OCI_INDEX, OCI_MANIFEST, build_image, load_image_specs
from lab.registry import (
    REGISTRY_BINARY,
    LocalRegistry,
    LocalRegistryError,
    fill_registry,
    registry_status,
    running_registry,
    serve_catalog_images,
    start_local_registry,
)
from pipeline.errors import RecipeError
from tests.registry.skopeo import require_skopeo, skopeo

REPO_ROOT = Path(__file__).resolve().parents[2]
CATALOG = REPO_ROOT / "recipes"

TINY_IMAGES = """\
apiVersion: pipeline.recipes.dev/v1
kind: ImageSet
spec:
  prefix: localhost:5001/recipe-lab
  platforms: [linux/amd64, linux/arm64/v8]
  images:
    - repository: localhost:5001/recipe-lab/tiny
      tags: ["1.0"]
      files:
        - path: /etc/recipe-lab/tiny
          content: "tiny\\n"
"""


@pytest.fixture
def binary(request: pytest.FixtureRequest) -> str:
    """The registry binary (``@pytest.mark.registry`` tests; skipped where it is missing, except in CI)."""
    if request.node.get_closest_marker("registry") is None:
        pytest.fail("a test starting docker-registry must be marked @pytest.mark.registry")
    if shutil.which(REGISTRY_BINARY) is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{REGISTRY_BINARY!r} is not installed; CI must install it")
        pytest.skip(f"{REGISTRY_BINARY!r} is not installed (apt-get install -y docker-registry)")
    return REGISTRY_BINARY


@pytest.fixture
def tiny_catalog(tmp_path: Path) -> Path:
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    (catalog / "images.yaml").write_text(TINY_IMAGES)
    return catalog


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A socket listening on a free loopback port: an address some other program holds."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _serving(storage: Path) -> list[int]:
    """Pids of processes (zombies included) whose command line names a config of ``storage``'s runs."""
    runs = str(storage.resolve() / "runs").encode() + b"/"
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if any(arg.startswith(runs) for arg in (entry / "cmdline").read_bytes().split(b"\0")):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def _gone(pid: int) -> bool:
    """No process ``pid`` at all: exited and reaped (a zombie still has a /proc entry)."""
    return not Path(f"/proc/{pid}").exists()


# ------------------------------------------------------------------------------------------------
# start and stop


@pytest.mark.registry
def test_start_answers_v2_and_stop_reaps_the_process(binary: str, tmp_path: Path) -> None:
    registry = start_local_registry(address="127.0.0.1:0", storage=tmp_path / "reg", binary=binary)
    try:
        assert registry.address.startswith("127.0.0.1:") and not registry.address.endswith(":0")
        with httpx.Client(trust_env=False) as client:
            assert client.get(f"{registry.url}/v2/").status_code == 200
        assert registry.config.is_file() and registry.config.parent == (tmp_path / "reg" / "runs").resolve()
        assert registry.log.name == registry.config.stem + ".log"
        assert (tmp_path / "reg" / "data").is_dir()
    finally:
        registry.stop()
    assert not registry.config.exists() and registry.log.is_file()  # the log stays for a look afterwards
    assert registry.process is not None and registry.process.returncode is not None
    assert _gone(registry.pid)
    registry.stop()  # stopping twice is harmless


@pytest.mark.registry
def test_the_registry_gets_a_minimal_environment(binary: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("REGISTRY_HTTP_ADDR", "0.0.0.0:5999")  # would override the config if passed on
    with start_local_registry(address="127.0.0.1:0", storage=tmp_path / "reg", binary=binary) as registry:
        environ = Path(f"/proc/{registry.pid}/environ").read_bytes().split(b"\0")
        names = sorted(entry.split(b"=", 1)[0].decode() for entry in environ if entry)
        assert names == ["HOME", "LANG", "PATH", "REGISTRY_HTTP_SECRET", "TZ"]
        assert registry.address.startswith("127.0.0.1:")


@pytest.mark.registry
def test_a_busy_port_is_refused_with_a_hint(binary: str, tmp_path: Path, listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    with pytest.raises(LocalRegistryError) as caught:
        start_local_registry(address=f"127.0.0.1:{port}", storage=tmp_path / "reg", binary=binary)
    assert caught.value.message == f"address 127.0.0.1:{port} is already in use"
    assert caught.value.hint is not None
    assert "python -m lab stop" in caught.value.hint and "--address" in caught.value.hint
    assert not (tmp_path / "reg").exists()


def test_a_missing_binary_is_refused_with_the_install_hint(tmp_path: Path) -> None:
    with pytest.raises(LocalRegistryError) as caught:
        start_local_registry(address="127.0.0.1:0", storage=tmp_path / "reg", binary="docker-registry-not-here")
    assert caught.value.message == "the registry binary 'docker-registry-not-here' is not on PATH"
    assert caught.value.hint is not None and "apt-get install -y docker-registry" in caught.value.hint
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(("address", "message"), [
    ("0.0.0.0:5001", "registry address '0.0.0.0:5001' is not a loopback IP address"),
    ("localhost:5001", "registry address 'localhost:5001' is not a loopback IP address"),
    ("10.1.2.3:5001", "registry address '10.1.2.3:5001' is not a loopback IP address"),
    ("127.0.0.1", "registry address '127.0.0.1' is not host:port"),
    ("127.0.0.1:http", "registry address '127.0.0.1:http' is not host:port"),
    ("127.0.0.1:70000", "registry address '127.0.0.1:70000' is not host:port"),
])
def test_addresses_other_than_loopback_host_port_are_refused(tmp_path: Path, address: str, message: str) -> None:
    with pytest.raises(LocalRegistryError) as caught:
        start_local_registry(address=address, storage=tmp_path / "reg", binary=sys.executable)
    assert caught.value.message == message
    assert caught.value.hint is not None and "127.0.0.1:5001" in caught.value.hint


def test_a_registry_that_crashes_at_start_is_reaped_and_its_log_shown(tmp_path: Path) -> None:
    fake = tmp_path / "bin" / "docker-registry-crash"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'panic: cannot open storage' >&2\nexit 3\n")
    fake.chmod(0o755)
    with pytest.raises(LocalRegistryError) as caught:
        start_local_registry(address="127.0.0.1:0", storage=tmp_path / "reg", binary=str(fake))
    assert caught.value.message.startswith("docker-registry exited with status 3 at start")
    assert "panic: cannot open storage" in caught.value.message
    assert caught.value.path is not None and caught.value.path.parent.name == "runs"
    assert caught.value.path.suffix == ".log"


@pytest.mark.registry
def test_detached_registry_is_found_by_its_storage_and_stopped(binary: str, tmp_path: Path) -> None:
    storage = tmp_path / "reg"
    assert not registry_status(storage).running
    started = start_local_registry(address="127.0.0.1:0", storage=storage, binary=binary, detach=True)
    try:
        assert (storage / "registry.pid").is_file()
        found = running_registry(storage)
        assert found is not None
        assert (found.pid, found.address, found.process) == (started.pid, started.address, started.process)
        status = registry_status(storage)
        assert (status.running, status.pid, status.address) == (True, started.pid, started.address)
        with pytest.raises(LocalRegistryError) as caught:  # one registry per storage directory
            start_local_registry(address="127.0.0.1:0", storage=storage, binary=binary)
        assert caught.value.message == (f"a registry already serves {storage.resolve()} at {started.address} "
                                        f"(pid {started.pid})")
        assert caught.value.hint is not None and "python -m lab stop" in caught.value.hint
        assert os.getsid(started.pid) == started.pid  # its own session: it outlives the caller
        found.stop()
        assert _gone(started.pid)
        assert not (storage / "registry.pid").exists()
        assert running_registry(storage) is None
        assert registry_status(storage).reason.startswith("no registry process recorded in")
    finally:
        started.stop()


@pytest.mark.registry
def test_a_registry_started_by_another_process_is_stopped_by_pid(binary: str, tmp_path: Path) -> None:
    storage = tmp_path / "reg"
    address = f"127.0.0.1:{_free_port()}"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    started = subprocess.run([sys.executable, "-m", "lab", "start", "--no-fill", "--address", address,
                              "--storage", str(storage)], capture_output=True, text=True, env=env, timeout=60,
                             check=False)
    assert started.returncode == 0, started.stderr
    registry = running_registry(storage)
    assert registry is not None and registry.process is None  # not our child: the CLI process has exited
    try:
        assert registry_status(storage).running
        registry.stop()
        assert running_registry(storage) is None
        assert not any(_running(pid) for pid in _serving(storage))  # exited (init reaps it)
    finally:
        if running_registry(storage) is not None:
            registry.stop()


def _running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def test_a_stale_pid_file_is_not_a_running_registry(tmp_path: Path) -> None:
    storage = tmp_path / "reg"
    storage.mkdir()
    # our own pid: alive, but not a docker-registry serving this storage
    (storage / "registry.pid").write_text(f'{{"pid": {os.getpid()}, "address": "127.0.0.1:5001"}}\n')
    assert running_registry(storage) is None
    assert not registry_status(storage).running


# ------------------------------------------------------------------------------------------------
# serving the catalog


@pytest.mark.registry
def test_serve_catalog_images_pushes_every_image(binary: str, tmp_path: Path, tiny_catalog: Path) -> None:
    require_skopeo()
    (built,) = [build_image(s) for s in load_image_specs(tiny_catalog / "images.yaml")]
    with serve_catalog_images(tiny_catalog, address="127.0.0.1:0", storage=tmp_path / "reg") as registry:
        image = f"docker://{registry.address}/recipe-lab/tiny:1.0"
        raw = skopeo("--raw", image)
        assert "sha256:" + hashlib.sha256(raw).hexdigest() == built.digest
        assert skopeo("--format", "{{.Digest}}", image).decode().strip() == built.digest
    assert _gone(registry.pid)


@pytest.mark.registry
def test_a_failed_fill_stops_the_registry(binary: str, tmp_path: Path, tiny_catalog: Path) -> None:
    (tiny_catalog / "images.yaml").write_text(TINY_IMAGES.replace("kind: ImageSet", "kind: Nope"))
    storage = tmp_path / "reg"
    with pytest.raises(RecipeError, match="kind 'Nope' is not 'ImageSet'"):
        serve_catalog_images(tiny_catalog, address="127.0.0.1:0", storage=storage)
    assert len(list((storage / "runs").glob("*.log"))) == 1  # it did start
    assert _serving(storage) == []


@pytest.mark.registry
def test_fill_twice_uploads_nothing_new(binary: str, tmp_path: Path) -> None:
    with start_local_registry(address="127.0.0.1:0", storage=tmp_path / "reg", binary=binary) as registry:
        first = fill_registry(CATALOG, registry.url)
        second = fill_registry(CATALOG, registry.url)
        assert [r.digest for r in first] == [r.digest for r in second]
        assert all(r.uploaded == () for r in second)
        with httpx.Client(base_url=registry.url, trust_env=False) as client:
            head = client.head("/v2/recipe-lab/busybox/manifests/1.36",
                               headers={"Accept": f"{OCI_INDEX}, {OCI_MANIFEST}"})
            assert head.headers["content-type"] == OCI_MANIFEST


# ------------------------------------------------------------------------------------------------
# CLI: python -m lab


@pytest.mark.registry
def test_cli_start_status_fill_stop(binary: str, tmp_path: Path, tiny_catalog: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    storage = tmp_path / "reg"
    address = f"127.0.0.1:{_free_port()}"
    common = ["--address", address, "--storage", str(storage)]
    assert main(["status", *common]) == 1
    assert "not running" in capsys.readouterr().out
    started: LocalRegistry | None = None
    try:
        assert main(["start", "--catalog", str(tiny_catalog), *common]) == 0
        started = running_registry(storage)
        out = capsys.readouterr().out
        assert f"started the registry at http://{address}" in out
        assert "pushed localhost:5001/recipe-lab/tiny:1.0@sha256:" in out
        assert "(3 blobs uploaded, 0 already present)" in out
        assert main(["start", "--catalog", str(tiny_catalog), *common]) == 0
        out = capsys.readouterr().out
        assert "is already running" in out and "(0 blobs uploaded, 3 already present)" in out
        assert main(["status", *common]) == 0
        assert f"running at http://{address}" in capsys.readouterr().out
        assert main(["fill", "--catalog", str(tiny_catalog), "--address", address]) == 0
        assert "already present" in capsys.readouterr().out
        assert main(["stop", *common]) == 0
        assert f"stopped the registry at http://{address}" in capsys.readouterr().out
        assert started is not None and _gone(started.pid)
        assert main(["stop", *common]) == 0
        assert "not running" in capsys.readouterr().out
    finally:
        if started is not None:
            started.stop()


@pytest.mark.registry
def test_cli_run_serves_while_the_command_runs_then_stops(binary: str, tmp_path: Path, tiny_catalog: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    address = f"127.0.0.1:{_free_port()}"
    probe = (f"import httpx, sys; r = httpx.get('http://{address}/v2/recipe-lab/tiny/tags/list'); "
             "sys.exit(0 if r.json()['tags'] == ['1.0'] else 7)")
    argv = ["run", "--catalog", str(tiny_catalog), "--address", address, "--storage", str(tmp_path / "reg"), "--"]
    assert main([*argv, sys.executable, "-c", probe]) == 0
    assert main([*argv, sys.executable, "-c", "import sys; sys.exit(5)"]) == 5
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:  # stopped: the port is free again
        sock.bind(("127.0.0.1", int(address.rsplit(":", 1)[1])))


def test_cli_errors_are_printed_with_their_hint_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["start", "--address", "0.0.0.0:5001", "--storage", str(tmp_path / "reg")]) == 2
    err = capsys.readouterr().err
    assert "registry address '0.0.0.0:5001' is not a loopback IP address" in err
    assert "\nhint: give a loopback host:port" in err
    assert main(["run", "--storage", str(tmp_path / "reg")]) == 2
    assert "'run' needs a command after '--'" in capsys.readouterr().err


@pytest.mark.registry
@pytest.mark.parametrize("shared_storage", [True, False])
def test_two_runs_at_once_each_get_their_own_log_and_the_port_clash_is_seen_at_once(
        binary: str, tmp_path: Path, tiny_catalog: Path, shared_storage: bool) -> None:
    """Issue 17: both runs wrote one registry.log; one waited 15 s for a registry that had died on the clash."""
    address = f"127.0.0.1:{_free_port()}"
    storages = [tmp_path / "reg", tmp_path / ("reg" if shared_storage else "reg2")]
    hold = "import time; time.sleep(4)"
    runs = [subprocess.Popen([sys.executable, "-m", "lab", "run", "--catalog", str(tiny_catalog), "--address", address,
                              "--storage", str(storage), "--", sys.executable, "-c", hold],
                             cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for storage in storages]
    results = [(run.wait(timeout=60), *run.communicate()) for run in runs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], results
    loser = next(err for code, _, err in results if code == 2)
    assert f"address {address} is already in use" in loser
    assert "Traceback" not in loser
    logs = sorted({log for storage in storages for log in (storage / "runs").glob("*.log")})
    # the winner's registry log, and the loser's when its registry got as far as starting
    assert 1 <= len(logs) <= 2
    assert len({log.name for log in logs}) == len(logs)
    assert _serving(storages[0]) == [] and _serving(storages[1]) == []


@pytest.mark.registry
def test_a_run_on_a_busy_port_fails_at_once(binary: str, tmp_path: Path, tiny_catalog: Path,
                                            listener: socket.socket) -> None:
    address = f"127.0.0.1:{listener.getsockname()[1]}"
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "lab", "run", "--catalog", str(tiny_catalog), "--address", address,
                           "--storage", str(tmp_path / "reg"), "--", sys.executable, "-c", "pass"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert time.monotonic() - started < 5
    assert proc.stderr.startswith(f"address {address} is already in use\n")
