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

Nested values are emitted as block YAML whose indentation follows the surrounding block: the
mapping indent, whether sequences are indented under their key or flush with it, and the
distance from ``-`` to an item's content are read from the nearest enclosing mappings that show
them, then from the file's majority, then the usual 2/0/2. Scalars are written so that YAML 1.1
reads them back as exactly the JSON value (see ``hardener.fixer._emit``).

What is refused with ``EditError`` (the file is then reported, never written): edits that go
through or into an anchored node or an alias (every alias would change with it), keys that come
from a ``<<`` merge, inserting in the middle of a sequence, replacing a whole document, turning
a block collection into a scalar, and removing members. After all edits the caller re-parses
the text and compares values (``SourceFile.apply``), so a surprise is caught, not written.
"""

from __future__ import annotations

import copy
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import jsonpatch

from hardener.fixer._emit import (
    block_lines,
    flow_text,
    json_lines,
    key_text,
    quoted,
    scalar_text,
)
from hardener.fixer._errors import EditError
from hardener.fixer._load import YNode, line_column, line_starts, same_json
from hardener.model import Operation
from hardener.pointer import join, split

__all__ = ["TextEditor", "dash_offset"]


def _strip_comment(segment: str) -> str:
    match = re.search(r"(?:^|\s)#", segment)
    return segment[: match.start()] if match else segment


def dash_offset(text: str, item: YNode) -> int | None:
    """Offset of the ``-`` that introduces ``item`` in a block sequence (None if not found)."""
    end = item.start
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


@dataclass
class _Edit:
    start: int
    end: int
    text: str
    depth: int = 0


@dataclass
class _Set:
    parent: YNode
    token: str
    key: YNode | None
    child: YNode
    old: Any
    new: Any


@dataclass
class _DocumentPlan:
    json: bool
    adds: dict[int, tuple[YNode, dict[str, Any]]] = field(default_factory=dict)
    appends: dict[int, tuple[YNode, list[Any]]] = field(default_factory=dict)
    sets: dict[tuple[int, str], _Set] = field(default_factory=dict)


@dataclass(frozen=True)
class _Style:
    map_indent: int
    seq_indent: int
    item_indent: int


def _walk(roots: list[YNode]) -> list[YNode]:
    nodes: list[YNode] = []
    stack = list(roots)
    while stack:
        node = stack.pop()
        nodes.append(node)
        stack.extend(v for pair in node.pairs for v in pair)
        stack.extend(node.items)
    return nodes


def _patch_value(value: Any, tokens: list[str], op: Operation, new: Any, path: str) -> Any:
    """Apply the rest of an op to a value that an earlier op of the same plan created."""
    try:
        return jsonpatch.apply_patch(value, [{"op": op["op"], "path": join(tokens), "value": new}])
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
        raise EditError(f"{path}: {exc}") from None


class TextEditor:
    """Collects the text edits for the documents of one file, then produces the new text."""

    def __init__(self, text: str, newline: str, roots: list[YNode | None]) -> None:
        self.text = text
        self.newline = newline
        self.starts = line_starts(text)
        self.edits: list[_Edit] = []
        self.roots = [root for root in roots if root is not None]
        self._defaults: _Style | None = None
        self._quote: str | None = None
        self._json_step: str | None = None

    # ----------------------------------------------------------------- file-level style
    def _line_text(self, line: int) -> str:
        end = self.starts[line + 1] if line + 1 < len(self.starts) else len(self.text)
        return self.text[self.starts[line] : end].rstrip("\r\n\x85\u2028\u2029")

    def _dash_column(self, item: YNode) -> int | None:
        offset = dash_offset(self.text, item)
        return None if offset is None else line_column(self.starts, offset)[1]

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
                    dash = self._dash_column(value.items[0])
                    if dash is not None:
                        votes["seq"][dash - key.column] += 1
        elif node.kind == "sequence":
            for item in node.items[:1]:
                dash = self._dash_column(item)
                if (
                    dash is not None
                    and item.kind == "mapping"
                    and item.pairs
                    and not item.flow
                    and item.line == line_column(self.starts, dash + 1)[0]
                ):
                    votes["item"][item.pairs[0][0].column - dash] += 1

    def _file_style(self) -> _Style:
        if self._defaults is None:
            votes: dict[str, Counter[int]] = {"map": Counter(), "seq": Counter(), "item": Counter()}
            for node in _walk(self.roots):
                self._votes(node, votes)

            def pick(name: str, default: int, low: int) -> int:
                good = [(n, v) for v, n in votes[name].items() if v >= low]
                return max(good)[1] if good else default

            self._defaults = _Style(pick("map", 2, 1), pick("seq", 0, 0), pick("item", 2, 1))
        return self._defaults

    def _style(self, node: YNode) -> _Style:
        """Indentation for new nested blocks under ``node``: nearest evidence wins."""
        found: dict[str, int] = {}
        current: YNode | None = node
        while current is not None and len(found) < 3:
            votes: dict[str, Counter[int]] = {"map": Counter(), "seq": Counter(), "item": Counter()}
            self._votes(current, votes)
            for name, counter in votes.items():
                good = [(n, v) for v, n in counter.items() if v >= (0 if name == "seq" else 1)]
                if name not in found and good:
                    found[name] = max(good)[1]
            current = current.parent
        defaults = self._file_style()
        return _Style(
            found.get("map", defaults.map_indent),
            found.get("seq", defaults.seq_indent),
            found.get("item", defaults.item_indent),
        )

    @staticmethod
    def _key_quote(node: YNode | None) -> str | None:
        """The quote every key of this mapping is written with, if they all share one."""
        if node is None or node.kind != "mapping" or not node.pairs:
            return None
        styles = {key.style for key, _ in node.pairs}
        if len(styles) == 1 and styles <= {'"', "'"}:
            return styles.pop()
        return None

    @staticmethod
    def _item_quote(node: YNode) -> str | None:
        """The quote every string item of this sequence is written with, if they share one."""
        styles = {item.style for item in node.items if item.kind == "scalar" and not item.alias}
        if len(styles) == 1 and styles <= {'"', "'"}:
            return styles.pop()
        return None

    def _quote_style(self) -> str:
        if self._quote is None:
            styles = Counter(n.style for n in _walk(self.roots) if n.kind == "scalar")
            self._quote = "'" if styles["'"] > styles['"'] else '"'
        return self._quote

    def _lead(self, line: int) -> str:
        """The whitespace a line starts with (spaces, or tabs in a JSON file)."""
        text = self._line_text(line)
        return text[: len(text) - len(text.lstrip(" \t"))]

    def _json_unit(self) -> str:
        """The file's indentation step inside brackets ("  ", "    ", "\t"...), read from
        every multi-line flow collection: its first entry's indentation minus its bracket's."""
        if self._json_step is None:
            steps: Counter[str] = Counter()
            for node in _walk(self.roots):
                if not node.flow or node.alias:
                    continue
                first = node.pairs[0][0] if node.pairs else (node.items[0] if node.items else None)
                if first is None or first.line == node.line:
                    continue
                inner, outer = self._lead(first.line), self._lead(node.line)
                if len(inner) == first.column and inner.startswith(outer) and inner != outer:
                    steps[inner[len(outer) :]] += 1
            good = [(n, unit) for unit, n in steps.items()]
            self._json_step = max(good)[1] if good else "  "
        return self._json_step

    # ----------------------------------------------------------------- routing ops
    def plan(self, root: YNode, value: Any, ops: list[Operation]) -> None:
        """Route the ops of one document through its original node tree and record edits."""
        # A JSON file: the text starts with its bracket. (`--- {a: 1}` is YAML in flow style.)
        is_json = root.flow and self.text.lstrip()[:1] in ("{", "[")
        plan = _DocumentPlan(json=is_json)
        for op in ops:
            self._route(plan, root, value, op)
        for item in plan.sets.values():
            self._emit_set(plan, item)
        for node, members in plan.adds.values():
            if members:
                self._emit_adds(plan, node, members)
        for node, items in plan.appends.values():
            if items:
                self._emit_appends(plan, node, items)

    @staticmethod
    def _guard(node: YNode, path: str) -> None:
        if node.alias:
            raise EditError(
                f"{path}: goes through an alias (line {node.line + 1}); "
                "edit this file by hand or expand the alias"
            )
        if node.aliased:
            raise EditError(
                f"{path}: changes the anchored node &{node.anchor} (line {node.line + 1}), "
                "which would change every alias of it; edit this file by hand"
            )

    def _route(self, plan: _DocumentPlan, root: YNode, value: Any, op: Operation) -> None:
        path = op["path"]
        name = op["op"]
        if name not in ("add", "replace"):
            raise EditError(f"{path}: unsupported op {name!r}")
        tokens = split(path)
        if not tokens:
            raise EditError("replacing a whole document is not a surgical edit")
        new = copy.deepcopy(op["value"])
        node, old = root, value
        for i, token in enumerate(tokens):
            last = i == len(tokens) - 1
            rest = tokens[i + 1 :]
            self._guard(node, path)
            slot = (id(node), token)
            if node.kind == "mapping":
                member = node.members.get(token)
                if member is not None:
                    if slot in plan.sets:
                        pending = plan.sets[slot]
                        pending.new = (
                            new if last else _patch_value(pending.new, rest, op, new, path)
                        )
                        return
                    if last:
                        plan.sets[slot] = _Set(node, token, member[0], member[1], old[token], new)
                        return
                    node, old = member[1], old[token]
                    continue
                if node.has_merge and isinstance(old, dict) and token in old:
                    raise EditError(
                        f"{path}: the key {token!r} comes from a '<<' merge (line "
                        f"{node.line + 1}); edit this file by hand"
                    )
                adds = plan.adds.setdefault(id(node), (node, {}))[1]
                if token in adds:
                    adds[token] = new if last else _patch_value(adds[token], rest, op, new, path)
                    return
                if not last or name != "add":
                    raise EditError(f"{path}: no member {token!r} to change")
                adds[token] = new
                return
            if node.kind == "sequence":
                count = len(node.items)
                appended = plan.appends.setdefault(id(node), (node, []))[1]
                if token == "-":
                    if not last:
                        raise EditError(f"{path}: '-' must be the last token")
                    appended.append(new)
                    return
                if not token.isdigit():
                    raise EditError(f"{path}: {token!r} is not an array index")
                index = int(token)
                if index < count:
                    if slot in plan.sets:
                        pending = plan.sets[slot]
                        pending.new = (
                            new if last else _patch_value(pending.new, rest, op, new, path)
                        )
                        return
                    if last:
                        if name == "add":
                            raise EditError(
                                f"{path}: inserting into the middle of a sequence is not supported"
                            )
                        plan.sets[slot] = _Set(
                            node, token, None, node.items[index], old[index], new
                        )
                        return
                    node, old = node.items[index], old[index]
                    continue
                offset = index - count
                if offset < len(appended):
                    if last and name == "add":
                        appended.insert(offset, new)
                    elif last:
                        appended[offset] = new
                    else:
                        appended[offset] = _patch_value(appended[offset], rest, op, new, path)
                    return
                if offset == len(appended) and last and name == "add":
                    appended.append(new)
                    return
                raise EditError(f"{path}: index {index} is out of range")
            raise EditError(f"{path}: cannot descend into a scalar (line {node.line + 1})")

    # ----------------------------------------------------------------- text helpers
    def _last_line(self, node: YNode) -> int:
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
                while not keep and line > node.line and not self._line_text(line).strip():
                    line -= 1
            return max(line, node.line)
        if node.kind == "mapping":
            if not node.pairs:
                return node.line
            key, value = node.pairs[-1]
            return max(key.end_line, self._last_line(value))
        if not node.items:
            return node.line
        return self._last_line(node.items[-1])

    def _insert_after_line(self, line: int, lines: list[str], depth: int) -> None:
        nl = self.newline
        if line + 1 < len(self.starts):
            self.edits.append(
                _Edit(
                    self.starts[line + 1],
                    self.starts[line + 1],
                    "".join(text + nl for text in lines),
                    depth,
                )
            )
        else:
            end = len(self.text)
            self.edits.append(_Edit(end, end, "".join(nl + text for text in lines), depth))

    def _replace_lines(self, first: int, last: int, lines: list[str], depth: int) -> None:
        nl = self.newline
        begin = self.starts[first]
        if last + 1 < len(self.starts):
            end = self.starts[last + 1]
            text = "".join(line + nl for line in lines)
        else:
            end = len(self.text)
            text = nl.join(lines)
        self.edits.append(_Edit(begin, end, text, depth))

    def _value_span(self, node: YNode) -> tuple[int, int]:
        """The characters of a scalar/alias/flow value, without trailing blank lines."""
        if node.kind == "scalar" and node.style in ("|", ">") and not node.alias:
            last = self._last_line(node)
            end = self.starts[last] + len(self._line_text(last))
            return node.start, end
        return node.start, node.end

    def _replace_inline(self, node: YNode, text: str, depth: int) -> None:
        if node.empty_scalar:
            before = self.text[node.start - 1 : node.start] if node.start > 0 else ""
            prefix = "" if before in (" ", "\t") else " "
            self.edits.append(_Edit(node.start, node.start, prefix + text, depth))
            return
        start, end = self._value_span(node)
        self.edits.append(_Edit(start, end, text, depth))

    def _to_block(self, key: YNode, child: YNode, new: Any) -> None:
        """``key: <nothing|null|{}|[]|*alias>`` becomes ``key:`` followed by a block value."""
        below = child.line != key.end_line and not child.empty_scalar
        if below:
            # `key:` with `{}` (or null) alone on the next line, as Helm renders it: those
            # whole lines make way for the block.
            last = self._last_line(child)
            start, end = self._value_span(child)
            before = self.text[self.starts[child.line] : start]
            after = self.text[end : self.starts[last] + len(self._line_text(last))]
            if before.strip() or after.strip():
                raise EditError(
                    f"line {child.line + 1}: a value written below its key next to other text "
                    "cannot be replaced surgically; edit this file by hand"
                )
        elif not child.empty_scalar:
            start, end = self._value_span(child)
            if self._last_line(child) != child.line:
                raise EditError(
                    f"line {child.line + 1}: a multi-line value cannot be replaced surgically"
                )
            while start > 0 and self.text[start - 1] in " \t":
                start -= 1
            self.edits.append(_Edit(start, end, "", child.depth))
        style = self._style(key.parent) if key.parent is not None else self._file_style()
        if isinstance(new, dict):
            column = key.column + style.map_indent
        else:
            column = key.column + style.seq_indent
        lines = block_lines(
            None,
            new,
            column,
            map_indent=style.map_indent,
            seq_indent=style.seq_indent,
            item_indent=style.item_indent,
            quote=self._quote_style(),
            key_quote=self._key_quote(key.parent),
        )
        if below:
            self._replace_lines(child.line, self._last_line(child), lines, child.depth)
        else:
            self._insert_after_line(self._last_line(child), lines, child.depth)

    def _inline_text(self, plan: _DocumentPlan, value: Any, flow: bool) -> str:
        if plan.json:
            return json.dumps(value, ensure_ascii=False)
        if isinstance(value, dict | list) and value:
            return flow_text(value, self._quote_style())
        return scalar_text(value, self._quote_style(), flow=flow)

    # ----------------------------------------------------------------- emitting
    def _emit_set(self, plan: _DocumentPlan, item: _Set) -> None:
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
                    sub = _Set(child, name, key, grand, old[name], value)
                    self._emit_set(plan, sub)
                else:
                    adds = plan.adds.setdefault(id(child), (child, {}))[1]
                    adds[name] = value
            return
        if (
            not child.alias
            and child.kind == "sequence"
            and isinstance(new, list)
            and len(new) >= len(old)
            and same_json(new[: len(old)], old)
        ):
            plan.appends.setdefault(id(child), (child, []))[1].extend(new[len(old) :])
            return
        if child.kind != "scalar" and not child.flow and not child.alias:
            raise EditError(
                f"{path_hint}: replacing a block collection by a different kind of value is "
                "not supported; edit this file by hand"
            )
        parent = item.parent
        big = isinstance(new, dict | list) and bool(new)
        if big and not plan.json and not parent.flow and item.key is not None:
            self._to_block(item.key, child, new)
            return
        self._replace_inline(child, self._inline_text(plan, new, parent.flow), child.depth)

    def _emit_adds(self, plan: _DocumentPlan, node: YNode, members: dict[str, Any]) -> None:
        if node.flow:
            self._emit_flow(plan, node, [(k, v) for k, v in members.items()])
            return
        column = node.pairs[0][0].column
        style = self._style(node)
        lines: list[str] = []
        for name, value in members.items():
            lines.extend(
                block_lines(
                    name,
                    value,
                    column,
                    map_indent=style.map_indent,
                    seq_indent=style.seq_indent,
                    item_indent=style.item_indent,
                    quote=self._quote_style(),
                    key_quote=self._key_quote(node),
                )
            )
        self._insert_after_line(self._last_line(node), lines, node.depth)

    def _emit_appends(self, plan: _DocumentPlan, node: YNode, items: list[Any]) -> None:
        if node.flow:
            self._emit_flow(plan, node, [(None, v) for v in items])
            return
        dash = self._dash_column(node.items[0])
        if dash is None:
            raise EditError(f"line {node.line + 1}: cannot find the '-' of this sequence")
        style = self._style(node)
        item_quote = self._item_quote(node)
        if item_quote is not None and all(isinstance(v, str) for v in items):
            lines = [" " * dash + "- " + quoted(v, item_quote) for v in items]
            self._insert_after_line(self._last_line(node), lines, node.depth)
            return
        lines = block_lines(
            None,
            items,
            dash,
            map_indent=style.map_indent,
            seq_indent=style.seq_indent,
            item_indent=style.item_indent,
            quote=self._quote_style(),
            key_quote=self._key_quote(node.items[0] if node.items else None),
        )
        self._insert_after_line(self._last_line(node), lines, node.depth)

    def _owner_key(self, node: YNode) -> YNode | None:
        parent = node.parent
        if parent is None or parent.kind != "mapping" or parent.flow:
            return None
        for key, value in parent.pairs:
            if value is node:
                return key
        return None

    def _emit_flow(
        self, plan: _DocumentPlan, node: YNode, entries: list[tuple[str | None, Any]]
    ) -> None:
        """New entries of a flow collection (or of any collection in a JSON document)."""
        close = node.end - 1
        if self.text[close : close + 1] not in ("}", "]"):
            raise EditError(f"line {node.line + 1}: cannot find the end of this flow collection")
        children = [v for _, v in node.pairs] if node.kind == "mapping" else node.items
        if not children:
            key = self._owner_key(node)
            if key is not None and not plan.json:
                # `securityContext: {}` becomes a block mapping, like the rest of the file.
                new: Any = (
                    {k: v for k, v in entries if k is not None}
                    if node.kind == "mapping"
                    else [v for _, v in entries]
                )
                self._to_block(key, node, new)
                return
        open_at = self.text.find("{" if node.kind == "mapping" else "[", node.start, close)
        if open_at < 0:
            raise EditError(f"line {node.line + 1}: cannot find the start of this flow collection")
        open_line = line_column(self.starts, open_at)[0]
        outer = self._lead(open_line)
        unit = self._json_unit() if plan.json else "  "
        if children:
            first = node.pairs[0][0] if node.kind == "mapping" else node.items[0]
            multi = first.line != open_line
            lead = self._lead(first.line)
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
            multi = plan.json
            prefix = outer + unit
            compact = not multi
        key_sep, item_sep = self._separators(node, plan.json)
        quote = self._quote_style()
        key_quote = self._key_quote(node)
        item_quote = self._item_quote(node) if node.kind == "sequence" else None
        nl = self.newline

        def entry(name: str | None, value: Any) -> str:
            if plan.json:
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
                text = self.text[open_at] + nl + body + nl + outer + self.text[close]
            else:
                text = self.text[open_at] + item_sep.join(texts) + self.text[close]
            self.edits.append(_Edit(open_at, close + 1, text, node.depth))
            return
        last_end = last.end
        if node.kind == "mapping" and last.empty_scalar:
            last_end = max(last_end, node.pairs[-1][0].end)
        between = self.text[last_end:close]
        if "#" in between:
            raise EditError(f"line {node.line + 1}: a comment at the end of a flow collection")
        comma = between.find(",")
        if multi:
            pieces = [nl + prefix + t for t in texts]
            if comma >= 0:
                at = last_end + comma + 1
                text = "".join(p + "," for p in pieces)
            else:
                at = last_end
                text = "".join("," + p for p in pieces)
        elif comma >= 0:
            at = last_end + comma + 1
            text = "".join(item_sep[1:] + t + "," for t in texts)
        else:
            at = last_end
            text = "".join(item_sep + t for t in texts)
        self.edits.append(_Edit(at, at, text, node.depth))

    def _separators(self, node: YNode, is_json: bool) -> tuple[str, str]:
        """The file's own ``key: value`` and ``a, b`` separators, from the nearest examples."""
        key_sep = ": "
        item_sep = ", "
        found_key = not is_json
        found_item = False
        current: YNode | None = node
        while current is not None and not (found_key and found_item):
            if current.flow and current.kind == "mapping" and current.pairs:
                key, value = current.pairs[0]
                between = self.text[key.end : value.start]
                if not found_key and re.fullmatch(r" *: *", between):
                    key_sep, found_key = between, True
            if current.flow and not found_item:
                if current.kind == "mapping" and len(current.pairs) > 1:
                    gap = self.text[current.pairs[0][1].end : current.pairs[1][0].start]
                else:
                    items = current.items
                    gap = self.text[items[0].end : items[1].start] if len(items) > 1 else ""
                if re.fullmatch(r" *, *", gap):
                    item_sep, found_item = gap.strip(" ") + gap[gap.index(",") + 1 :], True
            current = current.parent
        return key_sep, item_sep

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
