"""YAML loading, bounded against hostile input, that remembers where things were.

One loader for every YAML the pipeline reads: catalog files (overlays, mixins, values,
``pipeline.yaml``, exemptions, provenance), chart metadata (``Chart.yaml``, ``index.yaml``) and
rendered output. Events come from libyaml (PyYAML's C parser) when present; nodes are composed here,
iteratively, so that every limit of :class:`YamlLimits` is checked *while* composing, before any
alias is expanded or any Python object is built:

- ``maxBytes``: the document's size, checked before parsing;
- ``maxDepth``: nesting of mappings and sequences (no recursion, so no ``RecursionError``);
- ``maxAliases``: ``*alias`` uses; ``maxNodes``: nodes once every alias is expanded (an alias bomb
  of a few hundred bytes is refused after a few hundred events);
- ``maxDocuments``: documents in one stream.

``load_file`` returns plain ``dict``/``list`` data whose mappings are :class:`YamlMap` instances:
ordinary dicts that also know the file, the line of the mapping and the line of each key.
Every error (unreadable file, not UTF-8, control characters, syntax, duplicate keys, a tag or a
value the safe constructor refuses, a limit) is raised as the caller's
:class:`~pipeline.errors.PipelineError` subclass naming the file and the (1-based) line, with a
hint; a limit's hint names the setting that raises it (``spec.limits`` in the catalog's
``pipeline.yaml``, see :mod:`pipeline.recipes.config`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import yaml
from yaml.events import (
    AliasEvent,
    CollectionStartEvent,
    MappingEndEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .errors import PipelineError, RecipeError

__all__ = [
    "FILE_LIMITS",
    "RENDERED_LIMITS",
    "LimitError",
    "YamlLimits",
    "YamlMap",
    "compose_strings",
    "current_limits",
    "dump",
    "load_all_bytes",
    "load_file",
    "load_strings",
    "load_yaml_strings",
    "location",
    "parse",
    "problem_of",
    "set_limits",
]

_MIB = 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class YamlLimits:
    """Bounds on one YAML document or stream. ``section`` names them in ``pipeline.yaml``'s ``spec.limits``."""

    section: str
    max_bytes: int
    max_depth: int
    max_aliases: int
    max_nodes: int
    max_documents: int

    #: ``pipeline.yaml`` spelling of each field, for messages and for the config parser.
    KEYS: ClassVar[dict[str, str]] = {
        "maxBytes": "max_bytes", "maxDepth": "max_depth", "maxAliases": "max_aliases",
        "maxNodes": "max_nodes", "maxDocuments": "max_documents",
    }

    def __post_init__(self) -> None:
        for attr in self.KEYS.values():
            if getattr(self, attr) < 1:
                raise ValueError(f"{attr} must be positive")

    def hint(self, key: str) -> str:
        value = getattr(self, self.KEYS[key])
        return (f"the limit is {self.section}.{key} = {value}; if a genuine file needs more, raise it under "
                f"'spec: limits: {self.section}: {key}:' in the catalog's pipeline.yaml (recipes/pipeline.yaml)")


#: Catalog files, values, chart metadata. Real catalogs (ours, upstream AICR) nest to depth 31 at most.
FILE_LIMITS = YamlLimits(section="yaml", max_bytes=8 * _MIB, max_depth=100, max_aliases=1_000,
                         max_nodes=1_000_000, max_documents=1_000)
#: Rendered manifests, CRD schemas and chart repository indexes: larger, checked separately.
RENDERED_LIMITS = YamlLimits(section="rendered", max_bytes=64 * _MIB, max_depth=200, max_aliases=10_000,
                             max_nodes=20_000_000, max_documents=100_000)

_current: dict[str, YamlLimits] = {"yaml": FILE_LIMITS, "rendered": RENDERED_LIMITS}


def set_limits(*, files: YamlLimits = FILE_LIMITS, rendered: YamlLimits = RENDERED_LIMITS) -> None:
    """Use these limits from now on in this process (``load_catalog`` sets its ``pipeline.yaml``'s)."""
    _current["yaml"] = replace(files, section="yaml")
    _current["rendered"] = replace(rendered, section="rendered")


def current_limits(section: str = "yaml") -> YamlLimits:
    """The limits in force for ``section`` (``yaml``: catalog files; ``rendered``: rendered output)."""
    return _current[section]


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


