"""Image references, parsed once at the edge and normalised the way container runtimes do.

``ImageRef.parse`` follows the grammar of the distribution project's ``reference`` package (what
docker, containerd and Kubernetes use): the first path component is a registry when it contains
``.`` or ``:`` or is ``localhost``; otherwise the registry is Docker Hub (``docker.io``) and
single-component names get ``library/``. Tag and digest may both be present. ``str(ref)`` is the
fully qualified canonical form and parses back to an equal reference.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .digest import REGISTERED_DIGESTS
from .hosts import DOCKER_HUB, DOCKER_HUB_REFERENCE_ALIASES

__all__ = ["DOCKER_HUB", "ImageRef", "ImageRefError"]

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?"
# ASCII only: the grammar's \w is [A-Za-z0-9_] (Python's \w would also take non-ASCII letters).
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(
    rf"^(?P<name>(?:(?P<domain>{_DOMAIN})/)?{_COMPONENT}(?:/{_COMPONENT})*)"
    rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$"
)
MAX_NAME = 255


class ImageRefError(ValueError):
    """Text that is not an image reference; the message says why."""


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class ImageRef:
    """A normalised image reference: registry, repository, optional tag and digest."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> ImageRef:
        """Parse and normalise ``text``; :class:`ImageRefError` says what is wrong with it."""
        if not isinstance(text, str) or not text.strip():
            raise ImageRefError("empty image reference")
        if text != text.strip():
            raise ImageRefError(f"image reference {text!r} has surrounding whitespace")
        match = _REFERENCE.match(text)
        if match is None:
            raise ImageRefError(_why(text))
        name, tag, digest = match["name"], match["tag"], match["digest"]
        if len(name) > MAX_NAME:
            raise ImageRefError(f"image name in {text!r} is longer than {MAX_NAME} characters")
        first, _, rest = name.partition("/")
        if rest and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
            registry, repository = first, rest
        else:
            registry, repository = DOCKER_HUB, name
        if registry.lower() in DOCKER_HUB_REFERENCE_ALIASES:
            registry = DOCKER_HUB
        if registry == DOCKER_HUB and "/" not in repository:
            repository = f"library/{repository}"
        if repository != repository.lower():
            raise ImageRefError(f"repository in {text!r} must be lower case")
        if digest is not None:
            algorithm, _, encoded = digest.partition(":")
            size = REGISTERED_DIGESTS.get(algorithm)
            if size is not None and not re.fullmatch(f"[0-9a-f]{{{size}}}", encoded):
                raise ImageRefError(f"digest in {text!r} is not {algorithm}:<{size} lowercase hex characters>")
        return cls(registry=registry, repository=repository, tag=tag, digest=digest)

    @property
    def name(self) -> str:
        """``registry/repository``: what a registry API and a mirror list key on."""
        return f"{self.registry}/{self.repository}"

    @property
    def pinned(self) -> bool:
        """Whether the reference carries a ``sha256`` digest."""
        return self.digest is not None and self.digest.startswith("sha256:")

    def __str__(self) -> str:
        text = self.name
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text

    def familiar(self) -> str:
        """The short form docker prints (``busybox:1.36``, ``ghcr.io/org/app:v1``)."""
        text = str(self)
        if self.registry == DOCKER_HUB:
            short = text.removeprefix(f"{DOCKER_HUB}/").removeprefix("library/")
            first = self.repository.split("/", 1)[0]
            # A Hub namespace that looks like a host ('0.0/x') needs the registry to stay unambiguous.
            if "/" not in short.split(":", 1)[0].split("@", 1)[0] or not ("." in first or first == "localhost"):
                text = short
        return text

    def with_digest(self, digest: str) -> ImageRef:
        return ImageRef(registry=self.registry, repository=self.repository, tag=self.tag, digest=digest)

    def with_registry(self, registry: str, *, prefix: str = "") -> ImageRef:
        """The same image under another registry (a mirror), with an optional path prefix."""
        repository = f"{prefix.strip('/')}/{self.repository}" if prefix.strip("/") else self.repository
        return ImageRef(registry=registry, repository=repository, tag=self.tag, digest=self.digest)


def _why(text: str) -> str:
    if "{{" in text or "}}" in text or "${" in text:
        return f"image reference {text!r} is an unrendered template"
    if "://" in text:
        return f"image reference {text!r} must not have a URL scheme"
    if " " in text or "\t" in text:
        return f"image reference {text!r} contains whitespace"
    if text.endswith((":", "@")):
        return f"image reference {text!r} ends with an empty tag or digest"
    if "@" in text and not re.search(rf"@{_DIGEST}$", text):
        return f"digest in image reference {text!r} is malformed (expected algorithm:hex, e.g. sha256:<64 hex>)"
    if text.startswith("/") or text.endswith("/") or "//" in text:
        return f"image reference {text!r} has an empty path component"
    if re.search(r"[A-Z]", text.split("/", 1)[-1].split(":", 1)[0]):
        return f"repository in {text!r} must be lower case"
    return f"{text!r} is not a valid image reference"
