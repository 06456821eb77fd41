"""HTTP chart repositories (``https://…/index.yaml``), and the HTTP transport every network source uses.

Contract of :class:`HttpChartSource`:

- input: a :class:`~pipeline.recipes.model.ChartRef` whose repository is ``http(s)://…``;
- ``fetch``: GET ``<repository>/index.yaml`` (parsed once per repository URL per source, i.e. per
  run), find the entry with the chart's name and exact version, resolve its ``urls[0]`` against the
  index URL, download it, and when the entry has a ``digest`` check the bytes against it;
- ``versions``: every version the index lists for the chart;
- errors: :class:`~pipeline.errors.ChartError` for an unreachable repository (after retries), HTTP
  errors, a malformed index, a missing chart or version, and bytes that differ from the index
  digest.

Contract of :class:`Transport` (shared with the OCI source):

- one ``httpx.Client`` per transport, so connections are reused; explicit timeouts; redirects
  followed (httpx drops ``Authorization`` when a redirect leaves the origin);
- bounded retries (:class:`RetryPolicy`) with exponential backoff and jitter on connection errors,
  timeouts, HTTP 5xx and 429; ``Retry-After`` (seconds) is honoured up to a cap;
- responses are read into memory up to :data:`MAX_DOWNLOAD_BYTES`; larger bodies are refused;
- the caller's environment is not read (``trust_env=False``: no proxy variables, no ``.netrc``)
  unless the caller asks for it;
- credentials never reach a message or a log line: URLs are shown through :func:`redact_url`
  (user-info and query string removed) and third-party error texts through :func:`redact_text`.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import yaml

from .._digest import sha256
from ..errors import ChartError, PipelineError
from ..recipes.model import ChartRef
from .archive import load_yaml_strings
from .interface import ChartSource

__all__ = [
    "MAX_DOWNLOAD_BYTES",
    "HttpChartSource",
    "HttpReply",
    "RetryPolicy",
    "Transport",
    "redact_text",
    "redact_url",
]

#: Largest response body read into memory (big public index.yaml files are tens of MiB).
MAX_DOWNLOAD_BYTES = 256 * 1024 * 1024

_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_RETRY_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
_USERINFO = re.compile(r"(?<=//)[^/\s]*@")
_log = logging.getLogger(__name__)



def redact_url(url: str) -> str:
    """``url`` without user-info and with any query string replaced by ``?<redacted>``."""
    base, query, _ = redact_text(url).partition("?")
    return base.partition("#")[0] + ("?<redacted>" if query else "")


def redact_text(text: str) -> str:
    """``text`` with the user-info of every ``scheme://user:password@host`` removed."""
    return _USERINFO.sub("", text)


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How often and how patiently to retry transient failures.

    ``attempts`` counts every try (1 = no retry). The n-th retry waits between half and all of
    ``min(max_delay, base_delay * 2**(n-1))`` seconds; a ``Retry-After`` header replaces that wait,
    capped at ``max_retry_after``.
    """

    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 30.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"RetryPolicy.attempts must be >= 1, got {self.attempts}")
        if min(self.base_delay, self.max_delay, self.max_retry_after) < 0:
            raise ValueError("RetryPolicy delays must be >= 0")

    def backoff(self, retry: int, rng: random.Random) -> float:
        """Seconds to wait before retry number ``retry`` (1-based): exponential, with jitter."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** (retry - 1))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)

    def retry_after(self, header: str | None) -> float | None:
        """The server's ``Retry-After`` in seconds (capped), or ``None`` when absent or a date."""
        if header is None or not header.strip().isdigit():
            return None
        return min(float(header.strip()), self.max_retry_after)


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpReply:
    """A response read into memory. ``url`` is the final URL after redirects, redacted."""

    status: int
    headers: httpx.Headers
    body: bytes = field(repr=False)
    url: str


