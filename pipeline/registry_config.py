"""Registry configuration: mirrors per upstream registry (as containerd's ``hosts.toml``), insecure
hosts and the Docker config with credentials.

It sits below the stages because two of them share it: compose reads it from ``pipeline.yaml``
(:mod:`pipeline.recipes.config`) and resolve obeys it (:mod:`pipeline.registry`), and compose must
never import resolve.

Input: the ``spec.registries`` mapping of ``recipes/pipeline.yaml`` (already loaded, with line
numbers); output: a frozen :class:`RegistryConfig`. Example::

    registries:
      dockerConfig: /home/ci/.docker/config.json   # optional; credentials under 'auths'
      requestDeadline: 25                          # seconds per request, all retries (default 25)
      imageDeadline: 30                            # seconds for all requests of one image (default 30)
      insecure: [registry.internal:5000]           # plain HTTP allowed (loopback always is)
      mirrors:
        nvcr.io:                                   # upstream registry host
          endpoints:                               # tried in order, before the upstream
            - url: http://127.0.0.1:5000/nvcr      # scheme://host[:port][/repository prefix]
              capabilities: [pull, resolve]        # default: both
            - https://mirror.example.com/nvcr      # shorthand: both capabilities
          skipUpstream: false                      # true: never fall back to nvcr.io itself
        docker.io: [http://127.0.0.1:5000/hub]     # shorthand: just the endpoints

Semantics (those of containerd's hosts.toml, see ``docs/hosts.md`` there), with one difference:

- a mirror with ``resolve`` may answer tag → digest; with ``pull`` it may serve content by digest;
- mirrors are tried in order, the upstream last (unless ``skipUpstream``); a mirror that lacks the
  image, refuses access or is down is skipped. A mirror that serves bytes not matching their
  digest is *not* skipped: that is tampering and stops the run;
- the URL path is a *repository prefix* (``http://m:5000/nvcr`` serves ``nvcr.io/nvidia/x`` as
  ``m:5000/nvcr/nvidia/x``, the layout ``skopeo sync`` and containers-registries.conf's
  ``location`` use), not containerd's API path before ``/v2``, because the distribution registry
  has no API path prefix;
- upstream hosts are normalised like image references (``index.docker.io`` → ``docker.io``);
- plain ``http://`` is accepted only for loopback hosts or hosts listed in ``insecure``; a URL
  without a scheme gets HTTPS (HTTP for loopback and insecure hosts).

Whatever serves an image, the lock keeps the upstream reference; the resolved record's
``served_by`` names the host that answered. Errors: :class:`~pipeline.errors.RecipeError` with
file, line and a hint.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ._checks import check_keys, line_of, type_name
from ._yaml import YamlMap
from .errors import RecipeError
from .vocabulary.hosts import is_loopback, normalize_registry_host

__all__ = [
    "DEFAULT_IMAGE_DEADLINE",
    "DEFAULT_REQUEST_DEADLINE",
    "Capability",
    "Mirror",
    "MirrorSet",
    "RegistryConfig",
    "parse_registry_config",
]

_HOST = re.compile(r"^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*|\[[0-9a-f:.]+\])"
                   r"(?::[0-9]{1,5})?$")
_PREFIX = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
_KEYS = ("dockerConfig", "insecure", "mirrors", "requestDeadline", "imageDeadline")
#: Defaults: a registry that accepts connections and never answers fails ``lock`` within 30 s.
DEFAULT_REQUEST_DEADLINE = 25.0
DEFAULT_IMAGE_DEADLINE = 30.0
_MAX_DEADLINE = 3600.0
_SET_KEYS = ("endpoints", "skipUpstream")
_ENDPOINT_KEYS = ("url", "capabilities")


class Capability(enum.StrEnum):
    """What a mirror may do: answer tag → digest (``resolve``), serve content by digest (``pull``)."""

    PULL = "pull"
    RESOLVE = "resolve"


@dataclass(frozen=True, slots=True, kw_only=True)
class Mirror:
    """One mirror endpoint: ``scheme``, ``host`` (``name[:port]``), repository ``prefix`` and capabilities."""

    scheme: str
    host: str
    prefix: str = ""
    capabilities: frozenset[Capability] = frozenset({Capability.PULL, Capability.RESOLVE})

    def __post_init__(self) -> None:
        if self.scheme not in ("http", "https"):
            raise ValueError(f"Mirror.scheme must be http or https, not {self.scheme!r}")
        if not _HOST.match(self.host):
            raise ValueError(f"Mirror.host {self.host!r} is not host[:port]")
        if self.prefix and not _PREFIX.match(self.prefix):
            raise ValueError(f"Mirror.prefix {self.prefix!r} is not a repository path")
        if not self.capabilities:
            raise ValueError("Mirror.capabilities is empty")

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}" + (f"/{self.prefix}" if self.prefix else "")

    def can(self, capability: Capability) -> bool:
        return capability in self.capabilities


@dataclass(frozen=True, slots=True, kw_only=True)
class MirrorSet:
    """The mirrors of one upstream registry, in order, and whether the upstream itself is skipped."""

    endpoints: tuple[Mirror, ...] = ()
    skip_upstream: bool = False

    def __post_init__(self) -> None:
        if self.skip_upstream and not self.endpoints:
            raise ValueError("MirrorSet.skip_upstream needs at least one endpoint")


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistryConfig:
    """How to reach registries: mirrors by upstream host, hosts allowed over plain HTTP, Docker config.

    ``docker_config`` is the path as written (``None``: no credentials configured; the caller may
    still pass a :class:`~pipeline.registry.auth.DockerConfig` it found itself).
    ``request_deadline``: seconds for one request and all its retries; ``image_deadline``: seconds
    for every request about one image together.
    """

    mirrors: Mapping[str, MirrorSet] = field(default_factory=dict)
    insecure: frozenset[str] = frozenset()
    docker_config: str | None = None
    request_deadline: float = DEFAULT_REQUEST_DEADLINE
    image_deadline: float = DEFAULT_IMAGE_DEADLINE

    def __post_init__(self) -> None:
        for name in ("request_deadline", "image_deadline"):
            value = getattr(self, name)
            if not 0 < value <= _MAX_DEADLINE:
                raise ValueError(f"RegistryConfig.{name} must be in (0, {_MAX_DEADLINE:g}], not {value!r}")

    def with_timeout(self, seconds: float) -> RegistryConfig:
        """This configuration with every image (and so every request) bounded by ``seconds``."""
        return replace(self, image_deadline=seconds, request_deadline=min(self.request_deadline, seconds))

    def plain_http(self, host: str) -> bool:
        """Whether ``host`` is reached over plain HTTP (loopback or listed as insecure)."""
        return is_loopback(host) or host.lower() in self.insecure

    def mirrors_of(self, registry: str) -> MirrorSet:
        return self.mirrors.get(normalize_registry_host(registry), MirrorSet())


def parse_registry_config(node: YamlMap | None, *, path: str) -> RegistryConfig:
    """Parse the ``registries`` mapping (``None`` or absent: no mirrors, nothing insecure, no credentials).

    ``path`` is the file to name in messages (catalog-relative); lines come from the YAML nodes.
    """
    if node is None:
        return RegistryConfig()
    if not isinstance(node, dict):
        raise RecipeError(f"registries must be a mapping, not a {type_name(node)}", path=path,
                          line=line_of(node), hint=f"registries is a mapping of {', '.join(_KEYS)}")
    check_keys(node, _KEYS, what="registries", path=path)
    insecure = _insecure(node, path=path)
    docker_config = node.get("dockerConfig")
    if docker_config is not None and (not isinstance(docker_config, str) or not docker_config.strip()):
        raise RecipeError(f"registries.dockerConfig must be a file path, not {docker_config!r}", path=path,
                          line=line_of(node, "dockerConfig"),
                          hint="write the path of a Docker config.json, e.g. /home/ci/.docker/config.json")
    mirrors_node = node.get("mirrors")
    mirrors: dict[str, MirrorSet] = {}
    if mirrors_node is not None:
        if not isinstance(mirrors_node, dict):
            raise RecipeError(f"registries.mirrors must be a mapping, not a {type_name(mirrors_node)}",
                              path=path, line=line_of(node, "mirrors"),
                              hint="map each upstream registry host to its mirror endpoints")
        first_line: dict[str, int | None] = {}
        for key, value in mirrors_node.items():
            line = line_of(mirrors_node, str(key))
            upstream = _upstream(key, path=path, line=line)
            if upstream in mirrors:
                raise RecipeError(
                    f"registries.mirrors lists registry {upstream!r} twice (as {key!r}; first at line "
                    f"{first_line[upstream]})", path=path, line=line,
                    hint="docker.io, index.docker.io and registry-1.docker.io are the same registry: merge them",
                )
            first_line[upstream] = line
            mirrors[upstream] = _mirror_set(value, upstream=upstream, insecure=insecure, path=path, line=line)
    return RegistryConfig(mirrors=dict(sorted(mirrors.items())), insecure=insecure,
                          docker_config=docker_config.strip() if isinstance(docker_config, str) else None,
                          request_deadline=_seconds(node, "requestDeadline", DEFAULT_REQUEST_DEADLINE, path=path),
                          image_deadline=_seconds(node, "imageDeadline", DEFAULT_IMAGE_DEADLINE, path=path))


def _seconds(node: YamlMap, key: str, default: float, *, path: str) -> float:
    value = node.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= _MAX_DEADLINE:
        raise RecipeError(f"registries.{key} must be a number of seconds in (0, {_MAX_DEADLINE:g}], not {value!r}",
                          path=path, line=line_of(node, key), hint=f"write {key}: {default:g}")
    return float(value)


def _insecure(node: YamlMap, *, path: str) -> frozenset[str]:
    value = node.get("insecure")
    if value is None:
        return frozenset()
    line = line_of(node, "insecure")
    if not isinstance(value, list):
        raise RecipeError(f"registries.insecure must be a list of hosts, not a {type_name(value)}", path=path,
                          line=line, hint="write insecure: [registry.internal:5000]")
    hosts: set[str] = set()
    for item in value:
        if not isinstance(item, str) or not _HOST.match(item.strip().lower()):
            raise RecipeError(f"registries.insecure item {item!r} is not a registry host", path=path, line=line,
                              hint="write host[:port] without a scheme or path, e.g. registry.internal:5000")
        hosts.add(item.strip().lower())
    return frozenset(hosts)


def _upstream(key: Any, *, path: str, line: int | None) -> str:
    text = key.strip().lower() if isinstance(key, str) else ""
    if not text or "://" in text or "/" in text or not _HOST.match(text):
        raise RecipeError(f"registries.mirrors: {key!r} is not a registry host", path=path, line=line,
                          hint="key the mirrors by the registry host of the images, e.g. nvcr.io or docker.io")
    return normalize_registry_host(text)


def _mirror_set(value: Any, *, upstream: str, insecure: frozenset[str], path: str, line: int | None) -> MirrorSet:
    what = f"registries.mirrors[{upstream!r}]"
    skip = False
    if isinstance(value, dict):
        check_keys(value, _SET_KEYS, what=what, path=path)
        items = value.get("endpoints")
        line = line_of(value, "endpoints") or line
        raw_skip = value.get("skipUpstream", False)
        if not isinstance(raw_skip, bool):
            raise RecipeError(f"{what}.skipUpstream must be true or false, not {raw_skip!r}", path=path,
                              line=line_of(value, "skipUpstream"), hint="write skipUpstream: true")
        skip = raw_skip
    else:
        items = value
    if not isinstance(items, list) or not items:
        raise RecipeError(f"{what} has no endpoints", path=path, line=line,
                          hint="list mirror URLs, e.g. endpoints: [http://127.0.0.1:5000/mirror]")
    endpoints: list[Mirror] = []
    for item in items:
        mirror = _endpoint(item, what=what, insecure=insecure, path=path, line=line_of(item) or line)
        if any(m.url == mirror.url for m in endpoints):
            raise RecipeError(f"{what} lists mirror {mirror.url!r} twice", path=path, line=line_of(item) or line,
                              hint="list each mirror once")
        endpoints.append(mirror)
    return MirrorSet(endpoints=tuple(endpoints), skip_upstream=skip)


def _endpoint(item: Any, *, what: str, insecure: frozenset[str], path: str, line: int | None) -> Mirror:
    capabilities = frozenset(Capability)
    if isinstance(item, dict):
        check_keys(item, _ENDPOINT_KEYS, what=f"{what} endpoint", path=path)
        url = item.get("url")
        caps = item.get("capabilities")
        if caps is not None:
            if not isinstance(caps, list) or not caps or not all(isinstance(c, str) for c in caps):
                raise RecipeError(f"{what}: capabilities must be a non-empty list, not {caps!r}", path=path,
                                  line=line_of(item, "capabilities"), hint="write capabilities: [pull, resolve]")
            unknown = sorted({c for c in caps if c not in set(Capability)})
            if unknown:
                raise RecipeError(f"{what}: unknown capabilities {unknown}", path=path,
                                  line=line_of(item, "capabilities"),
                                  hint="a mirror can 'pull' (content by digest) and 'resolve' (tag to digest)")
            capabilities = frozenset(Capability(c) for c in caps)
    else:
        url = item
    if not isinstance(url, str) or not url.strip():
        raise RecipeError(f"{what}: endpoint {url!r} is not a URL", path=path, line=line,
                          hint="write scheme://host[:port][/prefix], e.g. https://mirror.example.com/nvcr")
    text = url.strip()
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "", text
    host, _, prefix = rest.partition("/")
    host, prefix = host.lower(), prefix.strip("/")
    bad = (scheme not in ("", "http", "https") or not _HOST.match(host) or "?" in rest or "#" in rest
           or (prefix and not _PREFIX.match(prefix)))
    if bad:
        raise RecipeError(f"{what}: mirror URL {text!r} is malformed", path=path, line=line,
                          hint="write scheme://host[:port][/prefix] with a lower-case repository prefix, e.g. "
                          "https://mirror.example.com/nvcr")
    plain_ok = is_loopback(host) or host in insecure
    if not scheme:
        scheme = "http" if plain_ok else "https"
    if scheme == "http" and not plain_ok:
        raise RecipeError(
            f"{what}: mirror {text!r} uses plain HTTP, allowed only for loopback hosts or insecure registries",
            path=path, line=line,
            hint=f"use https://, or list {host!r} under registries.insecure if the network is trusted",
        )
    return Mirror(scheme=scheme, host=host, prefix=prefix, capabilities=capabilities)
