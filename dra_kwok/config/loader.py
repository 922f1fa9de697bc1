"""YAML text → :class:`~dra_kwok.config.types.Config`, refusing anything ambiguous, hostile or misspelt.

Why so strict: a config that loads "mostly" is worse than one that fails.  A misspelt ``devcies`` silently
dropped (what dataclasses-json or ``yaml.safe_load`` + ``dict.get`` would do) publishes a pool with no devices
and the user debugs the scheduler instead of their typo.  So loading is two phases, and both report *every*
problem at once, each with a field path and a line number:

1. **Reading** (:class:`ParseError`): the text must be UTF-8 YAML read with a ``SafeLoader`` subclass (no
   ``!!python/...`` tags), with no duplicate mapping keys, at most 10 MiB, nesting at most 64 deep, at most
   100 aliases and at most 100,000 nodes once aliases are expanded, counted over the whole input (every
   document, and the config inside a ConfigMap).  So "billion laughs" documents are refused before anything
   walks them, and a flood of written nodes is refused while it is read, before it fills memory; recursive
   aliases are refused too.  (Each node costs tens of microseconds to check downstream: 1,000,000 let a 44 KB
   file take a minute.)  Anchors and aliases are otherwise allowed: sharing a device list between mappings
   is a legitimate use.  ``\\u`` escapes that form a UTF-16 surrogate pair (what JSON writes for characters
   beyond U+FFFF) are joined into that character; a lone surrogate is refused.
2. **Structure** (:class:`ConfigInvalid`): checked on the plain data *before* dataclasses-json sees it,
   because dataclasses-json drops unknown fields and does not check types.  Unknown fields are errors with a
   "did you mean" suggestion; fields that the driver owns (a slice's ``nodeName``, ``generation``) or that
   dra-kwok does not publish (the 1.36 ``nodeAllocatableResourceMappings``) are refused with the reason.

Rules about *values* (name formats, limits) belong to :func:`dra_kwok.config.validation.validate`.

Accepted inputs: a raw config document; a ``kind: ConfigMap`` manifest whose ``data["config.yaml"]`` holds
the config (if that key is absent, exactly one other ``*.yaml``/``*.yml`` key is used); or several such
documents separated by ``---``.  Errors inside a ConfigMap's ``|`` block report lines of the outer file.
"""

from __future__ import annotations

import contextlib
import difflib
import gc
import math
import re
import threading
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

import yaml
from yaml.composer import Composer, ComposerError
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.error import Mark, MarkedYAMLError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import ParserError
from yaml.reader import Reader, ReaderError
from yaml.resolver import Resolver
from yaml.scanner import ScannerError

from dra_kwok.config.errors import ConfigInvalid, FieldError, ParseError
from dra_kwok.config.types import Config, decode

__all__ = [
    "CONFIG_KEY",
    "MAX_ALIASES",
    "MAX_DEPTH",
    "MAX_EXPANDED_NODES",
    "MAX_INPUT_BYTES",
    "gc_paused",
    "load_config",
    "load_documents",
]

MAX_INPUT_BYTES = 10 * 1024 * 1024
MAX_DEPTH = 64
MAX_ALIASES = 100
MAX_EXPANDED_NODES = 100_000
CONFIG_KEY = "config.yaml"

_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"
_SPECIAL_KEY_TAGS = (_MERGE_TAG, "tag:yaml.org,2002:value")  # keys PyYAML's flatten_mapping rewrites

_SLICE_REFUSED = {
    "nodeName": "not allowed: the driver sets nodeName to each matching node; remove it (for one node only, "
    "select it with matchFields: [{key: metadata.name, operator: In, values: [<node>]}])",
}
_POOL_REFUSED = {
    "generation": "not allowed: the driver manages the pool generation; remove it",
}
_DEVICE_REFUSED = {
    "nodeAllocatableResourceMappings": "not supported: the Kubernetes 1.36 shape, replaced in 1.37 by "
    "nodeAllocatableResources ({cpu: {mapping: {capacityKey, capacityMultiplier} | {deviceMultiplier}, overhead: "
    "{perPod, perContainer}}}); dra-kwok publishes only the 1.37 shape",
    "skipNodeOperations": "not a device field: skipNodeOperations belongs to the resourceSlice (it applies to "
    "every device of the slice); move it up",
    "basic": "not supported: 'basic' is the resource.k8s.io/v1beta1 layout; in v1 put name, attributes and "
    "capacity directly on the device",
}

_ATTRIBUTE_KEYS = ("string", "int", "bool", "version")
_ATTRIBUTE_ALIASES = {"String": "string", "Int": "int", "Bool": "bool", "Version": "version"}
_LIST_ATTRIBUTE_KEYS = ("strings", "ints", "bools", "versions")


# --------------------------------------------------------------------------------------------------------
# Cyclic garbage collection, paused while a config is judged.

