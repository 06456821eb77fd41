"""The pipeline's shared vocabulary: the words every layer speaks, defined once.

Image references (:class:`ImageRef`), digests (:data:`Digest`, :func:`sha256`, canonical JSON),
OCI and Docker media types, registry host names and aliases, credentials redacted from URLs and
texts, atomic file writing and the content-addressed store. This is the
bottom layer of DESIGN.md's "Layers": it imports nothing of the pipeline (an import-linter
contract in ``pyproject.toml`` keeps it so), and every other layer may import it. It holds no
stage logic, reads no files but the ones it is asked to write, and never touches the network.

The name is DESIGN.md's own: the layer diagram calls this layer "vocabulary", so the package, the
contract and the design read the same word.
"""

from .digest import Digest, canonical_json, is_sha256, parse_digest, sha256, sha256_of_entries
from .files import atomic_write, atomic_write_many
from .hosts import DOCKER_HUB, DOCKER_HUB_API, DOCKER_HUB_INDEX, api_host, is_loopback, normalize_registry_host
from .reference import ImageRef, ImageRefError
from .store import ContentStore

__all__ = [
    "DOCKER_HUB",
    "DOCKER_HUB_API",
    "DOCKER_HUB_INDEX",
    "ContentStore",
    "Digest",
    "ImageRef",
    "ImageRefError",
    "api_host",
    "atomic_write",
    "atomic_write_many",
    "canonical_json",
    "is_loopback",
    "is_sha256",
    "normalize_registry_host",
    "parse_digest",
    "sha256",
    "sha256_of_entries",
]
