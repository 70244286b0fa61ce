"""The file's own layout, read from what it already holds, so that new text looks like the old.

- Indentation of new nested blocks (``Style``): how far a mapping is indented under its key,
  whether a sequence's ``-`` is indented under its key or flush with it, and the distance from
  ``-`` to an item's content. Read from the nearest enclosing mappings that show them, then from
  the file's majority, then the usual 2/0/2.
- Quoting: the quote the file uses most for strings that need one, and keys or string items
  that are all written with the same quote.
- JSON and flow collections: the indentation step inside brackets, and the ``key: value`` and
  ``a, b`` separators.

Every file-wide answer is computed once per file, on first use.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from hardener.fixer._load import YNode, walk
from hardener.fixer._reading import line_column
from hardener.fixer._spans import TextSpans

__all__ = ["Layout", "Style"]


@dataclass(frozen=True)
class Style:
    """Indentation for new nested blocks (see the module docstring)."""

    map_indent: int
    seq_indent: int
    item_indent: int


# The least number of examples that makes a vote count: a flush sequence (0) is an example
# of its own, an indentation needs one.
_LOWEST = {"map": 1, "seq": 0, "item": 1}


class Layout:
    """The layout of one file, read from its documents' node trees."""

    def __init__(self, spans: TextSpans, roots: list[YNode]) -> None:
        self.spans = spans
        self.roots = roots
        self._defaults: Style | None = None
        self._quote: str | None = None
        self._json_step: str | None = None

    # ----------------------------------------------------------------- indentation
    def _votes(self, node: YNode, votes: dict[str, Counter[int]]) -> None:
        """Count the indentation evidence directly under one node."""
        if node.flow or node.alias:
            return
        if node.kind == "mapping":
            for key, value in node.pairs:
                if value.alias or value.flow or value.anchor or value.line == key.line:
                    continue
                if value.kind == "mapping" and value.pairs:
                    votes["map"][value.pairs[0][0].column - key.column] += 1
                elif value.kind == "sequence" and value.items:
                    dash = self.spans.dash_column(value.items[0])
                    if dash is not None:
                        votes["seq"][dash - key.column] += 1
        elif node.kind == "sequence":
            for item in node.items[:1]:
                dash = self.spans.dash_column(item)
                if (
                    dash is not None
                    and item.kind == "mapping"
                    and item.pairs
                    and not item.flow
                    and item.line == line_column(self.spans.starts, dash + 1)[0]
                ):
                    votes["item"][item.pairs[0][0].column - dash] += 1

    def file_style(self) -> Style:
        """The indentation the file uses most."""
        if self._defaults is None:
            votes: dict[str, Counter[int]] = {"map": Counter(), "seq": Counter(), "item": Counter()}
            for node in walk(self.roots):
                self._votes(node, votes)

            def pick(name: str, default: int) -> int:
                good = [(n, v) for v, n in votes[name].items() if v >= _LOWEST[name]]
                return max(good)[1] if good else default

            self._defaults = Style(pick("map", 2), pick("seq", 0), pick("item", 2))
        return self._defaults

    def style(self, node: YNode | None) -> Style:
        """Indentation for new nested blocks under ``node``: nearest evidence wins."""
        found: dict[str, int] = {}
        current = node
        while current is not None and len(found) < 3:
            votes: dict[str, Counter[int]] = {"map": Counter(), "seq": Counter(), "item": Counter()}
            self._votes(current, votes)
            for name, counter in votes.items():
                good = [(n, v) for v, n in counter.items() if v >= _LOWEST[name]]
                if name not in found and good:
                    found[name] = max(good)[1]
            current = current.parent
        defaults = self.file_style()
        return Style(
            found.get("map", defaults.map_indent),
            found.get("seq", defaults.seq_indent),
            found.get("item", defaults.item_indent),
        )

    # ----------------------------------------------------------------- quoting
    def quote(self) -> str:
        """The quote for strings that need one: the one the file uses most (``"`` on a tie)."""
        if self._quote is None:
            styles = Counter(n.style for n in walk(self.roots) if n.kind == "scalar")
            self._quote = "'" if styles["'"] > styles['"'] else '"'
        return self._quote

    @staticmethod
    def key_quote(node: YNode | None) -> str | None:
        """The quote every key of this mapping is written with, if they all share one."""
        if node is None or node.kind != "mapping" or not node.pairs:
            return None
        styles = {key.style for key, _ in node.pairs}
        if len(styles) == 1 and styles <= {'"', "'"}:
            return styles.pop()
        return None

    @staticmethod
    def item_quote(node: YNode) -> str | None:
        """The quote every string item of this sequence is written with, if they share one."""
        styles = {item.style for item in node.items if item.kind == "scalar" and not item.alias}
        if len(styles) == 1 and styles <= {'"', "'"}:
            return styles.pop()
        return None

    # ----------------------------------------------------------------- JSON and flow
    def json_unit(self) -> str:
        """The file's indentation step inside brackets ("  ", "    ", "\\t"...), read from
        every multi-line flow collection: its first entry's indentation minus its bracket's."""
        if self._json_step is None:
            steps: Counter[str] = Counter()
            for node in walk(self.roots):
                if not node.flow or node.alias:
                    continue
                first = node.pairs[0][0] if node.pairs else (node.items[0] if node.items else None)
                if first is None or first.line == node.line:
                    continue
                inner, outer = self.spans.lead(first.line), self.spans.lead(node.line)
                if len(inner) == first.column and inner.startswith(outer) and inner != outer:
                    steps[inner[len(outer) :]] += 1
            good = [(n, unit) for unit, n in steps.items()]
            self._json_step = max(good)[1] if good else "  "
        return self._json_step

    def separators(self, node: YNode, is_json: bool) -> tuple[str, str]:
        """The file's own ``key: value`` and ``a, b`` separators, from the nearest examples."""
        text = self.spans.text
        key_sep = ": "
        item_sep = ", "
        found_key = not is_json
        found_item = False
        current: YNode | None = node
        while current is not None and not (found_key and found_item):
            if current.flow and current.kind == "mapping" and current.pairs:
                key, value = current.pairs[0]
                between = text[key.end : value.start]
                if not found_key and re.fullmatch(r" *: *", between):
                    key_sep, found_key = between, True
            if current.flow and not found_item:
                if current.kind == "mapping" and len(current.pairs) > 1:
                    gap = text[current.pairs[0][1].end : current.pairs[1][0].start]
                else:
                    items = current.items
                    gap = text[items[0].end : items[1].start] if len(items) > 1 else ""
                if re.fullmatch(r" *, *", gap):
                    item_sep, found_item = gap.strip(" ") + gap[gap.index(",") + 1 :], True
            current = current.parent
        return key_sep, item_sep
