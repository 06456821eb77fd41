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
from typing import Any, NewType

__all__ = ["REGISTERED_DIGESTS", "Digest", "canonical_json", "check_sha256", "is_sha256", "parse_digest", "sha256",
           "sha256_of_entries"]

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


def canonical_json(data: Any) -> bytes:
    """The canonical JSON encoding of ``data`` (sorted keys, indent 2, trailing newline)."""
    return (json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode()
