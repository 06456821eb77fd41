"""Real servers on loopback for tests, and the tiny chart assets they serve.

- :func:`start_registry`: a real ``docker-registry`` (CNCF distribution) process on 127.0.0.1 with
  its own config and storage under a temporary directory; :func:`push_oci_chart` pushes a chart
  to it with Helm's OCI media types through the distribution API; :func:`tamper_blob` rewrites a
  stored blob in place (what a corrupted or compromised registry would serve).
- :func:`start_http_repo`: a directory served by ``http.server`` in a thread (a classic Helm
  repository once :func:`write_index` has written its ``index.yaml``), with a queue of injected
  faults (``repo.faults``) to exercise retries.
- :func:`start_fake_token_gate`: a bearer-token gate in front of a registry (the real registry's
  token auth needs JWT signing keys; the gate reproduces the anonymous-token protocol that ghcr.io
  and registry.k8s.io use, and forwards to the real registry).
- archive assets the servers need or tests of archives build by hand: :func:`build_archive` (an
  arbitrary tar.gz in the given member order, unsafe members included) and :func:`chart_metadata`.
  Charts themselves come from :mod:`tests.factories`.

Every server stops cleanly: processes are terminated and waited for (no zombies), threads joined.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import subprocess
import tarfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import yaml

REGISTRY_BINARY = "docker-registry"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_LAYER = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"

_LISTENING = re.compile(r"listening on 127\.0\.0\.1:(\d+)")


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------------------------------------
# archive assets


@dataclass(frozen=True, slots=True, kw_only=True)
class Member:
    """One tar member for :func:`build_archive`; ``kind`` is a ``tarfile`` type constant."""

    name: str
    data: bytes = b""
    kind: bytes = tarfile.REGTYPE
    linkname: str = ""
    mode: int = 0o644
    mtime: int = 0


def build_archive(members: Sequence[Member], *, level: int = 6, mtime: int = 0) -> bytes:
    """A gzip tar holding exactly ``members`` in the given order (no safety checks: for unsafe cases)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for member in members:
            info = tarfile.TarInfo(member.name)
            info.type = member.kind
            info.mode = member.mode
            info.mtime = member.mtime
            info.linkname = member.linkname
            info.size = len(member.data) if member.kind == tarfile.REGTYPE else 0
            tar.addfile(info, io.BytesIO(member.data) if member.kind == tarfile.REGTYPE else None)
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=level, mtime=mtime, filename="") as gz:
        gz.write(buf.getvalue())
    return out.getvalue()


def chart_metadata(archive: bytes) -> dict[str, Any]:
    """The ``Chart.yaml`` of a chart archive, as data."""
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        for member in tar:
            parts = member.name.split("/")
            if len(parts) == 2 and parts[1] == "Chart.yaml" and member.isreg():
                handle = tar.extractfile(member)
                assert handle is not None
                meta: dict[str, Any] = yaml.safe_load(handle.read())
                return meta
    raise ValueError("archive has no <chart>/Chart.yaml")


# ------------------------------------------------------------------------------------------------
# docker-registry


