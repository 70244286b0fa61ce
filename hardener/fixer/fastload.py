"""The fast reader: libyaml all the way, for the common case where nothing changes.

``SourceFile.parse`` builds a node tree with exact text offsets for surgical edits, which costs
several times what libyaml's own composer costs. Most files in a hardened repository need no
change, so ``fix`` and ``check`` first read a file with this module, and only a file that
changes (or that this reader declines) pays for the full parse.

The values must be exactly what ``SourceFile`` reads, or the fast answer would be wrong: YAML
1.1 as Kubernetes reads it (``0644`` is 420, ``yes`` is true), timestamps kept as text, keys as
JSON strings (``1:`` becomes ``"1"``). Anything outside that common ground raises
``FastLoadError`` and the caller takes the slow path, whose parser gives the reported error:

- a duplicate key, or a document that expands past ``MAX_EXPANDED_NODES`` values through its
  aliases (``FastLoadError.final``: the error is the file's, whatever reads it);
- a non-scalar key, a ``!!binary``/``!!set``/``!!omap``/``!!pairs`` value, any other tag;
- a tab at the start of a line outside a block scalar, invalid YAML.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import ConstructorError

from hardener.fixer._errors import SourceError
from hardener.fixer._reading import (
    MERGE_TAG,
    SCALAR_KEY_TAGS,
    STR_TAG,
    TAB_INDENT,
    TIMESTAMP_TAG,
    GuardedConstruction,
    TextLines,
    check_expansion,
    duplicate_key,
    json_key,
    mark_position,
    timestamp_as_text,
)
from hardener.model import HardenerError
from hardener.pointer import split

__all__ = ["FastDocument", "FastLoadError", "load_fast"]

# A line whose indentation holds a tab before some content: left to the full parser.
_TAB_INDENT = re.compile("^" + TAB_INDENT.pattern, re.MULTILINE)


class FastLoadError(HardenerError):
    """The fast reader could not (or would not) read a text. Positions are 1-based."""

    def __init__(self, line: int, column: int, message: str, *, final: bool = False) -> None:
        super().__init__(f"{line}:{column}: {message}")
        self.line = line
        self.column = column
        self.message = message
        self.final = final
        """True when the error is the file's, whatever another reader makes of it: a duplicate
        key (the file is ambiguous) or excessive aliasing (the same budget holds for both
        readers)."""


def _decline(node: yaml.Node, message: str) -> FastLoadError:
    return FastLoadError(*mark_position(node.start_mark), message)


class _Loader(GuardedConstruction, yaml.CSafeLoader):
    """libyaml's parser and composer with the safe constructor; keys become JSON strings."""

    def _key(self, node: yaml.Node) -> str:
        if isinstance(node, yaml.ScalarNode):
            if node.tag == STR_TAG:
                return str(node.value)
            if node.tag in SCALAR_KEY_TAGS:
                return json_key(self.construct_object(node))
        raise _decline(node, "key outside the fast reader's common ground")

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.members: dict[int, dict[str, tuple[yaml.Node, yaml.Node]]] = {}
        """The explicit members of each mapping whose keys are not all plain strings or that
        has ``<<`` merges (where the node's pairs differ from what is written)."""

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[Any, Any]:
        if not isinstance(node, yaml.MappingNode):
            raise _decline(node, "expected a mapping")
        seen: dict[str, yaml.Node] = {}
        special = False
        for key_node, _ in node.value:
            if key_node.tag == MERGE_TAG:
                special = True
                continue
            if key_node.tag != STR_TAG:
                special = True
            name = self._key(key_node)
            first = seen.get(name)
            if first is not None:
                raise FastLoadError(
                    *mark_position(key_node.start_mark),
                    duplicate_key(name, first.start_mark.line + 1),
                    final=True,
                )
            seen[name] = key_node
        if special:
            self.members[id(node)] = {
                self._key(k): (k, v) for k, v in node.value if k.tag != MERGE_TAG
            }
        self.flatten_mapping(node)
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            mapping[self._key(key_node)] = self.construct_object(value_node, deep=deep)
        return mapping

    def decline(self, node: yaml.Node) -> Any:
        raise _decline(node, f"tag {node.tag} left to the full parser")


_Loader.add_constructor(TIMESTAMP_TAG, timestamp_as_text)
for _tag in ("binary", "set", "omap", "pairs"):
    _Loader.add_constructor(f"tag:yaml.org,2002:{_tag}", _Loader.decline)
_Loader.add_constructor(None, _Loader.decline)


class _FileState:
    """What the documents of one file share: the text and its lines, the loader's notes on
    special mappings, and the full parse as a fallback."""

    def __init__(self, text: str, members: dict[int, dict[str, tuple[yaml.Node, yaml.Node]]]):
        self.text = text
        self.lines = TextLines(text)
        self.members = members
        self._source: list[Any] | None = None

    def source_position(self, index: int, pointer: str) -> tuple[int, int]:
        if self._source is None:
            from hardener.fixer.source import SourceFile

            self._source = list(SourceFile.parse(self.text).documents)
        position: tuple[int, int] = self._source[index].position(pointer)
        return position


