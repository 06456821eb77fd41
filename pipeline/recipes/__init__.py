"""Recipe composition: read an AICR-format catalog and compose its recipes.

``load_catalog(root)`` parses and cross-checks a catalog once; ``catalog_recipes(catalog)`` lists
its recipes; ``compose(catalog, query)`` resolves one recipe into the records every later stage
consumes (:class:`Recipe`, :class:`Component`, :class:`ChartRef`). Errors are
:class:`~pipeline.errors.RecipeError` with file, line and hint.
"""

from .compose import Catalog, catalog_recipes, compose, load_catalog
from .config import Environment, PipelineConfig, environment_file, load_config, load_environment
from .model import (
    DEFAULT_API_VERSIONS,
    DEFAULT_KUBE_VERSION,
    ChartRef,
    Component,
    ComponentType,
    Criteria,
    Recipe,
    RecipeQuery,
)

__all__ = [
    "DEFAULT_API_VERSIONS",
    "DEFAULT_KUBE_VERSION",
    "Catalog",
    "ChartRef",
    "Component",
    "ComponentType",
    "Criteria",
    "Environment",
    "PipelineConfig",
    "Recipe",
    "RecipeQuery",
    "catalog_recipes",
    "compose",
    "environment_file",
    "load_catalog",
    "load_config",
    "load_environment",
]
