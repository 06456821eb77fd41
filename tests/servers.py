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
- registries with authentication: :func:`write_htpasswd` (basic auth) and :func:`start_token_server`
  (the registry's ``auth: token``: ES256 JWTs signed by a key whose certificate the registry
  trusts); :class:`ChallengeAuth` answers their challenges for pushes;
- :func:`build_oci_image` / :func:`push_oci_image`: tiny deterministic images (an index with
  platforms, manifests, configs, layers, optionally an attestation; OCI or Docker media types);
  ``tests/registry/skopeo.py`` is the independent cross-check;
- :func:`start_server` serves one handler class (hostile registries subclass :class:`QuietHandler`);
  :func:`silent_server` accepts connections and never answers;
- :func:`start_fault_proxy`: a keep-alive proxy in front of a registry that injects delays,
  resets, error statuses and corrupted bodies (:class:`ProxyFault`) and counts connections;
  :func:`start_object_store` is another loopback host (127.0.0.2) to redirect blob downloads to;
- archive assets the servers need or tests of archives build by hand: :func:`build_archive` (an
  arbitrary tar.gz in the given member order, unsafe members included) and :func:`chart_metadata`.
  Charts themselves come from :mod:`tests.factories`.

Every server stops cleanly: processes are terminated and waited for (no zombies), threads joined.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import re
import socket
import struct
import subprocess
import tarfile
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import httpx
import yaml

REGISTRY_BINARY = "docker-registry"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_LAYER = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"

_LISTENING = re.compile(r"listening on 127\.0\.0\.1:(\d+)")


class QuietHandler(SimpleHTTPRequestHandler):
    """The base of every test server's handler: answer, forward to an upstream registry, log nothing."""

    @property
    def method(self) -> str:
        """The request's method (``answer`` sends no body for HEAD)."""
        return self.command

    def answer(self, status: int, body: bytes, headers: Mapping[str, str] | None = None, *,
               length: int | None = None) -> None:
        """``status`` with ``headers``, a ``Content-Length`` (``length``, else the body's, unless a
        header gives one) and ``body`` (not for HEAD)."""
        headers = headers or {}
        self.send_response(HTTPStatus(status))
        for key, value in headers.items():
            self.send_header(key, value)
        if "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        if self.method != "HEAD" and body:
            self.wfile.write(body)

    def forward(self, client: httpx.Client, upstream: str, *, send: Iterable[str] = ("accept",),
                keep: Iterable[str] = ("content-type", "docker-content-digest", "link")) -> tuple[httpx.Response,
                                                                                                  dict[str, str]]:
        """Send this request (its ``send`` headers) to ``upstream``; the reply and its ``keep`` headers."""
        sent, kept = frozenset(send), frozenset(keep)
        headers = {k: v for k, v in self.headers.items() if k.lower() in sent}
        reply = client.request(self.method, upstream + self.path, headers=headers)
        return reply, {k: v for k, v in reply.headers.items() if k.lower() in kept}

    def log_message(self, format: str, *args: Any) -> None:
        return