@dataclass
class FastDocument:
    """One document of a file: its value and the node tree it was built from.

    ``index`` counts every document of the file from 0, as ``SourceFile`` does.
    """

    index: int
    value: Any
    node: yaml.Node
    file: _FileState = field(repr=False)
    _aliases: set[tuple[int, str]] | None = field(default=None, repr=False)

    @property
    def line(self) -> int:
        """1-based line where the document's content starts."""
        return int(self.node.start_mark.line) + 1

    def _members(self, node: yaml.Node) -> dict[str, tuple[yaml.Node, yaml.Node]] | None:
        return self.file.members.get(id(node))

    def _member(self, node: yaml.Node, token: str) -> tuple[yaml.Node, yaml.Node] | None:
        members = self._members(node)
        if members is not None:
            return members.get(token)
        for key_node, value_node in node.value:
            if key_node.value == token:
                return key_node, value_node
        return None

    def _alias_sites(self) -> set[tuple[int, str]]:
        """``(id(parent), token)`` of every place where an alias (``*name``) is written.

        libyaml's composer hands back the anchored node itself for an alias, so an alias is
        a node met a second time, walking in document order.
        """
        if self._aliases is None:
            sites: set[tuple[int, str]] = set()
            if "*" in self.file.text:
                seen: set[int] = set()
                stack: list[tuple[yaml.Node | None, str, yaml.Node]] = [(None, "", self.node)]
                while stack:  # pre-order, in document order
                    parent, token, node = stack.pop()
                    if id(node) in seen:
                        if parent is not None:
                            sites.add((id(parent), token))
                        continue
                    seen.add(id(node))
                    children: list[tuple[str, yaml.Node]] = []
                    if isinstance(node, yaml.MappingNode):
                        members = self._members(node)
                        if members is not None:
                            children = [(name, pair[1]) for name, pair in members.items()]
                        else:
                            children = [(k.value, v) for k, v in node.value]
                    elif isinstance(node, yaml.SequenceNode):
                        children = [(str(i), item) for i, item in enumerate(node.value)]
                    stack.extend((node, t, c) for t, c in reversed(children))
            self._aliases = sites
        return self._aliases

    def position(self, pointer: str) -> tuple[int, int]:
        """1-based (line, column) of the node at ``pointer``, placed as ``Document.position``
        places it: a mapping member at its key, a block sequence item at its ``-``, an alias
        where the alias is written. A pointer that does not resolve gives the position of its
        deepest existing part."""
        node = self.node
        line, column = node.start_mark.line, node.start_mark.column
        for token in split(pointer):
            if isinstance(node, yaml.MappingNode):
                member = self._member(node, token)
                if member is None:
                    break
                key_node, child = member
                line, column = key_node.start_mark.line, key_node.start_mark.column
                if (id(node), token) in self._alias_sites():
                    break  # the member's key is where the alias is written
                node = child
            elif isinstance(node, yaml.SequenceNode):
                if not token.isdigit() or int(token) >= len(node.value):
                    break
                if (id(node), token) in self._alias_sites():
                    # Where a "*name" item is written is not kept by libyaml's composer.
                    return self.file.source_position(self.index, pointer)
                flow = bool(node.flow_style)
                node = node.value[int(token)]
                if flow:
                    line, column = node.start_mark.line, node.start_mark.column
                else:
                    mark = node.start_mark
                    line, column = self.file.lines.item_position(mark.index, mark.line, mark.column)
            else:
                break
        return int(line) + 1, int(column) + 1


def load_fast(text: str) -> list[FastDocument]:
    """Every document of ``text`` (a leading BOM allowed), empty ones included (value ``None``).

    Raises ``FastLoadError`` when the text is outside the common ground described above.
    """
    body = text[1:] if text.startswith("\ufeff") else text
    if "\t" in body:
        match = _TAB_INDENT.search(body)
        if match is not None:
            line = body.count("\n", 0, match.start()) + 1
            raise FastLoadError(line, 1, "tab in indentation, left to the full parser")
    loader = _Loader(body)
    state = _FileState(body, loader.members)
    documents: list[FastDocument] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                break
            value = loader.construct_document(node)
            try:
                check_expansion(value)
            except SourceError as exc:
                raise FastLoadError(
                    *mark_position(node.start_mark), exc.message, final=True
                ) from None
            documents.append(FastDocument(len(documents), value, node, state))
    except FastLoadError:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise FastLoadError(*mark_position(mark), exc.problem or str(exc)) from exc
    except (yaml.YAMLError, ConstructorError, ValueError, TypeError, RecursionError) as exc:
        raise FastLoadError(1, 1, str(exc)) from exc
    finally:
        loader.dispose()
    return documents
