"""Surgical text edits: RFC 6902 ops turned into line insertions and small in-place replacements.

The editor never re-dumps a document. Each op is routed through the original node tree (so
array indices refer to the original document) and becomes one of:

* new members of an existing block mapping: lines inserted after the mapping's last content
  line (after its last member, before the comments and blank lines that lead to what follows),
  at the column of the existing keys;
* new items of a block sequence: lines inserted after its last item, at the column of its
  ``-`` indicators;
* a scalar replaced by a scalar: only the scalar's own characters change, so quoting elsewhere,
  anchors, end-of-line comments and trailing whitespace stay;
* a member that holds nothing, ``null``, ``~``, ``{}`` or ``[]`` and receives a block value:
  the old value's characters are removed from the key's line (a comment after it stays, as in
  ``key: # comment``) and the new block is inserted below, indented like its neighbours;
* a non-empty flow collection (``{a: 1}``, ``[a, b]``) and every collection of a JSON file stays
  in flow style: the new entries are written before the closing bracket, on the same line for
  a one-line collection, one per line (with the file's JSON indentation) for a multi-line one.

Nested values are emitted as block YAML indented and quoted like the file around them (see
``hardener.fixer._layout``); scalars are written so that YAML 1.1 reads them back as exactly
the JSON value (see ``hardener.fixer._emit``).

The editor is built from four parts: ``_route`` routes the ops through the node tree into
``DocumentEdits``, ``_layout`` reads the file's indentation, quoting and separators, ``_spans``
knows which characters a node holds and applies the edits, and this module writes the text of
each edit.

What is refused with ``EditError`` (the file is then reported, never written): edits that go
through or into an anchored node or an alias (every alias would change with it), keys that come
from a ``<<`` merge, inserting in the middle of a sequence, replacing a whole document, turning
a block collection into a scalar, and removing members. After all edits the caller re-parses
the text and compares values (``SourceFile.apply``), so a surprise is caught, not written.
"""

from __future__ import annotations

import json
from typing import Any

from hardener.fixer._emit import block_lines, flow_text, json_lines, key_text, quoted, scalar_text
from hardener.fixer._errors import EditError
from hardener.fixer._layout import Layout, Style
from hardener.fixer._load import YNode, same_json
from hardener.fixer._reading import line_column
from hardener.fixer._route import DocumentEdits, Set, route
from hardener.fixer._spans import TextSpans
from hardener.model import Operation

__all__ = ["TextEditor"]