def serve_in_thread(server: ThreadingHTTPServer, name: str) -> threading.Thread:
    """Serve ``server`` from a daemon thread named ``name`` (started)."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, name=name, daemon=True)
    thread.start()
    return thread


def stop_serving(server: ThreadingHTTPServer, thread: threading.Thread) -> None:
    """Stop what :func:`serve_in_thread` started and close the socket."""
    if thread.is_alive():
        server.shutdown()
        thread.join(timeout=10)
    server.server_close()


class LoopbackServer(ThreadingHTTPServer):
    """The base of every test server: one daemon thread per request (a hung client never blocks the end)."""

    daemon_threads = True


class Stoppable:
    """A running test server: ``stop()`` it, or use it in ``with``."""

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


@dataclass(kw_only=True)
class Served(Stoppable):
    """A :class:`LoopbackServer` serving from the thread :func:`serve_in_thread` started."""

    server: LoopbackServer
    thread: threading.Thread

    def stop(self) -> None:
        stop_serving(self.server, self.thread)


@dataclass(kw_only=True)
class Handled(Served):
    """A server of one request handler class: ``host`` is ``127.0.0.1:PORT``."""

    host: str


def start_server(handler: type[BaseHTTPRequestHandler], *, name: str = "test-server") -> Handled:
    """Serve ``handler`` on 127.0.0.1 (random port) from a background thread."""
    server = LoopbackServer(("127.0.0.1", 0), handler)
    thread = serve_in_thread(server, name)
    return Handled(server=server, thread=thread, host=f"127.0.0.1:{server.server_address[1]}")


@contextlib.contextmanager
def silent_server(*, backlog: int = 64) -> Iterator[str]:
    """A loopback socket that accepts connections and never answers: ``127.0.0.1:PORT``."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(backlog)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        server.close()


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
class Registry(Stoppable):
    """A running registry: ``host`` is ``127.0.0.1:PORT``; ``root`` holds config, data and log."""

    host: str
    root: Path
    process: subprocess.Popen[bytes]
    #: ``(user, password)`` the registry (or its token server) accepts, when it wants any.
    credentials: tuple[str, str] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def push_auth(self) -> httpx.Auth | None:
        """An ``httpx.Auth`` that answers this registry's challenges (basic or bearer) for pushes."""
        return ChallengeAuth(*self.credentials) if self.credentials is not None else None

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


def start_registry(tmp_path: Path, *, binary: str = REGISTRY_BINARY, timeout: float = 15.0,
                   auth: Mapping[str, Any] | None = None,
                   credentials: tuple[str, str] | None = None) -> Registry:
    """Start ``docker-registry serve`` on 127.0.0.1 with a random port; return when ``/v2/`` answers.

    ``auth`` is the registry's ``auth:`` configuration (``htpasswd`` or ``token``); then ``/v2/``
    answering 401 counts as up. ``credentials`` are recorded on the result for pushes.
    """
    root = tmp_path
    root.mkdir(parents=True, exist_ok=True)
    config = {
        "version": 0.1,
        "log": {"level": "info", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(root / "data")}, "delete": {"enabled": True}},
        "http": {"addr": "127.0.0.1:0", "secret": "test-secret-not-for-production"},
    }
    if auth is not None:
        config["auth"] = dict(auth)
    config_path = root / "config.yml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=True))
    log_path = root / "registry.log"
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(root), "TZ": "UTC", "LANG": "C.UTF-8"}
    with log_path.open("wb") as log:
        process = subprocess.Popen([binary, "serve", str(config_path)], stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, env=env, cwd=root)
    registry = Registry(host="", root=root, process=process, credentials=credentials)
    up = (200, 401) if auth is not None else (200,)
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
                    if client.get(f"{registry.url}/v2/").status_code in up:
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


class _RepoServer(LoopbackServer):
    requests: list[str]
    faults: list[Fault]
    lock: threading.Lock


class _RepoHandler(QuietHandler):
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
        self.answer(fault.status, fault.body, {**fault.headers, "Content-Length": str(len(fault.body))})


@dataclass(kw_only=True)
class HttpRepo(Served):
    """A directory served over HTTP on 127.0.0.1. ``requests`` lists the paths asked for, in order;
    append to ``faults`` to answer the next requests with errors instead of files."""

    directory: Path
    url: str
    server: _RepoServer

    @property
    def requests(self) -> list[str]:
        return self.server.requests

    @property
    def faults(self) -> list[Fault]:
        return self.server.faults


def start_http_repo(directory: Path) -> HttpRepo:
    """Serve ``directory`` on 127.0.0.1 (random port) from a background thread."""
    directory.mkdir(parents=True, exist_ok=True)

    def handler(*args: Any, **kwargs: Any) -> _RepoHandler:
        return _RepoHandler(*args, directory=str(directory), **kwargs)

    server = _RepoServer(("127.0.0.1", 0), handler)
    server.requests, server.faults, server.lock = [], [], threading.Lock()
    thread = serve_in_thread(server, "http-repo")
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


