"""Reading manifest text into node trees with exact positions, the way Kubernetes reads it.

libyaml (PyYAML's C parser) does the scanning: it is fast, it reads YAML 1.1 like the Kubernetes
decoders (``0644`` is 420, ``yes`` is true), and every event carries its position. The composer
runs in Python on top of it for one reason: PyYAML's own composer hands back the anchored node
for an alias, losing where the alias itself is written. Here an alias becomes its own leaf node
with its own position, so edits never mistake one for the other.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import yaml
from yaml._yaml import CParser
from yaml.composer import Composer
from yaml.events import AliasEvent, CollectionStartEvent, ScalarEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from hardener.fixer._errors import SourceError
from hardener.fixer._reading import (
    MERGE_TAG,
    STR_TAG,
    TAB_INDENT,
    TIMESTAMP_TAG,
    GuardedConstruction,
    check_expansion,
    duplicate_key,
    json_key,
    line_column,
    line_starts,
    mark_position,
    timestamp_as_text,
)

__all__ = ["YNode", "load_documents", "load_values", "same_json", "walk"]


@dataclass(eq=False, slots=True)
class YNode:
    """One node of a document, with its place in the text (offsets into the text without BOM).

    ``line``/``column`` are 0-based like libyaml's marks. An alias is a leaf (``alias`` true);
    ``anchor`` is set on a node written with ``&name``, and ``aliased`` when an alias of the
    same document refers to that name.
    """

    kind: Literal["scalar", "mapping", "sequence"]
    start: int
    end: int
    line: int
    column: int
    end_line: int
    end_column: int
    tag: str
    style: str | None
    flow: bool
    anchor: str | None = None
    aliased: bool = False
    alias: bool = False
    parent: YNode | None = None
    depth: int = 0
    text: str = ""
    pairs: list[tuple[YNode, YNode]] = field(default_factory=list)
    members: dict[str, tuple[YNode, YNode]] = field(default_factory=dict)
    has_merge: bool = False
    items: list[YNode] = field(default_factory=list)

    @property
    def empty_scalar(self) -> bool:
        """A value written as nothing at all (``key:`` or a bare ``-``)."""
        return self.kind == "scalar" and not self.alias and self.style == "" and self.text == ""


def walk(roots: list[YNode]) -> list[YNode]:
    """Every node of the trees under ``roots`` (keys included), in no particular order."""
    nodes: list[YNode] = []
    stack = list(roots)
    while stack:
        node = stack.pop()
        nodes.append(node)
        stack.extend(v for pair in node.pairs for v in pair)
        stack.extend(node.items)
    return nodes


class _Constructor(GuardedConstruction):
    """PyYAML's safe YAML 1.1 constructor, producing plain JSON-like values."""

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        # Keys become JSON strings while the mapping is built: in a Python dict, 1 and true
        # (or 1 and 1.0) would silently collapse into one member.
        if not isinstance(node, MappingNode):
            raise yaml.constructor.ConstructorError(
                None, None, f"expected a mapping for the tag {node.tag}", node.start_mark
            )
        self.flatten_mapping(node)
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, list | dict | set):
                raise yaml.constructor.ConstructorError(
                    None, None, "a mapping key must be a scalar", key_node.start_mark
                )
            mapping[json_key(key)] = self.construct_object(value_node, deep=deep)
        return mapping


def _binary_as_text(loader: Any, node: Any) -> Any:
    return "".join(str(loader.construct_scalar(node)).split())


_Constructor.add_constructor(TIMESTAMP_TAG, timestamp_as_text)
_Constructor.add_constructor("tag:yaml.org,2002:binary", _binary_as_text)


class _ValueLoader(CParser, _Constructor, Resolver):
    """Values only, all in libyaml's C composer: for reading back an edited text."""

    def __init__(self, text: str) -> None:
        CParser.__init__(self, text)
        _Constructor.__init__(self)
        Resolver.__init__(self)


