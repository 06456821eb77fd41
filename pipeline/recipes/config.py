"""The optional catalog configuration file ``<catalog>/pipeline.yaml`` (this project's own format).

Input: the catalog root. Output: a frozen :class:`PipelineConfig` — the Kubernetes version and
API versions handed to Helm, the recipe list (``None``: one recipe per leaf overlay) and the chart
repository mirrors. Mirrors and registries may also come from an environment file outside the
catalog (:func:`environment_file`, :func:`load_environment`, merged by
:meth:`PipelineConfig.with_environment`); only :meth:`PipelineConfig.render_inputs` is a lock input.
A catalog without ``pipeline.yaml`` gets the defaults, which are upstream
AICR's render options. The file is validated strictly: unknown keys, wrong types, malformed
versions or URLs and duplicate recipe names are :class:`~pipeline.errors.RecipeError` with the
line and a hint. Example::

    apiVersion: pipeline.recipes.dev/v1
    kind: PipelineConfig
    spec:
      kubeVersion: "1.33.0"
      apiVersions: [resource.k8s.io/v1, resource.k8s.io/v1beta1]
      recipes:
        - name: h100-eks-ubuntu-training
          criteria: {service: eks, accelerator: h100, os: ubuntu, intent: training}
      mirrors:
        https://helm.ngc.nvidia.com/nvidia: http://127.0.0.1:8879/nvidia
      limits:                       # optional; the defaults are shown
        yaml:                       # catalog files, values, Chart.yaml
          {maxBytes: 8388608, maxDepth: 100, maxAliases: 1000, maxNodes: 1000000, maxDocuments: 1000}
        rendered:                   # rendered manifests, CRD schemas, index.yaml
          {maxBytes: 67108864, maxDepth: 200, maxAliases: 10000, maxNodes: 20000000, maxDocuments: 100000}
        render:                     # one component's render, enforced on the worker process
          {maxSeconds: 60, maxMemoryMiB: 4096}
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._checks import check_keys, line_of, type_name
from .._yaml import FILE_LIMITS, RENDERED_LIMITS, YamlLimits, YamlMap, load_file
from ..errors import RecipeError
from ..registry_config import RegistryConfig, parse_registry_config
from .load import check_header, expect_mapping, get_str, parse_criteria
from .model import DEFAULT_API_VERSIONS, DEFAULT_KUBE_VERSION, Criteria, RecipeQuery

__all__ = [
    "CONFIG_API_VERSION",
    "CONFIG_ENV",
    "CONFIG_FILE",
    "USER_CONFIG",
    "Environment",
    "Limits",
    "PipelineConfig",
    "RenderLimits",
    "environment_file",
    "load_config",
    "load_environment",
]

CONFIG_FILE = "pipeline.yaml"
CONFIG_API_VERSION = "pipeline.recipes.dev/v1"
CONFIG_KIND = "PipelineConfig"

_SPEC_KEYS = ("kubeVersion", "apiVersions", "recipes", "mirrors", "registries", "limits")
#: What an environment file may set: how to reach repositories and registries, never what is rendered.
_ENVIRONMENT_KEYS = ("mirrors", "registries")
#: The environment variable naming the environment file (below ``--config``, above the user file).
CONFIG_ENV = "PIPELINE_CONFIG"
#: The user-level environment file, under ``$XDG_CONFIG_HOME`` (default ``~/.config``).
USER_CONFIG = "recipe-pipeline/config.yaml"
_LIMIT_SECTIONS = ("yaml", "rendered", "render")
_RENDER_KEYS = ("maxSeconds", "maxMemoryMiB")
#: Defaults of ``limits.render`` (the values :mod:`pipeline.render.pool` documents).
DEFAULT_RENDER_SECONDS = 60.0
DEFAULT_RENDER_MEMORY_MIB = 4096
#: Below this the embedded engine cannot even start (it reserves about 1.8 GiB of address space).
_MIN_RENDER_MEMORY_MIB = 2048


@dataclass(frozen=True, slots=True, kw_only=True)
class RenderLimits:
    """``spec.limits.render``: wall-clock seconds and address space (MiB) of one component's render."""

    max_seconds: float = DEFAULT_RENDER_SECONDS
    max_memory_mib: int = DEFAULT_RENDER_MEMORY_MIB

    def __post_init__(self) -> None:
        if self.max_seconds <= 0 or self.max_memory_mib < _MIN_RENDER_MEMORY_MIB:
            raise ValueError("render limits out of range")


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """``spec.limits``: YAML bounds for catalog files and for rendered output; render resources."""

    yaml: YamlLimits = FILE_LIMITS
    rendered: YamlLimits = RENDERED_LIMITS
    render: RenderLimits = field(default_factory=RenderLimits)
