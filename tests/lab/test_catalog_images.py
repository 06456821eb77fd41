"""Our catalog references only images that ``recipes/images.yaml`` builds, and pins in-tree ones to them.

Every recipe is rendered (``compose_recipes`` + ``render_recipe``); image references come from the
pipeline's own discovery (:func:`pipeline.images.discover`: pod specs, operator CRs' sibling fields,
Skyhook ``containerSHA``, ``RELATED_IMAGE_*`` / ``*_IMAGE`` variables, ``--*-image=`` arguments, and
the charts' ``helm.sh/images`` annotations). Then:

- every reference is ``localhost:5001/recipe-lab/...`` and its repository:tag is in images.yaml;
- every digest written in the catalog is the digest the builder produces for that image;
- every in-tree reference (our manifests, or set by our values/overrides) carries that digest;
- no public registry host is named outside comments anywhere in recipes/;
- every image images.yaml lists is referenced by some recipe or chart default.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.images import BuiltImage, build_image, load_image_specs
from pipeline.build import RecipeBuild
from pipeline.stages import Workspace, compose_recipes, render_recipe
from pipeline.vocabulary.reference import ImageRef

REPO_ROOT = Path(__file__).resolve().parents[2]
CATALOG = REPO_ROOT / "recipes"
LOCAL = "localhost:5001"
PREFIX = f"{LOCAL}/recipe-lab/"
PUBLIC_REGISTRIES = re.compile(
    r"\b(docker\.io|index\.docker\.io|ghcr\.io|registry\.k8s\.io|k8s\.gcr\.io|gcr\.io|nvcr\.io|quay\.io|"
    r"public\.ecr\.aws|mcr\.microsoft\.com)\b")
_ENV_IMAGE = re.compile(r"^(RELATED_IMAGE_\w+|\w+_IMAGE)$")
_ARG_IMAGE = re.compile(r"^--[\w-]*image=(.+)$")
_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")


@dataclass(frozen=True, slots=True)
class Found:
    """One image reference in a render: where, how it was found, and whether our catalog chose it."""

    recipe: str
    component: str
    file: str
    how: str
    ref: ImageRef
    in_tree: bool

    def __str__(self) -> str:
        return f"{self.ref} ({self.how} in {self.recipe}/{self.component}/{self.file})"


@pytest.fixture(scope="module")
def built() -> dict[str, BuiltImage]:
    """``repository:tag`` → the image the builder makes for it."""
    return {f"{s.ref.name}:{s.tag}": build_image(s) for s in load_image_specs(CATALOG / "images.yaml")}


@pytest.fixture(scope="module")
def renders(tmp_path_factory: pytest.TempPathFactory) -> list[RecipeBuild]:
    root = tmp_path_factory.mktemp("catalog-renders")
    ws = Workspace(catalog=CATALOG, lockdir=root / "locks", cache=root / "cache", workers=2)
    _, recipes = compose_recipes(CATALOG)
    return [render_recipe(ws, recipe.name) for recipe in recipes]


@pytest.fixture(scope="module")
def found(renders: list[RecipeBuild]) -> list[Found]:
    out: list[Found] = []
    for build in renders:
        for component in build.recipe.components:
            for image in build.images[component.name]:
                out.append(Found(build.recipe.name, component.name, image.file, f"{image.via} {image.field}",
                                 image.ref, image.origin == "in-tree"))
    return out


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, Mapping):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)
    elif isinstance(node, str):
        yield node


def _operator_refs(node: Any, path: str = "") -> Iterator[tuple[str, str, tuple[str, ...]]]:
    """``(how, reference, pieces)`` for images outside pod specs: CR sibling fields, env, args."""
    if isinstance(node, Mapping):
        fields = {k: v for k, v in node.items() if isinstance(v, str)}
        repository, image, version = fields.get("repository"), fields.get("image"), fields.get("version")
        if repository and image and version:  # ClusterPolicy / NicClusterPolicy operands
            joined = f"{repository}/{image}" + (f"@{version}" if version.startswith("sha256:") else f":{version}")
            yield f"sibling fields {path}", joined, (version,)
        elif image and version and "containerSHA" in fields:  # Skyhook packages
            sha = fields["containerSHA"]
            yield f"skyhook fields {path}", f"{image}:{version}" + (f"@{sha}" if sha else ""), (version, sha)
        name, value = fields.get("name"), fields.get("value")
        if name and value and _ENV_IMAGE.match(name):
            yield f"env {name}", value, (value, *value.partition("@")[::2])
        for key, child in node.items():
            yield from _operator_refs(child, f"{path}.{key}")
    elif isinstance(node, list):
        containers = path.rsplit(".", 1)[-1] in _CONTAINER_LISTS
        for index, child in enumerate(node):
            if isinstance(child, str) and (match := _ARG_IMAGE.match(child)):
                yield f"argument {path}[{index}]", match.group(1), (match.group(1),)
                continue
            if containers and isinstance(child, Mapping) and isinstance(child.get("image"), str):
                image = child["image"]
                yield f"container {path}[{index}].image", image, (image, *image.partition("@")[::2])
            yield from _operator_refs(child, f"{path}[{index}]")


def _chart_annotation_refs() -> list[str]:
    refs = []
    for chart_yaml in sorted(CATALOG.glob("charts/**/Chart.yaml")):
        images = (yaml.safe_load(chart_yaml.read_text()).get("annotations") or {}).get("helm.sh/images")
        refs += [str(entry["image"]) for entry in yaml.safe_load(images or "[]")]
    return refs


def _chart_default_refs() -> list[str]:
    """Sibling-field images in the charts' own values.yaml (defaults no recipe may render)."""
    refs = []
    for values in sorted(CATALOG.glob("charts/**/values.yaml")):
        for _, text, _ in _operator_refs(yaml.safe_load(values.read_text())):
            refs.append(text)
    return refs