class LimitError(yaml.YAMLError):
    """A document past one of its :class:`YamlLimits` (``key`` is the ``pipeline.yaml`` name)."""

    def __init__(self, message: str, *, limits: YamlLimits, key: str, mark: Any) -> None:
        super().__init__(message)
        self.message = message
        self.key = key
        self.hint = limits.hint(key)
        self.problem_mark = mark


try:
    from yaml._yaml import CParser as _EventSource
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    class _EventSource(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser):  # type: ignore[no-redef]
        def __init__(self, stream: str | bytes) -> None:
            yaml.reader.Reader.__init__(self, stream)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)


class _Frame:
    __slots__ = ("anchor", "items", "node", "start")

    def __init__(self, node: Node, anchor: str | None, start: int) -> None:
        self.node = node
        self.anchor = anchor
        self.start = start
        self.items: list[Node] = []


class _BoundedComposer(yaml.composer.Composer):
    """PyYAML's composer, iterative and counting: depth, aliases and expanded nodes are checked per event."""

    limits: YamlLimits = FILE_LIMITS
    # Provided by the event source and the resolver it is mixed with.
    get_event: Callable[[], Any]
    resolve: Callable[..., str]

    def _reset_counts(self) -> None:
        self.anchors: dict[str, Node] = {}
        self._sizes: dict[str, int] = {}
        self._open: set[str] = set()
        self._nodes = 0
        self._aliases = 0

    def compose_document(self) -> Node | None:
        self.get_event()  # DocumentStartEvent
        self._reset_counts()
        node = self.compose_node(None, None)
        self.get_event()  # DocumentEndEvent
        self.anchors = {}
        return node

    def _count(self, amount: int, mark: Any) -> None:
        self._nodes += amount
        if self._nodes > self.limits.max_nodes:
            raise LimitError(f"more than {self.limits.max_nodes} nodes once aliases are expanded "
                             "(an alias bomb?)", limits=self.limits, key="maxNodes", mark=mark)

    def _anchor(self, anchor: str | None, node: Node, size: int, mark: Any) -> None:
        if anchor is None:
            return
        if anchor in self.anchors:
            raise yaml.composer.ComposerError(
                f"found duplicate anchor {anchor!r}; first occurrence", self.anchors[anchor].start_mark,
                "second occurrence", mark)
        self.anchors[anchor] = node
        self._sizes[anchor] = size

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        frames: list[_Frame] = []
        limits = self.limits
        while True:
            event: Any = self.get_event()
            start: Any = event.start_mark
            end: Any = event.end_mark
            node: Node
            if isinstance(event, AliasEvent):
                name = event.anchor
                if name in self._open:
                    raise yaml.composer.ComposerError(
                        None, None, f"alias *{name} refers to a node that contains it (a recursive structure)",
                        start)
                if name not in self.anchors:
                    raise yaml.composer.ComposerError(None, None, f"found undefined alias {name!r}",
                                                      start)
                self._aliases += 1
                if self._aliases > limits.max_aliases:
                    raise LimitError(f"more than {limits.max_aliases} aliases", limits=limits, key="maxAliases",
                                     mark=start)
                self._count(self._sizes[name], start)
                node = self.anchors[name]
            elif isinstance(event, ScalarEvent):
                self._count(1, start)
                tag = event.tag
                if tag is None or tag == "!":
                    tag = self.resolve(ScalarNode, event.value, event.implicit)
                node = ScalarNode(tag, event.value, start, end, style=event.style)
                self._anchor(event.anchor, node, 1, start)
            elif isinstance(event, CollectionStartEvent):
                self._count(1, start)
                if len(frames) >= limits.max_depth:
                    raise LimitError(f"nested deeper than {limits.max_depth} levels", limits=limits, key="maxDepth",
                                     mark=start)
                tag = event.tag
                kind = SequenceNode if isinstance(event, SequenceStartEvent) else MappingNode
                if tag is None or tag == "!":
                    tag = self.resolve(kind, None, event.implicit)
                collection = kind(tag, [], start, None, flow_style=event.flow_style)
                if event.anchor is not None:
                    if event.anchor in self.anchors or event.anchor in self._open:
                        raise yaml.composer.ComposerError(
                            None, None, f"found duplicate anchor {event.anchor!r}", start)
                    self._open.add(event.anchor)
                frames.append(_Frame(collection, event.anchor, self._nodes))
                continue
            elif isinstance(event, SequenceEndEvent | MappingEndEvent):
                frame = frames.pop()
                node = frame.node
                node.end_mark = end
                if isinstance(node, MappingNode):
                    items = frame.items
                    node.value = list(zip(items[0::2], items[1::2], strict=True))
                else:
                    node.value = frame.items
                if frame.anchor is not None:
                    self._open.discard(frame.anchor)
                    self._anchor(frame.anchor, node, self._nodes - frame.start + 1, start)
            else:  # pragma: no cover - the parser emits nothing else inside a document
                raise yaml.composer.ComposerError(None, None, f"unexpected {event!r}", start)
            if not frames:
                return node
            frames[-1].items.append(node)


