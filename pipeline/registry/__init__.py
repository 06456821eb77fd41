"""OCI registries: the distribution client that resolves image references to digests.

The resolve stage's entry points are :class:`RegistryClient` (one per run) and
:func:`resolve_all`; :func:`parse_registry_config` reads mirrors, insecure hosts and the Docker
config from ``pipeline.yaml``'s ``spec.registries``. The shared HTTP transport (retries,
redirects, redaction) lives in :mod:`pipeline.registry.transport` and serves the chart sources
too. This package uses the network; nothing else in it reads global state.

Each name below is imported from its module on first use (PEP 562), so that commands that do not
use the network (``lock --no-resolve``, ``bom``, ``policies``, ...) do not pay at start-up for
``httpx``, which :mod:`~pipeline.registry.client`, :mod:`~pipeline.registry.push` and
:mod:`~pipeline.registry.transport` import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from ..registry_config import Capability, Mirror, MirrorSet, RegistryConfig, parse_registry_config
    from ..vocabulary.redact import redact_url
    from .auth import Credentials, DockerConfig, Secret, docker_config_path, parse_www_authenticate
    from .client import Manifest, RegistryClient
    from .interface import MANIFEST_ACCEPT, NotFoundError, ResolvedImage, Resolver, TamperingError
    from .push import Pusher
    from .resolver import resolve_all
    from .transport import HttpReply, RetryPolicy, Transport

__all__ = [
    "MANIFEST_ACCEPT",
    "Capability",
    "Credentials",
    "DockerConfig",
    "HttpReply",
    "Manifest",
    "Mirror",
    "MirrorSet",
    "NotFoundError",
    "Pusher",
    "RegistryClient",
    "RegistryConfig",
    "ResolvedImage",
    "Resolver",
    "RetryPolicy",
    "Secret",
    "TamperingError",
    "Transport",
    "docker_config_path",
    "parse_registry_config",
    "parse_www_authenticate",
    "redact_url",
    "resolve_all",
]

#: The module that defines each name of ``__all__`` (relative to this package).
_SOURCES = {
    "Capability": "..registry_config",
    "Mirror": "..registry_config",
    "MirrorSet": "..registry_config",
    "RegistryConfig": "..registry_config",
    "parse_registry_config": "..registry_config",
    "redact_url": "..vocabulary.redact",
    "Credentials": ".auth",
    "DockerConfig": ".auth",
    "Secret": ".auth",
    "docker_config_path": ".auth",
    "parse_www_authenticate": ".auth",
    "Manifest": ".client",
    "RegistryClient": ".client",
    "MANIFEST_ACCEPT": ".interface",
    "NotFoundError": ".interface",
    "ResolvedImage": ".interface",
    "Resolver": ".interface",
    "TamperingError": ".interface",
    "Pusher": ".push",
    "resolve_all": ".resolver",
    "HttpReply": ".transport",
    "RetryPolicy": ".transport",
    "Transport": ".transport",
}


__getattr__, __dir__ = lazy_exports(__name__, globals(), _SOURCES, __all__)
