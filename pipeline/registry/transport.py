"""The HTTP transport every network source of a run shares: pooling, retries, redirects, redaction.

Contract of :class:`Transport`:

- one ``httpx.Client`` per transport (create one per run and share it between threads): HTTP/1.1
  keep-alive, a bounded connection pool (``max_connections``) and at most that many requests in
  flight (further threads wait their turn), explicit timeouts; every response is drained, HEAD
  included, so its connection goes back to the pool;
- deadlines: each request (all its attempts, redirects and body bytes together) ends within
  ``deadline`` seconds, and code that runs inside :func:`deadline_for` (the registry client, for
  all requests of one image) shares one more deadline: whichever comes first fails the request with
  a message naming it. Bodies are read against the clock, so a server that trickles a byte a
  second is cut off at the deadline like a silent one;
- bounded retries (:class:`RetryPolicy`): timeouts, connection errors and resets, HTTP 5xx and 429
  are retried with exponential backoff and *full jitter* (a wait drawn uniformly between 0 and the
  exponential ceiling); a ``Retry-After`` header (seconds or an HTTP date) replaces that wait,
  capped at ``RetryPolicy.max_retry_after``;
- a transport failure on the last attempt raises the caller's error class naming what was
  fetched, the URL (host included, credentials removed), the last exception and the number of
  attempts; a retryable *status* on the last attempt is returned (``HttpReply.attempts`` says how
  many tries it took), so the caller can word the error for its own domain;
- redirects are followed by hand, never blindly: at most ``max_redirects`` hops, only to
  ``http``/``https`` URLs, never from HTTPS down to plain HTTP (except to a loopback host), and the
  ``Authorization`` header is dropped for good as soon as a hop leaves the original origin
  (scheme, host, port): registries commonly redirect blob downloads to object storage, which
  must not see registry credentials;
- bodies are read into memory up to a limit (per transport, or per call); larger ones are refused;
- the caller's environment is not read (``trust_env=False``: no proxy variables, no ``.netrc``)
  unless the caller asks for it;
- credentials never reach a message or a log line: URLs are shown through :func:`redact_url`
  (user-info and query string removed), third-party error texts through :func:`redact_text` (both
  defined in :mod:`pipeline.vocabulary.redact`, which does not import ``httpx``), and request
  headers are never logged.
"""

from __future__ import annotations

import dataclasses
import email.utils
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

import httpx

from .._closing import Closing
from ..errors import ChartError, PipelineError
from ..vocabulary.hosts import is_loopback
from ..vocabulary.redact import redact_text, redact_url

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_DEADLINE",
    "DEFAULT_READ_TIMEOUT",
    "MAX_DOWNLOAD_BYTES",
    "HttpReply",
    "RetryPolicy",
    "Transport",
    "deadline_for",
    "is_loopback",
    "redact_text",
    "redact_url",
]

#: Largest response body read into memory by default (big public index.yaml files are tens of MiB).
MAX_DOWNLOAD_BYTES = 256 * 1024 * 1024

_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_RETRY_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
#: Defaults of :class:`Transport`: a silent server fails within :data:`DEFAULT_DEADLINE` seconds.
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 10.0
DEFAULT_DEADLINE = 25.0
_UNREACHABLE_HINT = ("check network access to that host (proxy, firewall, DNS), or serve it from a reachable "
                     "mirror")
_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Budget:
    until: float  # time.monotonic()
    seconds: float
    what: str
    hint: str


_budget: ContextVar[_Budget | None] = ContextVar("pipeline_transport_budget", default=None)


@contextmanager
def deadline_for(seconds: float, *, what: str, hint: str = "") -> Iterator[None]:
    """Every request made inside this block (on this thread) ends within ``seconds`` from now.

    ``what`` names the work for messages ("image 'ghcr.io/org/app:v1'"); ``hint`` says how to raise
    the deadline. Nested blocks keep the earlier end.
    """
    if seconds <= 0:
        raise ValueError("a deadline must be positive")
    outer = _budget.get()
    mine = _Budget(until=time.monotonic() + seconds, seconds=seconds, what=what, hint=hint)
    token = _budget.set(outer if outer is not None and outer.until <= mine.until else mine)
    try:
        yield
    finally:
        _budget.reset(token)


