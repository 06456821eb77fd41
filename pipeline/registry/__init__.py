"""OCI registries: the distribution client that resolves image references to digests.

The resolve stage's entry points are :class:`RegistryClient` (one per run) and
:func:`resolve_all`; :func:`parse_registry_config` reads mirrors, insecure hosts and the Docker
config from ``pipeline.yaml``'s ``spec.registries``. The shared HTTP transport (retries,
redirects, redaction) lives in :mod:`pipeline.registry.transport` and serves the chart sources
too. This package uses the network; nothing else in it reads global state.
"""

from ..registry_config import Capability, Mirror, MirrorSet, RegistryConfig, parse_registry_config
from .auth import Credentials, DockerConfig, Secret, docker_config_path, parse_www_authenticate
from .client import Manifest, RegistryClient
from .interface import MANIFEST_ACCEPT, NotFoundError, ResolvedImage, Resolver, TamperingError
from .push import Pusher
from .resolver import resolve_all
from .transport import HttpReply, RetryPolicy, Transport, redact_url

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
