"""Registry host names: Docker Hub's several names, where its API answers, and loopback hosts.

Docker Hub is one registry with four names. Image references call it ``docker.io`` (what
``ImageRef`` normalises to); its API answers at ``registry-1.docker.io``; ``index.docker.io`` is
its legacy name (Docker's ``config.json`` keys, cosign and sigstore policy-controller match on it);
``registry.hub.docker.com`` appears as a credential key in some ``config.json`` files. Everything
that maps between them does it here.
"""

from __future__ import annotations

import ipaddress

__all__ = [
    "DOCKER_HUB",
    "DOCKER_HUB_API",
    "DOCKER_HUB_INDEX",
    "DOCKER_HUB_REFERENCE_ALIASES",
    "api_host",
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