def remaining() -> float | None:
    """Seconds left of the :func:`deadline_for` block this thread is in (``None`` outside one)."""
    budget = _budget.get()
    return None if budget is None else budget.until - time.monotonic()


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How often and how patiently to retry transient failures.

    ``attempts`` counts every try (1 = no retry). Retry number ``n`` waits a time drawn uniformly
    from ``[0, min(max_delay, base_delay * 2**(n-1))]`` (full jitter); a ``Retry-After`` header
    replaces that wait, capped at ``max_retry_after``.
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

    def ceiling(self, retry: int) -> float:
        """The longest wait before retry number ``retry`` (1-based)."""
        return min(self.max_delay, self.base_delay * 2.0 ** (retry - 1))

    def backoff(self, retry: int, rng: random.Random) -> float:
        """Seconds to wait before retry number ``retry`` (1-based): exponential ceiling, full jitter."""
        return rng.uniform(0, self.ceiling(retry))

    def retry_after(self, header: str | None, *, now: float | None = None) -> float | None:
        """The server's ``Retry-After`` in seconds (capped), or ``None`` when absent or unreadable.

        Both forms are understood: delta-seconds, and an HTTP date (then ``now``, the current Unix
        time, is needed; a date in the past means no wait).
        """
        if header is None:
            return None
        text = header.strip()
        if text.isdigit():
            return min(float(text), self.max_retry_after)
        if now is None:
            return None
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        return min(max(0.0, when.timestamp() - now), self.max_retry_after)


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpReply:
    """A response read into memory (no body for HEAD).

    ``url`` is the final URL after redirects, redacted; ``attempts`` is how many tries it took.
    """

    status: int
    headers: httpx.Headers
    body: bytes = field(repr=False)
    url: str
    attempts: int = 1


