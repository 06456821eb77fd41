"""Property tests (issue 17, item 7): parsers of hostile input fail only with their own errors.

Bounded in time (``max_examples``, ``deadline``) so that they run with the rest of the suite in CI.
"""

from __future__ import annotations

import contextlib
import io
import tarfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline import _yaml
from pipeline.charts.archive import inspect_archive
from pipeline.charts.http import _parse_index
from pipeline.errors import ChartError, PipelineError
from pipeline.vocabulary.reference import ImageRef, ImageRefError

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
