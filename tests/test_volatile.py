"""Volatile declarations: parsing, errors with file and line, masking before hashing."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import RecipeError
from pipeline.render.job import assemble
from pipeline.volatile import MASK, load_volatile, mask
from tests import factories

HEADER = "apiVersion: pipeline.recipes.dev/v1\nkind: VolatileFields\nspec:\n  fields:\n"


def test_no_file_means_no_declarations(tmp_path: Path) -> None:
    assert load_volatile(tmp_path) == ()


def test_declarations_parse_with_selectors_and_paths(tmp_path: Path) -> None:
    factories.write_files(tmp_path, {"volatile.yaml": HEADER + (
        "    - component: app\n      kind: Secret\n      name: tls\n"
        "      path: data[\"tls.crt\"]\n      reason: genSelfSignedCert on every render\n")})
    (field,) = load_volatile(tmp_path)
    assert field.steps == ("data", "tls.crt")
    assert field.as_dict() == {"component": "app", "kind": "Secret", "name": "tls", "path": 'data["tls.crt"]',
                               "reason": "genSelfSignedCert on every render"}


@pytest.mark.parametrize(("entry", "message", "line"), [
    ("    - component: app\n      path: data.x\n", "needs a non-empty 'reason'", 5),
    ("    - component: app\n      path: data.x\n      reason: r\n      colour: red\n", "unknown key 'colour'", 5),
    ("    - component: app\n      path: data..x\n      reason: r\n", "cannot be parsed", 5),
])
def test_bad_declarations_name_file_and_line(tmp_path: Path, entry: str, message: str, line: int) -> None:
    factories.write_files(tmp_path, {"volatile.yaml": HEADER + entry})
    with pytest.raises(RecipeError, match=message) as info:
        load_volatile(tmp_path)
    assert info.value.path == Path("volatile.yaml")
    assert info.value.line == line
    assert info.value.hint


def test_mask_replaces_only_selected_fields(tmp_path: Path) -> None:
    factories.write_files(tmp_path, {"volatile.yaml": HEADER + (
        "    - component: app\n      kind: Secret\n      path: data.token\n      reason: randAlphaNum\n")})
    fields = load_volatile(tmp_path)
    secret = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ndata:\n  token: abc\n"
    render = assemble([("app/templates/s.yaml", secret),
                       ("app/templates/c.yaml", "kind: ConfigMap\ndata:\n  token: keep\n")])
    masked = mask("app", render, fields)
    assert f"token: {MASK}".encode() in masked.file_map()["app/templates/s.yaml"]
    assert masked.file_map()["app/templates/c.yaml"] == render.file_map()["app/templates/c.yaml"]
    assert mask("other", render, fields) is render