_gc_lock = threading.Lock()
_gc_pauses = 0
_gc_was_enabled = False


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside: reading a 1 MiB config allocates ~500,000 objects that all stay
    alive until the verdict (nodes, marks, events, dicts), so every collection the allocations trigger walks a
    growing heap and finds nothing: 40-60 % of the CPU of a verdict.  What a verdict allocates is bounded by the
    reading limits (10 MiB, 100,000 nodes), and reference counting still frees everything acyclic, so pausing
    for the length of one verdict is safe.  Re-entrant and thread-safe: collection resumes when the last pause
    ends, and only if it was enabled when the first began."""
    global _gc_pauses, _gc_was_enabled
    with _gc_lock:
        if _gc_pauses == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pauses += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses -= 1
            if _gc_pauses == 0 and _gc_was_enabled:
                gc.enable()


# --------------------------------------------------------------------------------------------------------
# Phase 1: reading YAML.


class _Budget:
    """Nodes read so far, shared by every loader of one input (its documents and any ConfigMap's config)."""

    def __init__(self) -> None:
        self.written = 0  # nodes composed (aliases not counted): bounds memory while reading
        self.expanded = 0  # nodes of the finished documents once aliases are expanded: bounds what follows


_SURROGATE = re.compile(r"[\ud800-\udfff]")


if TYPE_CHECKING:  # the mixin is always combined with a full loader (a parser, PyYAML's composer and constructor)
    _LoaderBase = yaml.SafeLoader
else:
    _LoaderBase = object


class _Strict(_LoaderBase):
    """What both readers add to PyYAML's safe loading: duplicate keys, deep nesting and alias floods refused,
    positions remembered.  Mixed in before a parser (pure Python or libyaml) and PyYAML's Python composer."""

    budget: _Budget
    line_offset: int

    def _init_strict(self, budget: _Budget | None, line_offset: int) -> None:
        self.budget = budget or _Budget()
        self.line_offset = line_offset  # of a ConfigMap's '|' block in the outer file, for messages
        self._depth = 0
        self.alias_count = 0
        self.node_marks: dict[int, Mark] = {}
        self.key_marks: dict[int, dict[Any, Mark]] = {}
        self.item_marks: dict[int, list[Mark]] = {}

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(yaml.AliasEvent):
            self.alias_count += 1
            if self.alias_count > MAX_ALIASES:
                raise ComposerError(
                    None, None, f"more than {MAX_ALIASES} aliases; refusing (possible alias bomb)",
                    self.peek_event().start_mark,
                )
            return super().compose_node(parent, index)
        self.budget.written += 1
        if self.budget.written > MAX_EXPANDED_NODES:
            raise ComposerError(
                None, None, f"more than {MAX_EXPANDED_NODES} YAML nodes (mappings, lists, scalars); refusing",
                self.peek_event().start_mark,
            )
        opens = self.check_event(yaml.SequenceStartEvent, yaml.MappingStartEvent)
        if opens:
            self._depth += 1
            if self._depth > MAX_DEPTH:
                raise ComposerError(
                    None, None, f"nested deeper than {MAX_DEPTH} levels; refusing", self.peek_event().start_mark
                )
        try:
            return super().compose_node(parent, index)
        finally:
            if opens:
                self._depth -= 1

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        if node.tag == _STR_TAG and node.__class__ is ScalarNode:  # most nodes: skip the generic machinery
            return self.construct_scalar(node)
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, TypeError, AttributeError, LookupError, ArithmeticError) as exc:
            # PyYAML's scalar constructors fail with plain exceptions: `!!int x`, `!!timestamp ""`, `!!bool x`,
            # `!!binary ?`, an int of more than 4300 digits, a date such as 2001-02-30.
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            value = node.value if isinstance(node.value, str) else ""
            shown = repr(value if len(value) <= 40 else value[:37] + "...")
            detail = f" ({exc})" if isinstance(exc, ValueError) and len(str(exc)) <= 80 else ""
            raise ConstructorError(
                None, None, f"cannot read {shown} as {tag}{detail}; quote it if it is meant as a string",
                node.start_mark,
            ) from None

    def construct_scalar(self, node: Node) -> Any:
        value = node.value if node.__class__ is ScalarNode else super().construct_scalar(node)  # type: ignore[arg-type]
        if isinstance(value, str) and _SURROGATE.search(value):  # only \u escapes make these
            try:  # join pairs, as JSON means them (PyYAML decodes each \u escape alone)
                value = value.encode("utf-16-le", "surrogatepass").decode("utf-16-le")
            except UnicodeDecodeError:
                raise ConstructorError(
                    None, None, "a \\u escape gives a lone UTF-16 surrogate (U+D800-U+DFFF), which is not a "
                    "character and cannot be sent as UTF-8; write the character itself or a \\U escape",
                    node.start_mark,
                ) from None
        return value

    def construct_mapping(self, node: Node, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, MappingNode):
            seen: dict[Any, Mark] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG:
                    continue
                self._new_key(node, key_node, seen)
        return super().construct_mapping(node, deep=deep)  # type: ignore[arg-type]

    def _new_key(self, node: MappingNode, key_node: Node, seen: dict[Any, Mark]) -> Any:
        """The key of ``key_node``, refused if unhashable or already in ``seen`` (then recorded there)."""
        key = self.construct_object(key_node, deep=True)
        try:
            marker = (type(key), key)
            hash(marker)
        except TypeError:
            raise ConstructorError(
                "while constructing a mapping", node.start_mark, "found unhashable key", key_node.start_mark
            ) from None
        if marker in seen:
            raise ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                f"found duplicate key {key!r} (first on line {seen[marker].line + 1 + self.line_offset}); "
                "YAML would silently keep only the last one",
                key_node.start_mark,
            )
        seen[marker] = key_node.start_mark
        return key

    def construct_positioned_map(self, node: MappingNode) -> Iterable[dict[Any, Any]]:
        data: dict[Any, Any] = {}
        self.node_marks[id(data)] = node.start_mark
        yield data
        if isinstance(node, MappingNode) and not any(k.tag in _SPECIAL_KEY_TAGS for k, _ in node.value):
            self.key_marks[id(data)] = self._fill_map(node, data)
            return
        data.update(self.construct_mapping(node))  # merge keys ('<<') or '=': PyYAML's flattening first
        marks: dict[Any, Mark] = {}
        for key_node, _ in node.value:  # flattened by construct_mapping: merged keys first, own keys win
            try:
                marks[self.construct_object(key_node)] = key_node.start_mark
            except TypeError:  # pragma: no cover - unhashable keys were refused above
                pass
        self.key_marks[id(data)] = marks

    def _fill_map(self, node: MappingNode, data: dict[Any, Any]) -> dict[Any, Mark]:
        """construct_mapping and the key marks in one pass, for a mapping without merge keys (what
        construct_mapping + the marks loop above do, constructing each key once instead of three times)."""
        seen: dict[Any, Mark] = {}
        marks: dict[Any, Mark] = {}
        for key_node, value_node in node.value:
            key = self._new_key(node, key_node, seen)
            marks[key] = key_node.start_mark
            data[key] = self.construct_object(value_node)
        return marks

    def construct_positioned_seq(self, node: SequenceNode) -> Iterable[list[Any]]:
        data: list[Any] = []
        self.node_marks[id(data)] = node.start_mark
        yield data
        data.extend(self.construct_sequence(node))
        self.item_marks[id(data)] = [child.start_mark for child in node.value]


