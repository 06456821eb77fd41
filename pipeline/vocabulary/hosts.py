"""Registry host names: Docker Hub's several names, where its API answers, and loopback hosts.

Docker Hub is one registry with four names. Image references call it ``docker.io`` (what
``ImageRef`` normalises to); its API answers at ``registry-1.docker.io``; ``index.docker.io`` is
its legacy name (Docker's ``config.json`` keys, cosign and sigstore policy-controller match on it);
``registry.hub.docker.com`` appears as a credential key in some ``config.json`` files. Everything
that maps between them does it here.
"""

from __future__ import annotations

import ipaddress
import json

__all__ = [
    "DOCKER_HUB",
    "DOCKER_HUB_API",
    "DOCKER_HUB_INDEX",
    "DOCKER_HUB_REFERENCE_ALIASES",
    "api_host",
    "containerd_hosts_toml",
    "containerd_namespace_dir",
    "is_loopback",
    "normalize_registry_host",
]

#: Docker Hub as image references name it (the registry of ``busybox``).
DOCKER_HUB = "docker.io"
#: Where Docker Hub's distribution API answers.
DOCKER_HUB_API = "registry-1.docker.io"
#: Docker Hub's legacy name (``https://index.docker.io/v1/`` in ``config.json``; what signers record).
DOCKER_HUB_INDEX = "index.docker.io"
#: Docker Hub's web host, a credential key in some ``config.json`` files.
_DOCKER_HUB_WEB = "registry.hub.docker.com"
#: Other names of Docker Hub that an image reference's registry normalises to :data:`DOCKER_HUB`.
DOCKER_HUB_REFERENCE_ALIASES = frozenset({DOCKER_HUB_INDEX, DOCKER_HUB_API})
_CREDENTIAL_ALIASES = DOCKER_HUB_REFERENCE_ALIASES | {_DOCKER_HUB_WEB}


def normalize_registry_host(key: str) -> str:
    """The registry host of a ``config.json`` key or URL (``https://index.docker.io/v1/`` → ``docker.io``)."""
    text = key.strip()
    if "://" in text:
        text = text.split("://", 1)[1]
    host = text.split("/", 1)[0].rpartition("@")[2].lower()
    return DOCKER_HUB if host in _CREDENTIAL_ALIASES else host


def api_host(registry: str) -> str:
    """The host that serves ``registry``'s API: Docker Hub's names map to :data:`DOCKER_HUB_API`."""
    return DOCKER_HUB_API if registry in (DOCKER_HUB, DOCKER_HUB_INDEX) else registry


def is_loopback(host: str) -> bool:
    """Whether ``host`` (``name``, ``name:port``, ``[v6]:port``) is ``localhost`` or a loopback address."""
    if host.startswith("["):
        name = host[1:].split("]", 1)[0]
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def containerd_namespace_dir(registry: str) -> str:
    """containerd's ``certs.d`` directory for a registry namespace: ``host``, or ``host_port_`` for ``host:port``."""
    host, sep, port = registry.rpartition(":")
    if sep and port.isdigit():
        return f"{host}_{port}_"
    return registry


def containerd_hosts_toml(registry: str, mirror_url: str, *, generated_by: str, override_path: bool = False) -> bytes:
    """The ``hosts.toml`` that sends pulls of ``registry`` to ``mirror_url`` first (pull and resolve), with
    the upstream ``server`` as the fallback. ``override_path``: the mirror URL's path is the API root
    (``https://m/v2/prefix``: a mirror that keeps each upstream under a repository prefix)."""
    lines = [
        f"# containerd registry host configuration for {registry}, generated from lockfiles/",
        f"# by {generated_by}.",
        f"server = {json.dumps(f'https://{api_host(registry)}', ensure_ascii=False)}",
        "",
        f"[host.{json.dumps(mirror_url, ensure_ascii=False)}]",
        '  capabilities = ["pull", "resolve"]',
    ]
    if override_path:
        lines.append("  override_path = true")
    lines.append("")
    return "\n".join(lines).encode()
