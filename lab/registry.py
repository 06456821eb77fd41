"""A local ``docker-registry`` that serves the catalog's own images, as kind's local registry does.

Our catalog names its images ``localhost:5001/recipe-lab/<name>:<tag>``; this module runs Debian's
``docker-registry`` (CNCF distribution) on a loopback address (``127.0.0.1:5001`` by default) with
its storage under a directory of ours (``.pipeline-cache/registry`` by default) and fills it with
the images :mod:`lab.images` builds from ``recipes/images.yaml``. A lock made while
it runs records digests the registry really served, under the name that served them.

Entry points:

- :func:`start_local_registry` starts the process (a child of this one) and returns once
  ``GET /v2/`` answers 200; :meth:`LocalRegistry.stop` terminates it and ``wait()``s for it.
  With ``detach=True`` the process gets its own session and a pid file in the storage directory,
  so that it outlives this process (``python -m lab start``); :func:`running_registry`
  finds it again (one registry per storage directory) and :meth:`LocalRegistry.stop` stops it by
  pid, reaping it when this process is its parent.
- :func:`fill_registry` builds every image of ``images.yaml`` and pushes it to a registry URL.
- :func:`serve_catalog_images` does both: start, fill, return the running registry.
- :func:`registry_status` says whether the registry of a storage directory is up.

Guarantees: the process gets an explicit minimal environment (``PATH``, ``HOME`` = storage, ``TZ``,
``LANG`` and a per-start ``REGISTRY_HTTP_SECRET``), listens on loopback only, and writes only under
its storage directory (``data/``, ``registry.pid``, and per start ``runs/<pid>-<id>.yml`` and
``runs/<pid>-<id>.log``: each run has its own configuration and log, so two runs at once never read
each other's lines). A busy port is refused at once: probed before the start, and, when another
process takes it in between, seen in this run's own log as soon as the registry exits. Nothing here
prints; a process that fails to start is reaped before the error is raised.

Errors: :class:`LocalRegistryError` (exit code 2) with a hint: the binary is missing
(``apt-get install docker-registry``), the address is not loopback or is busy, the storage is
already served, the process exited or never answered (with the tail of its log). Pushing raises
what :func:`~lab.images.push_image` raises.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

from pipeline.errors import PipelineError

from .images import IMAGES_FILE, PushReport, build_image, load_image_specs, push_image

__all__ = [
    "DEFAULT_ADDRESS",
    "DEFAULT_STORAGE",
    "REGISTRY_BINARY",
    "LocalRegistry",
    "LocalRegistryError",
    "RegistryStatus",
    "fill_registry",
    "registry_status",
    "running_registry",
    "serve_catalog_images",
    "start_local_registry",
]

REGISTRY_BINARY = "docker-registry"
DEFAULT_ADDRESS = "127.0.0.1:5001"
DEFAULT_STORAGE = Path(".pipeline-cache/registry")

_RUNS = "runs"
_PIDFILE = "registry.pid"
_DATA = "data"
_LISTENING = re.compile(r"listening on (\S+):(\d+)")
_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_INSTALL_HINT = "install it with 'apt-get install -y docker-registry' (Debian/Ubuntu; package docker-registry)"

#: Detached registries this process started, by pid: kept so that their ``Popen`` outlives the
#: caller's handle (no "still running" warning) and so that stopping one here ``wait()``s for it.
_DETACHED: dict[int, subprocess.Popen[bytes]] = {}


class LocalRegistryError(PipelineError):
    """The local registry cannot be started, found or stopped (missing binary, busy port, crash)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalRegistry:
    """A running local registry. ``address`` is ``host:port`` as it listens (the real port when 0 was asked).

    ``process`` is the child process when this process started it; ``None`` for a detached
    registry that another process started (found through its pid file by :func:`running_registry`),
    which is stopped by pid.
    """

    address: str
    storage: Path
    pid: int
    process: subprocess.Popen[bytes] | None = None
    #: this run's log and configuration (``runs/`` under the storage)
    log: Path
    config: Path

    @property
    def url(self) -> str:
        """``http://host:port``: the base URL of the distribution API."""
        return f"http://{self.address}"

    def log_tail(self, chars: int = 2000) -> str:
        """The end of the registry's log (for error messages)."""
        return _tail(self.log, chars)

    def stop(self, *, timeout: float = 10.0) -> None:
        """Terminate the registry and wait for it (SIGKILL after ``timeout``); remove its pid file."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
            _DETACHED.pop(self.pid, None)
        else:
            _stop_pid(self.pid, timeout=timeout)
        pidfile = self.storage / _PIDFILE
        if _read_pidfile(self.storage).get("pid") == self.pid:
            pidfile.unlink(missing_ok=True)
        self.config.unlink(missing_ok=True)  # the log stays, for a look afterwards

    def __enter__(self) -> LocalRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistryStatus:
    """What :func:`registry_status` found: ``running`` with its address and pid, or why not."""

    running: bool
    storage: Path
    address: str | None = None
    pid: int | None = None
    reason: str = ""


def start_local_registry(*, address: str = DEFAULT_ADDRESS, storage: Path, binary: str = REGISTRY_BINARY,
                         detach: bool = False, timeout: float = 15.0) -> LocalRegistry:
    """Start ``docker-registry serve`` on loopback ``address`` with its files under ``storage``.

    Returns once ``GET /v2/`` answers 200. ``address`` may use port 0 (a free port is chosen and
    reported in :attr:`LocalRegistry.address`). ``detach`` starts it in its own session with a pid
    file, so that it keeps running after this process exits.
    """
    executable = shutil.which(binary)
    if executable is None:
        raise LocalRegistryError(f"the registry binary {binary!r} is not on PATH", hint=_INSTALL_HINT)
    host, port = _split_address(address)
    storage = storage.resolve()
    if (other := running_registry(storage)) is not None:
        raise LocalRegistryError(
            f"a registry already serves {storage} at {other.address} (pid {other.pid})",
            hint=f"use it, or stop it first: 'python -m lab stop --storage {storage}'")
    _check_free(host, port)
    (storage / _DATA).mkdir(parents=True, exist_ok=True)
    (storage / _RUNS).mkdir(exist_ok=True)
    run = f"{os.getpid()}-{secrets.token_hex(4)}"
    config = storage / _RUNS / f"{run}.yml"
    config.write_text(yaml.safe_dump({
        "version": 0.1,
        "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(storage / _DATA)}, "delete": {"enabled": True}},
        "http": {"addr": _join_address(host, port)},
    }, sort_keys=True))
    env = {"PATH": _PATH, "HOME": str(storage), "TZ": "UTC", "LANG": "C.UTF-8",
           "REGISTRY_HTTP_SECRET": secrets.token_hex(16)}
    log_path = storage / _RUNS / f"{run}.log"
    with log_path.open("xb") as log:
        process = subprocess.Popen([executable, "serve", str(config)], stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, env=env, cwd=storage, start_new_session=detach)
    started = LocalRegistry(address=_join_address(host, port), storage=storage, pid=process.pid, process=process,
                            log=log_path, config=config)
    try:
        actual = _wait_listening(started, port=port, timeout=timeout)
        registry = LocalRegistry(address=actual, storage=storage, pid=process.pid, process=process, log=log_path,
                                 config=config)
        _wait_ready(started, url=registry.url, timeout=timeout)
        if detach:
            _DETACHED[process.pid] = process
            (storage / _PIDFILE).write_text(json.dumps(
                {"pid": process.pid, "address": actual, "config": str(config), "log": str(log_path)},
                sort_keys=True) + "\n")
    except BaseException:
        started.stop()
        raise
    return registry


def running_registry(storage: Path) -> LocalRegistry | None:
    """The detached registry recorded in ``storage``'s pid file, if it is still running."""
    storage = storage.resolve()
    record = _read_pidfile(storage)
    pid, address, config, log = (record.get(k) for k in ("pid", "address", "config", "log"))
    if not isinstance(pid, int) or not isinstance(address, str) or not isinstance(config, str) \
            or not isinstance(log, str) or not _is_our_registry(pid, Path(config)):
        return None
    return LocalRegistry(address=address, storage=storage, pid=pid, process=_DETACHED.get(pid), log=Path(log),
                         config=Path(config))