_RECIPE_KEYS = ("name", "criteria")
_RECIPE_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_KUBE_VERSION = re.compile(r"^v?[0-9]+\.[0-9]+(\.[0-9]+)?$")
_API_VERSION = re.compile(r"^([a-z0-9]([a-z0-9.-]*[a-z0-9])?/)?v[0-9]+((alpha|beta)[0-9]+)?$")
_URL = re.compile(r"^(https?|oci)://[^\s/]+(/\S*)?$")


@dataclass(frozen=True, slots=True, kw_only=True)
class PipelineConfig:
    """What ``pipeline.yaml`` says (or the defaults when the catalog has none).

    ``recipes`` is ``None`` when the file does not list recipes: the catalog's recipes are then
    one per leaf overlay. ``mirrors`` maps an upstream chart repository URL to the URL to fetch
    it from instead. ``path`` is ``'pipeline.yaml'`` when the file exists, else ``None``;
    ``recipe_lines`` gives the line of each listed recipe, for messages.
    """

    kube_version: str = DEFAULT_KUBE_VERSION
    api_versions: tuple[str, ...] = DEFAULT_API_VERSIONS
    recipes: tuple[RecipeQuery, ...] | None = None
    mirrors: Mapping[str, str] = field(default_factory=dict)
    #: image registries: mirrors, insecure hosts, Docker config (``pipeline.registry_config``)
    registries: RegistryConfig = field(default_factory=RegistryConfig)
    #: bounds on YAML (``spec.limits``)
    limits: Limits = field(default_factory=Limits)
    path: str | None = None
    recipe_lines: Mapping[str, int] = field(default_factory=dict, compare=False)

    def with_environment(self, environment: Environment | None) -> PipelineConfig:
        """This configuration with ``environment`` merged over it (``None``: unchanged).

        Chart mirrors merge by upstream URL and registry mirrors by upstream host, the
        environment's entry winning; insecure hosts are the union; the environment's
        ``dockerConfig`` wins when it sets one.
        """
        if environment is None:
            return self
        env = environment.registries
        registries = RegistryConfig(
            mirrors=dict(sorted({**self.registries.mirrors, **env.mirrors}.items())),
            insecure=self.registries.insecure | env.insecure,
            docker_config=env.docker_config if env.docker_config is not None else self.registries.docker_config,
        )
        return dataclasses.replace(self, mirrors=dict(sorted({**self.mirrors, **environment.mirrors}.items())),
                                   registries=registries)

    def render_inputs(self, recipe: str) -> dict[str, Any]:
        """The parts of ``pipeline.yaml`` that change what ``recipe`` renders, by key (lock inputs).

        ``spec.kubeVersion`` and ``spec.apiVersions`` (effective values, defaults included) and, when
        the file lists recipes, this recipe's entry. Mirrors, registries and limits are not here:
        they change who serves the bytes or which inputs are accepted, never the bytes rendered.
        """
        out: dict[str, Any] = {"spec.kubeVersion": self.kube_version, "spec.apiVersions": list(self.api_versions)}
        for query in self.recipes or ():
            if query.name == recipe:
                out[f"spec.recipes[{recipe}]"] = {"name": query.name, "criteria": query.criteria.as_dict()}
        return out

    def __post_init__(self) -> None:
        if not _KUBE_VERSION.match(self.kube_version):
            raise ValueError(f"invalid kubeVersion {self.kube_version!r}")
        if self.recipes is not None:
            names = [q.name for q in self.recipes]
            if len(set(names)) != len(names):
                raise ValueError("duplicate recipe names")