def _init(self: Any, stream: str) -> None:
    _EventSource.__init__(self, stream)
    yaml.composer.Composer.__init__(self)
    self._reset_counts()


class _SafeLoader(_BoundedComposer, _EventSource, yaml.constructor.SafeConstructor, yaml.resolver.Resolver):
    """Safe types (int, float, bool, null, timestamps), no line tracking: rendered output."""

    def __init__(self, stream: str) -> None:
        _init(self, stream)
        yaml.constructor.SafeConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)


class _StringLoader(_BoundedComposer, _EventSource, yaml.constructor.BaseConstructor,
                    yaml.resolver.BaseResolver):
    """Every scalar stays the string written (``version: 1.10`` stays ``'1.10'``)."""

    def __init__(self, stream: str) -> None:
        _init(self, stream)
        yaml.constructor.BaseConstructor.__init__(self)
        yaml.resolver.BaseResolver.__init__(self)


_StringLoader.yaml_constructors = yaml.BaseLoader.yaml_constructors


class _LinesMixin(yaml.constructor.SafeConstructor):
    """Safe types, and mappings built as :class:`YamlMap` with line numbers: catalog files."""

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
        self.flatten_mapping(node)  # merge keys (<<) first, so they are not taken for ordinary keys
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


class _LineLoader(_LinesMixin, _SafeLoader):
    """The bounded composer with :class:`_LinesMixin`'s constructors."""


_LineLoader.add_constructor("tag:yaml.org,2002:map", _LineLoader.construct_yaml_map)  # type: ignore[type-var]

_LOADERS: dict[str, Callable[[str], Any]] = {"safe": _SafeLoader, "strings": _StringLoader, "lines": _LineLoader}


# ---- the fast path: libyaml's own composer, when the bytes prove the limits cannot be reached ----


class _FastSafe(_EventSource, yaml.constructor.SafeConstructor, yaml.resolver.Resolver):
    """libyaml composes (in C), PyYAML constructs: ``yaml.CSafeLoader``, used only within proven bounds."""

    limits: YamlLimits = FILE_LIMITS
    file: Path | None = None

    def __init__(self, stream: str) -> None:
        _EventSource.__init__(self, stream)
        yaml.constructor.SafeConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)


class _FastStrings(_EventSource, yaml.constructor.BaseConstructor, yaml.resolver.BaseResolver):
    limits: YamlLimits = FILE_LIMITS
    file: Path | None = None

    def __init__(self, stream: str) -> None:
        _EventSource.__init__(self, stream)
        yaml.constructor.BaseConstructor.__init__(self)
        yaml.resolver.BaseResolver.__init__(self)


_FastStrings.yaml_constructors = yaml.BaseLoader.yaml_constructors


class _FastLines(_LinesMixin, _FastSafe):
    pass


_FastLines.add_constructor("tag:yaml.org,2002:map", _FastLines.construct_yaml_map)  # type: ignore[type-var]