class _Loader(Composer, _ValueLoader):
    """libyaml's parser, PyYAML's composer (aliases kept apart) and the JSON-like constructor."""

    def __init__(self, text: str) -> None:
        _ValueLoader.__init__(self, text)
        Composer.__init__(self)
        self.anchor_of: dict[int, str] = {}
        self.alias_ids: set[int] = set()
        self.alias_names: set[str] = set()

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        if self.check_event(AliasEvent):
            event: Any = self.get_event()
            if event.anchor not in self.anchors:
                raise yaml.composer.ComposerError(
                    None, None, f"found undefined alias {event.anchor!r}", event.start_mark
                )
            target: Any = self.anchors[event.anchor]
            self.alias_names.add(event.anchor)
            proxy: Node
            if isinstance(target, ScalarNode):
                proxy = ScalarNode(
                    target.tag, target.value, event.start_mark, event.end_mark, target.style
                )
            else:
                kind = MappingNode if isinstance(target, MappingNode) else SequenceNode
                proxy = kind(
                    target.tag, target.value, event.start_mark, event.end_mark, target.flow_style
                )
            self.alias_ids.add(id(proxy))
            return proxy
        upcoming: Any = self.peek_event()
        anchor = (
            upcoming.anchor if isinstance(upcoming, ScalarEvent | CollectionStartEvent) else None
        )
        node: Any = super().compose_node(parent, index)
        if anchor is not None:
            self.anchor_of[id(node)] = anchor
        return cast(Node, node)


def same_json(a: Any, b: Any) -> bool:
    """Equality of JSON-like values as Kubernetes tells them apart.

    Unlike ``==``: ``true`` is not ``1`` and ``1`` is not ``1.0`` (a rewrite that changes what a
    value *is* must not pass verification), dict order is ignored, list order kept, and ``.nan``
    equals ``.nan`` (a document holding one must still compare equal to itself).
    """
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


def _jsonify(value: Any) -> Any:
    """Constructed YAML data as the plain JSON-like value Kubernetes decodes.

    Raises SourceError when following the aliases would expand the document past
    ``MAX_EXPANDED_NODES`` values (the budget both readers apply, ``check_expansion``).
    """
    check_expansion(value)

    def convert(item: Any) -> Any:
        if isinstance(item, dict):
            return {json_key(k): convert(v) for k, v in item.items()}
        if isinstance(item, list | tuple):
            if item and all(isinstance(v, tuple) and len(v) == 2 for v in item):
                # !!omap / !!pairs: a list of one-member mappings.
                return [{json_key(k): convert(v)} for k, v in item]
            return [convert(v) for v in item]
        if isinstance(item, set | frozenset):
            return {json_key(k): None for k in item}
        if isinstance(item, bytes):
            return item.decode("utf-8", "replace")
        return item

    return convert(value)


def _error(exc: yaml.MarkedYAMLError, text: str, starts: list[int]) -> SourceError:
    mark = exc.problem_mark or exc.context_mark
    line, column = mark_position(mark)
    problem = exc.problem or exc.context or "invalid YAML"
    if mark is not None and 0 <= mark.line < len(starts):
        begin = starts[mark.line]
        indent = re.match(r"[ \t]*", text[begin : begin + 200])
        if indent is not None and "\t" in indent.group():
            return SourceError(
                line, indent.group().index("\t") + 1, "tab in indentation (YAML allows only spaces)"
            )
    if exc.context and exc.problem and "while" not in exc.context:
        problem = f"{exc.context}; {exc.problem}"
    return SourceError(line, column, problem)


def _reader_error(exc: yaml.reader.ReaderError, text: str, starts: list[int]) -> SourceError:
    """A character YAML does not allow, placed at its line and column (libyaml counts the
    offset in UTF-8 bytes)."""
    offset = len(text.encode("utf-8")[: exc.position].decode("utf-8", "ignore"))
    line, column = line_column(starts, offset)
    if isinstance(exc.character, int):
        what = f"character U+{exc.character:04X}"
    else:
        what = f"byte {exc.character!r}"
    return SourceError(line + 1, column + 1, f"invalid YAML: {what}: {exc.reason}")