class TextEditor:
    """Collects the text edits for the documents of one file, then produces the new text."""

    def __init__(self, text: str, newline: str, roots: list[YNode | None]) -> None:
        self.spans = TextSpans(text, newline)
        self.layout = Layout(self.spans, [root for root in roots if root is not None])

    def record_ops(self, root: YNode, value: Any, ops: list[Operation]) -> None:
        """Route the ops of one document through its original node tree and record edits."""
        # A JSON file: the text starts with its bracket. (`--- {a: 1}` is YAML in flow style.)
        is_json = root.flow and self.spans.text.lstrip()[:1] in ("{", "[")
        edits = DocumentEdits(json=is_json)
        for op in ops:
            route(edits, root, value, op)
        for item in edits.sets.values():
            self._emit_set(edits, item)
        for node, members in edits.adds.values():
            if members:
                self._emit_adds(edits, node, members)
        for node, items in edits.appends.values():
            if items:
                self._emit_appends(edits, node, items)

    def result(self) -> str:
        """The text with every recorded edit applied."""
        return self.spans.result()

    def _block(self, value: Any, column: int, style: Style, keys: YNode | None) -> list[str]:
        """Block lines for ``value`` at ``column``, in ``style`` and quoted as the file quotes
        (keys as those of the mapping ``keys``)."""
        return block_lines(
            None,
            value,
            column,
            map_indent=style.map_indent,
            seq_indent=style.seq_indent,
            item_indent=style.item_indent,
            quote=self.layout.quote(),
            key_quote=self.layout.key_quote(keys),
        )

    def _to_block(self, key: YNode, child: YNode, new: Any) -> None:
        """``key: <nothing|null|{}|[]|*alias>`` becomes ``key:`` followed by a block value."""
        spans = self.spans
        below = child.line != key.end_line and not child.empty_scalar
        if below:
            # `key:` with `{}` (or null) alone on the next line, as Helm renders it: those
            # whole lines make way for the block.
            last = spans.last_line(child)
            start, end = spans.value_span(child)
            before = spans.text[spans.starts[child.line] : start]
            after = spans.text[end : spans.starts[last] + len(spans.line_text(last))]
            if before.strip() or after.strip():
                raise EditError(
                    f"line {child.line + 1}: a value written below its key next to other text "
                    "cannot be replaced surgically; edit this file by hand"
                )
        elif not child.empty_scalar:
            start, end = spans.value_span(child)
            if spans.last_line(child) != child.line:
                raise EditError(
                    f"line {child.line + 1}: a multi-line value cannot be replaced surgically"
                )
            while start > 0 and spans.text[start - 1] in " \t":
                start -= 1
            spans.replace(start, end, "", child.depth)
        style = self.layout.style(key.parent)
        if isinstance(new, dict):
            column = key.column + style.map_indent
        else:
            column = key.column + style.seq_indent
        lines = self._block(new, column, style, key.parent)
        if below:
            spans.replace_lines(child.line, spans.last_line(child), lines, child.depth)
        else:
            spans.insert_after_line(spans.last_line(child), lines, child.depth)

    def _inline_text(self, edits: DocumentEdits, value: Any, flow: bool) -> str:
        if edits.json:
            return json.dumps(value, ensure_ascii=False)
        if isinstance(value, dict | list) and value:
            return flow_text(value, self.layout.quote())
        return scalar_text(value, self.layout.quote(), flow=flow)

    def _emit_set(self, edits: DocumentEdits, item: Set) -> None:
        child, old, new = item.child, item.old, item.new
        if same_json(old, new):
            return
        path_hint = f"line {child.line + 1}"
        if child.aliased:
            raise EditError(
                f"{path_hint}: changes the anchored node &{child.anchor}, which would change "
                "every alias of it; edit this file by hand"
            )
        if not child.alias and child.kind == "mapping" and isinstance(new, dict):
            if child.has_merge:
                raise EditError(f"{path_hint}: a mapping with a '<<' merge cannot be rewritten")
            removed = [k for k in old if k not in new]
            if removed:
                raise EditError(f"{path_hint}: removing {removed[0]!r} is not supported")
            for name, value in new.items():
                if name in child.members:
                    key, grand = child.members[name]
                    self._emit_set(edits, Set(child, name, key, grand, old[name], value))
                else:
                    edits.adds_to(child)[name] = value
            return
        if (
            not child.alias
            and child.kind == "sequence"
            and isinstance(new, list)
            and len(new) >= len(old)
            and same_json(new[: len(old)], old)
        ):
            edits.appends_to(child).extend(new[len(old) :])
            return
        if child.kind != "scalar" and not child.flow and not child.alias:
            raise EditError(
                f"{path_hint}: replacing a block collection by a different kind of value is "
                "not supported; edit this file by hand"
            )
        parent = item.parent
        big = isinstance(new, dict | list) and bool(new)
        if big and not edits.json and not parent.flow and item.key is not None:
            self._to_block(item.key, child, new)
            return
        self.spans.replace_inline(child, self._inline_text(edits, new, parent.flow), child.depth)

    def _emit_adds(self, edits: DocumentEdits, node: YNode, members: dict[str, Any]) -> None:
        if node.flow:
            self._emit_flow(edits, node, [(k, v) for k, v in members.items()])
            return
        lines = self._block(members, node.pairs[0][0].column, self.layout.style(node), node)
        self.spans.insert_after_line(self.spans.last_line(node), lines, node.depth)

    def _emit_appends(self, edits: DocumentEdits, node: YNode, items: list[Any]) -> None:
        if node.flow:
            self._emit_flow(edits, node, [(None, v) for v in items])
            return
        dash = self.spans.dash_column(node.items[0])
        if dash is None:
            raise EditError(f"line {node.line + 1}: cannot find the '-' of this sequence")
        item_quote = self.layout.item_quote(node)
        if item_quote is not None and all(isinstance(v, str) for v in items):
            lines = [" " * dash + "- " + quoted(v, item_quote) for v in items]
        else:
            lines = self._block(items, dash, self.layout.style(node), node.items[0])
        self.spans.insert_after_line(self.spans.last_line(node), lines, node.depth)

    def _owner_key(self, node: YNode) -> YNode | None:
        parent = node.parent
        if parent is None or parent.kind != "mapping" or parent.flow:
            return None
        for key, value in parent.pairs:
            if value is node:
                return key
        return None

    def _emit_flow(
        self, edits: DocumentEdits, node: YNode, entries: list[tuple[str | None, Any]]
    ) -> None:
        """New entries of a flow collection (or of any collection in a JSON document)."""
        spans, layout = self.spans, self.layout
        text = spans.text
        close = node.end - 1
        if text[close : close + 1] not in ("}", "]"):
            raise EditError(f"line {node.line + 1}: cannot find the end of this flow collection")
        children = [v for _, v in node.pairs] if node.kind == "mapping" else node.items
        if not children:
            key = self._owner_key(node)
            if key is not None and not edits.json:
                # `securityContext: {}` becomes a block mapping, like the rest of the file.
                new: Any = (
                    {k: v for k, v in entries if k is not None}
                    if node.kind == "mapping"
                    else [v for _, v in entries]
                )
                self._to_block(key, node, new)
                return
        open_at = text.find("{" if node.kind == "mapping" else "[", node.start, close)
        if open_at < 0:
            raise EditError(f"line {node.line + 1}: cannot find the start of this flow collection")
        open_line = line_column(spans.starts, open_at)[0]
        outer = spans.lead(open_line)
        unit = layout.json_unit() if edits.json else "  "
        if children:
            first = node.pairs[0][0] if node.kind == "mapping" else node.items[0]
            multi = first.line != open_line
            lead = spans.lead(first.line)
            prefix = lead if len(lead) == first.column else " " * first.column
            last = children[-1]
            # Entries of a multi-line collection follow the last one: written on one line
            # when it is a non-empty collection on one line, else spread out like the file.
            compact = not multi or (
                last.kind != "scalar"
                and bool(last.pairs or last.items)
                and last.line == last.end_line
            )
        else:
            multi = edits.json
            prefix = outer + unit
            compact = not multi
        key_sep, item_sep = layout.separators(node, edits.json)
        quote = layout.quote()
        key_quote = layout.key_quote(node)
        item_quote = layout.item_quote(node) if node.kind == "sequence" else None
        nl = spans.newline

        def entry(name: str | None, value: Any) -> str:
            if edits.json:
                if compact:
                    body = json.dumps(value, ensure_ascii=False, separators=(item_sep, key_sep))
                else:
                    body = nl.join(json_lines(value, prefix, unit, key_sep))
                if name is None:
                    return body
                return json.dumps(name, ensure_ascii=False) + key_sep + body
            if item_quote is not None and name is None and isinstance(value, str):
                return quoted(value, item_quote)
            body = flow_text(value, quote, key_quote)
            return body if name is None else key_text(name, quote, True, key_quote) + ": " + body

        texts = [entry(k, v) for k, v in entries]
        if not children:
            if multi:
                body = ("," + nl).join(prefix + t for t in texts)
                new_text = text[open_at] + nl + body + nl + outer + text[close]
            else:
                new_text = text[open_at] + item_sep.join(texts) + text[close]
            spans.replace(open_at, close + 1, new_text, node.depth)
            return
        last_end = last.end
        if node.kind == "mapping" and last.empty_scalar:
            last_end = max(last_end, node.pairs[-1][0].end)
        between = text[last_end:close]
        if "#" in between:
            raise EditError(f"line {node.line + 1}: a comment at the end of a flow collection")
        comma = between.find(",")
        if multi:
            pieces = [nl + prefix + t for t in texts]
            if comma >= 0:
                at = last_end + comma + 1
                new_text = "".join(p + "," for p in pieces)
            else:
                at = last_end
                new_text = "".join("," + p for p in pieces)
        elif comma >= 0:
            at = last_end + comma + 1
            new_text = "".join(item_sep[1:] + t + "," for t in texts)
        else:
            at = last_end
            new_text = "".join(item_sep + t for t in texts)
        spans.replace(at, at, new_text, node.depth)