class _StrictLoader(_Strict, yaml.SafeLoader):
    """The pure-Python reader: PyYAML's own scanner and parser (the reference for every message and position)."""

    def __init__(self, stream: str, budget: _Budget | None = None, line_offset: int = 0) -> None:
        yaml.SafeLoader.__init__(self, stream)
        self._init_strict(budget, line_offset)


_StrictLoader.add_constructor("tag:yaml.org,2002:map", _StrictLoader.construct_positioned_map)
_StrictLoader.add_constructor("tag:yaml.org,2002:seq", _StrictLoader.construct_positioned_seq)

_StrictCLoader: type[_Strict] | None = None
try:
    from yaml._yaml import CParser as _CParser
except ImportError:  # pragma: no cover - PyYAML built without libyaml: the Python reader alone
    pass
else:

    class _StrictCParserLoader(_Strict, Composer, _CParser, SafeConstructor, Resolver):
        """libyaml's scanner and parser (about 10 times faster: PyYAML's Python scanner was ~80 % of reading a
        1 MiB config) under the same Python composer and constructor, so every bound above is enforced the same
        way, event by event, and events carry the same line/column marks.  PyYAML's printable-character check
        runs first so that it, not libyaml's, reports control characters."""

        def __init__(self, stream: str, budget: _Budget | None = None, line_offset: int = 0) -> None:
            Reader(stream)  # raises ReaderError for non-printable characters, exactly as the Python reader does
            _CParser.__init__(self, stream)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)
            self._init_strict(budget, line_offset)

    _StrictCParserLoader.add_constructor("tag:yaml.org,2002:map", _StrictCParserLoader.construct_positioned_map)
    _StrictCParserLoader.add_constructor("tag:yaml.org,2002:seq", _StrictCParserLoader.construct_positioned_seq)
    _StrictCLoader = _StrictCParserLoader


class _Expansion(Exception):
    def __init__(self, node: Node, message: str) -> None:
        self.node = node
        self.message = message


def _check_expansion(root: Node, budget: int = MAX_EXPANDED_NODES) -> int:
    """Refuse documents that are too big (over ``budget`` nodes) or too deep once aliases are expanded, or
    that are recursive; return the expanded size.

    The walk is memoised per node, so it costs O(written nodes) however big the expansion would be, and it
    never recurses deeper than MAX_DEPTH + 1.
    """
    memo: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded size, container height)
    active: set[int] = set()

    def walk(node: Node, above: int) -> tuple[int, int]:
        """``above``: containers enclosing ``node``; returns (size, height incl. node if a container)."""
        key = id(node)
        if key in active:
            raise _Expansion(node, "recursive alias (a node that contains itself); refusing")
        if key in memo:
            size, height = memo[key]
        else:
            active.add(key)
            if isinstance(node, SequenceNode):
                children: list[Node] = list(node.value)
            elif isinstance(node, MappingNode):
                children = [n for pair in node.value for n in pair]
            else:
                children = []
            level = 0 if isinstance(node, ScalarNode) else 1
            size, below = 1, 0
            for child in children:
                child_size, child_height = walk(child, above + level)
                size += child_size
                below = max(below, child_height)
                if size > budget:
                    raise _Expansion(
                        node, f"more than {MAX_EXPANDED_NODES} nodes once aliases are expanded; refusing "
                        "(possible alias bomb)"
                    )
            height = level + below
            active.discard(key)
            memo[key] = (size, height)
        if above + height > MAX_DEPTH:
            raise _Expansion(node, f"nested deeper than {MAX_DEPTH} levels once aliases are expanded; refusing")
        return size, height

    return walk(root, 0)[0]


@dataclass
class _Document:
    """One constructed YAML document plus what is needed to report positions in it."""

    data: Any
    node: Node
    source: str
    line_offset: int
    column_offset: int
    node_marks: dict[int, Mark]
    key_marks: dict[int, dict[Any, Mark]]
    item_marks: dict[int, list[Mark]]
    budget: _Budget | None = None

    def position(self, mark: Mark | None) -> tuple[int | None, int | None]:
        if mark is None:
            return None, None
        return mark.line + 1 + self.line_offset, mark.column + 1 + self.column_offset

    def parse_error(self, mark: Mark | None, message: str) -> ParseError:
        line, column = self.position(mark)
        return ParseError(self.source, line or 1, column or 1, message)


def _decode(text: str | bytes, source: str) -> str:
    if isinstance(text, bytes):
        if len(text) > MAX_INPUT_BYTES:
            raise ParseError(source, 1, 1, f"input is {len(text)} bytes; the limit is {MAX_INPUT_BYTES} (10 MiB)")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            before = exc.object[: exc.start]  # the bytes being decoded
            line = before.count(b"\n") + 1
            column = exc.start - (before.rfind(b"\n") + 1) + 1
            raise ParseError(
                source, line, column, f"not UTF-8: byte 0x{text[exc.start]:02x} cannot be decoded ({exc.reason})"
            ) from None
    elif not isinstance(text, str):
        raise TypeError(f"expected str or bytes, got {type(text).__name__}")
    elif len(text) > MAX_INPUT_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_INPUT_BYTES:
        raise ParseError(source, 1, 1, f"input is larger than the limit of {MAX_INPUT_BYTES} bytes (10 MiB)")
    return text[1:] if text.startswith("\ufeff") else text