def load_config(root: Path) -> PipelineConfig:
    """Read ``<root>/pipeline.yaml``; the defaults when there is none."""
    if not (root / CONFIG_FILE).is_file():
        return PipelineConfig()
    path = CONFIG_FILE
    doc = check_header(
        load_file(root / path, display=path), kind=CONFIG_KIND, api_versions=(CONFIG_API_VERSION,),
        path=path, hint=f"pipeline.yaml holds one {CONFIG_KIND} document (kind: {CONFIG_KIND})",
    )
    check_keys(doc, ("apiVersion", "kind", "spec"), what="pipeline.yaml", path=path)
    if doc.get("spec") is None:
        return PipelineConfig(path=path)
    spec = expect_mapping(doc["spec"], what="pipeline.yaml spec", path=path, line=line_of(doc, "spec"),
                          hint=f"spec is a mapping of {', '.join(_SPEC_KEYS)}")
    check_keys(spec, _SPEC_KEYS, what="pipeline.yaml spec", path=path)
    recipes, lines = _recipes(spec, path=path)
    return PipelineConfig(
        kube_version=_kube_version(spec, path=path),
        api_versions=_api_versions(spec, path=path),
        recipes=recipes,
        mirrors=_mirrors(spec, path=path),
        registries=parse_registry_config(spec.get("registries"), path=path),
        limits=_limits(spec, path=path),
        path=path,
        recipe_lines=lines,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Environment:
    """Settings of the machine, not of the catalog: chart mirrors, registry mirrors, insecure hosts and
    the Docker config with credentials, read from an environment file (:func:`environment_file`).

    ``path`` is the file as the user named it (for messages).
    """

    path: str
    mirrors: Mapping[str, str] = field(default_factory=dict)
    registries: RegistryConfig = field(default_factory=RegistryConfig)


def environment_file(flag: str | None, environ: Mapping[str, str]) -> Path | None:
    """The environment file to use, by precedence: ``--config FILE``, then ``$PIPELINE_CONFIG``, then
    ``$XDG_CONFIG_HOME/recipe-pipeline/config.yaml`` (``~/.config`` without ``XDG_CONFIG_HOME``) when it
    exists. One file is read; it is merged over the catalog's ``pipeline.yaml``. An empty
    ``PIPELINE_CONFIG`` turns the user file off. A named file that does not exist is an error.
    """
    for source, value in (("--config", flag), (CONFIG_ENV, environ.get(CONFIG_ENV))):
        if value is None:
            continue
        if not value.strip():
            if source == CONFIG_ENV:
                return None
            raise RecipeError("--config names no file", hint="pass the path of an environment file")
        path = Path(value)
        if not path.is_file():
            raise RecipeError(f"environment file {value!r} (from {source}) not found", path=value,
                              hint=f"create it (apiVersion: {CONFIG_API_VERSION}, kind: {CONFIG_KIND}, spec: "
                              "mirrors / registries), or unset " + ("--config" if source == "--config" else CONFIG_ENV))
        return path
    base = environ.get("XDG_CONFIG_HOME") or (str(Path(environ["HOME"]) / ".config") if environ.get("HOME") else None)
    if base is None:
        return None
    user = Path(base) / USER_CONFIG
    return user if user.is_file() else None


def load_environment(path: Path) -> Environment:
    """Read an environment file: the ``mirrors`` and ``registries`` of ``pipeline.yaml``'s schema.

    Anything that changes rendered bytes (``kubeVersion``, ``apiVersions``, ``recipes``) or bounds the
    catalog (``limits``) belongs to the catalog's own ``pipeline.yaml`` and is refused here.
    """
    display = str(path)
    doc = check_header(
        load_file(path, display=display), kind=CONFIG_KIND, api_versions=(CONFIG_API_VERSION,),
        path=display, hint=f"an environment file holds one {CONFIG_KIND} document with spec.mirrors and "
        "spec.registries",
    )
    check_keys(doc, ("apiVersion", "kind", "spec"), what=display, path=display)
    if doc.get("spec") is None:
        return Environment(path=display)
    spec = expect_mapping(doc["spec"], what=f"{display} spec", path=display, line=line_of(doc, "spec"),
                          hint="spec is a mapping of mirrors and registries")
    for key in spec:
        if key in _SPEC_KEYS and key not in _ENVIRONMENT_KEYS:
            raise RecipeError(
                f"spec.{key} cannot be set in an environment file", path=display,
                line=line_of(spec, str(key)),
                hint=f"{key} changes what is rendered or accepted: set it in the catalog's {CONFIG_FILE}; "
                "an environment file sets only mirrors and registries",
            )
    check_keys(spec, _ENVIRONMENT_KEYS, what="the environment file's spec", path=display)
    return Environment(path=display, mirrors=_mirrors(spec, path=display),
                       registries=parse_registry_config(spec.get("registries"), path=display))


def _kube_version(spec: YamlMap, *, path: str) -> str:
    if spec.get("kubeVersion") is None:
        return DEFAULT_KUBE_VERSION
    value = get_str(spec, "kubeVersion", what="pipeline.yaml spec", path=path, required=True).strip()
    if not _KUBE_VERSION.match(value):
        raise RecipeError(f"kubeVersion {value!r} is not a Kubernetes version", path=path,
                          line=line_of(spec, "kubeVersion"), hint='write it as "1.33.0" (quoted)')
    return value


def _api_versions(spec: YamlMap, *, path: str) -> tuple[str, ...]:
    value = spec.get("apiVersions")
    if value is None:
        return DEFAULT_API_VERSIONS
    line = line_of(spec, "apiVersions")
    if not isinstance(value, list):
        raise RecipeError(f"apiVersions must be a list, not a {type_name(value)}", path=path, line=line,
                          hint="write apiVersions: [resource.k8s.io/v1, resource.k8s.io/v1beta1]")
    out: list[str] = []
    for item in value:
        if not isinstance(item, str) or not _API_VERSION.match(item):
            raise RecipeError(
                f"apiVersions item {item!r} is not a Kubernetes API version", path=path, line=line,
                hint="write each as <group>/<version> (resource.k8s.io/v1) or a core version (v1)",
            )
        if item in out:
            raise RecipeError(f"apiVersions lists {item!r} twice", path=path, line=line,
                              hint="list each API version once")
        out.append(item)
    return tuple(out)


def _recipes(spec: YamlMap, *, path: str) -> tuple[tuple[RecipeQuery, ...] | None, dict[str, int]]:
    value = spec.get("recipes")
    if value is None:
        return None, {}
    line = line_of(spec, "recipes")
    if not isinstance(value, list):
        raise RecipeError(f"recipes must be a list, not a {type_name(value)}", path=path, line=line,
                          hint="write one '- name: <recipe>' / 'criteria: {...}' entry per recipe")
    if not value:
        raise RecipeError(
            "recipes is empty", path=path, line=line,
            hint="list at least one recipe, or remove 'recipes' to get one recipe per leaf overlay",
        )
    queries: list[RecipeQuery] = []
    lines: dict[str, int] = {}
    for item in value:
        node = expect_mapping(item, what="a recipe", path=path, line=line_of(item) or line,
                              hint="a recipe is a mapping with name and criteria")
        check_keys(node, _RECIPE_KEYS, what="a recipe", path=path)
        name = get_str(node, "name", what="a recipe", path=path, required=True).strip()
        if not _RECIPE_NAME.match(name):
            raise RecipeError(
                f"recipe name {name!r} is not a valid name", path=path, line=line_of(node, "name"),
                hint="use lower-case letters, digits, '.', '_' and '-' (it names the lockfile)",
            )
        here = line_of(node) or 1
        if name in lines:
            raise RecipeError(f"recipe {name!r} is listed twice (first at line {lines[name]})", path=path,
                              line=here, hint="give every recipe a unique name")
        criteria: Any = node.get("criteria")
        parsed = (
            Criteria() if criteria is None
            else parse_criteria(criteria, what=f"recipe {name!r}", path=path, line=line_of(node, "criteria"))
        )
        queries.append(RecipeQuery(name=name, criteria=parsed))
        lines[name] = here
    return tuple(queries), lines


def _mirrors(spec: YamlMap, *, path: str) -> dict[str, str]:
    value = spec.get("mirrors")
    if value is None:
        return {}
    node = expect_mapping(value, what="mirrors", path=path, line=line_of(spec, "mirrors"),
                          hint="mirrors maps an upstream chart repository URL to a mirror URL")
    out: dict[str, str] = {}
    for upstream, mirror in node.items():
        line = line_of(node, str(upstream))
        for role, url in (("upstream repository", upstream), ("mirror", mirror)):
            if not isinstance(url, str) or not _URL.match(url):
                raise RecipeError(
                    f"mirrors: {role} {url!r} is not an http(s):// or oci:// URL", path=path, line=line,
                    hint="write '<upstream URL>: <mirror URL>', e.g. https://charts.example.com: http://127.0.0.1:8879",
                )
        out[str(upstream)] = str(mirror)
    return dict(sorted(out.items()))


def _limits(spec: YamlMap, *, path: str) -> Limits:
    value = spec.get("limits")
    if value is None:
        return Limits()
    hint = "limits maps yaml, rendered and render to their settings (see pipeline/recipes/config.py)"
    node = expect_mapping(value, what="limits", path=path, line=line_of(spec, "limits"), hint=hint)
    check_keys(node, _LIMIT_SECTIONS, what="limits", path=path)
    yaml_limits = {s: _yaml_limits(node, s, base, path=path) for s, base in (("yaml", FILE_LIMITS),
                                                                             ("rendered", RENDERED_LIMITS))}
    return Limits(yaml=yaml_limits["yaml"], rendered=yaml_limits["rendered"], render=_render_limits(node, path=path))


def _render_limits(node: YamlMap, *, path: str) -> RenderLimits:
    if node.get("render") is None:
        return RenderLimits()
    section = expect_mapping(node["render"], what="limits.render", path=path, line=line_of(node, "render"),
                             hint="limits.render maps maxSeconds and maxMemoryMiB to positive numbers")
    check_keys(section, _RENDER_KEYS, what="limits.render", path=path)
    seconds: Any = section.get("maxSeconds", DEFAULT_RENDER_SECONDS)
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 < seconds <= 86_400:
        raise RecipeError(f"limits.render.maxSeconds must be a number of seconds in (0, 86400], not {seconds!r}",
                          path=path, line=line_of(section, "maxSeconds"),
                          hint=f"write maxSeconds: {DEFAULT_RENDER_SECONDS:g}")
    memory: Any = section.get("maxMemoryMiB", DEFAULT_RENDER_MEMORY_MIB)
    if isinstance(memory, bool) or not isinstance(memory, int) or memory < _MIN_RENDER_MEMORY_MIB:
        raise RecipeError(
            f"limits.render.maxMemoryMiB must be an integer of at least {_MIN_RENDER_MEMORY_MIB}, not {memory!r}",
            path=path, line=line_of(section, "maxMemoryMiB"),
            hint=f"the engine reserves about 1.8 GiB of address space before rendering; write maxMemoryMiB: "
            f"{DEFAULT_RENDER_MEMORY_MIB}")
    return RenderLimits(max_seconds=float(seconds), max_memory_mib=memory)


def _yaml_limits(node: YamlMap, name: str, base: YamlLimits, *, path: str) -> YamlLimits:
    if node.get(name) is None:
        return base
    section = expect_mapping(node[name], what=f"limits.{name}", path=path, line=line_of(node, name),
                             hint=f"limits.{name} maps {', '.join(YamlLimits.KEYS)} to positive integers")
    check_keys(section, tuple(YamlLimits.KEYS), what=f"limits.{name}", path=path)
    values = {attr: int(_positive(section, key, what=f"limits.{name}", path=path, default=getattr(base, attr)))
              for key, attr in YamlLimits.KEYS.items()}
    return YamlLimits(section=name, **values)


def _positive(node: YamlMap, key: str, *, what: str, path: str, default: float) -> float:
    value: Any = node.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise RecipeError(f"{what}.{key} must be a positive integer, not {value!r}",
                          path=path, line=line_of(node, key), hint=f"write {key}: {default}")
    return float(value)