class _Builder:
    """Turns PyYAML nodes into YNodes, checking keys on the way."""

    def __init__(self, loader: _Loader) -> None:
        self.loader = loader

    def key(self, node: Node) -> str:
        if not isinstance(node, ScalarNode):
            raise SourceError(
                *mark_position(node.start_mark),
                "a mapping key must be a scalar (JSON has only string keys)",
            )
        if node.tag == STR_TAG:
            return str(node.value)
        return json_key(self.loader.construct_object(node, deep=True))

    def build(self, node: Node, parent: YNode | None) -> YNode:
        start, end = node.start_mark, node.end_mark
        alias = id(node) in self.loader.alias_ids
        anchor = self.loader.anchor_of.get(id(node))
        if isinstance(node, ScalarNode):
            kind: Literal["scalar", "mapping", "sequence"] = "scalar"
            style: str | None = node.style or ""
            flow = False
        else:
            kind = "mapping" if isinstance(node, MappingNode) else "sequence"
            style = None
            flow = bool(getattr(node, "flow_style", False))
        ynode = YNode(
            kind=kind,
            start=start.index,
            end=end.index,
            line=start.line,
            column=start.column,
            end_line=end.line,
            end_column=end.column,
            tag=node.tag,
            style=style,
            flow=flow,
            anchor=anchor,
            aliased=anchor is not None and anchor in self.loader.alias_names,
            alias=alias,
            parent=parent,
            depth=0 if parent is None else parent.depth + 1,
        )
        if alias:
            return ynode
        if isinstance(node, ScalarNode):
            ynode.text = node.value
        elif isinstance(node, MappingNode):
            for key_node, value_node in node.value:
                key = self.build(key_node, ynode)
                value = self.build(value_node, ynode)
                ynode.pairs.append((key, value))
                if key_node.tag == MERGE_TAG:
                    ynode.has_merge = True
                    continue
                name = self.key(key_node)
                if name in ynode.members:
                    first = ynode.members[name][0]
                    raise SourceError(
                        key.line + 1, key.column + 1, duplicate_key(name, first.line + 1)
                    )
                ynode.members[name] = (key, value)
        else:
            ynode.items = [self.build(item, ynode) for item in node.value]
        return ynode


def _check_tabs(text: str, starts: list[int], roots: list[YNode]) -> None:
    """Tabs used as indentation (outside multi-line scalars) are an error, as for kubectl."""
    candidates = [
        number for number, begin in enumerate(starts) if TAB_INDENT.match(text, begin, begin + 200)
    ]
    if not candidates:
        return
    inside: set[int] = set()
    for node in walk(roots):
        # Multi-line scalars hold tabs as content; flow collections (JSON) allow tabs.
        if (node.kind == "scalar" or node.flow) and node.end_line > node.line:
            inside.update(range(node.line + 1, node.end_line + 1))
    for number in candidates:
        if number not in inside:
            column = text[starts[number] :].index("\t") + 1
            raise SourceError(number + 1, column, "tab in indentation (YAML allows only spaces)")


def load_documents(text: str) -> list[tuple[YNode, Any]]:
    """Every document of ``text`` (no BOM) as (root node, JSON-like value).

    Raises SourceError for invalid YAML, duplicate keys, non-scalar keys, unknown tags and tabs
    in indentation.
    """
    starts = line_starts(text)
    loader = _Loader(text)
    documents: list[tuple[YNode, Any]] = []
    builder = _Builder(loader)
    try:
        while loader.check_node():
            loader.alias_names = set()
            node: Any = loader.get_node()
            root = builder.build(node, None)
            try:
                value = _jsonify(loader.construct_document(node))
            except SourceError as exc:
                raise SourceError(*mark_position(node.start_mark), exc.message) from None
            documents.append((root, value))
    except yaml.MarkedYAMLError as exc:
        raise _error(exc, text, starts) from None
    except yaml.reader.ReaderError as exc:
        raise _reader_error(exc, text, starts) from None
    except yaml.YAMLError as exc:
        raise SourceError(1, 1, f"invalid YAML: {exc}") from None
    except RecursionError:
        raise SourceError(1, 1, "document nested too deeply") from None
    finally:
        loader.dispose()
    _check_tabs(text, starts, [root for root, _ in documents])
    return documents


def load_values(text: str) -> list[Any]:
    """The JSON-like value of every document of ``text`` (no BOM), read exactly as
    ``load_documents`` reads them but without positions or checks: for texts known to be valid
    (such as an edited text being verified). Raises SourceError if the text is not valid YAML.
    """
    loader = _ValueLoader(text)
    try:
        values = []
        while loader.check_node():
            values.append(_jsonify(loader.construct_document(loader.get_node())))
        return values
    except yaml.MarkedYAMLError as exc:
        raise _error(exc, text, line_starts(text)) from None
    except yaml.YAMLError as exc:
        raise SourceError(1, 1, f"invalid YAML: {exc}") from None
    finally:
        loader.dispose()