def _yaml_error(exc: Exception, text: str, source: str, line_offset: int = 0, column_offset: int = 0) -> ParseError:
    if isinstance(exc, MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        parts = [p for p in (exc.context, exc.problem) if p]
        message = "; ".join(parts) or "invalid YAML"
        if exc.context_mark is not None and exc.context and exc.context_mark.line != mark.line:
            message = f"{exc.problem} ({exc.context} starting on line {exc.context_mark.line + 1 + line_offset})"
        if "could not determine a constructor" in message:
            message += "; only plain YAML (mappings, lists, strings, numbers, booleans) is accepted"
        return ParseError(source, mark.line + 1 + line_offset, mark.column + 1 + column_offset, message)
    if isinstance(exc, ReaderError):
        before = text[: exc.position]
        line = before.count("\n") + 1
        column = exc.position - (before.rfind("\n") + 1) + 1
        return ParseError(source, line + line_offset, column, f"unacceptable character #x{exc.character:04x}"
                          if isinstance(exc.character, int) else str(exc))
    return ParseError(source, 1 + line_offset, 1, f"invalid YAML: {exc}")


class _LibyamlRefused(Exception):
    """libyaml's scanner or parser refused the text: read it again with PyYAML's (see _read_documents)."""


def _read_documents(
    text: str, source: str, line_offset: int = 0, column_offset: int = 0, budget: _Budget | None = None,
    reader: type | None = None,
) -> list[_Document]:
    """Parse every non-empty document of ``text``; raise ParseError on anything unreadable.

    libyaml reads when available; if it finds the text ill-formed, the pure-Python reader reads it again, so that
    what is refused, and the message and position given, are PyYAML's as before (libyaml words its errors
    differently and refuses what the Python reader accepts: ``\\u`` escapes of UTF-16 surrogate pairs, which JSON
    writes for characters beyond U+FFFF).  Only ill-formed text pays twice; bounds and our own refusals
    (duplicate keys, aliases, nesting, node counts) are raised by the shared composer and never retried.
    """
    budget = budget or _Budget()
    if reader is None and _StrictCLoader is not None:
        written, expanded = budget.written, budget.expanded
        try:
            return _read_documents(text, source, line_offset, column_offset, budget, _StrictCLoader)
        except _LibyamlRefused:
            budget.written, budget.expanded = written, expanded  # the Python reader counts from the same start
    reader = reader or _StrictLoader
    try:
        loader = reader(text, budget, line_offset)  # the reader checks for unprintable characters right here
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, text, source, line_offset, column_offset) from None
    documents: list[_Document] = []
    try:
        while loader.check_node():
            written, aliases = budget.written, loader.alias_count
            node = loader.get_node()
            if node is None:  # pragma: no cover - check_node() guarantees a node
                continue
            try:
                size = budget.written - written
                if loader.alias_count == aliases and budget.expanded + size <= MAX_EXPANDED_NODES:
                    budget.expanded += size  # no alias: expanded = written, and the composer bounded the depth
                else:
                    budget.expanded += _check_expansion(node, MAX_EXPANDED_NODES - budget.expanded)
            except _Expansion as exc:
                raise ParseError(
                    source,
                    exc.node.start_mark.line + 1 + line_offset,
                    exc.node.start_mark.column + 1 + column_offset,
                    exc.message,
                ) from None
            # Fresh position tables per document, kept by the document that they describe.
            loader.node_marks, loader.key_marks, loader.item_marks = {}, {}, {}
            data = loader.construct_document(node)
            if data is None:
                continue  # an empty document (e.g. a leading '---')
            documents.append(
                _Document(data, node, source, line_offset, column_offset,
                          loader.node_marks, loader.key_marks, loader.item_marks, budget)
            )
    except ParseError:
        raise
    except (ScannerError, ParserError) as exc:
        if reader is not _StrictLoader:
            raise _LibyamlRefused() from None
        raise _yaml_error(exc, text, source, line_offset, column_offset) from None
    except (yaml.YAMLError, RecursionError) as exc:
        raise _yaml_error(exc, text, source, line_offset, column_offset) from None
    finally:
        loader.dispose()
    return documents


# --------------------------------------------------------------------------------------------------------
# Phase 2: structure.


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"number {value}"
    if isinstance(value, str):
        return f"string {value!r}" if len(value) <= 40 else "a string"
    if isinstance(value, (datetime, date)):
        return f"date {value.isoformat()}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bytes):
        return "binary data"
    return f"a {type(value).__name__}"


_QUOTE_HINT = (
    "; quote it, e.g. \"{example}\" (YAML reads unquoted numbers, dates and yes/no/on/off/true/false as "
    "non-strings)"
)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


_BAD = object()  # marker: the value had errors, reported already


@dataclass(frozen=True)
class _Field:
    check: Callable[["_Checker", Any, str, Mark | None], Any]
    required: bool = False


