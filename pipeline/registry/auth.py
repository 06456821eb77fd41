"""Registry authentication as real registries do it: challenges, bearer tokens, basic, Docker config.

Contract:

- :func:`parse_www_authenticate` reads a ``WWW-Authenticate`` header (any case) into challenges:
  ``Bearer realm=…,service=…,scope=…`` and ``Basic realm=…``; quoted values may hold commas and
  backslash escapes; several challenges in one header are kept in order;
- :class:`DockerConfig` reads the ``auths`` of a Docker ``config.json`` (``auth`` as base64
  ``user:password``, or ``username``/``password``); keys are normalised to registry hosts
  (``https://index.docker.io/v1/`` → ``docker.io``). :func:`docker_config_path` says where that
  file is (``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``) from an explicit
  environment mapping: this module never reads ``os.environ`` itself;
- :class:`Authenticator` answers a 401: for ``Bearer`` it GETs ``realm?service=…&scope=…`` (with
  basic credentials when it has some for the registry, anonymously otherwise), accepts ``token``
  or ``access_token``, and caches the token per (registry, scope) until ``expires_in`` (60 s when
  absent) runs out; one fetch per key even under concurrency. For ``Basic`` it sends the
  registry's credentials, and keeps sending them to that registry without waiting for a 401;
- credentials are only sent over HTTPS, or plain HTTP to a loopback or ``insecure`` host;
- secrets never reach logs, messages or reprs: passwords and tokens are :class:`Secret`
  (``repr`` is ``'***'``); messages name the registry, the user and the config file, never the
  password or the token;
- errors: :class:`~pipeline.errors.ResolveError`.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ResolveError
from ..vocabulary.hosts import is_loopback, normalize_registry_host
from ..vocabulary.redact import redact_url

if TYPE_CHECKING:
    from .transport import Transport

__all__ = [
    "Authenticator",
    "Challenge",
    "Credentials",
    "DockerConfig",
    "Secret",
    "docker_config_path",
    "normalize_registry_host",
    "parse_www_authenticate",
]

#: Lifetime assumed for a token whose answer has no ``expires_in`` (the distribution spec's default).
DEFAULT_TOKEN_LIFETIME = 60
_EXPIRY_MARGIN = 5.0
_MAX_TOKEN_BYTES = 1024 * 1024
_TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_log = logging.getLogger(__name__)


class Secret:
    """A string that does not show itself: ``repr`` and ``str`` are ``'***'``; :meth:`reveal` gives it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret text, for the one place that sends it."""
        return self._value

    def __repr__(self) -> str:
        return "'***'"

    def __str__(self) -> str:
        return "***"

    def __format__(self, spec: str) -> str:
        return "***"

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self) -> Any:
        raise TypeError("a Secret is not picklable")


@dataclass(frozen=True, slots=True, kw_only=True)
class Credentials:
    """A user name and password (or registry token) for one registry."""

    username: str
    password: Secret

    def basic(self) -> str:
        """The ``Authorization`` header value for HTTP basic authentication."""
        raw = f"{self.username}:{self.password.reveal()}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


@dataclass(frozen=True, slots=True, kw_only=True)
class Challenge:
    """One challenge of a ``WWW-Authenticate`` header: lower-case scheme, parameters by lower-case name."""

    scheme: str
    params: Mapping[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")


def parse_www_authenticate(header: str) -> tuple[Challenge, ...]:
    """The challenges of a ``WWW-Authenticate`` value, in order (RFC 7235 syntax, tolerant).

    >>> parse_www_authenticate('Bearer realm="https://a/token",service="reg",scope="repository:x:pull,push"')
    (Challenge(scheme='bearer', params={'realm': 'https://a/token', 'service': 'reg', \
'scope': 'repository:x:pull,push'}),)
    """
    challenges: list[Challenge] = []
    params: dict[str, str] = {}
    pos, end = 0, len(header)
    while pos < end:
        while pos < end and header[pos] in " \t,":
            pos += 1
        start = pos
        while pos < end and header[pos] in _TCHAR:
            pos += 1
        if pos == start:  # not a token: skip one character and carry on
            pos += 1
            continue
        name = header[start:pos]
        after = pos
        while after < end and header[after] in " \t":
            after += 1
        if challenges and after < end and header[after] == "=" and header[after + 1: after + 2] != "=":
            pos = after + 1
            while pos < end and header[pos] in " \t":
                pos += 1
            value, pos = _param_value(header, pos)
            params.setdefault(name.lower(), value)
            continue
        if challenges and after < end and header[after] == "=":  # token68 (e.g. "Negotiate abc==")
            pos = after
            while pos < end and header[pos] == "=":
                pos += 1
            continue
        params = {}
        challenges.append(Challenge(scheme=name.lower(), params=params))
    return tuple(challenges)


def _param_value(header: str, pos: int) -> tuple[str, int]:
    end = len(header)
    if pos < end and header[pos] == '"':
        pos += 1
        out: list[str] = []
        while pos < end and header[pos] != '"':
            if header[pos] == "\\" and pos + 1 < end:
                pos += 1
            out.append(header[pos])
            pos += 1
        return "".join(out), pos + 1
    start = pos
    while pos < end and header[pos] not in " \t,":
        pos += 1
    return header[start:pos], pos


def docker_config_path(environ: Mapping[str, str], *, home: Path | None = None) -> Path:
    """Where Docker keeps ``config.json``: ``$DOCKER_CONFIG/config.json``, else ``<home>/.docker/config.json``.

    ``home`` defaults to ``$HOME`` from ``environ`` (then to :meth:`Path.home`).
    """
    directory = environ.get("DOCKER_CONFIG")
    if directory:
        return Path(directory) / "config.json"
    base = home if home is not None else Path(environ["HOME"]) if environ.get("HOME") else Path.home()
    return base / ".docker" / "config.json"


@dataclass(frozen=True, slots=True, kw_only=True)
class DockerConfig:
    """The credentials of a Docker ``config.json``, by registry host.

    ``helpers`` names the credential helper configured per host (``credHelpers``) or for all
    (``credsStore``, under ``"*"``): they are not run (that would execute programs), only named in
    hints. ``path`` is where the file was read, for messages.
    """

    auths: Mapping[str, Credentials] = field(default_factory=dict)
    helpers: Mapping[str, str] = field(default_factory=dict)
    path: str | None = None

    @classmethod
    def load(cls, path: Path, *, required: bool = True) -> DockerConfig:
        """Read ``path``; a missing file is an error when ``required``, else no credentials."""
        shown = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            if not required:
                return cls(path=shown)
            raise ResolveError(f"Docker config {shown} does not exist",
                               hint="check the 'dockerConfig' path, or run 'docker login' to create it") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise ResolveError(f"cannot read Docker config {shown}: {type(exc).__name__}",
                               hint="check the file's permissions and that it is UTF-8 JSON") from exc
        try:
            data = json.loads(text)
        except ValueError as exc:
            # not chained: the decoder's exception keeps the whole document (credentials) in ``doc``
            raise ResolveError(f"Docker config {shown} is not JSON ({exc.__class__.__name__} at {_position(exc)})",
                               hint="fix the file, or run 'docker login' to rewrite it") from None
        return cls.from_json(data, path=shown)

    @classmethod
    def from_json(cls, data: Any, *, path: str = "config.json") -> DockerConfig:
        """Build from parsed ``config.json`` data; entries without credentials are skipped."""
        if not isinstance(data, dict):
            raise ResolveError(f"Docker config {path} is not a JSON object", hint="fix the file")
        auths_node = data.get("auths")
        if auths_node is None:
            auths_node = {}
        if not isinstance(auths_node, dict):
            raise ResolveError(f"Docker config {path}: 'auths' is not an object",
                               hint="write 'auths': {\"<registry>\": {\"auth\": \"<base64 user:password>\"}}")
        auths: dict[str, Credentials] = {}
        for key, entry in sorted(auths_node.items()):
            host = normalize_registry_host(str(key))
            creds = _entry_credentials(entry, key=str(key), path=path)
            if creds is not None and host not in auths:
                auths[host] = creds
        helpers: dict[str, str] = {}
        store = data.get("credsStore")
        if isinstance(store, str) and store:
            helpers["*"] = store
        per_host = data.get("credHelpers")
        if isinstance(per_host, dict):
            for key, helper in per_host.items():
                if isinstance(helper, str) and helper:
                    helpers[normalize_registry_host(str(key))] = helper
        return cls(auths=auths, helpers=helpers, path=path)

    def credentials(self, host: str) -> Credentials | None:
        """The credentials stored for registry ``host``, if any."""
        return self.auths.get(normalize_registry_host(host))

    def helper_for(self, host: str) -> str | None:
        """The credential helper Docker would ask for ``host`` (not supported here; for hints)."""
        return self.helpers.get(normalize_registry_host(host)) or self.helpers.get("*")


def _position(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"line {exc.lineno} column {exc.colno}"
    return "an unknown position"


def _entry_credentials(entry: Any, *, key: str, path: str) -> Credentials | None:
    where = f"Docker config {path}: entry {key!r}"
    if not isinstance(entry, dict):
        raise ResolveError(f"{where} is not an object", hint="each 'auths' entry is {\"auth\": \"<base64>\"}")
    encoded = entry.get("auth")
    if isinstance(encoded, str) and encoded:
        try:
            decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise ResolveError(f"{where}: 'auth' is not base64 of 'user:password'",
                               hint="run 'docker login' again, or write base64 of 'user:password'") from None
        username, sep, password = decoded.partition(":")
        if not sep or not username:
            raise ResolveError(f"{where}: 'auth' does not decode to 'user:password'",
                               hint="run 'docker login' again, or write base64 of 'user:password'")
        return Credentials(username=username, password=Secret(password))
    user, secret = entry.get("username"), entry.get("password")
    if isinstance(user, str) and user and isinstance(secret, str):
        return Credentials(username=user, password=Secret(secret))
    return None


@dataclass(frozen=True, slots=True)
class _Token:
    value: Secret
    expires: float


class Authenticator:
    """Answers registry challenges and remembers what worked, per (registry, scope). Thread-safe.

    ``insecure`` lists hosts where plain HTTP is allowed for sending credentials (besides loopback).
    ``clock`` is monotonic seconds, for token expiry.
    """

    def __init__(
        self,
        *,
        transport: Transport,
        credentials: DockerConfig | None = None,
        insecure: frozenset[str] = frozenset(),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._transport = transport
        self._config = credentials or DockerConfig()
        self._insecure = insecure
        self._clock = clock
        self._tokens: dict[tuple[str, str], _Token] = {}
        self._basic: set[str] = set()
        self._lock = threading.Lock()
        self._key_locks: dict[tuple[str, str], threading.Lock] = {}
        self.token_fetches = 0

    @property
    def config_path(self) -> str | None:
        """The Docker config the credentials came from (``None`` when none was read)."""
        return self._config.path

    def credentials_for(self, host: str) -> Credentials | None:
        return self._config.credentials(host)

    def authorization(self, host: str, scope: str) -> str | None:
        """The ``Authorization`` value to send to ``host`` for ``scope`` now, from what is cached."""
        with self._lock:
            token = self._tokens.get((host, scope))
            if token is not None and token.expires > self._clock():
                return f"Bearer {token.value.reveal()}"
            basic = host in self._basic
        creds = self.credentials_for(host) if basic else None
        return creds.basic() if creds is not None else None

    def authenticate(self, host: str, scope: str, header: str, *, rejected: str | None, what: str,
                     base: str) -> str | None:
        """The ``Authorization`` value that answers ``header`` (a 401's ``WWW-Authenticate``).

        ``rejected`` is the value just refused (never handed out again from the cache); ``base``
        is the registry's ``scheme://host``. ``None`` when there is nothing to answer with
        (basic auth without credentials, or an unknown scheme).
        """
        challenges = parse_www_authenticate(header)
        bearer = next((c for c in challenges if c.scheme == "bearer"), None)
        if bearer is not None:
            return self._bearer(host, scope, bearer, rejected=rejected, what=what)
        if any(c.scheme == "basic" for c in challenges):
            creds = self.credentials_for(host)
            if creds is None:
                return None
            self._check_channel(base, host, what=what)
            with self._lock:
                self._basic.add(host)
            return creds.basic()
        return None

    def _bearer(self, host: str, scope: str, challenge: Challenge, *, rejected: str | None, what: str) -> str:
        key = (host, scope)
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                cached = self._tokens.get(key)
            if cached is not None and cached.expires > self._clock():
                value = f"Bearer {cached.value.reveal()}"
                if value != rejected:
                    return value  # another thread fetched it while this one waited
            token, lifetime = self._fetch_token(host, scope, challenge, what=what)
            expires = self._clock() + max(1.0, lifetime - min(_EXPIRY_MARGIN, lifetime / 10))
            with self._lock:
                self._tokens[key] = _Token(value=token, expires=expires)
            return f"Bearer {token.reveal()}"

    def _fetch_token(self, host: str, scope: str, challenge: Challenge, *, what: str) -> tuple[Secret, float]:
        # Imported here: commands that read a Docker config without using the network (lock
        # --no-resolve, bom, ...) do not pay for httpx at start-up.
        import httpx

        realm = challenge.realm
        try:
            realm_url = httpx.URL(realm)
        except httpx.InvalidURL:
            realm_url = None
        if realm_url is None or realm_url.scheme not in ("https", "http") or not realm_url.host:
            raise ResolveError(
                f"{what}: registry {host!r} asks for a bearer token but names no usable realm ({realm!r})",
                hint="the registry's authentication is misconfigured; use a mirror",
            )
        creds = self.credentials_for(host)
        query: list[tuple[str, str | int | float | bool | None]] = []
        if challenge.params.get("service"):
            query.append(("service", challenge.params["service"]))
        for item in (challenge.params.get("scope") or scope).split(" "):
            if item:
                query.append(("scope", item))
        headers: dict[str, str] = {}
        if creds is not None:
            self._check_channel(f"{realm_url.scheme}://{realm_url.netloc.decode()}", host, what=what)
            query.append(("account", creds.username))
            headers["Authorization"] = creds.basic()
        url = str(realm_url.copy_merge_params(query))
        shown_realm = redact_url(str(realm_url.copy_with(query=None)))
        with self._lock:
            self.token_fetches += 1
        reply = self._transport.get(url, what=f"token for {what}", headers=headers,
                                    max_bytes=_MAX_TOKEN_BYTES, error=ResolveError)
        who = f"user {creds.username!r} (from {self._config.path or 'the Docker config'})" if creds else None
        if reply.status in (401, 403):
            if who is not None:
                raise ResolveError(
                    f"{what}: the token service {shown_realm} of registry {host!r} refused the credentials "
                    f"of {who} (HTTP {reply.status})",
                    hint=f"check the user name and password stored for {host!r}; run 'docker login {host}' "
                    "to replace them",
                )
            raise ResolveError(
                f"{what}: the token service {shown_realm} of registry {host!r} refused an anonymous token "
                f"(HTTP {reply.status})",
                hint=self.missing_credentials_hint(host),
            )
        if reply.status != 200:
            raise ResolveError(
                f"{what}: the token service {shown_realm} of registry {host!r} answered HTTP {reply.status}"
                + (f" after {reply.attempts} attempts" if reply.attempts > 1 else ""),
                hint="retry later; if it persists, the registry's token service is broken",
            )
        try:
            data: Any = json.loads(reply.body)
        except ValueError:
            data = None
        token = None
        if isinstance(data, dict):
            token = data.get("token") or data.get("access_token")
        if not isinstance(token, str) or not token:
            raise ResolveError(
                f"{what}: the token service {shown_realm} of registry {host!r} answered without a token",
                hint="the registry's token service is misconfigured; use a mirror",
            )
        lifetime = data.get("expires_in")
        if not isinstance(lifetime, int) or isinstance(lifetime, bool) or lifetime <= 0:
            lifetime = DEFAULT_TOKEN_LIFETIME
        _log.debug("token for %s scope %s from %s (%d s)", host, scope, shown_realm, lifetime)
        return Secret(token), float(lifetime)

    def _check_channel(self, base: str, host: str, *, what: str) -> None:
        """Refuse to send credentials over plain HTTP to anything but loopback or an insecure host."""
        import httpx  # here, not at the top: start-up time of commands that do not use the network

        url = httpx.URL(base)
        target = url.netloc.decode()
        if url.scheme == "https" or is_loopback(target) or target in self._insecure or host in self._insecure:
            return
        raise ResolveError(
            f"{what}: credentials for registry {host!r} would be sent over plain HTTP to {target!r}; refused",
            hint=f"serve {target!r} over HTTPS, or list it under registries.insecure if the network is trusted",
        )

    def missing_credentials_hint(self, host: str) -> str:
        """What to do when ``host`` wants credentials we do not have."""
        helper = self._config.helper_for(host)
        where = self._config.path or "a Docker config.json"
        if helper is not None:
            return (f"credentials for {host!r} are kept by the Docker credential helper {helper!r}, which is "
                    f"not supported: put them under 'auths' in {where}")
        return f"the registry wants credentials: run 'docker login {host}' or add them under 'auths' in {where}"
