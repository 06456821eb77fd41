"""Credentials out of text: URLs and third-party error texts as they may be shown.

Pure string functions, without the HTTP client: the fetch stage names local charts through
:func:`redact_url` on paths that never touch the network, and those must not pay for importing
``httpx`` (:mod:`pipeline.registry.transport` re-exports both functions under their usual names).
"""

from __future__ import annotations

import re

__all__ = ["redact_text", "redact_url"]

_USERINFO = re.compile(r"(?<=//)[^/\s]*@")
#: Credentials a response body can echo: HTTP auth schemes and secret-named JSON/YAML/form fields.
_AUTH_SCHEME = re.compile(r"\b(Basic|Bearer|Token)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
_SECRET_FIELD = re.compile(
    r"""(["']?(?:[a-z_]*token|password|passwd|secret|auth|authorization|identitytoken|credentials?)["']?"""
    r"""\s*[:=]\s*)("(?:[^"\\]|\\.)*"|'[^']*'|[^\s,}&]+)""",
    re.IGNORECASE,
)


def redact_url(url: str) -> str:
    """``url`` without user-info and with any query string replaced by ``?<redacted>``."""
    base, query, _ = redact_text(url).partition("?")
    return base.partition("#")[0] + ("?<redacted>" if query else "")


def redact_text(text: str) -> str:
    """``text`` without credentials: the user-info of every ``scheme://user:password@host``, the
    value after ``Basic``/``Bearer``/``Token``, and the values of token, password, secret and auth
    fields (JSON, YAML or form style) are replaced by ``<redacted>``."""
    text = _USERINFO.sub("", text)
    text = _AUTH_SCHEME.sub(lambda m: f"{m.group(1)} <redacted>", text)
    return _SECRET_FIELD.sub(lambda m: f"{m.group(1)}<redacted>", text)