class _Checker:
    """Walks constructed YAML data against the config schema, collecting every error with its position."""

    def __init__(self, document: _Document, path_prefix: str = "") -> None:
        self.document = document
        self.prefix = path_prefix
        self.errors: list[FieldError] = []

    # -- reporting

    def error(self, path: str, message: str, mark: Mark | None) -> None:
        line, column = self.document.position(mark)
        full = _join(self.prefix, path) if path else (self.prefix or "<document>")
        self.errors.append(FieldError(full, message, "error", line, column))

    def key_mark(self, container: Any, key: Any) -> Mark | None:
        document = self.document
        marks = document.key_marks.get(id(container), {})
        try:
            return marks.get(key) or document.node_marks.get(id(container))
        except TypeError:
            return document.node_marks.get(id(container))

    def item_mark(self, container: list[Any], index: int) -> Mark | None:
        document = self.document
        marks = document.item_marks.get(id(container))
        if marks is not None and index < len(marks):
            return marks[index]
        return document.node_marks.get(id(container))

    # -- building blocks

    def obj(
        self,
        value: Any,
        path: str,
        mark: Mark | None,
        fields: dict[str, _Field],
        refused: dict[str, str] | None = None,
        what: str = "a mapping",
    ) -> Any:
        if not isinstance(value, dict):
            self.error(path, f"expected {what}, got {_describe(value)}", mark)
            return _BAD
        before = len(self.errors)
        out: dict[str, Any] = {}
        refused = refused or {}
        suggested: set[str] = set()
        for key, item in value.items():
            key_mark = self.key_mark(value, key)
            if not isinstance(key, str):
                self.error(path, f"field names must be strings, got {_describe(key)}", key_mark)
                continue
            field_path = _join(path, key)
            if key in fields:
                spec = fields[key]
                if item is None:
                    if spec.required:
                        self.error(field_path, "required, got null", key_mark)
                    continue
                checked = spec.check(self, item, field_path, key_mark)
                if checked is not _BAD:
                    out[key] = checked
            elif key in refused:
                self.error(field_path, refused[key], key_mark)
            else:
                message, suggestion = _unknown(key, fields)
                if suggestion:
                    suggested.add(suggestion)
                self.error(field_path, message, key_mark)
        for name, spec in fields.items():
            if spec.required and name not in value and name not in suggested:
                self.error(_join(path, name), "required field is missing", mark)
        return out if len(self.errors) == before else _BAD

    def seq(self, value: Any, path: str, mark: Mark | None, item: Callable[..., Any], what: str) -> Any:
        if not isinstance(value, list):
            self.error(path, f"expected a list of {what}, got {_describe(value)}", mark)
            return _BAD
        before = len(self.errors)
        out = []
        for index, element in enumerate(value):
            element_path = f"{path}[{index}]"
            element_mark = self.item_mark(value, index)
            if element is None:
                self.error(element_path, f"expected {what}, got null", element_mark)
                continue
            out.append(item(self, element, element_path, element_mark))
        return out if len(self.errors) == before else _BAD

    def dict_of(self, value: Any, path: str, mark: Mark | None, item: Callable[..., Any], what: str) -> Any:
        if not isinstance(value, dict):
            self.error(path, f"expected a mapping of name to {what}, got {_describe(value)}", mark)
            return _BAD
        before = len(self.errors)
        out = {}
        for key, element in value.items():
            key_mark = self.key_mark(value, key)
            if not isinstance(key, str):
                self.error(path, f"names must be strings, got {_describe(key)}" + _QUOTE_HINT.format(example=key),
                           key_mark)
                continue
            out[key] = item(self, element, f"{path}[{key}]", key_mark)
        return out if len(self.errors) == before else _BAD


def _unknown(key: str, fields: Iterable[str]) -> tuple[str, str | None]:
    """The "unknown field" message for ``key``, and the known field it most likely means (if any)."""
    known = sorted(fields)
    lowered = {k.lower(): k for k in known}
    close = [lowered[key.lower()]] if key.lower() in lowered else []
    if not close:
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if close:
        return f'unknown field; did you mean "{close[0]}"?', close[0]
    return "unknown field; allowed here: " + ", ".join(known), None


# -- scalar checks


def _string(c: _Checker, value: Any, path: str, mark: Mark | None) -> Any:
    if isinstance(value, str):
        return value
    example = str(value).lower() if isinstance(value, bool) else str(value)
    hint = _QUOTE_HINT.format(example=example) if isinstance(value, (bool, int, float, date)) else ""
    c.error(path, f"expected a string, got {_describe(value)}{hint}", mark)
    return _BAD


def _integer(c: _Checker, value: Any, path: str, mark: Mark | None) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    c.error(path, f"expected an integer, got {_describe(value)}", mark)
    return _BAD


def _boolean(c: _Checker, value: Any, path: str, mark: Mark | None) -> Any:
    if isinstance(value, bool):
        return value
    c.error(path, f"expected true or false, got {_describe(value)}", mark)
    return _BAD


# -- the schema


def _requirement(c: _Checker, value: Any, path: str, mark: Mark | None) -> Any:
    return c.obj(
        value, path, mark,
        {
            "key": _Field(_string, required=True),
            "operator": _Field(_string, required=True),
            "values": _Field(lambda c, v, p, m: c.seq(v, p, m, _string, "strings")),
        },
        what="a requirement {key, operator, values}",
    )


def _term(c: _Checker, value: Any, path: str, mark: Mark | None) -> Any:
    return c.obj(
        value, path, mark,
        {
            "matchExpressions": _Field(lambda c, v, p, m: c.seq(v, p, m, _requirement, "requirements")),
            "matchFields": _Field(lambda c, v, p, m: c.seq(v, p, m, _requirement, "requirements")),
        },
        what="a node selector term {matchExpressions, matchFields}",
    )


def _terms(c: _Checker, value: Any, path: str, mark: Mark | None) -> Any:
    return c.seq(value, path, mark, _term, "node selector terms")


def _attribute(c: _Checker, value: Any, path: str, mark: Mark | None) -> Any:
    if not isinstance(value, dict):
        example = value if isinstance(value, str) else "..."
        c.error(
            path,
            f"expected a mapping with exactly one of string, int, bool, version, got {_describe(value)}; "
            f"write e.g. {{string: {example}}}",
            mark,
        )
        return _BAD
    before = len(c.errors)
    out: dict[str, Any] = {}
    written: dict[str, str] = {}
    for key, item in value.items():
        key_mark = c.key_mark(value, key)
        if not isinstance(key, str):
            c.error(path, f"field names must be strings, got {_describe(key)}", key_mark)
            continue
        item_path = _join(path, key)
        canonical = key if key in _ATTRIBUTE_KEYS + _LIST_ATTRIBUTE_KEYS else _ATTRIBUTE_ALIASES.get(key)
        if canonical is None:
            c.error(item_path, _unknown(key, _ATTRIBUTE_KEYS + _LIST_ATTRIBUTE_KEYS)[0] + " (an attribute has exactly "
                    "one of string, int, bool, version, or a list: strings, ints, bools, versions)", key_mark)
            continue
        if canonical in written:
            c.error(item_path, f"both {written[canonical]!r} and {key!r} given; keep one", key_mark)
            continue
        written[canonical] = key
        if item is None:
            c.error(item_path, "expected a value, got null", key_mark)
            continue
        scalar = {"string": _string, "version": _string, "int": _integer, "bool": _boolean}
        if canonical in _LIST_ATTRIBUTE_KEYS:
            element = scalar[canonical[:-1]]
            checked = c.seq(item, item_path, key_mark, element, canonical)
        else:
            checked = scalar[canonical](c, item, item_path, key_mark)
        if checked is not _BAD:
            out[canonical] = checked
    return out if len(c.errors) == before else _BAD