@dataclass(kw_only=True)
class Registry:
    """A running registry: ``host`` is ``127.0.0.1:PORT``; ``root`` holds config, data and log."""

    host: str
    root: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def oci(self, namespace: str) -> str:
        """``oci://host/namespace``: a chart repository in this registry."""
        return f"oci://{self.host}/{namespace}".rstrip("/")

    def blob_path(self, digest: str) -> Path:
        hexpart = digest.removeprefix("sha256:")
        return self.root / "data" / "docker/registry/v2/blobs/sha256" / hexpart[:2] / hexpart / "data"

    def log_tail(self, chars: int = 2000) -> str:
        """The end of the registry's log (for failure messages)."""
        return (self.root / "registry.log").read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        """Terminate the process and reap it."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def start_registry(tmp_path: Path, *, binary: str = REGISTRY_BINARY, timeout: float = 15.0) -> Registry:
    """Start ``docker-registry serve`` on 127.0.0.1 with a random port; return when ``/v2/`` answers 200."""
    root = tmp_path
    root.mkdir(parents=True, exist_ok=True)
    config = {
        "version": 0.1,
        "log": {"level": "info", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(root / "data")}, "delete": {"enabled": True}},
        "http": {"addr": "127.0.0.1:0", "secret": "test-secret-not-for-production"},
    }
    config_path = root / "config.yml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=True))
    log_path = root / "registry.log"
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(root), "TZ": "UTC", "LANG": "C.UTF-8"}
    with log_path.open("wb") as log:
        process = subprocess.Popen([binary, "serve", str(config_path)], stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, env=env, cwd=root)
    registry = Registry(host="", root=root, process=process)
    try:
        deadline = time.monotonic() + timeout
        port = None
        while port is None:
            found = _LISTENING.search(log_path.read_text(errors="replace"))
            if found:
                port = found.group(1)
            elif process.poll() is not None:
                raise RuntimeError(f"{binary} exited with {process.returncode}:\n{registry.log_tail()}")
            elif time.monotonic() > deadline:
                raise RuntimeError(f"{binary} did not report its port in {timeout}s:\n{registry.log_tail()}")
            else:
                time.sleep(0.01)
        registry.host = f"127.0.0.1:{port}"
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            while True:
                try:
                    if client.get(f"{registry.url}/v2/").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{binary} never answered GET /v2/ with 200:\n{registry.log_tail()}")
                time.sleep(0.01)
    except BaseException:
        registry.stop()
        raise
    return registry


@dataclass(frozen=True, slots=True, kw_only=True)
class PushedChart:
    """What :func:`push_oci_chart` pushed: ``repository`` is ``namespace/name`` in the registry."""

    repository: str
    tag: str
    manifest: str
    manifest_bytes: bytes
    config: str
    layer: str


def push_oci_chart(registry: Registry, repo: str, name: str, version: str, archive_bytes: bytes, *,
                   annotations: Mapping[str, str] | None = None, config_media_type: str = HELM_CONFIG,
                   layer_media_type: str = HELM_LAYER) -> PushedChart:
    """Push a chart the way ``helm push`` lays it out (Helm config + chart layer, OCI manifest).

    The media types can be changed to push something that is not a Helm chart.
    """
    repository = f"{repo.strip('/')}/{name}" if repo.strip("/") else name
    tag = version.replace("+", "_")
    config = json.dumps(chart_metadata(archive_bytes), sort_keys=True, separators=(",", ":")).encode()
    with httpx.Client(base_url=registry.url, timeout=10.0, trust_env=False) as client:
        config_digest = _push_blob(client, repository, config)
        layer_digest = _push_blob(client, repository, archive_bytes)
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": config_media_type, "digest": config_digest, "size": len(config)},
            "layers": [{"mediaType": layer_media_type, "digest": layer_digest, "size": len(archive_bytes)}],
            "annotations": {
                "org.opencontainers.image.title": name,
                "org.opencontainers.image.version": version,
                **(annotations or {}),
            },
        }
        body = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
        response = client.put(f"/v2/{repository}/manifests/{tag}", content=body,
                              headers={"Content-Type": OCI_MANIFEST})
        if response.status_code != 201:
            raise RuntimeError(f"manifest PUT answered {response.status_code}: {response.text}")
        digest = _sha256(body)
        if response.headers.get("docker-content-digest") != digest:
            raise RuntimeError(f"registry digest {response.headers.get('docker-content-digest')} != {digest}")
    return PushedChart(repository=repository, tag=tag, manifest=digest, manifest_bytes=body,
                       config=config_digest, layer=layer_digest)


def _push_blob(client: httpx.Client, repository: str, data: bytes) -> str:
    digest = _sha256(data)
    started = client.post(f"/v2/{repository}/blobs/uploads/")
    if started.status_code != 202:
        raise RuntimeError(f"blob upload POST answered {started.status_code}: {started.text}")
    location = started.headers["location"]
    separator = "&" if "?" in location else "?"
    done = client.put(f"{location}{separator}digest={digest}", content=data,
                      headers={"Content-Type": "application/octet-stream"})
    if done.status_code != 201:
        raise RuntimeError(f"blob upload PUT answered {done.status_code}: {done.text}")
    return digest


def tamper_blob(registry: Registry, digest: str, transform: Callable[[bytes], bytes]) -> None:
    """Rewrite the stored bytes of blob ``digest`` (the registry keeps serving them under that digest)."""
    path = registry.blob_path(digest)
    path.write_bytes(transform(path.read_bytes()))


# ------------------------------------------------------------------------------------------------
# HTTP chart repository


@dataclass(frozen=True, slots=True, kw_only=True)
class Fault:
    """A response served instead of the file (to the next request for ``path``, or any when ``None``)."""

    status: int
    path: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


class _RepoServer(ThreadingHTTPServer):
    daemon_threads = True
    requests: list[str]
    faults: list[Fault]
    lock: threading.Lock


class _RepoHandler(SimpleHTTPRequestHandler):
    server: _RepoServer

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.requests.append(self.path)
            fault = next((f for f in self.server.faults if f.path in (None, self.path)), None)
            if fault is not None:
                self.server.faults.remove(fault)
        if fault is None:
            super().do_GET()
            return
        self.send_response(fault.status)
        for key, value in fault.headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(fault.body)))
        self.end_headers()
        self.wfile.write(fault.body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@dataclass(kw_only=True)
class HttpRepo:
    """A directory served over HTTP on 127.0.0.1. ``requests`` lists the paths asked for, in order;
    append to ``faults`` to answer the next requests with errors instead of files."""

    directory: Path
    url: str
    server: _RepoServer
    thread: threading.Thread

    @property
    def requests(self) -> list[str]:
        return self.server.requests

    @property
    def faults(self) -> list[Fault]:
        return self.server.faults

    def stop(self) -> None:
        if self.thread.is_alive():
            self.server.shutdown()
            self.thread.join(timeout=10)
        self.server.server_close()

    def __enter__(self) -> HttpRepo:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def start_http_repo(directory: Path) -> HttpRepo:
    """Serve ``directory`` on 127.0.0.1 (random port) from a background thread."""
    directory.mkdir(parents=True, exist_ok=True)

    def handler(*args: Any, **kwargs: Any) -> _RepoHandler:
        return _RepoHandler(*args, directory=str(directory), **kwargs)

    server = _RepoServer(("127.0.0.1", 0), handler)
    server.requests, server.faults, server.lock = [], [], threading.Lock()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                              name="http-repo", daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    return HttpRepo(directory=directory, url=f"http://{host!s}:{port}", server=server, thread=thread)


def write_index(directory: Path, charts: Iterable[Path], base_url: str | None = None) -> Path:
    """Write a deterministic ``directory/index.yaml`` for the chart archives ``charts``.

    Each entry carries name, version, ``urls`` (relative to the directory, or under ``base_url``)
    and ``digest`` (sha256 hex of the archive, as Helm writes it). No timestamps.
    """
    entries: dict[str, list[dict[str, Any]]] = {}
    for archive in sorted(charts):
        data = archive.read_bytes()
        meta = chart_metadata(data)
        rel = archive.relative_to(directory).as_posix()
        url = f"{base_url.rstrip('/')}/{rel}" if base_url else rel
        entries.setdefault(str(meta["name"]), []).append({
            "apiVersion": str(meta.get("apiVersion", "v2")),
            "name": str(meta["name"]),
            "version": str(meta["version"]),
            "urls": [url],
            "digest": hashlib.sha256(data).hexdigest(),
        })
    for versions in entries.values():
        versions.sort(key=lambda e: str(e["version"]), reverse=True)
    index = directory / "index.yaml"
    index.write_text(yaml.safe_dump({"apiVersion": "v1", "entries": entries}, sort_keys=True))
    return index


# ------------------------------------------------------------------------------------------------
# fake token gate (anonymous bearer flow) in front of a real registry


class _GateServer(ThreadingHTTPServer):
    daemon_threads = True
    upstream: str
    token: str
    token_requests: list[str]
    client: httpx.Client


class _GateHandler(SimpleHTTPRequestHandler):
    server: _GateServer

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path == "/token":
            self.server.token_requests.append(parts.query)
            query = parse_qs(parts.query)
            if "service" not in query or "scope" not in query:
                self._answer(400, b"missing service or scope", {})
                return
            self._answer(200, json.dumps({"token": self.server.token}).encode(),
                         {"Content-Type": "application/json"})
            return
        if self.headers.get("Authorization") != f"Bearer {self.server.token}":
            repo = parts.path.removeprefix("/v2/").rsplit("/", 2)[0]
            host = f"127.0.0.1:{self.server.server_address[1]}"
            challenge = (f'Bearer realm="http://{host}/token",service="fake-gate",'
                         f'scope="repository:{repo}:pull"')
            self._answer(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', {"WWW-Authenticate": challenge})
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() == "accept"}
        upstream = self.server.client.get(self.server.upstream + self.path, headers=headers)
        passed = {k: v for k, v in upstream.headers.items()
                  if k.lower() in ("content-type", "docker-content-digest", "link")}
        self._answer(upstream.status_code, upstream.content, passed)

    def _answer(self, status: int, body: bytes, headers: Mapping[str, str]) -> None:
        self.send_response(HTTPStatus(status))
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@dataclass(kw_only=True)
class FakeTokenGate:
    """A loopback gate that demands an anonymous bearer token, then forwards to ``upstream``."""

    host: str
    server: _GateServer
    thread: threading.Thread

    @property
    def token_requests(self) -> list[str]:
        return self.server.token_requests

    def oci(self, namespace: str) -> str:
        return f"oci://{self.host}/{namespace}"

    def stop(self) -> None:
        if self.thread.is_alive():
            self.server.shutdown()
            self.thread.join(timeout=10)
        self.server.server_close()
        self.server.client.close()


def start_fake_token_gate(registry: Registry, *, token: str = "anonymous-token") -> FakeTokenGate:
    server = _GateServer(("127.0.0.1", 0), _GateHandler)
    server.upstream = registry.url
    server.token = token
    server.token_requests = []
    server.client = httpx.Client(timeout=10.0, trust_env=False)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                              name="token-gate", daemon=True)
    thread.start()
    return FakeTokenGate(host=f"127.0.0.1:{server.server_address[1]}", server=server, thread=thread)