_FAST_LOADERS: dict[str, Callable[[str], Any]] = {"safe": _FastSafe, "strings": _FastStrings, "lines": _FastLines}
_HAS_C_COMPOSER = hasattr(_EventSource, "get_single_node") and _EventSource.__module__ == "yaml._yaml"
_INDENT = re.compile(rb"^[ ?-]*")
_INDENTS = re.compile(rb"^[ ?-]*", re.MULTILINE)
#: What the scan looks at: document markers, and the bytes that may start an anchor, an alias or a
#: flow collection (whether they stand where a node starts is checked by :func:`_node_start`).
_SUSPECT = re.compile(rb"[&*\[{]")
_DOCUMENT_MARKER = re.compile(rb"\n(?:---|\.\.\.)")
#: A line whose last node is a scalar that starts on it (``key: text``, ``- text``, ``key: |``,
#: ``key: "text``), with a plain key: in block context, every following line indented deeper than
#: the line's start column is that scalar's text (or a syntax error, met before anything on it is
#: composed). Quoted keys, flow collections, anchors, aliases and tags do not match.
_KEY = rb"(?:[A-Za-z0-9_./$][^:#\r\n\[\]{},\"']*:[ ]+)?"
#: ``key: {}``, ``- []``: an empty flow collection that closes where it opens.
_EMPTY_FLOW_LINE = re.compile(rb"^[ ]*(?:[-?][ ]+)*" + _KEY + rb"(?:\[\]|\{\})[ \t]*(?:\#.*)?\r?$")
_SCALAR_LINE = re.compile(rb"^[ ]*(?:[-?][ ]+)*" + _KEY +
                          rb"(?:[|>][0-9+-]*[ \t]*(?:\#.*)?"
                          rb"|[\"'A-Za-z0-9_./~$(=+<^\\\x80-\xff](?:[^:\r\n]|:[^ \t\r\n])*)\r?$")


def provably_within(data: bytes, limits: YamlLimits) -> bool:
    """Whether a cheap scan of ``data`` proves the composer cannot pass ``limits`` (then libyaml composes).

    Sound, not complete: ``False`` only sends the document to the bounded composer. The proof:

    - no anchor or alias: no ``&`` or ``*`` where a node can start, except in the text of a
      multi-line scalar (so no expansion: the nodes are at most the bytes, and the bytes are at
      most ``maxNodes``; ``pods/*`` or ``a && b`` in a description is no anchor);
    - nesting within ``maxDepth``: a block collection nested in another starts at a greater
      column, or at the same column for a sequence that is a mapping's value, so block depth is at
      most 2 * (deepest start column + 1), where a line's start column counts its indentation and
      its ``- ``/``? `` indicators; flow depth is at most the number of ``[`` and ``{`` on the
      lines of one document where a flow collection can start (text of multi-line scalars aside);
    - documents within ``maxDocuments``: at most one more than the lines that start with ``---``
      or ``...``.

    A line is the text of a multi-line scalar when the nearest line above it indented less opens a
    scalar (``_SCALAR_LINE``) at a smaller start column, and no flow collection may be open
    (inside one, ``key: |`` could be the text of a quoted scalar). Only the lines that hold a
    suspect byte are looked at, so a typical rendered document costs a few regular-expression
    passes in C.
    """
    if len(data) > limits.max_nodes:
        return False
    deepest = max(map(len, _INDENTS.findall(data)), default=0)
    budget = limits.max_depth - 2 * (deepest + 1)
    if budget < 0:
        return False
    flows = 0  # places a flow collection may start, in this document
    in_flow = False  # whether a flow collection may still be open
    seen_line = -1
    markers = [m.start() for m in _DOCUMENT_MARKER.finditer(data)]
    if len(markers) + 1 > limits.max_documents:
        return False  # the bounded composer counts them (and names the line where the limit is passed)
    marker = 0
    for match in _SUSPECT.finditer(data):
        pos = match.start()
        if marker < len(markers) and markers[marker] < pos:  # a new document since the last suspect
            while marker < len(markers) and markers[marker] < pos:
                marker += 1
            flows, in_flow = 0, False  # no flow collection spans documents
        start = data.rfind(b"\n", 0, pos) + 1
        if not _node_start(data[start:pos]):
            continue  # inside a scalar: 'pods/*', 'a && b', '[a-z]'
        if not in_flow and _is_scalar_text(data, start):
            continue
        if data[pos] in b"&*":
            return False
        if start != seen_line:  # count each line's flow starts once
            seen_line = start
            end = data.find(b"\n", start)
            line = data[start:] if end < 0 else data[start:end]
            flows += line.count(b"[") + line.count(b"{")  # every bracket: over-counts, never under-counts
            if flows > budget:
                return False
            in_flow = in_flow or not _EMPTY_FLOW_LINE.match(line)
    return True


