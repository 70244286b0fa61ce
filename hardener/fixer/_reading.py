"""What both YAML readers share, so that they read and place everything the same way.

The fixer reads a file twice over when it has to: ``fastload`` (libyaml's own composer, values
only, for the common case of a file that needs no change) and ``_load`` (a node tree with exact
offsets, for the files that are edited). A difference between the two would make ``fix`` call a
file clean that the full path would change, or ``check`` name other lines than ``fix``. So this
module owns, once:

- line breaks as libyaml counts them, line tables and 0-based (line, column) positions, the
  1-based position of a libyaml mark or error, and what a tab in indentation looks like;
- the tags both readers know and the way a key becomes a JSON string (``1:`` is ``"1"``);
- where the ``-`` that introduces a block sequence item is written (a reported position, and
  the column the editor writes new items at);
- the construction guard (a value its tag cannot construct is the file's error at the value);
- the alias budget against documents that expand without bound ("billion laughs").
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

from hardener.fixer._errors import SourceError
from hardener.model import HardenerError

__all__ = [
    "EXCESSIVE_ALIASING",
    "LINE_BREAK",
    "MAX_EXPANDED_NODES",
    "MERGE_TAG",
    "SCALAR_KEY_TAGS",
    "STR_TAG",
    "TAB_INDENT",
    "TIMESTAMP_TAG",
    "GuardedConstruction",
    "TextLines",
    "check_expansion",
    "dash_offset",
    "duplicate_key",
    "json_key",
    "line_column",
    "line_starts",
    "mark_position",
    "timestamp_as_text",
]

# ---------------------------------------------------------------------------- lines, positions

# The characters libyaml counts as line breaks (YAML 1.1); "\r\n" is one break.
LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")


# A line whose indentation holds a tab before some content (matched at the line's start):
# an error outside block scalars and flow collections, as for kubectl.
TAB_INDENT = re.compile(r" *\t[ \t]*[^\s#]")


def line_starts(text: str) -> list[int]:
    """Offsets where each line starts, counting breaks as libyaml does."""
    return [0, *(m.end() for m in LINE_BREAK.finditer(text))]


def line_column(starts: list[int], offset: int) -> tuple[int, int]:
    """0-based (line, column) of a text offset, given the line start offsets."""
    line = bisect_right(starts, offset) - 1
    return line, offset - starts[line]


def mark_position(mark: Any) -> tuple[int, int]:
    """1-based (line, column) of a libyaml mark, or 1:1 without one."""
    if mark is None:
        return 1, 1
    return mark.line + 1, mark.column + 1


class TextLines:
    """A text's line table, made on first use, and the positions it gives."""

    __slots__ = ("_starts", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._starts: list[int] | None = None

    @property
    def starts(self) -> list[int]:
        """``line_starts`` of the text."""
        if self._starts is None:
            self._starts = line_starts(self.text)
        return self._starts

    def item_position(self, start: int, line: int, column: int) -> tuple[int, int]:
        """0-based (line, column) where a block sequence item is placed: at its ``-``.

        ``start``, ``line`` and ``column`` are where the item itself is written (where it
        stays placed when no ``-`` is found)."""
        offset = dash_offset(self.text, start)
        if offset is None:
            return line, column
        return line_column(self.starts, offset)


def _strip_comment(segment: str) -> str:
    match = re.search(r"(?:^|\s)#", segment)
    return segment[: match.start()] if match else segment


def dash_offset(text: str, start: int) -> int | None:
    """Offset of the ``-`` that introduces the block sequence item written at offset ``start``
    (on the item's line, or alone on an earlier line with only blank lines and comments
    between); None when no such ``-`` is found."""
    end = start
    begin = max(text.rfind("\n", 0, end), text.rfind("\r", 0, end)) + 1
    segment = text[begin:end].rstrip(" \t")
    while True:
        if segment.endswith("-"):
            return begin + len(segment) - 1
        if segment.strip():
            return None
        if begin == 0:
            return None
        end = begin - 1
        if end > 0 and text[end - 1 : end + 1] == "\r\n":
            end -= 1
        begin = max(text.rfind("\n", 0, end), text.rfind("\r", 0, end)) + 1
        segment = _strip_comment(text[begin:end]).rstrip(" \t")


# ---------------------------------------------------------------------------- tags and keys

STR_TAG = "tag:yaml.org,2002:str"
MERGE_TAG = "tag:yaml.org,2002:merge"
TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
# The tags of plain scalars that a key may resolve to besides a string (``1:``, ``true:``).
SCALAR_KEY_TAGS = frozenset(
    {
        "tag:yaml.org,2002:bool",
        "tag:yaml.org,2002:int",
        "tag:yaml.org,2002:float",
        "tag:yaml.org,2002:null",
    }
)


def json_key(key: Any) -> str:
    """A constructed mapping key as the JSON string Kubernetes decodes it to."""
    if isinstance(key, str):
        return key
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)


