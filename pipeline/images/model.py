"""Records of image discovery: what was found, where, how, and what was refused.

A :class:`FoundImage` is one place a render names an image: the parsed reference, the text as
written, the recipe and component, the source file, the Kubernetes resource, the field path, the
pattern that found it (:class:`Via`) and its :class:`Origin`. A :class:`Rejected` is a place that
looked like an image but is not one (a placeholder, an empty string, a template leftover, a path, a
URL), with the reason. Field and value paths are written the way ``kubectl explain`` and ``jq``
users read them: ``spec.template.spec.containers[0].env[RELATED_IMAGE_DRIVER].value``; keys that
are not plain words are quoted (``nodeSelector["accel.example.dev/gpu"]``).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from ..vocabulary.reference import ImageRef

__all__ = [
    "Discovery",
    "FoundImage",
    "Origin",
    "RejectReason",
    "Rejected",
    "Resource",
    "ValuePath",
    "Via",
    "format_path",
    "join_key",
]

#: A path into a values tree: mapping keys and list indices, root first.
ValuePath = tuple[str | int, ...]

_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


class Origin(enum.StrEnum):
    """Who chose the image: our catalog (manifests or values) or the chart's own defaults."""

    IN_TREE = "in-tree"
    CHART_DEFAULT = "chart-default"


class Via(enum.StrEnum):
    """The pattern an image was found by."""

    #: ``image`` of a container, init container or ephemeral container of a pod spec
    CONTAINER = "container"
    #: sibling ``registry``/``repository``/``image``/``version``/``tag``/``digest``/``containerSHA``
    FIELDS = "fields"
    #: a lone image-valued field of a custom resource (``image:``, ``initImage:``, image volumes)
    FIELD = "field"
    #: an environment variable ``RELATED_IMAGE_*`` / ``*_IMAGE``
    ENV = "env"
    #: a container argument ``--image=`` / ``--<name>-image=``
    ARG = "arg"
    #: the chart's ``helm.sh/images`` annotation (Chart.yaml, not the render)
    ANNOTATION = "annotation"


class RejectReason(enum.StrEnum):
    """Why a candidate is not an image."""

    EMPTY = "empty"
    TEMPLATE = "template"
    PATH = "path"
    URL = "url"
    PLACEHOLDER = "placeholder"
    INVALID = "invalid"


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class Resource:
    """A Kubernetes object by kind, namespace (``''`` when cluster-scoped or unset) and name."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        if self.namespace:
            return f"{self.kind}/{self.namespace}/{self.name}"
        return f"{self.kind}/{self.name}"


@dataclass(frozen=True, slots=True, kw_only=True)
class FoundImage:
    """One place an image reference occurs in a component's render.

    ``written`` is the text as found (for sibling fields: the reference they combine into,
    before normalisation); ``parts`` the sibling fields as written, in field order. ``set_by``
    lists the paths of our values whose strings went into the reference (empty for
    chart defaults and for images written literally in our manifests).
    """

    ref: ImageRef
    written: str
    origin: Origin
    via: Via
    recipe: str
    component: str
    file: str
    resource: Resource
    field: str
    parts: tuple[tuple[str, str], ...] = ()
    set_by: tuple[ValuePath, ...] = ()

    @property
    def found_at(self) -> str:
        """``Kind/ns/name field (file)``: what a lock's ``foundAt`` lists."""
        return f"{self.resource} {self.field} ({self.file})"


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejected:
    """A place that looked like an image but is not one, and why."""

    written: str
    reason: RejectReason
    detail: str
    via: Via
    recipe: str
    component: str
    file: str
    resource: Resource
    field: str
    parts: tuple[tuple[str, str], ...] = ()

    @property
    def found_at(self) -> str:
        return f"{self.resource} {self.field} ({self.file})"

    def message(self) -> str:
        """``'<text>' at <where>: <why>`` for logs and the inventory."""
        return f"{self.written!r} at {self.found_at}: {self.detail}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Discovery:
    """Everything one component's render names: the images, and the candidates refused."""

    images: tuple[FoundImage, ...] = ()
    rejected: tuple[Rejected, ...] = ()


def join_key(path: str, key: str | int) -> str:
    """``path`` extended by one mapping key or list index."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    if _PLAIN_KEY.match(key):
        return f"{path}.{key}" if path else key
    return f'{path}["{key}"]'


def format_path(path: ValuePath) -> str:
    """A values path as text: ``driver.version``, ``packages["a.b"].image``, ``env[0].value``."""
    text = ""
    for key in path:
        text = join_key(text, key)
    return text
