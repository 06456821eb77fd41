"""``canonical_json``'s direct path writes exactly the bytes of ``json.dumps(sort_keys, indent=2)``."""

from __future__ import annotations

import enum
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.vocabulary.digest import Preformatted, canonical_json

ROOT = Path(__file__).resolve().parents[1]


def _reference(data: Any) -> bytes:
    return (json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode()


_scalars = st.none() | st.booleans() | st.integers() | st.text() | st.floats(allow_nan=False, allow_infinity=False)
_documents = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=5) | st.tuples(inner, inner)
                          | st.dictionaries(st.text(), inner, max_size=5), max_leaves=40)


@settings(max_examples=400, deadline=None)
@given(_documents)
def test_the_same_bytes_as_json_dumps(data: Any) -> None:
    assert canonical_json(data) == _reference(data)


class _Colour(enum.StrEnum):
    RED = "red"


class _Size(enum.IntEnum):
    BIG = 7


@pytest.mark.parametrize("data", [
    {}, [], "", {"b": [], "a": {}}, {"é": "ü\u2028\x00\"\\"}, [True, False, None, 0, -1, 10**30],
    {"k": _Colour.RED, "n": _Size.BIG}, {1: "int key"}, {"x": 1.5}, ({"a": 1},),
], ids=repr)
def test_edge_cases(data: Any) -> None:
    assert canonical_json(data) == _reference(data)


@pytest.mark.parametrize("bad", [{"x": float("nan")}, {"x": object()}, {("t",): 1}])
def test_what_json_refuses_is_refused_the_same_way(bad: Any) -> None:
    with pytest.raises((ValueError, TypeError)) as ours:
        canonical_json(bad)
    with pytest.raises((ValueError, TypeError)) as theirs:
        _reference(bad)
    assert type(ours.value) is type(theirs.value) and str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("path", sorted((ROOT / "lockfiles").glob("*.lock.json")), ids=lambda p: p.name)
def test_committed_locks_round_trip(path: Path) -> None:
    assert canonical_json(json.loads(path.read_bytes())) == path.read_bytes()


@settings(max_examples=200, deadline=None)
@given(_documents, _documents, st.sampled_from(["\n", "\n  ", "\n    "]))
def test_a_preformatted_value_gives_the_bytes_of_the_plain_document(inner: Any, other: Any, depth: str) -> None:
    """At the depth it was written for its text is copied, anywhere else it is written afresh;
    json.dumps's fallback (floats) sees its value: the bytes never change."""
    plain = {"components": {"a": inner, "b": other}, "list": [inner]}
    fragment = Preformatted(inner, depth)
    shaped = {"components": {"a": fragment, "b": other}, "list": [fragment]}
    assert canonical_json(shaped) == canonical_json(plain) == _reference(plain)


def test_a_preformatted_text_is_used_only_at_its_depth() -> None:
    fragment = Preformatted({"k": [1, 2]}, "\n    ")
    fragment.text = '"copied"'  # a tampered text shows where the copy is used
    assert canonical_json({"c": {"x": fragment}}) == b'{\n  "c": {\n    "x": "copied"\n  }\n}\n'
    assert canonical_json({"x": fragment}) == _reference({"x": {"k": [1, 2]}})
