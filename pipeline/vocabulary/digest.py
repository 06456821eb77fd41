"""Content digests and canonical JSON: the two primitives every lock rests on.

``Digest`` is an ``algorithm:hex`` string validated once when built. ``canonical_json`` is the one
serialisation of every hashed or written JSON document: sorted keys, two-space indent, ``\\n`` line
endings, a trailing newline, UTF-8, no floats.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NewType

__all__ = ["REGISTERED_DIGESTS", "Digest", "Preformatted", "canonical_json", "check_sha256", "is_sha256",
           "parse_digest", "sha256", "sha256_of_entries", "source_digest"]

Digest = NewType("Digest", str)

_DIGEST = re.compile(r"^(?P<alg>[a-z0-9]+(?:[.+_-][a-z0-9]+)*):(?P<hex>[a-zA-Z0-9=_-]+)$")
#: Hex length of the digest algorithms the OCI image spec registers (others are only shape-checked).
REGISTERED_DIGESTS = {"sha256": 64, "sha384": 96, "sha512": 128}
_SHA256 = re.compile(r"sha256:[0-9a-f]{64}")


def parse_digest(text: str) -> Digest:
    """Validate ``text`` as an OCI digest (``sha256:<64 lowercase hex>`` and friends)."""
    match = _DIGEST.match(text)
    if match is None:
        raise ValueError(f"not a digest: {text!r} (expected 'sha256:<64 hex characters>')")
    alg, hexpart = match["alg"], match["hex"]
    want = REGISTERED_DIGESTS.get(alg)
    if want is not None and (len(hexpart) != want or not re.fullmatch(r"[0-9a-f]+", hexpart)):
        raise ValueError(f"not a {alg} digest: {text!r} (expected {want} lowercase hex characters)")
    return Digest(text)


def is_sha256(value: object) -> bool:
    """Whether ``value`` is a string ``sha256:<64 lowercase hex>`` (the only digest a lock records)."""
    return isinstance(value, str) and _SHA256.fullmatch(value) is not None


def sha256(data: bytes) -> Digest:
    """``sha256:<hex>`` of ``data``."""
    return Digest("sha256:" + hashlib.sha256(data).hexdigest())


def check_sha256(data: bytes, digest: Digest, *, what: str) -> None:
    """A record's invariant: ``digest`` is the sha256 of ``data``; :class:`ValueError` naming ``what`` if not."""
    if sha256(data) != digest:
        raise ValueError(f"{what} {digest!r} is not the sha256 of its bytes")


def sha256_of_entries(entries: Iterable[tuple[str, bytes | str]]) -> Digest:
    """Digest of a set of named byte strings, independent of iteration order.

    Each entry contributes ``name NUL sha256(content) LF`` in sorted name order, so the result is a
    Merkle-style root that changes when any name or content changes and never with walk order.
    """
    lines = []
    for name, content in sorted(entries, key=lambda e: e[0]):
        blob = content.encode() if isinstance(content, str) else content
        lines.append(f"{name}\0{hashlib.sha256(blob).hexdigest()}\n")
    return sha256("".join(lines).encode())


def source_digest(root: Path, files: Iterable[Path]) -> Digest:
    """Digest of source files named by their path under ``root``: what a cache mixes into its keys
    so that a change to the code that made an entry never serves that entry."""
    return sha256_of_entries((p.relative_to(root).as_posix(), p.read_bytes()) for p in files)


def canonical_json(data: Any) -> bytes:
    """The canonical JSON encoding of ``data`` (sorted keys, indent 2, trailing newline).

    The bytes of ``json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False)``
    plus ``\n``. Documents of strings, integers, booleans, nulls, string-keyed mappings and lists
    (every lock) take a direct path, about twice as fast as the standard library's indenting encoder,
    which is pure Python; anything else (floats, other keys or types) goes to ``json.dumps`` itself.
    A property test holds the two paths to the same bytes.
    """
    out: list[str] = []
    try:
        _pretty(data, "\n", out)
    except (_Unusual, RecursionError):  # json.dumps says what is wrong (or writes what is unusual)
        return (json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False,
                           default=_plain) + "\n").encode()
    out.append("\n")
    return "".join(out).encode()


class Preformatted:
    """A value of a document and its canonical JSON text at one depth, written once and reused.

    :func:`canonical_json` copies :attr:`text` where the value sits at that depth (``newline``: the
    line break and indentation of the value's own line), and writes :attr:`value` afresh anywhere
    else: the bytes are those of the plain document either way. A lock's component entry is the same
    in many recipes' locks and always at the same depth; its text is written once per run.
    """

    __slots__ = ("newline", "text", "value")

    def __init__(self, value: Any, newline: str) -> None:
        self.value = value
        self.newline = newline
        out: list[str] = []
        try:
            _pretty(value, newline, out)
        except (_Unusual, RecursionError):
            self.text: str | None = None  # left to the long way
        else:
            self.text = "".join(out)


def _plain(value: Any) -> Any:
    """``json.dumps``'s ``default``: a :class:`Preformatted` is its value; anything else is refused."""
    if isinstance(value, Preformatted):
        return value.value
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


class _Unusual(Exception):
    """A value the direct path leaves to ``json.dumps``."""


_encode_string = json.encoder.encode_basestring


def _pretty(value: Any, newline: str, out: list[str]) -> None:
    """Append ``value`` indented as ``json.dumps(indent=2, sort_keys=True)`` would; ``newline`` is the
    line break plus the current indentation."""
    if isinstance(value, str):
        out.append(_encode_string(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, dict):
        if not value:
            out.append("{}")
            return
        if not all(isinstance(key, str) for key in value):
            raise _Unusual
        inner = newline + "  "
        first = True
        for key in sorted(value):
            out.append("{" + inner if first else "," + inner)
            first = False
            out.append(_encode_string(key))
            out.append(": ")
            _pretty(value[key], inner, out)
        out.append(newline + "}")
    elif isinstance(value, (list, tuple)):
        if not value:
            out.append("[]")
            return
        inner = newline + "  "
        first = True
        for item in value:
            out.append("[" + inner if first else "," + inner)
            first = False
            _pretty(item, inner, out)
        out.append(newline + "]")
    elif isinstance(value, Preformatted):
        if value.text is not None and value.newline == newline:
            out.append(value.text)
        else:
            _pretty(value.value, newline, out)
    else:  # floats, and anything json.dumps would convert or refuse
        raise _Unusual