def _quantity_scalar(c: _Checker, value: Any, path: str, mark: Mark | None) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    hint = ""
    if isinstance(value, float) and math.isfinite(value):
        hint = _QUOTE_HINT.format(example=value)
    c.error(path, f"expected a quantity such as 16Gi or 1000, got {_describe(value)}{hint}", mark)
    return _BAD


def _strings(c: _Checker, value: Any, path: str, mark: Mark | None) -> Any:
    return c.seq(value, path, mark, _string, "strings")


def _valid_range(c: _Checker, value: Any, path: str, mark: Mark | None) -> Any:
    return c.obj(value, path, mark, {"min": _Field(_quantity_scalar, required=True), "max": _Field(_quantity_scalar),
                                     "step": _Field(_quantity_scalar)},
                 what="a range {min, max, step}")


def _request_policy(c: _Checker, value: Any, path: str, mark: Mark | None) -> Any:
    return c.obj(
        value, path, mark,
        {
            "default": _Field(_quantity_scalar),
            "validValues": _Field(lambda c, v, p, m: c.seq(v, p, m, _quantity_scalar, "quantities")),
            "validRange": _Field(_valid_range),
        },
        what="a request policy {default, validValues | validRange}",
    )


def _capacity(c: _Checker, value: Any, path: str, mark: Mark | None) -> Any:
    if not isinstance(value, dict):
        example = value if isinstance(value, (str, int)) and not isinstance(value, bool) else "16Gi"
        c.error(path, f"expected a mapping {{value: <quantity>}}, got {_describe(value)}; write e.g. "
                f"{{value: {example}}}", mark)
        return _BAD
    return c.obj(value, path, mark, _CAPACITY_FIELDS, what="a capacity {value, requestPolicy}")


def _counter_value(c: _Checker, value: Any, path: str, mark: Mark | None) -> Any:
    if not isinstance(value, dict):
        c.error(path, f"expected a mapping {{value: <quantity>}}, got {_describe(value)}", mark)
        return _BAD
    return c.obj(value, path, mark, {"value": _Field(_quantity_scalar, required=True)}, what="a counter {value}")


def _counters(c: _Checker, value: Any, path: str, mark: Mark | None) -> Any:
    return c.dict_of(value, path, mark, _counter_value, "{value: <quantity>}")


def _counter_set(c: _Checker, value: Any, path: str, mark: Mark | None) -> Any:
    return c.obj(value, path, mark, {"name": _Field(_string, required=True), "counters": _Field(_counters,
                                                                                                required=True)},
                 what="a counter set {name, counters}")


def _consumption(c: _Checker, value: Any, path: str, mark: Mark | None) -> Any:
    return c.obj(value, path, mark, {"counterSet": _Field(_string, required=True),
                                     "counters": _Field(_counters, required=True),
                                     "compatibilityGroups": _Field(_strings)},
                 what="a counter consumption {counterSet, counters, compatibilityGroups}")


def _node_allocatable(c: _Checker, value: Any, path: str, mark: Mark | None) -> Any:
    mapping = {"capacityKey": _Field(_string), "capacityMultiplier": _Field(_quantity_scalar),
               "deviceMultiplier": _Field(_quantity_scalar)}
    overhead = {"perPod": _Field(_quantity_scalar), "perContainer": _Field(_quantity_scalar)}
    return c.obj(value, path, mark, {
        "mapping": _Field(lambda c, v, p, m: c.obj(v, p, m, mapping, what="a mapping {capacityKey, "
                                                   "capacityMultiplier} or {deviceMultiplier}")),
        "overhead": _Field(lambda c, v, p, m: c.obj(v, p, m, overhead, what="an overhead {perPod, perContainer}")),
    }, what="a node allocatable resource {mapping, overhead}")


def _taint(c: _Checker, value: Any, path: str, mark: Mark | None) -> Any:
    return c.obj(value, path, mark, {"key": _Field(_string, required=True), "value": _Field(_string),
                                     "effect": _Field(_string, required=True)},
                 what="a taint {key, value, effect}")


_DEVICE_FIELDS = {
    "name": _Field(_string, required=True),
    "count": _Field(_integer),
    "attributes": _Field(lambda c, v, p, m: c.dict_of(v, p, m, _attribute, "attribute values")),
    "capacity": _Field(lambda c, v, p, m: c.dict_of(v, p, m, _capacity, "{value: <quantity>}")),
    "taints": _Field(lambda c, v, p, m: c.seq(v, p, m, _taint, "taints")),
    "allowMultipleAllocations": _Field(_boolean),
    "bindsToNode": _Field(_boolean),
    "bindingConditions": _Field(_strings),
    "bindingFailureConditions": _Field(_strings),
    "consumesCounters": _Field(lambda c, v, p, m: c.seq(v, p, m, _consumption, "counter consumptions")),
    "nodeName": _Field(_string),
    "nodeSelector": _Field(lambda c, v, p, m: _node_selector(c, v, p, m)),
    "allNodes": _Field(_boolean),
    "nodeAllocatableResources": _Field(lambda c, v, p, m: c.dict_of(v, p, m, _node_allocatable,
                                                                     "{mapping, overhead}")),
}
_CAPACITY_FIELDS = {"value": _Field(_quantity_scalar, required=True), "requestPolicy": _Field(_request_policy)}