def _key(ref: ImageRef) -> str:
    return f"{ref.name}:{ref.tag}"


# ------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_every_recipe_references_images(renders: list[RecipeBuild], found: list[Found]) -> None:
    assert {b.recipe.name for b in renders} == {b.recipe.name for b in renders if any(f.recipe == b.recipe.name
                                                                                     for f in found)}
    hows = {f.how.split(" ", 1)[0] for f in found}
    # Every pattern the catalog exercises is found: pod specs, CR sibling fields (Skyhook's included),
    # env variables, --*-image= arguments and the helm.sh/images annotation.
    assert {"container", "fields", "env", "arg", "annotation"} <= hows


@pytest.mark.slow
def test_every_referenced_image_is_built_by_images_yaml(found: list[Found], built: dict[str, BuiltImage]) -> None:
    repositories = {b.spec.ref.name for b in built.values()}
    problems = []
    for item in found:
        if item.ref.registry != LOCAL or not str(item.ref).startswith(PREFIX):
            problems.append(f"{item}: not under {PREFIX}")
        elif item.ref.tag is not None and _key(item.ref) not in built:
            problems.append(f"{item}: {_key(item.ref)} is not in recipes/images.yaml")
        elif item.ref.tag is None and item.ref.name not in repositories:
            problems.append(f"{item}: repository {item.ref.name} is not in recipes/images.yaml")
    for text in _chart_annotation_refs() + _chart_default_refs():
        ref = ImageRef.parse(text)
        if _key(ref) not in built:
            problems.append(f"chart image {text}: not in recipes/images.yaml")
    assert problems == []


@pytest.mark.slow
def test_every_digest_in_the_catalog_is_the_built_digest(found: list[Found], built: dict[str, BuiltImage]) -> None:
    by_repository: dict[str, set[str]] = {}
    for image in built.values():
        by_repository.setdefault(image.spec.ref.name, set()).add(image.digest)
    pinned = [f for f in found if f.ref.digest is not None]
    assert pinned, "the catalog pins no image at all"
    for item in pinned:
        if item.ref.tag is not None:
            assert item.ref.digest == built[_key(item.ref)].digest, str(item)
        else:
            assert item.ref.digest in by_repository[item.ref.name], str(item)


@pytest.mark.slow
def test_in_tree_images_are_pinned(found: list[Found]) -> None:
    in_tree = [f for f in found if f.in_tree]
    assert {f.ref.repository for f in in_tree} >= {
        "recipe-lab/accel-driver", "recipe-lab/pytorch", "recipe-lab/tuning-packages/kernel-setup",
        "recipe-lab/tuning-packages/tuning"}
    assert [str(f) for f in in_tree if not f.ref.pinned] == []


@pytest.mark.slow
def test_chart_default_images_stay_tag_only(found: list[Found]) -> None:
    defaults = [f for f in found if not f.in_tree]
    assert defaults
    assert [str(f) for f in defaults if f.ref.digest is not None or f.ref.tag is None] == []


def test_no_public_registry_is_named_in_the_catalog() -> None:
    hits = []
    for path in sorted(CATALOG.rglob("*")):
        if not path.is_file() or path.suffix not in {".yaml", ".yml", ".tpl", ".txt", ".json"}:
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            code = line.split("#", 1)[0] if not line.lstrip().startswith("{{") else line
            if PUBLIC_REGISTRIES.search(code):
                hits.append(f"{path.relative_to(CATALOG)}:{number}: {line.strip()}")
    assert hits == []


@pytest.mark.slow
def test_every_listed_image_is_used(found: list[Found], built: dict[str, BuiltImage]) -> None:
    used = {_key(f.ref) for f in found if f.ref.tag is not None}
    used |= {_key(ImageRef.parse(t)) for t in _chart_annotation_refs() + _chart_default_refs()}
    digests = {f.ref.digest for f in found if f.ref.digest is not None}
    unused = [key for key, image in built.items() if key not in used and image.digest not in digests]
    assert unused == []


def test_vgpu_manager_placeholder_is_kept() -> None:
    values = yaml.safe_load((CATALOG / "charts/accel-operator/values.yaml").read_text())
    assert values["vgpuManager"] == {"enabled": False, "repository": "", "image": "vgpu-manager", "version": ""}