class _GateServer(LoopbackServer):
    upstream: str
    token: str
    token_requests: list[str]
    client: httpx.Client


class _GateHandler(QuietHandler):
    server: _GateServer

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path == "/token":
            self.server.token_requests.append(parts.query)
            query = parse_qs(parts.query)
            if "service" not in query or "scope" not in query:
                self.answer(400, b"missing service or scope")
                return
            self.answer(200, json.dumps({"token": self.server.token}).encode(), {"Content-Type": "application/json"})
            return
        if self.headers.get("Authorization") != f"Bearer {self.server.token}":
            repo = parts.path.removeprefix("/v2/").rsplit("/", 2)[0]
            host = f"127.0.0.1:{self.server.server_address[1]}"
            challenge = (f'Bearer realm="http://{host}/token",service="fake-gate",'
                         f'scope="repository:{repo}:pull"')
            self.answer(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', {"WWW-Authenticate": challenge})
            return
        upstream, passed = self.forward(self.server.client, self.server.upstream)
        if self.method == "HEAD":
            passed["Content-Length"] = upstream.headers.get("content-length", "0")
        self.answer(upstream.status_code, upstream.content, passed)


@dataclass(kw_only=True)
class FakeTokenGate(Served):
    """A loopback gate that demands an anonymous bearer token, then forwards to ``upstream``."""

    host: str
    server: _GateServer

    @property
    def token_requests(self) -> list[str]:
        return self.server.token_requests

    def oci(self, namespace: str) -> str:
        return f"oci://{self.host}/{namespace}"

    def stop(self) -> None:
        super().stop()
        self.server.client.close()


def start_fake_token_gate(registry: Registry, *, token: str = "anonymous-token") -> FakeTokenGate:
    server = _GateServer(("127.0.0.1", 0), _GateHandler)
    server.upstream = registry.url
    server.token = token
    server.token_requests = []
    server.client = httpx.Client(timeout=10.0, trust_env=False)
    thread = serve_in_thread(server, "token-gate")
    return FakeTokenGate(host=f"127.0.0.1:{server.server_address[1]}", server=server, thread=thread)


# ------------------------------------------------------------------------------------------------
# authentication for pushes (independent of the code under test)


class ChallengeAuth(httpx.Auth):
    """Answers a registry's 401 the simple way: basic credentials, or a bearer token from the realm.

    Test infrastructure for pushing; deliberately not the pipeline's own client. Tokens are cached
    per scope.
    """

    requires_request_body = True

    def __init__(self, username: str, password: str) -> None:
        self._basic = httpx.BasicAuth(username, password)
        self._credentials = (username, password)
        self._tokens: dict[str, str] = {}

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        response = yield request
        if response.status_code != 401:
            return
        challenge = response.headers.get("www-authenticate", "")
        if challenge.lower().startswith("basic"):
            yield from self._basic.auth_flow(request)
            return
        params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        scope = params.get("scope", "")
        token = self._tokens.get(scope)
        if token is None:
            query = {k: v for k, v in (("service", params.get("service")), ("scope", scope)) if v}
            answer = httpx.get(params["realm"], params=query, auth=self._credentials, timeout=10.0, trust_env=False)
            answer.raise_for_status()
            token = str(answer.json()["token"])
            self._tokens[scope] = token
        request.headers["Authorization"] = f"Bearer {token}"
        yield request


def write_htpasswd(path: Path, users: Mapping[str, str], *, rounds: int = 4) -> Path:
    """An htpasswd file with bcrypt hashes (the only kind distribution accepts); cheap rounds for tests."""
    import bcrypt

    lines = [f"{user}:{bcrypt.hashpw(pw.encode(), bcrypt.gensalt(rounds=rounds)).decode()}\n"
             for user, pw in sorted(users.items())]
    path.write_text("".join(lines))
    return path


# ------------------------------------------------------------------------------------------------
# token server (the registry's `auth: token`): ES256 JWTs signed by a key whose certificate the
# registry trusts, key found through the libtrust `kid`


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenHit:
    """One request to the token server: the user (``None`` = anonymous), the scopes and the answer."""

    user: str | None
    scopes: tuple[str, ...]
    service: str
    status: int


class _TokenServer(LoopbackServer):
    lock: threading.Lock
    hits: list[TokenHit]
    config: TokenServerConfig
    signer: Callable[[str | None, list[dict[str, Any]]], str]


@dataclass(kw_only=True)
class TokenServerConfig:
    """What the token server grants (mutable while it runs)."""

    service: str = "test-registry"
    issuer: str = "test-issuer"
    users: Mapping[str, str] = field(default_factory=dict)
    anonymous_pull: bool = True
    #: repositories anonymous clients may pull (``None``: all, when ``anonymous_pull``)
    public: frozenset[str] | None = None
    expires_in: int | None = 300
    fields: tuple[str, ...] = ("token", "access_token")


class _TokenHandler(QuietHandler):
    server: _TokenServer

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path != "/token":
            self._answer(404, b"not found")
            return
        query = parse_qs(parts.query)
        config = self.server.config
        scopes = tuple(query.get("scope", []))
        service = (query.get("service") or [""])[0]
        user, status = self._who(config)
        with self.server.lock:
            self.server.hits.append(TokenHit(user=user, scopes=scopes, service=service, status=status))
        if status != 200:
            self._answer(status, b'{"details":"invalid username/password"}')
            return
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            wanted = [a for a in actions.split(",") if a]
            public = config.anonymous_pull and (config.public is None or name in config.public)
            granted = wanted if user is not None else [a for a in wanted if a == "pull" and public]
            if kind == "repository" and granted:
                access.append({"type": "repository", "name": name, "actions": granted})
        token = self.server.signer(user, access)
        answer: dict[str, Any] = dict.fromkeys(config.fields, token)
        if config.expires_in is not None:
            answer["expires_in"] = config.expires_in
        answer["issued_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self._answer(200, json.dumps(answer).encode(), content_type="application/json")

    def _who(self, config: TokenServerConfig) -> tuple[str | None, int]:
        header = self.headers.get("Authorization")
        if header is None:
            return None, 200 if config.anonymous_pull else 401
        import base64

        try:
            user, _, password = base64.b64decode(header.split(" ", 1)[1]).decode().partition(":")
        except (IndexError, ValueError):
            return None, 401
        if config.users.get(user) != password:
            return user, 401
        return user, 200

    def _answer(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
        self.answer(status, body, {"Content-Type": content_type})


@dataclass(kw_only=True)
class TokenServer(Served):
    """A running token server: ``realm`` is its token URL; ``bundle`` the certificate the registry trusts."""

    url: str
    bundle: Path
    server: _TokenServer

    @property
    def realm(self) -> str:
        return f"{self.url}/token"

    @property
    def config(self) -> TokenServerConfig:
        return self.server.config

    @property
    def hits(self) -> list[TokenHit]:
        return self.server.hits

    def registry_auth(self) -> dict[str, Any]:
        """The registry's ``auth:`` configuration that trusts this server."""
        return {"token": {"realm": self.realm, "service": self.config.service, "issuer": self.config.issuer,
                          "rootcertbundle": str(self.bundle)}}


def libtrust_kid(public_key: Any) -> str:
    """The key ID distribution computes for a public key (libtrust: base32 of a truncated SHA-256)."""
    import base64

    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    der = public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    text = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode()
    return ":".join(text[i:i + 4] for i in range(0, 48, 4))


def start_token_server(root: Path, config: TokenServerConfig | None = None) -> TokenServer:
    """A token server on 127.0.0.1 signing ES256 JWTs; its certificate is written to ``root/bundle.pem``."""
    import datetime

    import jwt
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    root.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test token signer")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    bundle = root / "bundle.pem"
    bundle.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    kid = libtrust_kid(key.public_key())
    server = _TokenServer(("127.0.0.1", 0), _TokenHandler)
    server.lock, server.hits, server.config = threading.Lock(), [], config or TokenServerConfig()
    counter = iter(range(1, 1 << 30))

    def sign(user: str | None, access: list[dict[str, Any]]) -> str:
        issued = int(time.time())
        lifetime = server.config.expires_in or 60
        claims = {"iss": server.config.issuer, "sub": user or "", "aud": server.config.service,
                  "exp": issued + lifetime, "nbf": issued - 1, "iat": issued, "jti": str(next(counter)),
                  "access": access}
        return jwt.encode(claims, key, algorithm="ES256", headers={"kid": kid})

    server.signer = sign
    thread = serve_in_thread(server, "token-server")
    return TokenServer(url=f"http://127.0.0.1:{server.server_address[1]}", bundle=bundle, server=server,
                       thread=thread)


# ------------------------------------------------------------------------------------------------
# small deterministic OCI images


OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


@dataclass(frozen=True, slots=True, kw_only=True)
class OciImage:
    """An image as bytes: blobs (configs, layers), child manifests, and the top manifest or index.

    ``platforms`` and ``configs`` are what a resolver should report; ``attestations`` maps an
    attestation manifest's digest to the manifest it describes.
    """

    blobs: Mapping[str, bytes]
    children: tuple[tuple[str, str, bytes], ...]  # (digest, media type, bytes), pushed by digest
    top: bytes
    media_type: str
    platforms: Mapping[str, str]
    configs: Mapping[str, str]
    attestations: Mapping[str, str]

    @property
    def digest(self) -> str:
        return _sha256(self.top)


def _compact(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def build_oci_image(seed: str, *, platforms: Sequence[str] = ("linux/amd64", "linux/arm64"),
                    index: bool = True, docker: bool = False, attestation: bool = False) -> OciImage:
    """A tiny image whose bytes depend only on the arguments (same seed, same digests).

    ``index=False`` gives a single manifest for ``platforms[0]``; ``docker=True`` uses Docker v2
    media types; ``attestation=True`` adds a buildkit-style ``unknown/unknown`` attestation entry.
    """
    manifest_type, config_type, layer_type = ((DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER) if docker
                                              else (OCI_MANIFEST, OCI_CONFIG, OCI_LAYER))
    blobs: dict[str, bytes] = {}
    children: list[tuple[str, str, bytes]] = []
    descriptors: list[dict[str, Any]] = []
    found: dict[str, str] = {}
    configs: dict[str, str] = {}
    for platform in platforms:
        os_name, arch, *variant = platform.split("/")
        layer = build_archive([Member(name="hello.txt", data=f"{seed} {platform}\n".encode())], mtime=0)
        diff_id = _sha256(gzip.decompress(layer))
        config_doc: dict[str, Any] = {"architecture": arch, "os": os_name,
                                      "config": {"Cmd": ["/hello"], "Labels": {"seed": seed}},
                                      "rootfs": {"type": "layers", "diff_ids": [diff_id]}}
        if variant:
            config_doc["variant"] = variant[0]
        config = _compact(config_doc)
        blobs[_sha256(config)] = config
        blobs[_sha256(layer)] = layer
        manifest = _compact({
            "schemaVersion": 2, "mediaType": manifest_type,
            "config": {"mediaType": config_type, "digest": _sha256(config), "size": len(config)},
            "layers": [{"mediaType": layer_type, "digest": _sha256(layer), "size": len(layer)}],
        })
        if not index:
            return OciImage(blobs=blobs, children=(), top=manifest, media_type=manifest_type, platforms={},
                            configs={"": _sha256(config)}, attestations={})
        children.append((_sha256(manifest), manifest_type, manifest))
        plat: dict[str, str] = {"architecture": arch, "os": os_name}
        if variant:
            plat["variant"] = variant[0]
        descriptors.append({"mediaType": manifest_type, "digest": _sha256(manifest), "size": len(manifest),
                            "platform": plat})
        found[platform] = _sha256(manifest)
        configs[platform] = _sha256(config)
    attestations: dict[str, str] = {}
    if attestation:
        statement = _compact({"_type": "https://in-toto.io/Statement/v0.1", "seed": seed})
        empty = b"{}"
        blobs[_sha256(statement)] = statement
        blobs[_sha256(empty)] = empty
        described = descriptors[0]["digest"]
        att = _compact({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": _sha256(empty), "size": len(empty)},
            "layers": [{"mediaType": "application/vnd.in-toto+json", "digest": _sha256(statement),
                        "size": len(statement)}],
        })
        children.append((_sha256(att), OCI_MANIFEST, att))
        descriptors.append({"mediaType": OCI_MANIFEST, "digest": _sha256(att), "size": len(att),
                            "platform": {"architecture": "unknown", "os": "unknown"},
                            "annotations": {"vnd.docker.reference.digest": described,
                                            "vnd.docker.reference.type": "attestation-manifest"}})
        attestations[_sha256(att)] = described
    top_type = DOCKER_LIST if docker else OCI_INDEX
    top = _compact({"schemaVersion": 2, "mediaType": top_type, "manifests": descriptors})
    return OciImage(blobs=blobs, children=tuple(children), top=top, media_type=top_type, platforms=found,
                    configs=configs, attestations=attestations)


def push_oci_image(registry: Registry, repository: str, tag: str, image: OciImage) -> str:
    """Push ``image`` as ``repository:tag`` (blobs, child manifests by digest, then the tag); its digest."""
    with httpx.Client(base_url=registry.url, timeout=10.0, trust_env=False, auth=registry.push_auth()) as client:
        for digest, data in sorted(image.blobs.items()):
            if client.head(f"/v2/{repository}/blobs/{digest}").status_code != 200:
                _push_blob(client, repository, data)
        for digest, media_type, body in image.children:
            _put_manifest(client, repository, digest, body, media_type)
        _put_manifest(client, repository, tag, image.top, image.media_type)
    return image.digest


def _put_manifest(client: httpx.Client, repository: str, reference: str, body: bytes, media_type: str) -> None:
    response = client.put(f"/v2/{repository}/manifests/{reference}", content=body,
                          headers={"Content-Type": media_type})
    if response.status_code != 201:
        raise RuntimeError(f"manifest PUT {repository}:{reference} answered {response.status_code}: {response.text}")
    if response.headers.get("docker-content-digest") != _sha256(body):
        raise RuntimeError(f"registry digest {response.headers.get('docker-content-digest')} != {_sha256(body)}")


# ------------------------------------------------------------------------------------------------
# fault-injecting proxy in front of a registry, and a redirect target ("object storage")


@dataclass(frozen=True, slots=True, kw_only=True)
class ProxyFault:
    """A fault the proxy injects into the next request matching ``method`` and ``path`` (a regex).

    ``kind``: ``delay`` (wait ``delay`` seconds, then answer normally: beyond the client's timeout
    this is a timeout), ``reset`` (close the connection with a TCP RST, no answer), ``status``
    (answer ``status`` with ``headers``, e.g. 500, or 429 with ``Retry-After``), ``corrupt``
    (answer normally but flip a byte of the body, headers unchanged: a body that does not match its
    digest). ``persistent`` faults stay; the others are used once.
    """

    kind: str
    path: str | None = None
    method: str | None = None
    status: int = 500
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    persistent: bool = False

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (
            self.path is None or re.search(self.path, path) is not None)


class _ProxyServer(LoopbackServer):
    request_queue_size = 128  # socketserver's default backlog of 5 drops SYNs of concurrent clients (1 s stalls)
    errors: list[str]

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Keep handler failures (e.g. a delayed request finishing after the test) instead of printing them."""
        import sys

        self.errors.append(repr(sys.exc_info()[1]))

    lock: threading.Lock
    upstream: str
    client: httpx.Client
    faults: list[ProxyFault]
    injected: list[ProxyFault]
    requests: list[tuple[str, str, bool]]
    connections: int
    active: int
    peak: int
    redirect_blobs: str | None
    page_tags: int | None


class _ProxyHandler(QuietHandler):
    server: _ProxyServer
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server.connections += 1
            self.server.active += 1
            self.server.peak = max(self.server.peak, self.server.active)

    def finish(self) -> None:
        with self.server.lock:
            self.server.active -= 1
        with contextlib.suppress(OSError, ValueError):
            super().finish()

    def do_GET(self) -> None:
        self._proxy("GET")

    def do_HEAD(self) -> None:
        self._proxy("HEAD")

    def _proxy(self, method: str) -> None:
        server = self.server
        with server.lock:
            server.requests.append((method, self.path, "Authorization" in self.headers))
            fault = next((f for f in server.faults if f.matches(method, self.path)), None)
            if fault is not None:
                server.injected.append(fault)
                if not fault.persistent:
                    server.faults.remove(fault)
        if fault is not None and fault.kind == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()
            self.connection.close()
            self.close_connection = True
            return
        if fault is not None and fault.kind == "status":
            body = b'{"errors":[{"code":"UNAVAILABLE","message":"injected fault"}]}'
            self._send(method, fault.status, {**fault.headers, "Content-Type": "application/json"}, body)
            return
        if fault is not None and fault.kind == "delay":
            time.sleep(fault.delay)
        blob = re.fullmatch(r"/v2/(.+)/blobs/(sha256:[0-9a-f]{64})", urlsplit(self.path).path)
        if server.redirect_blobs is not None and blob is not None:
            self._send(method, 307, {"Location": f"{server.redirect_blobs}/{blob.group(2)}"}, b"")
            return
        parts = urlsplit(self.path)
        if server.page_tags is not None and method == "GET" and parts.path.endswith("/tags/list"):
            headers = {k: v for k, v in self.headers.items() if k.lower() in ("accept", "authorization")}
            self._page_tags(parts.path, parse_qs(parts.query), headers, server.page_tags)
            return
        upstream, passed = self.forward(server.client, server.upstream, send=("accept", "authorization"),
                                        keep=("content-type", "docker-content-digest", "www-authenticate", "link",
                                              "location", "docker-distribution-api-version"))
        body = upstream.content
        if fault is not None and fault.kind == "corrupt" and body:
            body = body[:-2] + bytes([body[-2] ^ 0x01]) + body[-1:]
        if method == "HEAD":
            passed["Content-Length"] = upstream.headers.get("content-length", "0")
        self._send(method, upstream.status_code, passed, body)

    def _page_tags(self, path: str, query: dict[str, list[str]], headers: Mapping[str, str], size: int) -> None:
        """Answer a tag list one page at a time, as the distribution spec describes (``n``, ``last``, ``Link``)."""
        upstream = self.server.client.get(self.server.upstream + path, headers=headers)
        if upstream.status_code != 200:
            self._send("GET", upstream.status_code, {"Content-Type": "application/json"}, upstream.content)
            return
        data = upstream.json()
        last = (query.get("last") or [""])[0]
        count = int((query.get("n") or [str(size)])[0])
        tags = sorted(t for t in data["tags"] if t > last)
        page, more = tags[:count], len(tags) > count
        extra = {"Content-Type": "application/json"}
        if more:
            extra["Link"] = f'<{path}?n={count}&last={page[-1]}>; rel="next"'
        self._send("GET", 200, extra, json.dumps({"name": data["name"], "tags": page}).encode())

    def _send(self, method: str, status: int, headers: Mapping[str, str], body: bytes) -> None:
        try:
            self.answer(status, body, headers)
        except OSError:  # the client gave up (a delay beyond its timeout)
            self.close_connection = True


@dataclass(kw_only=True)
class FaultProxy(Served):
    """A loopback proxy in front of ``upstream`` that injects :class:`ProxyFault` s.

    ``faults`` is the queue (append to it); ``injected`` lists the faults served, in order;
    ``requests`` every request as ``(method, path, had_authorization)``; ``connections`` counts
    accepted TCP connections and ``peak`` the most open at once. ``redirect_blobs`` (a base URL)
    answers blob GETs with a 307 to ``<base>/<digest>``.
    """

    host: str
    server: _ProxyServer

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def faults(self) -> list[ProxyFault]:
        return self.server.faults

    @property
    def injected(self) -> list[ProxyFault]:
        return self.server.injected

    @property
    def requests(self) -> list[tuple[str, str, bool]]:
        return self.server.requests

    @property
    def connections(self) -> int:
        return self.server.connections

    @property
    def peak(self) -> int:
        return self.server.peak

    def stop(self) -> None:
        super().stop()
        self.server.client.close()


def start_fault_proxy(upstream: str, *, bind: str = "127.0.0.1", redirect_blobs: str | None = None,
                      page_tags: int | None = None) -> FaultProxy:
    """Start a fault-injecting HTTP/1.1 proxy (keep-alive) on ``bind`` forwarding to ``upstream``.

    ``page_tags`` makes the proxy serve tag lists in pages of that size with ``Link`` headers
    (distribution 2.8 itself never pages them).
    """
    server = _ProxyServer((bind, 0), _ProxyHandler)
    server.lock, server.upstream = threading.Lock(), upstream.rstrip("/")
    server.client = httpx.Client(timeout=30.0, trust_env=False, follow_redirects=False,
                                 limits=httpx.Limits(max_connections=64))
    server.faults, server.injected, server.requests = [], [], []
    server.connections = server.active = server.peak = 0
    server.errors = []
    server.redirect_blobs = redirect_blobs
    server.page_tags = page_tags
    thread = serve_in_thread(server, "fault-proxy")
    return FaultProxy(host=f"{bind}:{server.server_address[1]}", server=server, thread=thread)


class _StoreServer(LoopbackServer):
    objects: dict[str, bytes]
    seen: list[tuple[str, dict[str, str]]]


class _StoreHandler(QuietHandler):
    server: _StoreServer

    def do_GET(self) -> None:
        self.server.seen.append((self.path, dict(self.headers.items())))
        body = self.server.objects.get(self.path.lstrip("/"))
        self.answer(200 if body is not None else 404, body or b"")


@dataclass(kw_only=True)
class ObjectStore(Served):
    """Another host (127.0.0.2) serving ``objects`` by name; ``seen`` keeps each request's headers."""

    url: str
    server: _StoreServer

    @property
    def objects(self) -> dict[str, bytes]:
        return self.server.objects

    @property
    def seen(self) -> list[tuple[str, dict[str, str]]]:
        return self.server.seen


def start_object_store(*, bind: str = "127.0.0.2") -> ObjectStore:
    server = _StoreServer((bind, 0), _StoreHandler)
    server.objects, server.seen = {}, []
    thread = serve_in_thread(server, "object-store")
    return ObjectStore(url=f"http://{bind}:{server.server_address[1]}", server=server, thread=thread)


@dataclass(kw_only=True)
class TokenRegistry(Stoppable):
    """A registry with ``auth: token`` and the token server it trusts."""

    registry: Registry
    tokens: TokenServer

    def stop(self) -> None:
        self.registry.stop()
        self.tokens.stop()


def start_token_registry(root: Path, *, users: Mapping[str, str], anonymous_pull: bool = True) -> TokenRegistry:
    """A token server (``users`` may push and pull; anonymous may pull when allowed) and its registry."""
    tokens = start_token_server(root / "tokens", TokenServerConfig(users=dict(users), anonymous_pull=anonymous_pull))
    try:
        user, password = next(iter(sorted(users.items())))
        registry = start_registry(root / "registry", auth=tokens.registry_auth(), credentials=(user, password))
    except BaseException:
        tokens.stop()
        raise
    return TokenRegistry(registry=registry, tokens=tokens)


def start_basic_registry(root: Path, *, users: Mapping[str, str]) -> Registry:
    """A registry with htpasswd basic auth for ``users`` (bcrypt, 4 rounds)."""
    root.mkdir(parents=True, exist_ok=True)
    htpasswd = write_htpasswd(root / "htpasswd", users)
    user, password = next(iter(sorted(users.items())))
    return start_registry(root / "registry", auth={"htpasswd": {"realm": "test-realm", "path": str(htpasswd)}},
                          credentials=(user, password))