class Transport(Closing):
    """One pooled HTTP client with retries, manual redirects, size limits and redacted errors.

    Thread-safe: share one transport between the workers of a run. ``error`` is the error class
    raised by default (each call may choose another one).
    """

    def __init__(
        self,
        *,
        timeout: float = DEFAULT_READ_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        deadline: float = DEFAULT_DEADLINE,
        retry: RetryPolicy | None = None,
        max_bytes: int = MAX_DOWNLOAD_BYTES,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], float] = time.time,
        trust_env: bool = False,
        error: type[PipelineError] = ChartError,
        max_connections: int = 32,
        max_redirects: int = 5,
    ) -> None:
        if max_connections < 1:
            raise ValueError(f"max_connections must be >= 1, got {max_connections}")
        if min(timeout, connect_timeout, deadline) <= 0:
            raise ValueError("timeouts and the deadline must be positive")
        self.retry = retry or RetryPolicy()
        self.deadline = deadline
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self.max_connections = max_connections
        self._max_bytes = max_bytes
        self._max_redirects = max_redirects
        self._sleep = sleep
        self._now = now
        self._error = error
        self._rng = random.Random()  # noqa: S311 - jitter for retry timing, not cryptography
        # At most one request per pooled connection in flight: httpcore 1.0.9's pool can close a
        # connection it has handed to a *queued* request (encode/httpcore#1110: EBADF, or a hang
        # until the read timeout), so requests wait here instead of queueing inside the pool.
        self._slots = threading.BoundedSemaphore(max_connections)
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, connect_timeout), pool=None),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            follow_redirects=False,
            trust_env=trust_env,
            headers={"User-Agent": "recipe-pipeline"},
        )

    # ---- requests ------------------------------------------------------------------------------

    def get(
        self,
        url: str,
        *,
        what: str,
        headers: Mapping[str, str] | None = None,
        max_bytes: int | None = None,
        error: type[PipelineError] | None = None,
    ) -> HttpReply:
        """GET ``url`` with retries (see :meth:`request`)."""
        return self.request("GET", url, what=what, headers=headers, max_bytes=max_bytes, error=error)

    def head(
        self,
        url: str,
        *,
        what: str,
        headers: Mapping[str, str] | None = None,
        error: type[PipelineError] | None = None,
    ) -> HttpReply:
        """HEAD ``url`` with retries (see :meth:`request`); the reply has an empty body."""
        return self.request("HEAD", url, what=what, headers=headers, error=error)

    def request(
        self,
        method: str,
        url: str,
        *,
        what: str,
        headers: Mapping[str, str] | None = None,
        max_bytes: int | None = None,
        error: type[PipelineError] | None = None,
        content: bytes | None = None,
    ) -> HttpReply:
        """``method`` ``url`` with retries; any final status is returned, transport failures raised.

        ``what`` names the thing being fetched, for messages ("manifest of 'ghcr.io/org/app:v1'").
        ``content`` is the request body (uploads: sent again on each retry and redirect hop).
        """
        fail = error or self._error
        limit = self._max_bytes if max_bytes is None else max_bytes
        shown = redact_url(url)
        attempts = self.retry.attempts
        started = time.monotonic()
        ends = started + self.deadline
        label = f"the {self.deadline:g} s deadline per request"
        hint = "check that the server is up and answering; " + _UNREACHABLE_HINT
        budget = _budget.get()
        if budget is not None and budget.until < ends:
            ends = budget.until
            label = f"the {budget.seconds:g} s deadline for {budget.what}"
            hint = "check that the server is up and answering" + (f"; {budget.hint}" if budget.hint else "")
        for attempt in range(1, attempts + 1):
            left = ends - time.monotonic()
            try:
                if left <= 0.05:
                    raise httpx.TimeoutException("no time left")
                reply = self._send(method, url, headers or {}, what=what, limit=limit, fail=fail, left=left,
                                   content=content)
            except _RETRY_ERRORS as exc:
                reason = describe_exception(exc)
                if time.monotonic() >= ends - 0.05:
                    raise fail(
                        f"cannot fetch {what} from {shown}: no complete answer within {label} "
                        f"({reason}; {_attempts(attempt)})",
                        hint=hint,
                    ) from exc
                if attempt == attempts:
                    raise fail(
                        f"cannot fetch {what} from {shown}: {reason} (after {_attempts(attempts)})",
                        hint=_UNREACHABLE_HINT,
                    ) from exc
                delay = self.retry.backoff(attempt, self._rng)
            except httpx.HTTPError as exc:
                raise fail(f"cannot fetch {what} from {shown}: {describe_exception(exc)}",
                           hint="check the URL") from exc
            else:
                reply = dataclasses.replace(reply, attempts=attempt)
                if reply.status not in _RETRY_STATUSES or attempt == attempts:
                    return reply
                reason = f"HTTP {reply.status}"
                after = self.retry.retry_after(reply.headers.get("retry-after"), now=self._now())
                delay = after if after is not None else self.retry.backoff(attempt, self._rng)
            delay = min(delay, max(0.0, ends - time.monotonic() - 0.1))
            _log.info("%s %s: %s; retry %d/%d in %.3fs", method, shown, reason, attempt, attempts - 1, delay)
            self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def pause(self, retry: int) -> None:
        """Sleep the backoff before retry number ``retry`` (for callers that retry on content, not status),
        never past the deadline of the :func:`deadline_for` block it is in."""
        delay = self.retry.backoff(retry, self._rng)
        left = remaining()
        self._sleep(delay if left is None else min(delay, max(0.0, left - 0.1)))

    def _send(self, method: str, url: str, headers: Mapping[str, str], *, what: str, limit: int,
              fail: type[PipelineError], left: float | None = None, content: bytes | None = None) -> HttpReply:
        """One attempt: the request and the redirects it leads to, by hand; ``left``: seconds of the deadline."""
        read = self._timeout if left is None else max(0.05, min(self._timeout, left))
        until = None if left is None else time.monotonic() + left
        timeout = httpx.Timeout(read, connect=min(read, self._connect_timeout), pool=None)
        current = httpx.URL(url)
        sent = dict(headers)
        verb = method
        for _ in range(self._max_redirects + 1):
            with self._slots, self._client.stream(verb, current, headers=sent, timeout=timeout,
                                                          content=content) as response:
                location = response.headers.get("location")
                if response.status_code in _REDIRECT_STATUSES and location:
                    target = _redirect_target(current, location, what=what, fail=fail)
                    if _origin(target) != _origin(current):
                        sent = {k: v for k, v in sent.items() if k.lower() != "authorization"}
                    if response.status_code == 303 and verb != "HEAD":
                        verb, content = "GET", None
                    _log.debug("%s %s: HTTP %d, redirected to %s", verb, redact_url(str(current)),
                               response.status_code, redact_url(str(target)))
                    current = target
                    continue
                # drained even for HEAD (no bytes): an unread response closes its keep-alive connection
                body = self._read(response, what=what, limit=limit, fail=fail, until=until)
                _log.debug("%s %s: HTTP %d", verb, redact_url(str(response.url)), response.status_code)
                return HttpReply(status=response.status_code, headers=response.headers, body=body,
                                 url=redact_url(str(response.url)))
        raise fail(f"{what}: more than {self._max_redirects} redirects starting at {redact_url(url)}",
                   hint="the server redirects in a loop; check the URL and any proxy in between")

    @staticmethod
    def _read(response: httpx.Response, *, what: str, limit: int, fail: type[PipelineError],
              until: float | None = None) -> bytes:
        """The body, within ``limit`` bytes and (``until``, monotonic) the deadline: a body that
        trickles in a byte at a time never trips the read timeout, so the clock is checked per chunk."""
        shown = redact_url(str(response.url))
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _too_big(what, shown, limit, fail)
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > limit:
                raise _too_big(what, shown, limit, fail)
            if until is not None and time.monotonic() > until:
                raise httpx.ReadTimeout(f"the body was still arriving at the deadline ({len(body)} bytes so far)")
        return bytes(body)

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

    # ---- lifetime ------------------------------------------------------------------------------

    def close(self) -> None:
        self._client.close()