def _node_start(before: bytes) -> bool:
    """Whether a node can start after ``before`` (the line up to a byte): at the line's start, or
    after an indicator (``- ``, ``? ``, ``:``, ``[``, ``{``, ``,``), perhaps after a tag."""
    text = before.rstrip(b" \t")
    head, _, last = text.rpartition(b" ")
    if last.startswith(b"!"):  # a tag stands between the indicator and the node
        text = head.rstrip(b" \t")
    return not text or text[-1:] in (b"[", b"{", b",", b":", b"?", b"-")


def _is_scalar_text(data: bytes, start: int) -> bool:
    """Whether the line at ``start`` is text of a scalar: a ``_SCALAR_LINE`` itself (the rest of its
    value is text), or a line of a multi-line scalar opened by the nearest line above it indented
    less (see :func:`provably_within`)."""
    end = data.find(b"\n", start)
    line = data[start:] if end < 0 else data[start:end]
    if _SCALAR_LINE.match(line):
        return True
    indent = len(line) - len(line.lstrip(b" "))
    if indent == 0:
        return False
    cursor = start - 1
    while cursor > 0:
        above_start = data.rfind(b"\n", 0, cursor) + 1
        above = data[above_start:cursor]
        cursor = above_start - 1
        if not above.strip():
            continue
        if len(above) - len(above.lstrip(b" ")) >= indent:
            continue
        if above.startswith((b"---", b"...")) or not _SCALAR_LINE.match(above):
            return False
        return len(_INDENT.match(above).group()) < indent  # type: ignore[union-attr]
    return False


def parse(data: bytes, *, loader: str = "safe", section: str = "yaml", multi: bool = False,
          file: Path | None = None) -> Any:
    """Parse ``data`` within the ``section``'s limits: one document, or (``multi``) the list of non-empty ones.

    ``loader``: ``safe`` (PyYAML's safe types), ``strings`` (every scalar a string), ``lines``
    (:class:`YamlMap` with lines). Raises ``UnicodeDecodeError``, or a ``yaml.YAMLError`` for
    everything else (a :class:`LimitError` for a limit; constructor failures such as an impossible
    date are turned into ``ConstructorError``).
    """
    limits = _current[section]
    if len(data) > limits.max_bytes:
        raise LimitError(f"{len(data)} bytes is more than {limits.max_bytes}", limits=limits, key="maxBytes", mark=None)
    text = data.decode("utf-8")
    fast = _HAS_C_COMPOSER and provably_within(data, limits)
    loader_obj = (_FAST_LOADERS if fast else _LOADERS)[loader](text)
    loader_obj.limits = limits
    if file is not None:
        loader_obj.file = file
    try:
        if not multi:
            return loader_obj.get_single_data()
        docs: list[Any] = []
        count = 0
        while loader_obj.check_node():
            count += 1
            if count > limits.max_documents:
                raise LimitError(f"more than {limits.max_documents} documents", limits=limits, key="maxDocuments",
                                 mark=loader_obj.peek_event().start_mark)
            doc = loader_obj.construct_document(loader_obj.get_node())
            if doc is not None:
                docs.append(doc)
        return docs
    except yaml.reader.ReaderError as exc:
        exc.problem_mark = _Mark(text[: max(exc.position, 0)].count("\n"))  # type: ignore[attr-defined]
        raise
    except (ValueError, TypeError, OverflowError, RecursionError, AttributeError) as exc:
        raise yaml.constructor.ConstructorError(None, None, f"{_CANNOT_BUILD}: {exc}", None) from exc
    finally:
        loader_obj.dispose()


_CANNOT_BUILD = "cannot build a value"


class _Mark:
    """A stand-in mark (0-based line) for reader errors, which carry only a position."""

    def __init__(self, line: int) -> None:
        self.line = line


def problem_of(exc: yaml.YAMLError | UnicodeDecodeError) -> tuple[str, int | None, str | None]:
    """``(problem, 1-based line or None, limit hint or None)`` of an error :func:`parse` raised."""
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text", None, "save the file as UTF-8"
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark.line + 1 if mark is not None else None
    if isinstance(exc, LimitError):
        return exc.message, line, exc.hint
    if isinstance(exc, yaml.reader.ReaderError):
        char = f"{exc.character!r}" if isinstance(exc.character, str) else f"#x{exc.character:02x}"
        return (f"{exc.reason}: character {char} is not allowed in YAML", line,
                "remove the control character (or write it as an escape inside a double-quoted string)")
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    if context and problem.startswith("but "):  # "expected a single document ..., but found another document"
        problem = f"{context}, {problem}"
    if "nesting depth" in problem:  # libyaml's own bound on flow nesting (1,000 levels), met before ours
        return f"nested too deep for the YAML parser ({problem})", line, _current["yaml"].hint("maxDepth")
    if problem.startswith(_CANNOT_BUILD):
        return problem, line, "quote the value to keep it a string"
    return problem, line, None


