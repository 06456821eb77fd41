"""HTTP chart repositories (``https://…/index.yaml``).

Contract of :class:`HttpChartSource`:

- input: a :class:`~pipeline.recipes.model.ChartRef` whose repository is ``http(s)://…``;
- ``served_version``: GET ``<repository>/index.yaml`` (parsed once per repository URL per source,
  i.e. per run) and find the chart's version the way ``helm`` does (exact string, then semver
  equality: ``v1.2.3`` finds ``1.2.3`` and the reverse; :mod:`pipeline.charts.versions`); when
  nothing matches, the error lists the nearest versions the index offers;
- ``fetch``: the entry with the chart's name and that version, its ``urls[0]`` resolved against the
  index URL, downloaded, and when the entry has a ``digest`` the bytes checked against it;
- ``versions``: every version the index lists for the chart;
- errors: :class:`~pipeline.errors.ChartError` for an unreachable repository (after retries), HTTP
  errors, a malformed index, a missing chart or version, and bytes that differ from the index
  digest.

The HTTP transport (:class:`Transport`, :class:`RetryPolicy`, :func:`redact_url`, …) lives in
:mod:`pipeline.registry.transport`, shared with the OCI registry client; it is re-exported here
under its historical names.
"""

from __future__ import annotations

from typing import Any

import httpx
import yaml

from .._yaml import load_yaml_strings, problem_of
from ..errors import ChartError, ChartVersionError
from ..recipes.model import ChartRef
from ..registry.transport import (
    MAX_DOWNLOAD_BYTES,
    HttpReply,
    RetryPolicy,
    Transport,
    redact_text,
    redact_url,
)
from ..vocabulary.digest import sha256
from .interface import ChartSource
from .versions import match_index_version, nearest_versions

__all__ = [
    "MAX_DOWNLOAD_BYTES",
    "HttpChartSource",
    "HttpReply",
    "RetryPolicy",
    "Transport",
    "redact_text",
    "redact_url",
]


class HttpChartSource(ChartSource):
    """Charts from classic Helm repositories: ``index.yaml`` plus archives it points to."""

    def __init__(self, *, transport: Transport | None = None) -> None:
        self._transport = transport or Transport()
        self._indexes: dict[str, dict[str, list[dict[str, Any]]]] = {}

    def fetch(self, ref: ChartRef) -> bytes:
        index_url = _index_url(ref.repository)
        entry = self._entry(ref)
        urls = entry.get("urls")
        where = f"chart {ref.name!r} version {ref.version!r} in {redact_url(index_url)}"
        if not isinstance(urls, list) or not urls or not isinstance(urls[0], str) or not urls[0]:
            raise ChartError(f"{where} has no 'urls'", hint="the repository's index.yaml is broken upstream")
        chart_url = str(httpx.URL(index_url).join(urls[0]))
        if not chart_url.startswith(("https://", "http://")):
            raise ChartError(
                f"{where} points to {redact_url(chart_url)!r}, which is not an HTTP URL",
                hint="the repository's index.yaml is broken upstream",
            )
        what = f"chart {ref.name!r} version {ref.version!r}"
        reply = self._transport.get(chart_url, what=what)
        self._transport.expect_ok(
            reply, what=what,
            not_found_hint="the index lists an archive the server does not have: the repository is broken "
            "upstream, or the mirror is incomplete",
        )
        expected = entry.get("digest")
        if isinstance(expected, str) and expected:
            want = expected.removeprefix("sha256:").lower()
            got = sha256(reply.body).removeprefix("sha256:")
            if got != want:
                raise ChartError(
                    f"{what} from {reply.url}: bytes differ from the index digest (index says "
                    f"'sha256:{want}', downloaded bytes are 'sha256:{got}')",
                    hint="the archive was replaced without re-indexing, or corrupted in transit or by a "
                    "proxy: retry, and report it to the repository owner if it persists",
                )
        return reply.body

    def served_version(self, ref: ChartRef) -> str:
        return str(self._entry(ref)["version"])

    def describe(self, ref: ChartRef) -> str:
        """The archive's URL as the index lists it (the repository when the index does not say)."""
        try:
            urls = self._entry(ref).get("urls")
            return str(httpx.URL(_index_url(ref.repository)).join(urls[0]))  # type: ignore[index]
        except (ChartError, TypeError, IndexError, KeyError, httpx.InvalidURL):
            return ref.repository

    def versions(self, ref: ChartRef) -> tuple[str, ...]:
        entries = self._index(ref.repository).get(ref.name, [])
        return tuple(sorted({v for e in entries if isinstance(v := e.get("version"), str)}))

    def close(self) -> None:
        self._transport.close()

    def _entry(self, ref: ChartRef) -> dict[str, Any]:
        index = self._index(ref.repository)
        shown = redact_url(_index_url(ref.repository))
        entries = index.get(ref.name)
        if not entries:
            raise ChartError(
                f"chart {ref.name!r} is not in the repository index {shown}",
                hint="check the chart name (without a repository alias such as 'nvidia/') and the "
                "repository URL",
            )
        offered = [v for e in entries if isinstance(v := e.get("version"), str)]
        served = match_index_version(ref.version, offered)
        if served is not None:
            return next(e for e in entries if e.get("version") == served)
        nearest = ", ".join(repr(v) for v in nearest_versions(ref.version, offered))
        raise ChartVersionError(
            f"chart {ref.name!r} version {ref.version!r} is not in the repository index {shown} "
            f"(it has {len(set(offered))} versions; nearest: {nearest})",
            hint="pin a version the repository offers; Helm matches the exact string first, then the same "
            "semantic version (a leading 'v' and '+build' metadata do not matter)",
        )

    def _index(self, repository: str) -> dict[str, list[dict[str, Any]]]:
        key = repository.rstrip("/")
        cached = self._indexes.get(key)
        if cached is not None:
            return cached
        url = _index_url(repository)
        shown = redact_url(url)
        what = f"index of chart repository {redact_url(key)}"
        reply = self._transport.get(url, what=what)
        self._transport.expect_ok(
            reply, what=what,
            not_found_hint="check the repository URL: it must be the directory that holds index.yaml",
        )
        index = _parse_index(reply.body, shown)
        self._indexes[key] = index
        return index


def _index_url(repository: str) -> str:
    return repository.rstrip("/") + "/index.yaml"


def _parse_index(body: bytes, shown: str) -> dict[str, list[dict[str, Any]]]:
    hint = "the URL does not serve a Helm repository index; check the repository URL"
    try:
        data = load_yaml_strings(body, section="rendered")  # real indexes are large: the bigger limits
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        problem, line, limit_hint = problem_of(exc)
        at = f" (line {line})" if line is not None else ""
        raise ChartError(f"repository index {shown} is not readable YAML{at}: {redact_text(problem)}",
                         hint=limit_hint or hint) from exc
    entries = data.get("entries") if isinstance(data, dict) else None
    if not isinstance(entries, dict):
        raise ChartError(f"repository index {shown} has no 'entries' mapping", hint=hint)
    index: dict[str, list[dict[str, Any]]] = {}
    for name, versions in entries.items():
        if isinstance(versions, list):
            index[str(name)] = [v for v in versions if isinstance(v, dict)]
    return index