class Transport:
    """One HTTP client with retries, size limits and redacted errors."""

    def __init__(
        self,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        max_bytes: int = MAX_DOWNLOAD_BYTES,
        sleep: Callable[[float], None] = time.sleep,
        trust_env: bool = False,
        error: type[PipelineError] = ChartError,
    ) -> None:
        self.retry = retry or RetryPolicy()
        self._max_bytes = max_bytes
        self._sleep = sleep
        self._error = error
        self._rng = random.Random()  # noqa: S311 - jitter for retry timing, not cryptography
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            follow_redirects=True,
            trust_env=trust_env,
            headers={"User-Agent": "recipe-pipeline"},
        )

    def get(self, url: str, *, what: str, headers: Mapping[str, str] | None = None) -> HttpReply:
        """GET ``url`` with retries; any final status is returned, transport failures are raised.

        ``what`` names the thing being fetched, for messages ("index of chart repository …").
        """
        shown = redact_url(url)
        attempts = self.retry.attempts
        for attempt in range(1, attempts + 1):
            try:
                reply = self._get_once(url, shown, what, headers)
            except _RETRY_ERRORS as exc:
                reason = f"{type(exc).__name__}: {redact_text(str(exc)) or 'no detail'}"
                if attempt == attempts:
                    raise self._error(
                        f"cannot fetch {what} from {shown}: {reason} (after {attempts} attempts)",
                        hint="check network access to that host (proxy, firewall, DNS), or serve the "
                        "chart from a reachable mirror",
                    ) from exc
                delay = self.retry.backoff(attempt, self._rng)
            except httpx.HTTPError as exc:
                raise self._error(
                    f"cannot fetch {what} from {shown}: {type(exc).__name__}: {redact_text(str(exc))}",
                    hint="check the URL",
                ) from exc
            else:
                if reply.status not in _RETRY_STATUSES or attempt == attempts:
                    return reply
                reason = f"HTTP {reply.status}"
                after = self.retry.retry_after(reply.headers.get("retry-after"))
                delay = after if after is not None else self.retry.backoff(attempt, self._rng)
            _log.info("GET %s: %s; retry %d/%d in %.1fs", shown, reason, attempt, attempts - 1, delay)
            self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _get_once(self, url: str, shown: str, what: str, headers: Mapping[str, str] | None) -> HttpReply:
        with self._client.stream("GET", url, headers=headers) as response:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self._max_bytes:
                raise self._too_big(what, shown)
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > self._max_bytes:
                    raise self._too_big(what, shown)
            return HttpReply(
                status=response.status_code,
                headers=response.headers,
                body=bytes(body),
                url=redact_url(str(response.url)),
            )

    def _too_big(self, what: str, shown: str) -> PipelineError:
        return self._error(
            f"{what} from {shown} is larger than {self._max_bytes // (1024 * 1024)} MiB; refused",
            hint="this is far beyond any chart or index; check the URL points where you think",
        )

    def expect_ok(self, reply: HttpReply, *, what: str, not_found_hint: str) -> None:
        """Raise the transport's error unless ``reply`` is a 200."""
        if reply.status == 200:
            return
        if reply.status == 404:
            raise self._error(f"{what} not found at {reply.url} (HTTP 404)", hint=not_found_hint)
        if reply.status in (401, 403):
            raise self._error(
                f"{what}: access denied at {reply.url} (HTTP {reply.status})",
                hint="the server wants credentials; only anonymous access is supported for now: serve "
                "the chart from a mirror that allows it",
            )
        detail = reply.body[:200].decode("utf-8", errors="replace").strip()
        raise self._error(
            f"{what}: unexpected HTTP {reply.status} from {reply.url}"
            + (f": {redact_text(detail)!r}" if detail else ""),
            hint="retry later; if it persists, the server is broken or is not a chart repository",
        )

    def close(self) -> None:
        self._client.close()


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
        for entry in entries:
            if entry.get("version") == ref.version:
                return entry
        offered = sorted({v for e in entries if isinstance(v := e.get("version"), str)})
        sample = ", ".join(repr(v) for v in offered[-5:])
        raise ChartError(
            f"chart {ref.name!r} version {ref.version!r} is not in the repository index {shown} "
            f"(it has {len(offered)} versions, e.g. {sample})",
            hint="pin a version the repository offers; versions must match exactly (with or without a 'v')",
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
        data = load_yaml_strings(body)
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ChartError(f"repository index {shown} is not readable YAML: {redact_text(str(exc))}",
                         hint=hint) from exc
    entries = data.get("entries") if isinstance(data, dict) else None
    if not isinstance(entries, dict):
        raise ChartError(f"repository index {shown} has no 'entries' mapping", hint=hint)
    index: dict[str, list[dict[str, Any]]] = {}
    for name, versions in entries.items():
        if isinstance(versions, list):
            index[str(name)] = [v for v in versions if isinstance(v, dict)]
    return index
