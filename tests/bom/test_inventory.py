"""docs/container-images.md: the generated section, the prose around it, and the freshness gate."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.bom import BomError, locked_recipes
from pipeline.bom.inventory import BEGIN, END, check_fresh, render_section, update_document, write_inventory
from pipeline.lockfile import Lockfile
from tests.bom import locks as f

PROSE_BEFORE = "# Our images\n\nHand-written intro, with a | pipe and a <!-- comment -->.\n\n"
PROSE_AFTER = "\n## Notes\n\nWritten by a person; must survive.\n"


def _locks() -> list[Lockfile]:
    return [f.demo_lock(), f.demo_lock(name="other")]


def test_section_lists_every_image_with_its_digest_and_the_summary() -> None:
    locks = _locks()
    section = render_section(locked_recipes(locks))
    assert section.startswith(BEGIN + "\n") and section.endswith(END + "\n")
    assert "| 2 | 5 | 5 | 4 | 0 |" in section  # recipes, components, unique images, registries, unresolved
    for recipe in locked_recipes(locks):
        for component in recipe.ordered():
            for image in component.images:
                assert f"| {image.image.name} | {image.image.tag or ''} | `{image.digest}` |" in section
    assert "### oci-app" in section and "| app | app 1.2.3 | https://charts.example.com/stable | demo |" in section
    assert "| config | in-tree manifests | catalog | kube-system | 0 | demo, other |" in section
    assert "```mermaid\ngraph LR\n" in section and '  r0["demo"]' in section
    assert '[("registry.example.com:5000")]' in section


def test_unresolved_images_are_shown_not_hidden() -> None:
    lock = f.edited(f.demo_lock(), lambda b: f.unpin(b["components"]["agent"]["images"][0]))
    section = render_section(locked_recipes([lock]))
    assert "| quay.io/example/agent | v2 | unresolved | in-tree | demo |" in section
    assert "| 1 | 5 | 5 | 4 | 1 |" in section


def test_regeneration_preserves_prose_around_the_markers(tmp_path: Path) -> None:
    path = tmp_path / "docs" / "container-images.md"
    path.parent.mkdir()
    path.write_text(PROSE_BEFORE + f"{BEGIN}\nstale\n{END}\n" + PROSE_AFTER)
    assert write_inventory(path, _locks()) is True
    text = path.read_text()
    assert text.startswith(PROSE_BEFORE) and text.endswith(END + "\n" + PROSE_AFTER)
    assert "stale" not in text and check_fresh(path, _locks()) == []
    assert write_inventory(path, _locks()) is False  # unchanged: not rewritten


def test_a_new_document_gets_an_intro_and_a_document_without_markers_gets_the_section_appended() -> None:
    recipes = locked_recipes(_locks())
    fresh = update_document(None, recipes)
    assert fresh.startswith("# Container images\n") and fresh.endswith(END + "\n")
    appended = update_document("# Mine\n\nprose\n", recipes)
    assert appended.startswith("# Mine\n\nprose\n\n" + BEGIN)


@pytest.mark.parametrize(("text", "detail"), [
    (f"{BEGIN}\nx\n", "1 BEGIN, 0 END"),
    (f"{BEGIN}\n{BEGIN}\n{END}\n", "2 BEGIN, 1 END"),
    (f"{END}\nx\n{BEGIN}\n", "1 BEGIN, 1 END, END before BEGIN"),
])
def test_broken_markers_are_refused_not_guessed(text: str, detail: str) -> None:
    with pytest.raises(BomError) as caught:
        update_document(text, locked_recipes(_locks()), where="docs/container-images.md")
    assert caught.value.message == f"docs/container-images.md: the generated section's markers are broken ({detail})"


def test_check_fresh_names_what_is_stale(tmp_path: Path) -> None:
    path = tmp_path / "container-images.md"
    assert check_fresh(path, _locks()) == [
        f"{path} does not exist: run 'nox -s bom' (it regenerates docs/container-images.md) and commit it"]
    write_inventory(path, _locks())
    assert check_fresh(path, _locks()) == []
    problems = check_fresh(path, _locks()[:1])
    assert len(problems) == 1 and "the generated section does not match the lockfiles" in problems[0]
    path.write_text("# no section\n")
    assert check_fresh(path, _locks()) == [
        f"{path} has no generated section: run 'nox -s bom' (it regenerates docs/container-images.md) and commit it"]
    path.write_text(f"{BEGIN}\n")
    assert check_fresh(path, _locks()) == [f"{path}: the generated section's markers are broken (1 BEGIN, 0 END)"]
