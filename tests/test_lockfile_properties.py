"""Property: whatever a pull request does to a lockfile, the model refuses it with a PipelineError or
reads a lock it can write back byte for byte. Any other exception (KeyError, TypeError, ValueError
escaping a record's constructor…) would be a traceback in a user's face.

Hypothesis replaces one value anywhere in a committed lock with arbitrary JSON, re-seals the body
(so the self-digest passes, as a careful forger would make it) and parses it. Bounded in examples.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.errors import PipelineError
from pipeline.lockfile import Lockfile
from pipeline.vocabulary.digest import canonical_json, sha256

ROOT = Path(__file__).resolve().parents[1]
BODY = json.loads((ROOT / "lockfiles" / "h100-any.lock.json").read_bytes())

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=12)
    | st.sampled_from(["sha256:" + "0" * 64, "in-tree", "registry", "Helm", "linux/amd64", "a:b"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += _paths(value, (*prefix, index))
    return out


PATHS = [p for p in _paths(BODY) if p[0] != "digest"]


def _sealed(body: dict[str, Any]) -> bytes:
    unsigned = {k: v for k, v in body.items() if k != "digest"}
    return canonical_json({**unsigned, "digest": sha256(canonical_json(unsigned))})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(PATHS), value=JSON_VALUES)
def test_any_one_value_replaced_is_refused_cleanly_or_round_trips(path: tuple[Any, ...], value: Any) -> None:
    body = copy.deepcopy(BODY)
    node = body
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    raw = _sealed(body)
    refused: PipelineError | None = None
    try:
        lock = Lockfile.from_bytes(raw, display="lockfiles/x.lock.json")
    except PipelineError as exc:
        refused = exc
    if refused is not None:
        assert refused.exit_code in (1, 2) and refused.hint  # a clean refusal, with a fix
    else:
        assert lock.dumps() == raw


@settings(max_examples=100, deadline=None)
@given(key=st.sampled_from(PATHS), extra=st.text(min_size=1, max_size=8))
def test_an_added_key_anywhere_is_refused(key: tuple[Any, ...], extra: str) -> None:
    body = copy.deepcopy(BODY)
    node = body
    for step in key:
        if not isinstance(node[step], dict):
            break
        node = node[step]
    if not isinstance(node, dict) or extra in node:
        return
    node[extra] = "x"
    try:
        Lockfile.from_bytes(_sealed(body), display="lockfiles/x.lock.json")
    except PipelineError:
        return
    # the only maps whose keys are data, not schema: criteria, input files, render files, platforms
    assert any(name in key for name in ("criteria", "files", "platforms", "components")), key
