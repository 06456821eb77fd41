"""Hostile YAML (issue 17, item 1): every bounded-loader refusal, through the library and the CLI.

Each input is what a pull request can put in a catalog: an alias bomb, deep nesting (flow and block),
a control character, a file far too big, too many documents, values a safe constructor refuses.
Each must end in exit 2 within seconds, naming the file and line, with a hint naming the limit, no
traceback, and the lockfiles left byte for byte as they were.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline import _yaml
from pipeline.__main__ import main
from pipeline.errors import DiscoveryError, RecipeError
from pipeline.images._scan import scan
from tests import factories

VALUES = "components/app/values.yaml"


def alias_bomb(levels: int = 10, fanout: int = 10) -> str:
    names = [f"l{i}" for i in range(levels)]
    lines = [f"{names[0]}: &{names[0]} [" + ", ".join(['"lol"'] * fanout) + "]"]
    for prev, name in itertools.pairwise(names):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * fanout) + "]")
    return "\n".join(lines) + "\n"


def many_aliases(count: int) -> str:
    return "a: &a x\nb: [" + ", ".join(["*a"] * count) + "]\n"


@dataclass(frozen=True)
class Case:
    id: str
    text: str
    message: str
    line: int | None
    hint: str


CASES = [
    Case("alias-bomb", alias_bomb(), "YAML refused: more than 1000000 nodes once aliases are expanded (an alias bomb?)",
         6, "the limit is yaml.maxNodes = 1000000; if a genuine file needs more, raise it under "
            "'spec: limits: yaml: maxNodes:' in the catalog's pipeline.yaml (recipes/pipeline.yaml)"),
    Case("too-many-aliases", many_aliases(1001), "YAML refused: more than 1000 aliases", 2,
         "the limit is yaml.maxAliases = 1000"),
    Case("deep-flow", "a: " + "[" * 500 + "]" * 500 + "\n", "YAML refused: nested deeper than 100 levels", 1,
         "the limit is yaml.maxDepth = 100"),
    Case("very-deep-flow", "a: " + "[" * 100_000 + "]" * 100_000 + "\n",
         "YAML refused: nested too deep for the YAML parser (exceeded maximum nesting depth)", 1,
         "the limit is yaml.maxDepth = 100"),
    Case("deep-block", "".join(" " * i + "k:\n" for i in range(1000)) + " " * 1000 + "v: 1\n",
         "YAML refused: nested deeper than 100 levels", 101, "the limit is yaml.maxDepth = 100"),
    Case("deep-sequence", "- " * 10_000 + "x\n", "YAML refused: nested deeper than 100 levels", 1,
         "the limit is yaml.maxDepth = 100"),
    Case("form-feed", "a: 1\nb: x\x0cy\n",
         "malformed YAML: control characters are not allowed: character #x0c is not allowed in YAML", 2,
         "remove the control character (or write it as an escape inside a double-quoted string)"),
    Case("nul", "a: \x00\n", "malformed YAML: control characters are not allowed: character #x00", 1,
         "remove the control character"),
    Case("recursive-alias", "a: &a [1, *a]\n",
         "malformed YAML: alias *a refers to a node that contains it (a recursive structure)", 1,
         "fix the YAML syntax"),
    Case("impossible-date", "a: 2020-13-45\n", "malformed YAML: cannot build a value: month must be in 1..12", None,
         "quote the value to keep it a string"),
    Case("huge-integer", "a: " + "9" * 5000 + "\n", "malformed YAML: cannot build a value: Exceeds the limit", None,
         "quote the value to keep it a string"),
    Case("python-tag", "a: !!python/object/apply:os.system [id]\n",
         "malformed YAML: could not determine a constructor for the tag", 1, "fix the YAML syntax"),
    Case("two-documents", "a: 1\n---\nb: 2\n",
         "malformed YAML: expected a single document in the stream, but found another document", 2,
         "fix the YAML syntax"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_file_is_refused_with_file_line_and_hint(tmp_path: Path, case: Case) -> None:
    path = tmp_path / "values.yaml"
    path.write_text(case.text, encoding="utf-8")
    started = time.monotonic()
    with pytest.raises(RecipeError) as info:
        _yaml.load_file(path, display=VALUES)
    assert time.monotonic() - started < 5
    err = info.value
    assert case.message in err.message
    assert str(err.path) == VALUES
    assert err.line == case.line
    assert err.hint is not None and case.hint in err.hint


def test_a_50_mb_file_is_refused_by_its_size_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "values.yaml"
    with path.open("wb") as handle:
        handle.write(b"k: " + b"x" * (50 * 1024 * 1024) + b"\n")
    started = time.monotonic()
    with pytest.raises(RecipeError) as info:
        _yaml.load_file(path, display=VALUES)
    assert time.monotonic() - started < 1
    assert info.value.message == "file is 52428804 bytes, more than 8388608"
    assert info.value.hint is not None and "yaml.maxBytes = 8388608" in info.value.hint


def test_too_many_documents_in_rendered_output() -> None:
    _yaml.set_limits(rendered=_yaml.YamlLimits(section="rendered", max_bytes=1 << 20, max_depth=10, max_aliases=1,
                                               max_nodes=1000, max_documents=3))
    try:
        with pytest.raises(RecipeError) as info:
            _yaml.load_all_bytes(b"a: 1\n---\nb: 1\n---\nc: 1\n---\nd: 1\n", display="templates/x.yaml")
    finally:
        _yaml.set_limits()
    assert info.value.message == "YAML refused: more than 3 documents"
    assert info.value.line == 6
    assert info.value.hint is not None and "rendered.maxDocuments = 3" in info.value.hint


def test_rendered_output_has_its_own_bigger_depth_limit() -> None:
    deep = b"a: " + b"[" * 150 + b"]" * 150 + b"\n"
    assert _yaml.load_all_bytes(deep)  # 150 levels: beyond the catalog's 100, within rendered output's 200
    too_deep = b"a: " + b"[" * 300 + b"]" * 300 + b"\n"
    with pytest.raises(RecipeError, match="nested deeper than 200 levels"):
        _yaml.load_all_bytes(too_deep)


def test_discovery_refuses_an_alias_bomb_in_rendered_output() -> None:
    bomb = alias_bomb(levels=9, fanout=10).replace("l8:", "image:").replace("&l8", "&img")
    stream = ("---\n# Source: app/templates/bomb.yaml\n" + bomb).encode()
    _yaml.set_limits(rendered=_yaml.YamlLimits(section="rendered", max_bytes=1 << 20, max_depth=200,
                                               max_aliases=10_000, max_nodes=1_000_000, max_documents=10))
    try:
        with pytest.raises(DiscoveryError) as info:
            list(scan(stream))
    finally:
        _yaml.set_limits()
    assert str(info.value.path) == "app/templates/bomb.yaml"
    assert "more than 1000000 nodes once aliases are expanded" in info.value.message
    assert info.value.hint is not None and "rendered.maxNodes = 1000000" in info.value.hint


def test_same_loader_keeps_lines_merge_keys_and_safe_types(tmp_path: Path) -> None:
    path = tmp_path / "v.yaml"
    path.write_text("base: &b {x: 1, when: 2024-01-02}\nuse:\n  <<: *b\n  y: [1, two]\n")
    data = _yaml.load_file(path)
    assert data == {"base": {"x": 1, "when": __import__("datetime").date(2024, 1, 2)},
                    "use": {"x": 1, "when": __import__("datetime").date(2024, 1, 2), "y": [1, "two"]}}
    assert data.line_of("use") == 2
    assert _yaml.load_strings(b"version: 1.10\n") == {"version": "1.10"}


# -- through the CLI -------------------------------------------------------------------------------


def _args(root: Path, command: str) -> list[str]:
    extra = ["--no-resolve"] if command == "lock" else []
    return [command, "--catalog", str(root / "catalog"), "--lockdir", str(root / "locks"),
            "--cache", str(root / "cache"), "--workers", "1", *extra]


@pytest.fixture
def locked(tmp_path: Path) -> Path:
    factories.catalog(tmp_path / "catalog")
    assert main(_args(tmp_path, "lock")) == 0
    return tmp_path


def _snapshot(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((root / "locks").iterdir())}


CLI_CASES = [c for c in CASES if c.id in {"alias-bomb", "very-deep-flow", "deep-block", "form-feed"}]


@pytest.mark.parametrize("command", ["lock", "reproduce"])
@pytest.mark.parametrize("case", CLI_CASES, ids=lambda c: c.id)
def test_hostile_values_file_exits_2_naming_it_and_leaves_the_locks(
    locked: Path, capsys: pytest.CaptureFixture[str], command: str, case: Case
) -> None:
    before = _snapshot(locked)
    (locked / "catalog" / VALUES).write_text(case.text, encoding="utf-8")
    capsys.readouterr()
    started = time.monotonic()
    assert main(_args(locked, command)) == 2
    assert time.monotonic() - started < 30
    captured = capsys.readouterr()
    where = f"{VALUES}:{case.line}: " if case.line else f"{VALUES}: "
    assert f"error: {where}{case.message}" in captured.err
    assert "\nhint: " in captured.err
    assert "Traceback" not in captured.err + captured.out
    assert _snapshot(locked) == before


def test_a_catalog_that_needs_more_raises_the_limit_in_pipeline_yaml(locked: Path) -> None:
    deep = "top:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(110)) + "  " * 111 + "v: 1\n"
    (locked / "catalog" / VALUES).write_text(deep)
    assert main(_args(locked, "recipes")) == 2
    (locked / "catalog/pipeline.yaml").write_text(
        "apiVersion: pipeline.recipes.dev/v1\nkind: PipelineConfig\nspec:\n  limits:\n    yaml: {maxDepth: 150}\n")
    assert main(_args(locked, "recipes")) == 0


@pytest.mark.parametrize(("limits", "message"), [
    ("yaml: {maxDepth: 0}", "limits.yaml.maxDepth must be a positive integer, not 0"),
    ("yaml: {maxDepht: 5}", "maxDepht"),
    ("rendered: {maxNodes: many}", "limits.rendered.maxNodes must be a positive integer, not 'many'"),
])
def test_bad_limits_are_refused(locked: Path, capsys: pytest.CaptureFixture[str], limits: str, message: str) -> None:
    (locked / "catalog/pipeline.yaml").write_text(
        f"apiVersion: pipeline.recipes.dev/v1\nkind: PipelineConfig\nspec:\n  limits:\n    {limits}\n")
    capsys.readouterr()
    assert main(_args(locked, "recipes")) == 2
    assert message in capsys.readouterr().err