def registry_status(storage: Path, *, timeout: float = 2.0) -> RegistryStatus:
    """Whether the detached registry of ``storage`` runs and answers ``GET /v2/`` with 200."""
    storage = storage.resolve()
    registry = running_registry(storage)
    if registry is None:
        return RegistryStatus(running=False, storage=storage, reason=f"no registry process recorded in {storage}")
    try:
        with httpx.Client(timeout=timeout, trust_env=False) as client:
            answer = client.get(f"{registry.url}/v2/")
    except httpx.HTTPError as exc:
        return RegistryStatus(running=False, storage=storage, address=registry.address, pid=registry.pid,
                              reason=f"process {registry.pid} does not answer on {registry.address}: {exc}")
    if answer.status_code != 200:
        return RegistryStatus(running=False, storage=storage, address=registry.address, pid=registry.pid,
                              reason=f"GET /v2/ answered {answer.status_code}")
    return RegistryStatus(running=True, storage=storage, address=registry.address, pid=registry.pid)


def fill_registry(catalog: Path, registry_url: str) -> tuple[PushReport, ...]:
    """Build every image of ``<catalog>/images.yaml`` and push it to ``registry_url``, in file order."""
    specs = load_image_specs(catalog / IMAGES_FILE)
    with httpx.Client(timeout=httpx.Timeout(30.0, connect=5.0), trust_env=False) as client:
        return tuple(push_image(build_image(spec), registry_url, client=client) for spec in specs)


