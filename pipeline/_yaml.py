"""YAML loading that remembers where things were.

``load_file`` parses one YAML document with PyYAML's safe loader (the C loader when present) and
returns plain ``dict``/``list`` data whose mappings are :class:`YamlMap` instances: ordinary dicts
that also know the file, the line of the mapping and the line of each key. Errors name the file
and line and are raised as the caller's error class.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import yaml

from .errors import PipelineError, RecipeError

__all__ = ["YamlMap", "dump", "load_all_bytes", "load_file", "load_yaml_strings", "location"]

try:
    _BaseLoader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _BaseLoader = yaml.SafeLoader


class YamlMap(dict[str, Any]):
    """A mapping from YAML that knows its file and the (1-based) line of itself and of each key."""

    __slots__ = ("file", "key_lines", "line")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.file: Path | None = None
        self.line: int | None = None
        self.key_lines: dict[str, int] = {}

    def line_of(self, key: str) -> int | None:
        """Line of ``key`` in its file, falling back to the mapping's own line."""
        return self.key_lines.get(key, self.line)


class _LineLoader(yaml.SafeLoader):
    """Pure-Python safe loader that builds :class:`YamlMap` with line numbers."""

    file: Path | None = None

    def construct_yaml_map(self, node: yaml.MappingNode) -> Generator[dict[Any, Any], None, None]:
        data = YamlMap()
        data.file = self.file
        data.line = node.start_mark.line + 1
        yield data
        value = self.construct_mapping(node, deep=False)
        data.update(value)
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=False)
            if isinstance(key, str):
                data.key_lines.setdefault(key, key_node.start_mark.line + 1)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str | int) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first at line {seen[key]})", key_node.start_mark
                )
            if isinstance(key, str | int):
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


_LineLoader.add_constructor("tag:yaml.org,2002:map", _LineLoader.construct_yaml_map)


def load_file(path: Path, *, error: type[PipelineError] = RecipeError, display: str | None = None) -> Any:
    """Parse the single YAML document in ``path``; mappings come back as :class:`YamlMap`.

    ``display`` is the path to show in messages (catalog-relative); defaults to ``path``.
    Raises ``error`` naming the file and line on unreadable files, syntax errors and duplicate keys.
    """
    shown = Path(display) if display is not None else path
    try:
        text = path.read_bytes()
    except FileNotFoundError as exc:
        raise error(f"file not found: {shown}", hint="check the path, relative to the catalog root") from exc
    except OSError as exc:
        raise error(f"cannot read {shown}: {exc.strerror}") from exc
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error("not UTF-8 text", path=shown, hint="save the file as UTF-8") from exc
    loader = _LineLoader(decoded)
    loader.file = shown
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or str(exc)
        raise error(f"malformed YAML: {problem}", path=shown, line=line,
                    hint="fix the YAML syntax at that line (indentation, quoting, a missing ':')") from exc
    except yaml.YAMLError as exc:
        raise error(f"malformed YAML: {exc}", path=shown, hint="fix the YAML syntax") from exc
    finally:
        loader.dispose()


def load_all_bytes(data: bytes) -> list[Any]:
    """Parse every document of a rendered stream with the fast C loader (no line tracking)."""
    return [doc for doc in yaml.load_all(data, Loader=_BaseLoader) if doc is not None]


try:
    _StringLoader: type[yaml.BaseLoader] = yaml.CBaseLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _StringLoader = yaml.BaseLoader


def load_yaml_strings(data: bytes) -> Any:
    """Parse YAML keeping every scalar as the string written (``version: 1.10`` stays ``'1.10'``).

    Raises ``UnicodeDecodeError`` or ``yaml.YAMLError``; the caller words the message. Chart
    metadata (``Chart.yaml``, a repository's ``index.yaml``) and the ``helm.sh/images`` annotation
    are read with it.
    """
    return yaml.load(data.decode("utf-8"), Loader=_StringLoader)  # noqa: S506 - BaseLoader builds only str/list/dict


def location(node: Any, key: str | None = None) -> tuple[Path | None, int | None]:
    """``(file, line)`` of a :class:`YamlMap` (or of one of its keys); ``(None, None)`` otherwise."""
    if isinstance(node, YamlMap):
        return node.file, node.line_of(key) if key is not None else node.line
    return None, None


def dump(data: Any) -> str:
    """Deterministic block-style YAML (sorted keys) for values handed to Helm or shown to users."""
    return yaml.safe_dump(_plain(data), sort_keys=True, default_flow_style=False, allow_unicode=True)


def _plain(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _plain(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_plain(v) for v in data]
    return data