def load_file(path: Path, *, error: type[PipelineError] = RecipeError, display: str | None = None) -> Any:
    """Parse the single YAML document in ``path``; mappings come back as :class:`YamlMap`.

    ``display`` is the path to show in messages (catalog-relative); defaults to ``path``.
    Raises ``error`` naming the file and line on unreadable files, syntax errors, duplicate keys
    and documents past the ``yaml`` limits (checked before reading a file that is too big).
    """
    shown = Path(display) if display is not None else path
    limits = _current["yaml"]
    try:
        size = path.stat().st_size
        if size > limits.max_bytes:
            raise error(f"file is {size} bytes, more than {limits.max_bytes}", path=shown,
                        hint=limits.hint("maxBytes"))
        text = path.read_bytes()
    except FileNotFoundError as exc:
        raise error(f"file not found: {shown}", hint="check the path, relative to the catalog root") from exc
    except OSError as exc:
        raise error(f"cannot read {shown}: {exc.strerror}") from exc
    try:
        return parse(text, loader="lines", file=shown)
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise _translate(exc, error=error, shown=shown) from exc


def _translate(exc: yaml.YAMLError | UnicodeDecodeError, *, error: type[PipelineError],
               shown: Path | str | None) -> PipelineError:
    problem, line, hint = problem_of(exc)
    if isinstance(exc, UnicodeDecodeError):
        return error(problem, path=shown, hint=hint)
    if isinstance(exc, LimitError) or problem.startswith("nested too deep"):
        return error(f"YAML refused: {problem}", path=shown, line=line, hint=hint)
    return error(f"malformed YAML: {problem}", path=shown, line=line,
                 hint=hint or "fix the YAML syntax at that line (indentation, quoting, a missing ':')")


def load_all_bytes(data: bytes, *, error: type[PipelineError] = RecipeError, display: str | None = None,
                   section: str = "rendered") -> list[Any]:
    """Parse every document of a rendered stream (safe types, no line tracking), within ``section``'s limits.

    Raises ``error`` naming ``display`` and the line.
    """
    try:
        docs: list[Any] = parse(data, loader="safe", section=section, multi=True)
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise _translate(exc, error=error, shown=display) from exc
    return docs


def load_strings(data: bytes, *, section: str = "yaml", multi: bool = False) -> Any:
    """Parse keeping every scalar as the string written; raises like :func:`parse`."""
    return parse(data, loader="strings", section=section, multi=multi)


def compose_strings(data: bytes, *, section: str = "rendered") -> list[Node]:
    """The node trees of every document of ``data`` (scalars untagged, as :func:`load_strings` reads
    them), composed within ``section``'s limits. Each node keeps its start and end marks, whose
    ``index`` is a character offset into the decoded text: what an in-place edit splices at.
    Raises like :func:`parse`."""
    limits = _current[section]
    if len(data) > limits.max_bytes:
        raise LimitError(f"{len(data)} bytes is more than {limits.max_bytes}", limits=limits, key="maxBytes", mark=None)
    loader_obj = _StringLoader(data.decode("utf-8"))
    loader_obj.limits = limits
    try:
        nodes: list[Node] = []
        while loader_obj.check_node():
            if len(nodes) >= limits.max_documents:
                raise LimitError(f"more than {limits.max_documents} documents", limits=limits, key="maxDocuments",
                                 mark=getattr(loader_obj.peek_event(), "start_mark", None))
            node = loader_obj.get_node()
            if node is not None:
                nodes.append(node)
        return nodes
    finally:
        loader_obj.dispose()


def load_yaml_strings(data: bytes, *, section: str = "yaml") -> Any:
    """Parse one document keeping every scalar as the string written (``version: 1.10`` stays
    ``'1.10'``), within ``section``'s limits. Chart metadata (``Chart.yaml``, a repository's
    ``index.yaml``) and the ``helm.sh/images`` annotation are read with it. Raises like :func:`parse`;
    the caller words the message (:func:`problem_of`)."""
    return load_strings(data, section=section)


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
