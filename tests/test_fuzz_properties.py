"""Property tests (issue 17, item 7): parsers of hostile input fail only with their own errors.

Bounded in time (``max_examples``, ``deadline``) so that they run with the rest of the suite in CI.
"""

from __future__ import annotations

import contextlib
import io
import json
import tarfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline import _yaml
from pipeline.charts.archive import inspect_archive
from pipeline.charts.http import _parse_index
from pipeline.errors import ChartError, PipelineError, ResolveError
from pipeline.vocabulary.reference import ImageRef, ImageRefError
from tests.fuzz.targets import manifest

BOUNDED = settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])
YAML_ALPHABET = st.sampled_from(list("ab:-[]{},&*!|>'\"#\n \t\x0c\x00\\.01?%@`"))
yaml_like = st.text(YAML_ALPHABET, max_size=200) | st.text(max_size=200)


@BOUNDED
@given(text=yaml_like)
def test_the_loader_returns_data_or_a_pipeline_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    failure: PipelineError | None = None
    try:
        _yaml.load_file(path, display="fuzz.yaml")
    except PipelineError as exc:
        failure = exc
    if failure is not None:
        assert str(failure.path) == "fuzz.yaml"
        assert failure.line is None or failure.line >= 1


@BOUNDED
@given(data=st.binary(max_size=300) | yaml_like.map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_string_and_rendered_loaders_raise_only_yaml_errors(data: bytes) -> None:
    with contextlib.suppress(yaml.YAMLError, UnicodeDecodeError):
        _yaml.load_strings(data, multi=True)
    with contextlib.suppress(yaml.YAMLError, UnicodeDecodeError):
        _yaml.parse(data, section="rendered", multi=True)


@BOUNDED
@given(text=st.text(max_size=300))
def test_image_references_parse_or_raise_their_own_error(text: str) -> None:
    try:
        ref = ImageRef.parse(text)
    except ImageRefError:
        return
    assert ImageRef.parse(str(ref)) == ref


def _tgz(members: list[tuple[str, bytes]]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for name, content in members:
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return raw.getvalue()


@BOUNDED
@given(data=st.binary(max_size=500)
       | st.lists(st.tuples(st.text(min_size=1, max_size=30), st.binary(max_size=50)), max_size=4).map(_tgz))
def test_chart_archive_inspection_raises_only_chart_errors(data: bytes) -> None:
    message = "fuzz.tgz"
    try:
        inspect_archive(data, source="fuzz.tgz")
    except ChartError as exc:
        message = str(exc)
    assert "fuzz.tgz" in message


@BOUNDED
@given(data=st.binary(max_size=300) | yaml_like.map(lambda t: ("entries:\n" + t).encode("utf-8", "surrogatepass")))
def test_index_yaml_parsing_raises_only_chart_errors(data: bytes) -> None:
    with contextlib.suppress(ChartError):
        _parse_index(data, "http://127.0.0.1/index.yaml")


# ---- registry manifests and indexes (the client's parsing of what a registry served) ---------------

_descriptor = st.fixed_dictionaries({}, optional={
    "mediaType": st.sampled_from(["application/vnd.oci.image.manifest.v1+json",
                                  "application/vnd.docker.distribution.manifest.v2+json", "x", ""]) | st.integers(),
    "digest": st.sampled_from(["sha256:" + "a" * 64, "sha256:xyz", "md5:00", ""]) | st.none() | st.integers(),
    "size": st.integers(min_value=-2, max_value=2**70) | st.text(max_size=3) | st.booleans(),
    "platform": st.fixed_dictionaries({}, optional={
        "os": st.text(max_size=8) | st.integers(), "architecture": st.text(max_size=8) | st.none(),
        "variant": st.text(max_size=3)}) | st.lists(st.integers(), max_size=2),
    "annotations": st.dictionaries(st.text(max_size=30), st.text(max_size=20) | st.integers(), max_size=3),
})
_json_value = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                        max_size=3), max_leaves=10)


