"""The fast reader: libyaml all the way, for the common case where nothing changes.

``SourceFile.parse`` builds a node tree with exact text offsets for surgical edits, which costs
several times what libyaml's own composer costs. Most files in a hardened repository need no
change, so ``fix`` and ``check`` first read a file with this module, and only a file that
changes (or that this reader declines) pays for the full parse.

The values must be exactly what ``SourceFile`` reads, or the fast answer would be wrong: YAML
1.1 as Kubernetes reads it (``0644`` is 420, ``yes`` is true), timestamps kept as text, keys as
JSON strings (``1:`` becomes ``"1"``). Anything outside that common ground raises
``FastLoadError`` and the caller takes the slow path, whose parser gives the reported error:

- a duplicate key (``FastLoadError.duplicate``; the file is ambiguous whatever reads it);
- a non-scalar key, a ``!!binary``/``!!set``/``!!omap``/``!!pairs`` value, any other tag;
- a tab at the start of a line outside a block scalar, invalid YAML.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.constructor import ConstructorError

from hardener.pointer import split

__all__ = ["FastDocument", "FastLoadError", "load_fast"]

_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_SCALAR_KEY_TAGS = frozenset(
    {
        "tag:yaml.org,2002:bool",
        "tag:yaml.org,2002:int",
        "tag:yaml.org,2002:float",
        "tag:yaml.org,2002:null",
    }
)
# The characters libyaml counts as line breaks (YAML 1.1); "\r\n" is one break.
_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")
# A line whose indentation holds a tab before some content: left to the full parser.
_TAB_INDENT = re.compile(r"^ *\t[ \t]*[^\s#]", re.MULTILINE)
_LONE_DASH = re.compile(r"^(\s*)-\s*(?:#.*)?$")


class FastLoadError(Exception):
    """The fast reader could not (or would not) read a text. Positions are 1-based."""

    def __init__(self, line: int, column: int, message: str, *, duplicate: bool = False) -> None:
        super().__init__(f"{line}:{column}: {message}")
        self.line = line
        self.column = column
        self.message = message
        self.duplicate = duplicate
        """True for a duplicate key: the file is ambiguous, whatever another reader makes of it."""


def _decline(node: yaml.Node, message: str) -> FastLoadError:
    mark = node.start_mark
    return FastLoadError(mark.line + 1, mark.column + 1, message)


class _Loader(yaml.CSafeLoader):
    """libyaml's parser and composer with the safe constructor; keys become JSON strings."""

    def _key(self, node: yaml.Node) -> str:
        if isinstance(node, yaml.ScalarNode):
            if node.tag == _STR_TAG:
                return str(node.value)
            if node.tag in _SCALAR_KEY_TAGS:
                key = self.construct_object(node)
                if key is None:
                    return "null"
                if isinstance(key, bool):
                    return "true" if key else "false"
                return str(key)
        raise _decline(node, "key outside the fast reader's common ground")

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[Any, Any]:
        if not isinstance(node, yaml.MappingNode):
            raise _decline(node, "expected a mapping")
        seen: dict[str, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            name = self._key(key_node)
            first = seen.get(name)
            if first is not None:
                mark = key_node.start_mark
                raise FastLoadError(
                    mark.line + 1,
                    mark.column + 1,
                    f"duplicate key {name!r} (first at line {first.start_mark.line + 1}); "
                    "YAML loaders disagree on which value wins",
                    duplicate=True,
                )
            seen[name] = key_node
        self.flatten_mapping(node)
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            mapping[self._key(key_node)] = self.construct_object(value_node, deep=deep)
        return mapping

    def construct_timestamp_as_text(self, node: yaml.Node) -> Any:
        # Kubernetes objects never hold timestamps: the JSON decoders keep them as text.
        return self.construct_scalar(node)  # type: ignore[arg-type]

    def decline(self, node: yaml.Node) -> Any:
        raise _decline(node, f"tag {node.tag} left to the full parser")


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_timestamp_as_text)
for _tag in ("binary", "set", "omap", "pairs"):
    _Loader.add_constructor(f"tag:yaml.org,2002:{_tag}", _Loader.decline)
_Loader.add_constructor(None, _Loader.decline)


class _Lines:
    """The lines of a text as libyaml counts them, split only when a position needs them."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._lines: list[str] | None = None

    def __getitem__(self, number: int) -> str:
        if self._lines is None:
            self._lines = _LINE_BREAK.split(self.text)
        return self._lines[number] if 0 <= number < len(self._lines) else ""


@dataclass(frozen=True)
class FastDocument:
    """One document of a file: its value and the node tree it was built from.

    ``index`` counts every document of the file from 0, as ``SourceFile`` does.
    """

    index: int
    value: Any
    node: yaml.Node
    lines: _Lines

    @property
    def line(self) -> int:
        """1-based line where the document's content starts."""
        return int(self.node.start_mark.line) + 1

    def position(self, pointer: str) -> tuple[int, int]:
        """1-based (line, column) of the node at ``pointer``, placed as ``Document.position``
        places it: a mapping member at its key, a block sequence item at its ``-``. A pointer
        that does not resolve gives the position of its deepest existing part."""
        node = self.node
        line, column = node.start_mark.line, node.start_mark.column
        for token in split(pointer):
            if isinstance(node, yaml.MappingNode):
                member = None
                for key_node, value_node in node.value:  # the last one wins, as after merges
                    if isinstance(key_node, yaml.ScalarNode) and key_node.value == token:
                        member = key_node, value_node
                if member is None:
                    break
                key_node, node = member
                line, column = key_node.start_mark.line, key_node.start_mark.column
            elif isinstance(node, yaml.SequenceNode):
                if not token.isdigit() or int(token) >= len(node.value):
                    break
                flow = bool(node.flow_style)
                node = node.value[int(token)]
                line, column = node.start_mark.line, node.start_mark.column
                if not flow:
                    line, column = self._dash(line, column)
            else:
                break
        return int(line) + 1, int(column) + 1

    def _dash(self, line: int, column: int) -> tuple[int, int]:
        before = self.lines[line][:column].rstrip()
        if before.endswith("-"):
            return line, len(before) - 1
        if before:
            return line, column
        # The item starts on a line of its own: its "-" is on an earlier line.
        for number in range(line - 1, -1, -1):
            text = self.lines[number]
            stripped = text.strip()
            if not stripped or stripped.startswith("#"):
                continue
            match = _LONE_DASH.match(text)
            if match is not None:
                return number, len(match.group(1))
            break
        return line, column


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
    lines = _Lines(body)
    documents: list[FastDocument] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                break
            value = loader.construct_document(node)
            documents.append(FastDocument(len(documents), value, node, lines))
    except FastLoadError:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        raise FastLoadError(line, column, exc.problem or str(exc)) from exc
    except (yaml.YAMLError, ConstructorError, ValueError, TypeError, RecursionError) as exc:
        raise FastLoadError(1, 1, str(exc)) from exc
    finally:
        loader.dispose()
    return documents
