"""The editor's span arithmetic: which characters of the text a node holds, and the edits.

An edit replaces the characters ``start:end`` of the original text (an insertion has
``start == end``). Edits are recorded against the original text only, so every offset stays
valid until ``result`` applies them all at once; two edits that overlap are refused. Lines are
counted as libyaml counts them (``hardener.fixer._reading``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hardener.fixer._errors import EditError
from hardener.fixer._load import YNode
from hardener.fixer._reading import dash_offset, line_column, line_starts

__all__ = ["Edit", "TextSpans"]


@dataclass
class Edit:
    """Replace ``start:end`` of the original text with ``text``. ``depth`` (the node's depth)
    orders edits at the same place: the deeper one first."""

    start: int
    end: int
    text: str
    depth: int = 0


class TextSpans:
    """One file's text, its line table and the edits recorded against it."""

    def __init__(self, text: str, newline: str) -> None:
        self.text = text
        self.newline = newline
        self.starts = line_starts(text)
        self.edits: list[Edit] = []

    # ----------------------------------------------------------------- reading lines
    def line_text(self, line: int) -> str:
        """Line ``line`` (0-based) without its line break."""
        end = self.starts[line + 1] if line + 1 < len(self.starts) else len(self.text)
        return self.text[self.starts[line] : end].rstrip("\r\n\x85\u2028\u2029")

    def lead(self, line: int) -> str:
        """The whitespace a line starts with (spaces, or tabs in a JSON file)."""
        text = self.line_text(line)
        return text[: len(text) - len(text.lstrip(" \t"))]

    def dash_column(self, item: YNode) -> int | None:
        """The column of the ``-`` that introduces a block sequence item (None if not found)."""
        offset = dash_offset(self.text, item.start)
        return None if offset is None else line_column(self.starts, offset)[1]

    def last_line(self, node: YNode) -> int:
        """The last line that holds ``node``'s own text (0-based)."""
        if node.alias or node.flow:
            return node.end_line if node.end_column > 0 else node.end_line - 1
        if node.kind == "scalar":
            if node.empty_scalar:
                return node.line
            line = node.end_line if node.end_column > 0 else node.end_line - 1
            if node.style in ("|", ">"):
                header = re.match(
                    r"[^|>\n]*[|>]([-+0-9]*)", self.text[node.start : node.start + 80]
                )
                keep = header is not None and "+" in header.group(1)
                while not keep and line > node.line and not self.line_text(line).strip():
                    line -= 1
            return max(line, node.line)
        if node.kind == "mapping":
            if not node.pairs:
                return node.line
            key, value = node.pairs[-1]
            return max(key.end_line, self.last_line(value))
        if not node.items:
            return node.line
        return self.last_line(node.items[-1])

    def value_span(self, node: YNode) -> tuple[int, int]:
        """The characters of a scalar/alias/flow value, without trailing blank lines."""
        if node.kind == "scalar" and node.style in ("|", ">") and not node.alias:
            last = self.last_line(node)
            end = self.starts[last] + len(self.line_text(last))
            return node.start, end
        return node.start, node.end

    # ----------------------------------------------------------------- recording edits
    def replace(self, start: int, end: int, text: str, depth: int) -> None:
        """Record that ``start:end`` becomes ``text``."""
        self.edits.append(Edit(start, end, text, depth))

    def insert_after_line(self, line: int, lines: list[str], depth: int) -> None:
        """New lines after line ``line`` (at the end of a text without a final line break,
        a line break first)."""
        nl = self.newline
        if line + 1 < len(self.starts):
            at = self.starts[line + 1]
            self.replace(at, at, "".join(text + nl for text in lines), depth)
        else:
            end = len(self.text)
            self.replace(end, end, "".join(nl + text for text in lines), depth)

    def replace_lines(self, first: int, last: int, lines: list[str], depth: int) -> None:
        """Lines ``first`` to ``last`` (their line breaks kept) become ``lines``."""
        nl = self.newline
        begin = self.starts[first]
        if last + 1 < len(self.starts):
            end = self.starts[last + 1]
            text = "".join(line + nl for line in lines)
        else:
            end = len(self.text)
            text = nl.join(lines)
        self.replace(begin, end, text, depth)

    def replace_inline(self, node: YNode, text: str, depth: int) -> None:
        """A value's own characters become ``text`` (a value written as nothing gets it after
        its ``key:``, separated by a space)."""
        if node.empty_scalar:
            before = self.text[node.start - 1 : node.start] if node.start > 0 else ""
            prefix = "" if before in (" ", "\t") else " "
            self.replace(node.start, node.start, prefix + text, depth)
            return
        start, end = self.value_span(node)
        self.replace(start, end, text, depth)

    # ----------------------------------------------------------------- result
    def result(self) -> str:
        """The text with every recorded edit applied."""
        edits = sorted(self.edits, key=lambda e: (e.start, e.end, -e.depth))
        out: list[str] = []
        position = 0
        for edit in edits:
            if edit.start < position:
                raise EditError("two changes overlap in the text")
            out.append(self.text[position : edit.start])
            out.append(edit.text)
            position = edit.end
        out.append(self.text[position:])
        return "".join(out)