def _device(c: _Checker, value: Any, path: str, mark: Mark | None) -> Any:
    return c.obj(value, path, mark, _DEVICE_FIELDS, _DEVICE_REFUSED,
                 what="a device {name, count, attributes, capacity, taints, allowMultipleAllocations, bindsToNode, "
                 "bindingConditions, bindingFailureConditions, consumesCounters, nodeName, nodeSelector, allNodes, "
                 "nodeAllocatableResources}")


def _pool(c: _Checker, value: Any, path: str, mark: Mark | None) -> Any:
    return c.obj(
        value, path, mark,
        {"name": _Field(_string, required=True), "resourceSliceCount": _Field(_integer)},
        _POOL_REFUSED,
        what="a pool {name, resourceSliceCount}",
    )


def _node_selector(c: _Checker, value: Any, path: str, mark: Mark | None) -> Any:
    return c.obj(value, path, mark, {"nodeSelectorTerms": _Field(_terms, required=True)},
                 what="a node selector {nodeSelectorTerms: [one term]}")


def _profile_value(c: _Checker, value: Any, path: str, mark: Mark | None) -> Any:
    """One profile parameter: a string, an integer, a boolean or a list of strings (each profile's own schema,
    checked by :mod:`dra_kwok.accept`, says which)."""
    if isinstance(value, (str, bool)) or (isinstance(value, int)):
        return value
    if isinstance(value, list):
        return c.seq(value, path, mark, _string, "strings")
    c.error(path, f"expected a string, integer, boolean or list of strings, got {_describe(value)}", mark)
    return _BAD


def _profile(c: _Checker, value: Any, path: str, mark: Mark | None) -> Any:
    if not isinstance(value, dict):
        c.error(path, f"expected a mapping {{name: <profile>, <parameter>: <value>, ...}}, got {_describe(value)}; "
                "`dra-kwok profiles` lists the profiles and their parameters", mark)
        return _BAD
    fields = {key: _Field(_profile_value) for key in value if isinstance(key, str) and key != "name"}
    fields["name"] = _Field(_string, required=True)
    return c.obj(value, path, mark, fields, what="a profile {name, <parameter>: <value>, ...}")


def _resource_slice(c: _Checker, value: Any, path: str, mark: Mark | None) -> Any:
    # `devices` may be left out when a profile publishes the pool's devices
    with_profile = isinstance(value, dict) and value.get("profile") is not None
    return c.obj(
        value, path, mark,
        {
            "driver": _Field(_string),
            "pool": _Field(_pool, required=True),
            "allNodes": _Field(_boolean),
            "nodeSelector": _Field(_node_selector),
            "devices": _Field(lambda c, v, p, m: c.seq(v, p, m, _device, "devices"), required=not with_profile),
            "sharedCounters": _Field(lambda c, v, p, m: c.seq(v, p, m, _counter_set, "counter sets")),
            "perDeviceNodeSelection": _Field(_boolean),
            "partitionTypeAttribute": _Field(_string),
            "skipNodeOperations": _Field(_strings),
            "profile": _Field(_profile),
        },
        _SLICE_REFUSED,
        what="a resource slice template {driver, pool, allNodes, nodeSelector, devices, sharedCounters, "
        "perDeviceNodeSelection, partitionTypeAttribute, skipNodeOperations, profile}",
    )


def _mapping(c: _Checker, value: Any, path: str, mark: Mark | None) -> Any:
    return c.obj(
        value, path, mark,
        {
            "name": _Field(_string, required=True),
            "nodeSelectorTerms": _Field(_terms, required=True),
            "resourceSlice": _Field(_resource_slice, required=True),
            "bindingSimulation": _Field(_binding_simulation),
        },
        what="a mapping {name, nodeSelectorTerms, resourceSlice, bindingSimulation}",
    )


def _binding_simulation(c: _Checker, value: Any, path: str, mark: Mark | None) -> Any:
    return c.obj(value, path, mark, {"delay": _Field(_string), "outcome": _Field(_string)},
                 what="a binding simulation {delay: <Go duration, e.g. 3s>, outcome: ready | fail}")


_CONFIG_FIELDS = {
    "driver": _Field(_string, required=True),
    "mappings": _Field(lambda c, v, p, m: c.seq(v, p, m, _mapping, "mappings"), required=True),
}


# --------------------------------------------------------------------------------------------------------
# Documents: raw configs and ConfigMaps.


def _find_value_node(root: Node, *keys: str) -> Node | None:
    node: Node | None = root
    for key in keys:
        if not isinstance(node, MappingNode):
            return None
        found = None
        for key_node, value_node in node.value:
            if isinstance(key_node, ScalarNode) and key_node.value == key:
                found = value_node
        node = found
    return node


def _embedded_offsets(document: _Document, text: str, outer_text: str, key: str) -> tuple[int, int] | None:
    """(line offset, column offset) of a ``|`` block scalar's content in the outer file, if line-preserving."""
    node = _find_value_node(document.node, "data", key)
    if not isinstance(node, ScalarNode) or node.style != "|":
        return None
    first_content = node.start_mark.line + 1  # the line after the '|' header
    outer_lines = outer_text.splitlines()
    indent = None
    for line in outer_lines[first_content : first_content + len(text.splitlines()) + 1]:
        if line.strip():
            indent = len(line) - len(line.lstrip(" "))
            break
    if indent is None:
        return None
    return document.line_offset + first_content, indent


