"""The chart-source axis: one small abstract class every source (path, HTTP, OCI) implements.

Contract:

- input: a :class:`~pipeline.recipes.model.ChartRef` whose ``repository`` the source can serve
  (the fetch stage has already rewritten it through the mirrors);
- ``fetch`` returns the chart archive bytes (a gzip-compressed tar) exactly as served, after the
  source's own integrity checks (index digest, OCI manifest and blob digests);
- ``served_version`` returns the version string the source serves for the pin, under Helm's rules
  (:mod:`pipeline.charts.versions`: exact string first, then semver equality for HTTP indexes; the
  pin verbatim for OCI tags and local charts); ``fetch`` is then asked for exactly that version;
- ``versions`` returns every version the source offers for the chart, sorted as plain strings
  (the drift stage orders them semantically);
- errors: :class:`~pipeline.errors.ChartError` saying what, where (URLs without credentials) and
  why, with the fix in ``hint``.

Sources hold network clients; ``close()`` releases them (sources are context managers).
"""

from __future__ import annotations

import abc
import enum

from .._closing import Closing
from ..recipes.model import ChartRef

__all__ = ["ChartSource", "SourceKind", "kind_of"]


class SourceKind(enum.StrEnum):
    """Where a chart repository lives, decided by the repository string's scheme."""

    LOCAL = "local"
    HTTP = "http"
    OCI = "oci"


def kind_of(repository: str) -> SourceKind:
    """``oci://…`` is OCI, ``http(s)://…`` is an HTTP chart repository, anything else a local path."""
    if repository.startswith("oci://"):
        return SourceKind.OCI
    if repository.startswith(("https://", "http://")):
        return SourceKind.HTTP
    return SourceKind.LOCAL


class ChartSource(Closing, abc.ABC):
    """Serves chart archives for the repositories of one kind."""

    @abc.abstractmethod
    def fetch(self, ref: ChartRef) -> bytes:
        """The archive bytes of ``ref`` (a gzip tar), integrity-checked by the source."""

    def served_version(self, ref: ChartRef) -> str:
        """The version string the source serves for the pin ``ref.version`` (by default the pin itself).

        Raises ChartError when the source has no version matching the pin.
        """
        return ref.version

    def describe(self, ref: ChartRef) -> str:
        """Where the archive of ``ref`` comes from, for messages: a file, a URL or a reference
        (by default ``<repository>/<name>:<version>``, the OCI spelling)."""
        return f"{ref.repository.rstrip('/')}/{ref.name}:{ref.version}"

    @abc.abstractmethod
    def versions(self, ref: ChartRef) -> tuple[str, ...]:
        """Every version of ``ref.name`` that ``ref.repository`` offers (``ref.version`` is ignored)."""