def describe_exception(exc: BaseException) -> str:
    """``Type: detail`` of a transport exception, credentials removed."""
    return f"{type(exc).__name__}: {redact_text(str(exc)) or 'no detail'}"


def _attempts(count: int) -> str:
    return f"{count} attempt" + ("" if count == 1 else "s")


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host.lower(), url.port or default


def _redirect_target(current: httpx.URL, location: str, *, what: str, fail: type[PipelineError]) -> httpx.URL:
    try:
        target = current.join(location)
    except httpx.InvalidURL as exc:
        raise fail(f"{what}: {redact_url(str(current))} redirects to a malformed URL",
                   hint="the server is misconfigured") from exc
    if target.scheme not in ("http", "https"):
        raise fail(f"{what}: {redact_url(str(current))} redirects to a {target.scheme!r} URL; refused",
                   hint="only http(s) redirects are followed")
    if current.scheme == "https" and target.scheme == "http" and not is_loopback(target.netloc.decode()):
        raise fail(
            f"{what}: {redact_url(str(current))} redirects from HTTPS to plain HTTP "
            f"({redact_url(str(target))}); refused",
            hint="a downgrade exposes the download to tampering; fix the server or use a mirror",
        )
    return target


def _too_big(what: str, shown: str, limit: int, fail: type[PipelineError]) -> PipelineError:
    size = f"{limit // (1024 * 1024)} MiB" if limit >= 1024 * 1024 else f"{limit} bytes"
    return fail(
        f"{what} from {shown} is larger than {size}; refused",
        hint="this is far beyond what such a document holds; check the URL points where you think",
    )