def _config_from_configmap(document: _Document, outer_text: str, prefix: str) -> tuple[_Document | None, list[FieldError]]:
    checker = _Checker(document, prefix)
    cm = document.data
    data = cm.get("data")
    data_mark = checker.key_mark(cm, "data")
    if data is None:
        checker.error("data", f"the ConfigMap has no data; put the config under data.{CONFIG_KEY}",
                      document.node_marks.get(id(cm)))
        return None, checker.errors
    if not isinstance(data, dict):
        checker.error("data", f"expected a mapping of key to text, got {_describe(data)}", data_mark)
        return None, checker.errors
    keys = [k for k in data if isinstance(k, str)]
    if CONFIG_KEY in data:
        key = CONFIG_KEY
    else:
        candidates = [k for k in keys if k.endswith((".yaml", ".yml"))]
        if len(candidates) != 1:
            found = ", ".join(repr(k) for k in keys) or "none"
            reason = "no" if not candidates else "more than one"
            checker.error(
                "data",
                f"{reason} config key: expected {CONFIG_KEY!r} (or exactly one other *.yaml/*.yml key); "
                f"keys found: {found}",
                data_mark,
            )
            return None, checker.errors
        key = candidates[0]
    text = data[key]
    key_mark = checker.key_mark(data, key)
    if not isinstance(text, str):
        checker.error(f"data[{key}]", f"expected the config as text (use a '|' block), got {_describe(text)}",
                      key_mark)
        return None, checker.errors
    offsets = _embedded_offsets(document, text, outer_text, key)
    if offsets is not None:
        source, (line_offset, column_offset) = document.source, offsets
    else:
        source, line_offset, column_offset = f"{document.source}:data[{key}]", 0, 0
    inner = _read_documents(text, source, line_offset, column_offset, document.budget)
    if not inner:
        checker.error(f"data[{key}]", "is empty; expected a config with driver and mappings", key_mark)
        return None, checker.errors
    if len(inner) > 1:
        extra = inner[1]
        raise extra.parse_error(extra.node.start_mark, f"data[{key}] must hold exactly one YAML document, found "
                                f"{len(inner)}")
    if isinstance(inner[0].data, dict) and inner[0].data.get("kind") == "ConfigMap":
        raise inner[0].parse_error(inner[0].node.start_mark, f"data[{key}] holds another ConfigMap; expected the "
                                   "config itself (driver, mappings)")
    return inner[0], []


def _decode_config(checked: dict[str, Any]) -> Config:
    """Checked plain data -> Config: equal to ``Config.from_dict(checked)``, linear (see :func:`types.decode`)."""
    return decode(Config, checked)  # type: ignore[no-any-return]


def _check_config(
    document: _Document, prefix: str, build: Callable[[dict[str, Any]], Config] = _decode_config
) -> tuple[Config | None, list[FieldError]]:
    if not isinstance(document.data, dict):
        raise document.parse_error(
            document.node.start_mark,
            f"the top level must be a mapping (a config with driver and mappings, or a ConfigMap), got "
            f"{_describe(document.data)}",
        )
    checker = _Checker(document, prefix)
    checked = checker.obj(document.data, "", document.node.start_mark, _CONFIG_FIELDS,
                          what="a config {driver, mappings}")
    if checked is _BAD:
        return None, checker.errors
    return build(checked), []


def _load(
    text: str | bytes, source: str, build: Callable[[dict[str, Any]], Config] = _decode_config
) -> list[tuple[Config, int]]:
    """``build`` turns checked data into a Config (a test passes ``Config.from_dict`` to compare the fast path)."""
    with gc_paused():
        return _load_unpaused(text, source, build)


def _load_unpaused(text: str | bytes, source: str, build: Callable[[dict[str, Any]], Config]) -> list[tuple[Config, int]]:
    decoded = _decode(text, source)
    documents = _read_documents(decoded, source)
    if not documents:
        raise ParseError(source, 1, 1, "no YAML document found; expected a config (driver, mappings) or a ConfigMap")
    results: list[tuple[Config, int]] = []
    errors: list[FieldError] = []
    for index, document in enumerate(documents):
        prefix = f"documents[{index}]" if len(documents) > 1 else ""
        line = document.node.start_mark.line + 1
        if not isinstance(document.data, dict):
            raise document.parse_error(
                document.node.start_mark,
                f"the top level must be a mapping (a config with driver and mappings, or a ConfigMap), got "
                f"{_describe(document.data)}",
            )
        kind = document.data.get("kind")
        if kind == "ConfigMap":
            inner, problems = _config_from_configmap(document, decoded, prefix)
            if inner is None:
                errors.extend(problems)
                continue
            document = inner
        elif kind is not None:
            checker = _Checker(document, prefix)
            checker.error("kind", f"unsupported kind {kind!r}: expected a ConfigMap (kind: ConfigMap) holding "
                          f"data.{CONFIG_KEY}, or a raw config (driver, mappings) without kind",
                          checker.key_mark(document.data, "kind"))
            errors.extend(checker.errors)
            continue
        config, problems = _check_config(document, prefix, build)
        errors.extend(problems)
        if config is not None:
            results.append((config, line))
    if errors:
        raise ConfigInvalid(errors, source)
    return results


def load_documents(text: str | bytes, source: str = "<input>") -> list[Config]:
    """Every config in ``text`` (raw configs and/or ConfigMaps, one per YAML document), in order.

    Empty documents are skipped; input with no document at all is a :class:`ParseError`.  Raises
    :class:`ParseError` for unreadable input and :class:`ConfigInvalid` (listing every structural problem in
    every document) for YAML that is not a config.  The result still needs
    :func:`dra_kwok.config.validation.validate`.
    """
    return [config for config, _ in _load(text, source)]


def load_config(text: str | bytes, source: str = "<input>") -> Config:
    """The single config in ``text``; more than one document holding a config is a :class:`ParseError`."""
    results = _load(text, source)
    if len(results) != 1:  # the second config's line, or the start when there is none
        line = results[1][1] if len(results) > 1 else 1
        raise ParseError(source, line, 1, f"expected exactly one config, found {len(results)} documents")
    return results[0][0]