@BOUNDED
@given(media_type=st.sampled_from(["application/vnd.oci.image.index.v1+json",
                                   "application/vnd.docker.distribution.manifest.list.v2+json",
                                   "application/vnd.oci.image.manifest.v1+json", "text/html", ""]),
       entries=st.lists(_descriptor, max_size=4) | _json_value,
       config=_descriptor | _json_value, content_type=st.sampled_from(["", "application/json", "text/plain"]))
def test_manifest_and_index_parsing_raise_only_resolve_errors(media_type: str, entries: object, config: object,
                                                              content_type: str) -> None:
    body = json.dumps({"schemaVersion": 2, "mediaType": media_type, "manifests": entries, "config": config}).encode()
    with contextlib.suppress(ResolveError):
        manifest(body, content_type)


@BOUNDED
@given(data=st.binary(max_size=300))
def test_manifest_parsing_of_raw_bytes_raises_only_resolve_errors(data: bytes) -> None:
    with contextlib.suppress(ResolveError):
        manifest(data)


# ---- the YAML fast path (libyaml's composer when a scan proves the limits) --------------------------

_SMALL = _yaml.YamlLimits(section="rendered", max_bytes=1 << 20, max_depth=8, max_aliases=3, max_nodes=400,
                          max_documents=3)
YAML_BLOCKS = st.lists(st.sampled_from(["a: b", "- x", "  - y", "    c: d", "k: |", "  text &t *t [",
                                        "l: [1, [2, [3]]]", "m: {n: {o: p}}", "&a q", "r: *a", "---", "s: 'x",
                                        "  &z y'", "t: !!str &u v", "w: *u", "      deep:", "        - [[[[1]]]]",
                                        "x: {}", "...", "? k", ": v", "- - - - z"]), max_size=14).map("\n".join)


@settings(max_examples=500, deadline=2000)
@given(text=YAML_BLOCKS | yaml_like)
def test_the_fast_path_is_taken_only_when_the_limits_cannot_be_passed(text: str) -> None:
    """Soundness: whatever the scan lets through, the bounded composer accepts within the same limits
    (so libyaml's composer can never meet an alias bomb, a deep nesting or too many documents), and
    both paths give the same data."""
    data = text.encode("utf-8", "surrogatepass")
    if not _yaml.provably_within(data, _SMALL):
        return
    _yaml.set_limits(rendered=_SMALL)
    try:
        outcomes = []
        for fast in (True, False):
            original = _yaml._HAS_C_COMPOSER
            _yaml._HAS_C_COMPOSER = fast
            try:
                outcomes.append(("ok", _yaml.parse(data, section="rendered", multi=True)))
            except _yaml.LimitError as exc:
                raise AssertionError(f"the scan let through a document past a limit: {exc.message}") from exc
            except (yaml.YAMLError, UnicodeDecodeError) as exc:
                outcomes.append(("error", type(exc).__name__))
            finally:
                _yaml._HAS_C_COMPOSER = original
    finally:
        _yaml.set_limits()
    assert outcomes[0] == outcomes[1]


@pytest.mark.parametrize("text", [
    "a: [[[[[[[[[[1]]]]]]]]]]",             # flow nesting past 8
    "a:\n b:\n  c:\n   d:\n    e: 1",        # block nesting: indentation
    "a: &x [1, 2]\nb: *x\n",                 # anchors and aliases
    "a: b\n---\nc: d\n---\ne: f\n---\ng: h",  # more than 3 documents
    "k: [\n 'x: |\n      y', &a [b]]",        # a block-scalar look-alike inside a flow collection
    "a: !!str &x b\nc: *x",                  # an anchor after a tag
])
def test_the_scan_sends_what_it_cannot_prove_to_the_bounded_composer(text: str) -> None:
    assert not _yaml.provably_within(text.encode(), _SMALL)


@pytest.mark.parametrize("text", [
    "description: pods/* and a && b [see docs]\nname: x\n",
    "description: |\n  &anchor-like *text [[[[[[[[[[[\nname: x\n",
    "description: first line\n  continued *with [brackets {and &amps\nname: x\n",
    "status: {}\nspec: []\n",
])
def test_the_scan_proves_ordinary_rendered_text(text: str) -> None:
    assert _yaml.provably_within(text.encode(), _SMALL)