def duplicate_key(name: str, first_line: int) -> str:
    """The message for a key written twice in one mapping (``first_line`` is 1-based)."""
    return (
        f"duplicate key {name!r} (first at line {first_line}); "
        "YAML loaders disagree on which value wins"
    )


def timestamp_as_text(loader: Any, node: Any) -> Any:
    """The constructor for ``!!timestamp``: Kubernetes objects never hold timestamps, and the
    JSON decoders keep them as text."""
    return loader.construct_scalar(node)


# ---------------------------------------------------------------------------- construction

_PREVIEW = 40


class GuardedConstruction(SafeConstructor):
    """Every failure while building a value becomes a ``ConstructorError`` at the node.

    PyYAML's constructors assume their input fits the tag: ``!!bool maybe`` raises
    ``KeyError``, ``!!int abc`` ``ValueError``. Without this, such a value escapes the reader
    as a traceback; with it, it is the file's error at the value's line and column. Both
    readers construct through it.
    """

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        with _placed(node):
            return super().construct_object(node, deep=deep)

    def construct_document(self, node: Any) -> Any:
        # The bodies of the collection constructors run here, after construct_object returned.
        with _placed(node):
            return super().construct_document(node)


@contextmanager
def _placed(node: Any) -> Iterator[None]:
    """Turn an exception the constructors did not foresee into a ConstructorError at ``node``."""
    try:
        yield
    except (yaml.YAMLError, HardenerError, RecursionError):
        raise
    except Exception as exc:
        raise yaml.constructor.ConstructorError(
            None, None, _construction_problem(node, exc), node.start_mark
        ) from None


def _construction_problem(node: Any, exc: Exception) -> str:
    tag = str(getattr(node, "tag", ""))
    short = "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml") else tag
    value = getattr(node, "value", None)
    if isinstance(value, str):
        preview = value if len(value) <= _PREVIEW else value[:_PREVIEW] + "..."
        what = f"the value {preview!r}"
    else:
        what = "this value"
    return f"{what} is not a valid {short} ({type(exc).__name__}); fix the value or remove the tag"


# ---------------------------------------------------------------------------- the alias budget

MAX_EXPANDED_NODES = 1_000_000
"""How many values a document may expand to once its aliases are followed. Kubernetes' YAML
decoder refuses documents that alias excessively ("billion laughs"); so does hardener, rather
than spend exponential time and memory on one file. Both readers count the same way, with
``check_expansion``: one per value, a mapping key not counted, an aliased collection counted
again at every use."""

EXCESSIVE_ALIASING = (
    f"the document expands to more than {MAX_EXPANDED_NODES:,} values through its aliases "
    "(excessive aliasing); Kubernetes refuses such documents too"
)


def check_expansion(value: Any) -> None:
    """Raise ``SourceError`` (at 1:1; the caller places it) when ``value`` expands past
    ``MAX_EXPANDED_NODES`` values.

    The values built by libyaml's composer share an aliased collection instead of copying it;
    the size of each collection is computed once, so the check costs the number of distinct
    collections, not the size of the expansion.
    """
    sizes: dict[int, int] = {}

    def size(item: Any) -> int:
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        elif isinstance(item, tuple):
            # A member of an ``!!omap`` or ``!!pairs`` list: its value counts, not the pair.
            return size(item[1])
        else:
            return 1
        known = sizes.get(id(item))
        if known is None:
            known = 1
            for child in children:
                known += size(child)
                if known > MAX_EXPANDED_NODES:
                    raise SourceError(1, 1, EXCESSIVE_ALIASING)
            sizes[id(item)] = known
        return known

    if size(value) > MAX_EXPANDED_NODES:
        raise SourceError(1, 1, EXCESSIVE_ALIASING)
