"""Writing JSON values as YAML (or JSON) text that means exactly that value under YAML 1.1.

Kubernetes decodes YAML with 1.1 rules (go-yaml v2 semantics), where ``yes``, ``on``, ``y``,
``0644`` and ``1:30`` are not strings. A string is written plain only when every reader agrees
it is a string: PyYAML's YAML 1.1 resolver, the YAML 1.2 core schema and go-yaml's extra
booleans. Otherwise it is quoted, in the quote style the file uses most.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from yaml.nodes import ScalarNode
from yaml.resolver import Resolver

__all__ = [
    "QuoteStyle",
    "block_lines",
    "flow_text",
    "json_lines",
    "key_text",
    "quoted",
    "scalar_text",
]

QuoteStyle = str  # '"' or "'"

_RESOLVER = Resolver()
_STR_TAG = "tag:yaml.org,2002:str"

# YAML 1.2 core schema and go-yaml v2 values that PyYAML's 1.1 resolver reads as strings.
_OTHER_READERS = re.compile(
    r"""^(?:
        [yYnN]
      | [-+]?0o[0-7]+ | [-+]?0x[0-9a-fA-F]+ | [-+]?0b[01_]+
      | [-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?
      | [-+]?\.(?:inf|Inf|INF) | \.(?:nan|NaN|NAN)
      | [-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?
    )$""",
    re.VERBOSE,
)
_INDICATORS = set("-?:,[]{}#&*!|>'\"%@`")
# Inside flow collections PyYAML misreads a plain scalar with ":?" ("{0:?: 1}" does not load):
# "?" is quoted there too.
_FLOW_INDICATORS = set(",[]{}?")


def _needs_escape(char: str) -> bool:
    code = ord(char)
    return (
        code < 0x20
        or 0x7F <= code <= 0x9F
        or 0xD800 <= code <= 0xDFFF
        or code in (0xFEFF, 0xFFFE, 0xFFFF, 0x2028, 0x2029)
    )


def _plain_ok(text: str, flow: bool) -> bool:
    if not text or text != text.strip() or any(_needs_escape(c) for c in text):
        return False
    if "\n" in text or ": " in text or " #" in text or text.endswith(":"):
        return False
    first = text[0]
    # Only "-" may start a plain scalar here, and only when a non-space follows ("--port").
    if first in _INDICATORS and not (first == "-" and len(text) > 1 and text[1] not in " \t"):
        return False
    if text.startswith(("---", "...")):
        return False
    if flow and any(c in _FLOW_INDICATORS for c in text):
        return False
    if _RESOLVER.resolve(ScalarNode, text, (True, False)) != _STR_TAG:  # type: ignore[no-untyped-call]
        return False
    return not _OTHER_READERS.match(text)


def _double_quoted(text: str) -> str:
    out = []
    for char in text:
        if char == '"':
            out.append('\\"')
        elif char == "\\":
            out.append("\\\\")
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif _needs_escape(char):
            code = ord(char)
            out.append(f"\\x{code:02X}" if code <= 0xFF else f"\\u{code:04X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def quoted(text: str, quote: QuoteStyle) -> str:
    """``text`` as a quoted scalar, single-quoted if asked and possible, else double-quoted."""
    if quote == "'" and not any(_needs_escape(c) for c in text) and "\n" not in text:
        return "'" + text.replace("'", "''") + "'"
    return _double_quoted(text)


def _string(text: str, quote: QuoteStyle, flow: bool) -> str:
    if _plain_ok(text, flow):
        return text
    return quoted(text, quote)


def _float(value: float) -> str:
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    text = repr(value)
    # YAML 1.1 floats need a dot: 1e+20 would read as a string.
    mantissa, _, exponent = text.partition("e")
    if "." not in mantissa:
        mantissa += ".0"
    return mantissa + ("e" + exponent if exponent else "")


def scalar_text(value: Any, quote: QuoteStyle = '"', flow: bool = False) -> str:
    """One scalar (or an empty collection) as YAML text that reads back as exactly ``value``."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, str):
        return _string(value, quote, flow)
    if isinstance(value, dict) and not value:
        return "{}"
    if isinstance(value, list) and not value:
        return "[]"
    raise TypeError(f"not a scalar: {type(value).__name__}")


def key_text(key: str, quote: QuoteStyle, flow: bool = False, key_quote: str | None = None) -> str:
    """A mapping key; ``key_quote`` quotes it always (for files whose keys are all quoted)."""
    if key == "<<" or key_quote is not None:
        return quoted(key, key_quote or quote)
    return _string(key, quote, flow)


def flow_text(value: Any, quote: QuoteStyle, key_quote: str | None = None) -> str:
    """A value in YAML flow style on one line: ``{a: 1, b: [x, y]}``."""
    if isinstance(value, dict) and value:
        inner = ", ".join(
            f"{key_text(k, quote, True, key_quote)}: {flow_text(v, quote, key_quote)}"
            for k, v in value.items()
        )
        return "{" + inner + "}"
    if isinstance(value, list) and value:
        return "[" + ", ".join(flow_text(v, quote, key_quote) for v in value) + "]"
    return scalar_text(value, quote, flow=True)


def _is_collection(value: Any) -> bool:
    return isinstance(value, dict | list) and bool(value)


def block_lines(
    key: str | None,
    value: Any,
    column: int,
    *,
    map_indent: int,
    seq_indent: int,
    item_indent: int,
    quote: QuoteStyle,
    key_quote: str | None = None,
) -> list[str]:
    """Block YAML lines for a mapping member ``key: value`` (or, with key None, a bare value)
    whose first character sits at ``column``.

    ``map_indent`` is how far a nested mapping is indented under its key, ``seq_indent`` how far
    a sequence's ``-`` is indented under its key (0 for sequences flush with their key), and
    ``item_indent`` the distance from ``-`` to an item's content. ``key_quote`` quotes every
    key in that style (for files that quote all their keys).
    """

    def member(name: str, item: Any, col: int) -> list[str]:
        head = " " * col + key_text(name, quote, key_quote=key_quote)
        if isinstance(item, dict) and item:
            return [head + ":", *mapping(item, col + map_indent)]
        if isinstance(item, list) and item:
            return [head + ":", *sequence(item, col + seq_indent)]
        return [f"{head}: {scalar_text(item, quote)}"]

    def mapping(item: dict[str, Any], col: int) -> list[str]:
        lines: list[str] = []
        for name, child in item.items():
            lines.extend(member(name, child, col))
        return lines

    def sequence(items: list[Any], col: int) -> list[str]:
        lines: list[str] = []
        for item in items:
            if _is_collection(item):
                inner = col + item_indent
                nested = mapping(item, inner) if isinstance(item, dict) else sequence(item, inner)
                nested[0] = " " * col + "-" + " " * (item_indent - 1) + nested[0][inner:]
                lines.extend(nested)
            else:
                lines.append(" " * col + "- " + scalar_text(item, quote))
        return lines

    if key is not None:
        return member(key, value, column)
    if isinstance(value, dict) and value:
        return mapping(value, column)
    if isinstance(value, list) and value:
        return sequence(value, column)
    return [" " * column + scalar_text(value, quote)]


def json_lines(value: Any, prefix: str, unit: str, key_sep: str = ": ") -> list[str]:
    """``value`` as indented JSON (``unit`` per level); the first line has no indentation, the
    others start with ``prefix``."""
    text = json.dumps(value, ensure_ascii=False, indent=unit, separators=(",", key_sep))
    lines = text.split("\n")
    return [lines[0], *(prefix + line for line in lines[1:])]