def serve_catalog_images(catalog: Path, *, address: str = DEFAULT_ADDRESS, storage: Path,
                         binary: str = REGISTRY_BINARY, detach: bool = False) -> LocalRegistry:
    """Start the local registry and push every image of ``<catalog>/images.yaml`` to it.

    The caller stops it (:meth:`LocalRegistry.stop`, or ``with``); on a failed push it is stopped
    here before the error propagates.
    """
    registry = start_local_registry(address=address, storage=storage, binary=binary, detach=detach)
    try:
        fill_registry(catalog, registry.url)
    except BaseException:
        registry.stop()
        raise
    return registry


# ------------------------------------------------------------------------------------------------
# helpers


def _split_address(address: str) -> tuple[str, int]:
    host, sep, port_text = address.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    hint = f"give a loopback host:port, e.g. {DEFAULT_ADDRESS}"
    if not sep or not port_text.isdigit() or int(port_text) > 65535:
        raise LocalRegistryError(f"registry address {address!r} is not host:port", hint=hint)
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise LocalRegistryError(f"registry address {address!r} is not a loopback IP address",
                                 hint=hint + " (the local registry accepts anonymous pushes: never expose it)")
    return host, int(port_text)


def _join_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _check_free(host: str, port: int) -> None:
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise LocalRegistryError(f"cannot bind {_join_address(host, port)}: {exc.strerror}") from exc
            raise _busy(_join_address(host, port)) from exc


def _busy(address: str) -> LocalRegistryError:
    return LocalRegistryError(
        f"address {address} is already in use",
        hint="a registry started earlier may still run: 'python -m lab status' and "
             "'python -m lab stop'; otherwise pick another with --address 127.0.0.1:<port>",
    )


def _wait_listening(registry: LocalRegistry, *, port: int, timeout: float) -> str:
    """The ``host:port`` the process reports listening on (needed when port 0 was asked)."""
    deadline = time.monotonic() + timeout
    process = registry.process
    assert process is not None
    while True:
        found = _LISTENING.search(_tail(registry.log, 20000))
        if found:
            return f"{found.group(1)}:{found.group(2)}" if port == 0 else registry.address
        if process.poll() is not None:
            tail = registry.log_tail()
            if "address already in use" in tail:
                raise _busy(registry.address)
            raise LocalRegistryError(f"{REGISTRY_BINARY} exited with status {process.returncode} at start; "
                                     f"its log ends with:\n{tail}", path=registry.log,
                                     hint="fix the cause shown in the log, then start it again")
        if time.monotonic() > deadline:
            raise LocalRegistryError(f"{REGISTRY_BINARY} did not report its address within {timeout:g}s; "
                                     f"its log ends with:\n{registry.log_tail()}", path=registry.log)
        time.sleep(0.01)


def _wait_ready(registry: LocalRegistry, *, url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    with httpx.Client(timeout=2.0, trust_env=False) as client:
        while True:
            try:
                answer = client.get(f"{url}/v2/")
                if answer.status_code == 200:
                    return
                last = f"GET /v2/ answered {answer.status_code}"
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
            if registry.process is not None and registry.process.poll() is not None:
                raise LocalRegistryError(f"{REGISTRY_BINARY} exited with status {registry.process.returncode}; "
                                         f"its log ends with:\n{registry.log_tail()}", path=registry.log)
            if time.monotonic() > deadline:
                raise LocalRegistryError(f"{REGISTRY_BINARY} at {url} is not ready after {timeout:g}s ({last})",
                                         path=registry.log, hint="see the registry log")
            time.sleep(0.01)


def _tail(path: Path, chars: int) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def _read_pidfile(storage: Path) -> dict[str, object]:
    try:
        data = json.loads((storage / _PIDFILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _is_our_registry(pid: int, config: Path) -> bool:
    """Whether ``pid`` is alive and is ``docker-registry serve <config>`` (not a reused pid)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X") and str(config).encode() in argv and b"serve" in argv


def _stop_pid(pid: int, *, timeout: float) -> None:
    """SIGTERM a detached registry, SIGKILL after ``timeout``; reap it when it is our child."""
    deadline = time.monotonic() + timeout
    sent_kill = False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    while True:
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        if not _alive(pid):
            return
        if time.monotonic() > deadline and not sent_kill:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            sent_kill = True
            deadline = time.monotonic() + timeout
        elif time.monotonic() > deadline:
            raise LocalRegistryError(f"registry process {pid} did not exit after SIGKILL",
                                     hint=f"check 'ps -p {pid}'")
        time.sleep(0.02)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")
